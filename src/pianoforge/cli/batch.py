"""Batch forms of ``render`` and ``reference``: many MIDI inputs in one process, outputs mirroring them.

Inputs, in order, duplicates (the same file twice) dropped:

- a MIDI file: taken as given (any extension); output ``OUT/<stem>.<format>``;
- a folder: its ``.mid``/``.midi`` files (case-insensitive; hidden names skipped), with ``--recursive`` those
  of its subfolders too; output ``OUT/<path under the folder>/<stem>.<format>`` (the structure is kept);
- a glob (``'scores/**/*.mid'``, quoted so the shell leaves it): the MIDI files it matches (``**`` spans
  folders); output path relative to the glob's fixed leading folders;
- ``@LIST`` or ``LIST.txt``: a text file with one path per line (a file, folder or glob, relative to the
  current folder like a command-line argument; blank lines and ``#`` comments skipped).

Before any work, every output is checked: two inputs that would write the same output stop the command (one
line, exit 2); an existing output is skipped without ``--force`` and listed; a special file or folder in the
way fails that input. Then the inputs are rendered one by one under a progress bar: a bad input prints one
line ``error: FILE: problem`` and the others go on. The summary line counts rendered, failed and skipped
inputs; the exit status is 2 when any failed. Every output is written atomically, so Ctrl-C leaves the
finished files and no temporary (a rerun of the same command then renders only what is missing).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pianoforge.cli.common import _n, fatal
from pianoforge.errors import PianoforgeError

MIDI_SUFFIXES = (".mid", ".midi")
LIST_SUFFIX = ".txt"
GLOB_CHARS = frozenset("*?[")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    src: Path  # the input MIDI file
    rel: Path  # its path below the output folder, input extension still on (``sub/piece.mid``)
    problem: str | None = None  # an input that yielded nothing: why (reported as a failure)


def _is_list(arg: str) -> bool:
    return arg.startswith("@") or (arg.lower().endswith(LIST_SUFFIX) and Path(arg).is_file())


def _is_glob(arg: str) -> bool:
    return bool(GLOB_CHARS & set(arg)) and not Path(arg).exists()


def is_batch(inputs: list[str], output: str) -> bool:
    """A batch: several inputs, or one that is a folder, a glob or a list, or ``-o`` ending in a slash.
    Otherwise the single-file command runs exactly as before (``render a.mid -o a.wav``)."""
    if len(inputs) != 1 or output.endswith(("/", os.sep)):
        return True
    arg = inputs[0]
    return Path(arg).is_dir() or _is_list(arg) or _is_glob(arg)


def _midi_in(folder: Path, recursive: bool) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [Path(root) / f for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in MIDI_SUFFIXES]
    return found


def _glob_root(pattern: str) -> Path:
    """The leading folders of ``pattern`` without a wildcard: outputs keep the structure below them."""
    parts = Path(pattern).parts
    fixed = []
    for p in parts[:-1]:
        if GLOB_CHARS & set(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path(".")


def _expand_one(arg: str, recursive: bool) -> list[Job]:
    p = Path(arg)
    if p.is_dir():
        found = [Job(f, f.relative_to(p)) for f in _midi_in(p, recursive)]
        if not found:
            hint = "" if recursive else " (--recursive to look in its subfolders)"
            return [Job(p, Path(p.name), f"a folder without .mid/.midi files{hint}")]
        return found
    if _is_glob(arg):
        root = _glob_root(arg)
        found = [Path(f) for f in sorted(glob.glob(arg, recursive=True))]
        found = [f for f in found if f.is_file() and f.suffix.lower() in MIDI_SUFFIXES]
        if not found:
            return [Job(p, Path(p.name), "the pattern matches no .mid/.midi file")]
        return [Job(f, f.relative_to(root) if f.is_relative_to(root) else Path(f.name)) for f in found]
    return [Job(p, Path(p.name))]


def _read_list(arg: str) -> list[str] | str:
    path = Path(arg[1:] if arg.startswith("@") else arg)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot read the list ({getattr(e, 'strerror', None) or e})"
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def expand_inputs(inputs: list[str], recursive: bool) -> list[Job]:
    """The jobs of the command-line inputs (see the module docstring), the same file only once."""
    jobs: list[Job] = []
    for arg in inputs:
        if _is_list(arg):
            entries = _read_list(arg)
            if isinstance(entries, str) or not entries:
                jobs.append(Job(Path(arg.lstrip("@")), Path(arg), entries or "the list names no file"))
                continue
            for e in entries:
                jobs += _expand_one(e, recursive)
        else:
            jobs += _expand_one(arg, recursive)
    seen: set[Path] = set()
    unique = []
    for j in jobs:
        key = j.src.resolve() if j.problem is None else j.src
        if key not in seen:
            seen.add(key)
            unique.append(j)
    return unique


def output_of(job: Job, out_root: Path, suffix: str) -> Path:
    """``OUT/sub/piece.mid`` -> ``OUT/sub/piece<suffix>`` (only the last extension is replaced)."""
    return out_root / job.rel.parent / (job.rel.stem + suffix)


def plan_outputs(jobs: list[Job], out_root: Path, suffix: str, force: bool,
                 ) -> tuple[list[tuple[Job, Path]], list[tuple[Path, str]], list[Path]]:
    """Check every output before any work: (jobs to run with their outputs, failures, existing outputs skipped).
    Two inputs writing one output is a usage error (fatal, before anything is written)."""
    from pianoforge.fsutil import refuse_special

    owner: dict[Path, Path] = {}
    todo, failed, skipped = [], [], []
    for job in jobs:
        if job.problem is not None:
            failed.append((job.src, job.problem))
            continue
        out = output_of(job, out_root, suffix)
        if out in owner:
            fatal(f"{out}: would be written from both {owner[out]} and {job.src}; render them into separate "
                  f"output folders")
        owner[out] = job.src
        try:
            refuse_special(out)  # a device, FIFO, socket or folder in the way: that input fails
        except PianoforgeError as e:
            failed.append((job.src, str(e)))
            continue
        if out.exists() and not force:
            skipped.append(out)
        else:
            todo.append((job, out))
    return todo, failed, skipped


def run_batch(jobs: list[Job], output: str, suffix: str, force: bool, quiet: bool, desc: str,
              prepare: Callable[[], object], work: Callable[[object, Path, Path], float]) -> int:
    """Render ``jobs`` into the folder ``output``: ``prepare()`` once (load the model) when there is work,
    then ``work(state, src, out)`` per input, returning the seconds of audio written. Returns the exit status."""
    from tqdm import tqdm

    from pianoforge.fsutil import check_folder

    if not jobs:
        fatal("no input files")
    out_root = check_folder(output, create=True)
    todo, failed, skipped = plan_outputs(jobs, out_root, suffix, force)
    for src, problem in failed:
        print(f"error: {problem if problem.startswith(str(src)) else f'{src}: {problem}'}", file=sys.stderr)
    if skipped:
        names = ", ".join(str(p.relative_to(out_root)) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"{out_root}: {_n(len(skipped), 'output')} already exist, skipped (use --force to overwrite): {names}")
    t0 = time.perf_counter()
    state = prepare() if todo else None
    t_prep = time.perf_counter() - t0
    done, audio_s = 0, 0.0
    bar = tqdm(todo, desc=desc, unit="file", disable=quiet or not todo, file=sys.stderr, dynamic_ncols=True)
    try:
        for job, out in bar:
            bar.set_postfix_str(str(job.rel))
            try:
                check_folder(out.parent, create=True, label=out)
                audio_s += work(state, job.src, out)
                done += 1
            except PianoforgeError as e:
                tqdm.write(f"error: {e}", file=sys.stderr)
                failed.append((job.src, str(e)))
            except Exception as e:  # noqa: BLE001 - a batch never stops at one bad input
                log.debug("%s failed", job.src, exc_info=True)
                tqdm.write(f"error: {job.src}: {type(e).__name__}: {' '.join(str(e).split())[:200]}", file=sys.stderr)
                failed.append((job.src, str(e)))
    except KeyboardInterrupt:
        bar.close()
        print(f"{out_root}: interrupted after {done} of {len(todo)} files; the finished ones are kept")
        raise
    bar.close()
    wall = time.perf_counter() - t0
    rate = f", {audio_s / max(wall - t_prep, 1e-9):.0f}x real time after {t_prep:.1f} s of start" if done else ""
    print(f"{out_root}: {done} of {_n(len(jobs), 'input')} rendered ({audio_s / 60:.1f} min of audio in {wall:.1f} s"
          f"{rate}); {len(failed)} failed, {len(skipped)} skipped (already exist)")
    return 2 if failed else 0


def add_batch_flags(p: argparse.ArgumentParser) -> None:
    """The flags only a batch uses (``render``, ``reference``)."""
    p.add_argument("-r", "--recursive", action="store_true",
                   help="batch: also the MIDI files in the subfolders of a folder input (the structure is kept)")
    p.add_argument("--format", choices=["wav", "flac"], default="wav",
                   help="batch: format of the outputs, named after the inputs (default wav)")
    p.add_argument("-q", "--quiet", action="store_true", help="batch: no progress bar")


def render_batch(a: argparse.Namespace) -> int:
    """``pianoforge render IN... -o OUTDIR/``: the model loaded once, then every input streamed into its file."""
    if a.figure:
        fatal("--figure: takes one input file with a .wav/.flac output, not a batch")
    jobs = expand_inputs(a.inputs, a.recursive)

    def prepare():
        from pianoforge.inference import PerformRenderer
        from pianoforge.native import reuse_freed_memory

        reuse_freed_memory()  # the streamed blocks reuse freed memory, not fresh zero-filled pages
        r = PerformRenderer.from_checkpoint(a.checkpoint, engine=a.engine)
        if a.threads and r.engine == "torch":
            import torch

            torch.set_num_threads(a.threads)
        try:
            r._method(a.phase, a.iterations)  # a phase this model cannot use fails the batch once, not per file
        except ValueError as e:
            fatal(f"--phase {a.phase}: {e}")
        return r

    def work(r, src: Path, out: Path) -> float:
        from pianoforge.budget import check_render, perform_plan
        from pianoforge.midi.score import load_score

        score = load_score(src)
        au = r.preset.audio
        plan = perform_plan(r.n_frames(score) / au.frame_rate, au.frame_rate, au.n_bins, au.sample_rate,
                            a.sample_rate or au.sample_rate)
        check_render(src, plan, out.parent, a.allow_long)
        try:
            res = r.render_midi(score, out, sample_rate=a.sample_rate, phase=a.phase, iterations=a.iterations,
                                keep_arrays=False)  # streams into the file, atomically
        except ValueError as e:
            raise PianoforgeError(src, str(e)) from e
        return res.seconds

    return run_batch(jobs, a.output, f".{a.format}", a.force, a.quiet, "render", prepare, work)


def reference_batch(a: argparse.Namespace, one: Callable[[argparse.Namespace], int]) -> int:
    """``pianoforge reference IN... -o OUTDIR/``: FluidSynth on every input, each through ``one`` (the
    single-file command, so a batch writes exactly what one call per file would; its lines go to the log)."""
    jobs = expand_inputs(a.inputs, a.recursive)

    def prepare():
        from pianoforge.audio.render import find_soundfont, fluidsynth_binary

        fluidsynth_binary(), find_soundfont(a.soundfont)  # missing ones fail the batch once, not per file

    def work(_, src: Path, out: Path) -> float:
        from pianoforge.audio.io import audio_info

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            one(argparse.Namespace(**{**vars(a), "input": src, "output": str(out), "force": True}))
        log.debug("%s", buf.getvalue().rstrip())
        return audio_info(out)[1]

    return run_batch(jobs, a.output, f".{a.format}", a.force, a.quiet, "reference", prepare, work)
