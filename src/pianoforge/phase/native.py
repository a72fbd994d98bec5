"""The phase kernels as a small C library (``kernels.c``), built on first use and loaded with ctypes.

Why: numba costs a new process ~0.6 s of CPU before its first cached kernel runs (``import numba`` plus the
typing and lowering registries its first dispatch loads), which is most of what a short render spends beyond
torch's import. The C kernels are the numba kernels' loops with the same float32/float64 types at every step:
PGHI is bit-identical to the numba kernel (tested), the Griffin-Lim projection equal to float rounding (numba
compiles it with fastmath). Loading the built library takes ~1 ms.

Build: ``$CC`` (else ``cc`` or ``gcc``) ``-O2 -ffp-contract=off -shared -fPIC``, once per source version, into
``phase/__pycache__/`` beside this module, or ``$PIANOFORGE_CACHE`` (default ``~/.cache/pianoforge``) when that is
read-only; written to a temporary name, then renamed, so concurrent first runs are safe. Without a C compiler
(or with ``PIANOFORGE_KERNELS=numba``) :func:`library` is None and the callers use numba, as before.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-fno-math-errno", "-ffp-contract=off", "-shared", "-fPIC")
"""No FMA contraction: numba (without fastmath) rounds every multiply and add, and so must we."""

_LIB: list[ctypes.CDLL | None] = []  # [] not tried yet; [None] unavailable in this process


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    return shutil.which(cc) if cc else (shutil.which("cc") or shutil.which("gcc"))


def _cache_dirs() -> list[Path]:
    user = Path(os.environ.get("PIANOFORGE_CACHE") or Path.home() / ".cache" / "pianoforge")
    return [SOURCE.parent / "__pycache__", user / "kernels"]


def _build(cc: str, src: bytes, target: Path) -> bool:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError:
        return False
    os.close(fd)
    try:
        r = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log.debug("building %s failed: %s", target, r.stderr[-500:])
            return False
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
        return True
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("building %s failed: %s", target, e)
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    f, d, i64, p = ctypes.c_float, ctypes.c_double, ctypes.c_int64, ctypes.c_void_p
    lib.pf_pghi_integrate.argtypes = [p, i64, i64, f, f, d, d, d, i64, i64, i64, i64, p, p]
    lib.pf_pghi_integrate.restype = ctypes.c_int
    lib.pf_project.argtypes = [p, p, p, i64, f, p]
    lib.pf_project.restype = None
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded kernel library (built first if needed), or None: no compiler, a failed build, or
    ``PIANOFORGE_KERNELS=numba``."""
    if _LIB:
        return _LIB[0]
    lib = None
    if os.environ.get("PIANOFORGE_KERNELS", "").lower() != "numba":
        src = SOURCE.read_bytes()
        tag = hashlib.sha256(src + " ".join(FLAGS).encode()).hexdigest()[:16]
        name = f"kernels-{tag}-{platform.machine()}-{sys.implementation.cache_tag}.so"
        for d in _cache_dirs():
            if (d / name).is_file() or ((cc := _compiler()) is not None and _build(cc, src, d / name)):
                try:
                    lib = _load(d / name)
                    break
                except OSError as e:  # a truncated or foreign file: try the next place
                    log.debug("cannot load %s: %s", d / name, e)
    _LIB.append(lib)
    return lib
