"""Writing outputs: the one atomic-write helper every writer uses, and output-path checks done before any work.

Lowest layer: imports only :mod:`pianoforge.errors`.

- :func:`atomic_output` yields a temporary path next to the output; when the block finishes, the file (or
  folder) gets the usual permissions (0666 / 0777 minus the umask; ``mkstemp``/``mkdtemp`` and safetensors
  make 0600 / 0700) and is renamed into place. On error the temporary is removed. It is the one place that
  refuses to replace an existing output that is not a regular file (a device such as ``/dev/full``, a FIFO,
  a socket, a folder): ``os.replace`` would silently put a regular file where the device was.
- Temporary names are ``.<name>.pianoforge-tmp-<pid>-<random><suffix>``. A process killed mid-write
  (kill -9, power loss) leaves one behind; the next write into that folder removes those whose process is
  gone (:func:`clean_stale_temps`). The pid is this host's: do not share one output folder between hosts
  writing at the same time.
- :func:`check_output` validates an output path before a command starts working: supported extension,
  folder exists and is writable, not a special file, not overwritten without ``--force``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from pianoforge.errors import OutputError, PianoforgeError

TMP_MARK = ".pianoforge-tmp-"
_TMP_RE = re.compile(r"^\..*" + re.escape(TMP_MARK) + r"(\d+)-")
_cleaned: set[str] = set()  # folders already swept by this process (one sweep per folder per run)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _short(e: OSError) -> str:
    return e.strerror or " ".join(str(e).split())[:160] or type(e).__name__


def _write_problem(folder: Path, e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"output folder {folder} is not writable ({_short(e)})"
    return f"cannot write into {folder} ({_short(e)})"


def refuse_special(path: str | Path, *, folder: bool = False) -> None:
    """OutputError when ``path`` exists and is not a regular file (``folder=True``: not a folder)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (a parent may be a file: caught later)
        return
    except OSError as e:
        raise OutputError(path, f"cannot inspect the output ({_short(e)})") from e
    if folder and not stat.S_ISDIR(mode):
        raise OutputError(path, "exists and is not a folder; refusing to replace it")
    if not folder and not stat.S_ISREG(mode):
        raise OutputError(path, f"exists and is {_kind(mode)}, not a regular file; refusing to replace it")


def set_output_modes(path: str | Path) -> None:
    """Give a file 0666, a folder 0777 (and, one level down, its files and folders the same), minus the umask."""
    mask = _umask()
    p = Path(path)
    if p.is_dir():
        for child in p.iterdir():
            if not child.is_symlink():
                os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~mask)
        os.chmod(p, 0o777 & ~mask)
    else:
        os.chmod(p, 0o666 & ~mask)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temporaries (ours: see module doc) in ``folder`` whose writing process is gone. Returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TMP_RE.match(e.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path)
            else:
                os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _cleaned:
        _cleaned.add(key)
        clean_stale_temps(folder)


def temp_prefix(path: Path) -> str:
    """The temporary-name prefix of an output (``.<name>.pianoforge-tmp-<pid>-``; long names are cut)."""
    return f".{path.name[:100]}{TMP_MARK}{os.getpid()}-"


@contextlib.contextmanager
def atomic_output(path: str | Path, *, folder: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success give it the umask's permissions and move it onto
    ``path`` (a folder replaces an existing folder of that name). The temporary keeps ``path``'s suffix
    (or ``suffix``) so writers that choose a format by extension (soundfile, matplotlib) still do.

    Raises OutputError (one line naming ``path``) for a special file in the way, a missing or unwritable
    folder, a full disk; other errors of the block propagate, with the temporary removed.
    """
    p = Path(path)
    parent = p.parent
    refuse_special(p, folder=folder)
    if not parent.is_dir():
        raise OutputError(p, f"output folder {parent} does not exist")
    _sweep_once(parent)
    try:
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(p), dir=parent))
        else:
            fd, name = tempfile.mkstemp(prefix=temp_prefix(p), suffix=p.suffix if suffix is None else suffix,
                                        dir=parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as e:
        raise OutputError(p, _write_problem(parent, e)) from e
    try:
        try:
            yield tmp
            set_output_modes(tmp)
            if folder:
                if p.exists():
                    shutil.rmtree(p)
                os.rename(tmp, p)
            else:
                refuse_special(p)  # appeared while we were writing
                os.replace(tmp, p)
        except OSError as e:
            raise OutputError(p, _write_problem(parent, e)) from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if folder else tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def final_names(temps: dict[Path, Path]) -> Iterator[dict[Path, Path]]:
    """For a caller that hands writers its own temporaries (outputs committed together): an error about a
    temporary in ``temps`` (temporary -> output) is re-raised naming the output the user asked for."""
    try:
        yield temps
    except PianoforgeError as e:
        path, problem = e.path or "", e.problem
        for tmp, final in temps.items():
            path, problem = path.replace(str(tmp), str(final)), problem.replace(str(tmp), str(final))
        if (path, problem) == (e.path or "", e.problem):
            raise
        raise type(e)(path or None, problem) from e


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def check_output(path: str | Path, *, force: bool = False, suffixes: Sequence[str] | None = None,
                 what: str = "output") -> Path:
    """Validate an output file before any work: ``suffixes`` (lower-case, with the dot) lists the supported
    extensions; the folder must exist and be writable; an existing special file is refused always, an
    existing regular file unless ``force``. Returns the path; raises OutputError naming it."""
    p = Path(path)
    refuse_special(p)
    if suffixes is not None:
        check_suffix(p, suffixes, what)
    if p.exists() and not force:
        raise OutputError(p, "already exists (use --force to overwrite)")
    check_folder(p.parent if str(p.parent) else Path("."), create=False, label=p)
    return p


def check_suffix(path: str | Path, suffixes: Sequence[str], what: str = "output") -> None:
    """OutputError unless ``path``'s extension (case-insensitive) is one of ``suffixes``, naming them."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        got = f"extension {p.suffix!r}" if p.suffix else "no extension"
        raise OutputError(p, f"unsupported {what} format ({got}); supported: {', '.join(suffixes)}")


def check_folder(folder: str | Path, *, create: bool = True, label: str | Path | None = None) -> Path:
    """An output folder that exists (made when ``create``) and accepts files: probed by creating and removing
    a temporary (``os.access`` is not enough for root on a read-only filesystem)."""
    d = Path(folder)
    who = label if label is not None else d
    refuse_special(d, folder=True)
    if not d.is_dir():
        if not create:
            raise OutputError(who, f"output folder {d} does not exist")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except NotADirectoryError as e:
            raise OutputError(who, f"cannot create the output folder {d}: a parent is a file, not a folder") from e
        except OSError as e:
            raise OutputError(who, f"cannot create the output folder {d} ({_write_problem(d.parent, e)})") from e
    try:
        fd, probe = tempfile.mkstemp(prefix=temp_prefix(Path("write-test")), dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(who, _write_problem(d, e)) from e
    return d


def free_bytes(folder: str | Path) -> int:
    """Bytes free to an unprivileged user in the filesystem holding ``folder``."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
