"""Keep solver chatter out of the user's streams: stdout belongs to results (`--json`), stderr to
placement's own messages. Native solver code (HiGHS banners and internal warnings, SCIP, CBC) writes
below Python, to file descriptors 1 and 2: both point at /dev/null while it runs.
PLACEMENT_SOLVER_LOG=1 sends that output to stderr instead, for debugging a solve.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

try:
    _LIBC = ctypes.CDLL(None)
except OSError:  # pragma: no cover - platforms without a loadable C library
    _LIBC = None


def _flush_c_stdio() -> None:
    """Native code writes through C stdio buffers; flush them before the descriptors move back."""
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def quiet_native_output():
    """Point file descriptors 1 and 2 at /dev/null (or 1 at stderr, with PLACEMENT_SOLVER_LOG) while
    native solver code runs."""
    log = bool(os.environ.get("PLACEMENT_SOLVER_LOG"))
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(saved[1] if log else sink, 1)
        if not log:
            os.dup2(sink, 2)
        yield
    finally:
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
