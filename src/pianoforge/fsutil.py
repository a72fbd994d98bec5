"""File-system helpers shared by every atomic writer (lowest layer: imports nothing from pianoforge)."""

from __future__ import annotations

import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def mkstemp(**kwargs) -> tuple[int, str]:
    """``tempfile.mkstemp`` whose file gets the usual permissions (0666 minus the umask) instead of 0600,
    so that files renamed into place are readable like any other output."""
    fd, tmp = tempfile.mkstemp(**kwargs)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp
