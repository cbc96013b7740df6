"""Files that appear whole or not at all.

:class:`AtomicFile` writes to a temporary file next to the target and renames it over the target
when :meth:`AtomicFile.commit` is called (after fsync of the file, and of the directory after the
rename); :meth:`AtomicFile.abort` removes it. The target keeps the permissions a plain ``open()``
would give (``0o666 & ~umask``), or those of the file it replaces. Temporary names carry the
writer's PID, ``.<name>.<pid>.<random>.tmp``, so a later write to the same target removes what a
killed process (one that could not clean up, as after SIGKILL) left behind. Errors name the target,
never the temporary file. :func:`remove_temporary_files` is what a signal handler calls.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import threading

__all__ = ["AtomicFile", "output_mode", "remove_temporary_files"]

_live: set[str] = set()
_live_lock = threading.Lock()


def _umask() -> int:
    try:  # Linux >= 4.7: read it without changing it (os.umask would race with other threads)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_mode(path: str) -> int:
    """The permission bits a new file at ``path`` gets: those of the file it replaces, else
    ``0o666 & ~umask`` (what ``open(path, "w")`` would give)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(directory: str, base: str) -> None:
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[A-Za-z0-9_]{8}\.tmp\Z")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def remove_temporary_files() -> None:
    """Remove every temporary file this process has open for writing (for signal handlers)."""
    with _live_lock:
        paths = list(_live)
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


_HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_held():
    """Hold SIGTERM/SIGHUP/SIGINT while a file descriptor changes hands (created, wrapped, closed):
    an exception raised by a signal handler in the middle would leave a descriptor owned twice, and
    its second close could close another file. A signal that arrives meanwhile is delivered when the
    section ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class AtomicFile:
    """A binary file written next to ``path`` and renamed over it on :meth:`commit`."""

    def __init__(self, path, *, mode: str = "w+b"):
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path)) or "."
        base = os.path.basename(self.path)
        if os.path.isdir(self.path):
            raise IsADirectoryError(errno.EISDIR, f"cannot write {self.path}: it is a directory")
        _remove_stale(directory, base)
        with _signals_held():
            fd = self._create(directory, base)
            try:
                os.fchmod(fd, output_mode(self.path))
                self.file = os.fdopen(fd, mode)
            except BaseException:
                os.close(fd)
                self._forget()
                raise

    def _create(self, directory: str, base: str) -> int:
        # The name is registered before the file exists, so a signal arriving at any point between
        # the two still finds it in _live (unlinking a name not yet created is harmless).
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            self.tmp_path = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            with _live_lock:
                _live.add(self.tmp_path)
            try:
                return os.open(self.tmp_path, flags, 0o600)
            except FileExistsError:
                self._discard()
            except OSError as exc:
                self._discard()
                raise type(exc)(exc.errno, f"cannot write {self.path}: {exc.strerror}") from None
        raise FileExistsError(errno.EEXIST, f"cannot write {self.path}: no free temporary name")

    def _discard(self) -> None:
        with _live_lock:
            _live.discard(self.tmp_path)

    def _forget(self) -> None:
        with _live_lock:
            _live.discard(self.tmp_path)
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def commit(self) -> None:
        """Flush, fsync, rename over the target, fsync the directory."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            with _signals_held():  # closed and renamed, or neither
                self.file.close()
                os.replace(self.tmp_path, self.path)
                with _live_lock:
                    _live.discard(self.tmp_path)
        except OSError as exc:
            self.abort()
            raise type(exc)(exc.errno, f"cannot write {self.path}: {exc.strerror}") from None
        try:
            dir_fd = os.open(os.path.dirname(os.path.abspath(self.path)) or ".", os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def abort(self) -> None:
        """Close and remove the temporary file; the target is left as it was."""
        with _signals_held():
            try:
                if not self.file.closed:
                    self.file.close()
            finally:
                self._forget()
