import os

import pytest
from hypothesis import HealthCheck, settings

import codec

# Profiles: "dev" (default), "ci" (more examples), "pure" (the pure-Python core is ~100x slower).
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("pure", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_default = "pure" if codec.backend == "pure" else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))


@pytest.fixture(autouse=True)
def _no_swallowed_exceptions(capfd):
    # A Cython error that cannot propagate prints "Exception ignored" instead of raising.
    yield
    err = capfd.readouterr().err
    assert "Exception ignored" not in err, err
