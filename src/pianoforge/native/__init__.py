"""pianoforge's C kernels as a small library (``kernels.c``), built on first use and loaded with ctypes: the phase
kernels (PGHI integration, the Griffin-Lim projection; :mod:`pianoforge.phase`) and the numpy engine's bias + GELU
(:mod:`pianoforge.models.notes_numpy`). A foundation module (no pianoforge imports), so every layer may use it.

Why: numba costs a new process ~0.6 s of CPU before its first cached kernel runs (``import numba`` plus the
typing and lowering registries its first dispatch loads), which is most of what a short render spends beyond
torch's import. The C kernels are the numba kernels' loops with the same float32/float64 types at every step:
PGHI is bit-identical to the numba kernel (tested), the Griffin-Lim projection equal to float rounding (numba
compiles it with fastmath). Loading the built library takes ~1 ms.

Build: ``$CC`` (else ``cc`` or ``gcc``) ``-O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -shared -fPIC``
(no ``-march``: the cache may be shared by machines of one architecture), once per source version, into
``native/__pycache__/`` beside this module, or ``$PIANOFORGE_CACHE`` (default ``~/.cache/pianoforge``) when that is
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
FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-shared", "-fPIC")
"""No FMA contraction: numba (without fastmath) and numpy round every multiply and add, and so must we; no trapping
math lets gcc if-convert (and so vectorize) the GELU's clamps, which changes no result."""

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
    lib.pf_bias_gelu.argtypes = [p, p, i64, i64]
    lib.pf_bias_gelu.restype = None
    lib.pf_ola.argtypes = [p, p, p, i64, i64, i64, i64, i64, p]
    lib.pf_ola.restype = None
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


def reuse_freed_memory(mmap_threshold: int = 256 << 20) -> bool:
    """Ask glibc's malloc to serve allocations below ``mmap_threshold`` bytes from its heap and keep freed memory
    (``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``). A streaming render allocates and frees the
    same few-MB block arrays again and again; by default each one above 128 kB is a fresh ``mmap`` whose pages
    the kernel zero-fills on first touch (page faults were ~7 % of a long render's CPU time). Peak RSS is
    unchanged: the arrays are reused, not added. Process-wide; the render commands call it. False (nothing
    done) off glibc."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, int(mmap_threshold)) and mallopt(m_trim_threshold, int(2 * mmap_threshold)))
