"""Keep solver chatter off stdout: stdout belongs to results (`--json`), logs go to stderr."""

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
    """Native code writes through C stdio buffers; flush them before fd 1 moves back."""
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def stdout_to_stderr():
    """Point file descriptor 1 at stderr while native solver code runs (it writes below Python)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
