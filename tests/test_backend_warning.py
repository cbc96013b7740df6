"""A missing compiled core is said, not silent (a source checkout that shadows the installed package
runs 10-100x slower)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# one compiled twin that cannot be imported is enough to fall back for all of them
PROBE = "import sys; sys.modules['codec._fast.rans'] = None; import codec; print(codec.backend)"


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if k != "CODEC_PUREPYTHON"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env)


def test_fallback_to_the_reference_warns_and_says_why():
    proc = _run({})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "pure"
    assert "PerformanceWarning: codec: the compiled core is not in use" in proc.stderr
    assert "codec._fast.rans" in proc.stderr and "CODEC_PUREPYTHON=1" in proc.stderr


def test_asking_for_the_reference_is_silent():
    proc = _run({"CODEC_PUREPYTHON": "1"})
    assert proc.returncode == 0 and proc.stdout.strip() == "pure" and "PerformanceWarning" not in proc.stderr
