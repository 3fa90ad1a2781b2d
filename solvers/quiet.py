"""Keep solver chatter out of the user's streams: stdout belongs to results (`--json`), stderr to
placement's own messages. Native solver code (HiGHS banners and internal warnings, SCIP, CBC) writes
below Python, to file descriptors 1 and 2: both point at /dev/null while it runs.
PLACEMENT_SOLVER_LOG=1 sends that output to stderr instead, for debugging a solve.

The descriptors belong to the process, not a thread: solves running at once in several threads (the time
windows of fix-and-optimize) share one redirection, made by the first to enter and undone by the last to
leave, so no thread restores a descriptor another one still needs quiet, or saves one already silenced.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

try:
    _LIBC = ctypes.CDLL(None)
except OSError:  # pragma: no cover - platforms without a loadable C library
    _LIBC = None


def _flush_c_stdio() -> None:
    """Native code writes through C stdio buffers; flush them before the descriptors move back."""
    if _LIBC is not None:
        _LIBC.fflush(None)


_LOCK = threading.Lock()
_ACTIVE = {"depth": 0, "restore": None}     # solves inside; how to undo the redirection when the last leaves


@contextlib.contextmanager
def quiet_native_output():
    """Point file descriptors 1 and 2 at /dev/null (or 1 at stderr, with PLACEMENT_SOLVER_LOG) while
    native solver code runs, in this thread or any other."""
    with _LOCK:
        if _ACTIVE["depth"] == 0:
            _ACTIVE["restore"] = _redirect()
        _ACTIVE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE["depth"] -= 1
            if _ACTIVE["depth"] == 0 and _ACTIVE["restore"] is not None:
                _ACTIVE["restore"]()
                _ACTIVE["restore"] = None


def _redirect():
    """Descriptors 1 and 2 pointed away; returns the function that points them back (None when they
    cannot be moved, e.g. no real descriptors under a test runner's capture)."""
    log = bool(os.environ.get("PLACEMENT_SOLVER_LOG"))
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):
        return None
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(saved[1] if log else sink, 1)
    if not log:
        os.dup2(sink, 2)

    def restore() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except ValueError:
                pass
        _flush_c_stdio()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (*saved, sink):
            os.close(descriptor)
    return restore
