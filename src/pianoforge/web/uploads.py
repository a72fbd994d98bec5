"""What comes in from the page: size-limited uploads parsed as MIDI in memory, and checkpoints named by id.

No user-supplied name or path ever reaches the filesystem: an upload's file name is only shown (and is
cleaned first), its bytes are parsed from memory, and a checkpoint is chosen by an id that the server made
from a path it found itself (shipped weights, ``--checkpoint``, best.safetensors under ``--runs``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pianoforge.budget import format_duration
from pianoforge.checkpoint import CheckpointError, read_checkpoint_meta
from pianoforge.errors import PianoforgeError, ScoreError
from pianoforge.midi.score import Score, score_from_pretty_midi

log = logging.getLogger(__name__)

DEFAULT_NAME = "upload.mid"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")


class UploadTooLarge(PianoforgeError):
    """An upload over the server's size limit (HTTP 413)."""


def display_name(name: str | None) -> str:
    """A user's file name cut to something safe to show: its last component, odd characters replaced, at
    most 80 characters. Only ever displayed (error lines, titles, download names), never opened."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = _UNSAFE.sub("_", base)[:80].lstrip(".")
    return base or DEFAULT_NAME


def check_size(n: int, limit: int, name: str) -> None:
    if n > limit:
        raise UploadTooLarge(name, f"upload is larger than this server's limit of {limit / 1e6:g} MB "
                                   f"(pianoforge serve --max-upload-mb)")


def parse_midi(data: bytes, name: str) -> Score:
    """Bytes of an upload -> piano :class:`Score`, with the same checks and one-line messages as
    :func:`pianoforge.midi.score.load_score` (the CLI's), naming the upload by ``name``."""
    import pretty_midi

    if not data:
        raise ScoreError(name, "empty file")
    if data[:4] not in (b"MThd", b"RIFF"):
        raise ScoreError(name, "not a MIDI file (no MThd header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as e:  # mido/pretty_midi raise many types for corrupt or truncated data
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise ScoreError(name, f"corrupt or truncated MIDI ({msg})") from e
    return score_from_pretty_midi(pm, name)


def check_duration(score: Score, seconds: float, limit: float, name: str) -> None:
    if seconds > limit:
        raise ScoreError(name, f"the render would be {format_duration(seconds)} long; this server"
                               f" renders at most {limit:g} s (pianoforge serve --max-seconds)")


# ------------------------------------------------------------------------------------------- examples

def examples() -> dict[str, Path]:
    """The bundled example scores (``pianoforge/examples/*.mid``) by file name."""
    folder = Path(str(resources.files("pianoforge") / "examples"))
    return {p.name: p for p in sorted(folder.glob("*.mid"))}


# ---------------------------------------------------------------------------------------- checkpoints

@dataclass(frozen=True)
class CheckpointEntry:
    id: str
    label: str
    kind: str  # "perform" or "gan"
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "kind": self.kind}


def _entry(prefix: str, path: Path, label: str) -> CheckpointEntry | None:
    try:
        kind = read_checkpoint_meta(path)["kind"]
    except CheckpointError as e:
        log.warning("skipping %s", e)
        return None
    if kind not in ("perform", "gan"):
        return None
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    return CheckpointEntry(f"{prefix}-{digest}", label, kind, path)


def catalogue(extra: tuple[str, ...] = (), runs: str | Path | None = None) -> list[CheckpointEntry]:
    """Every checkpoint the page may offer: the shipped ones first (the defaults), then ``extra`` paths, then
    each ``best.safetensors`` under ``runs`` (labelled by its folder relative to ``runs``)."""
    out: list[CheckpointEntry] = []
    weights = Path(str(resources.files("pianoforge") / "weights"))
    shipped = sorted(weights.glob("*.safetensors"), key=lambda p: (not p.stem.endswith("default"), p.name))
    out += [e for p in shipped if (e := _entry("shipped", p, f"shipped: {p.stem}"))]
    out += [e for p in map(Path, extra) if (e := _entry("ckpt", p, str(p)))]
    if runs:
        root = Path(runs)
        for p in sorted(root.rglob("best.safetensors")):
            e = _entry("run", p, f"run: {p.parent.relative_to(root)}")
            if e:
                out.append(e)
    return out


def check_runs_folder(runs: str | Path | None, extra: tuple[str, ...]) -> None:
    """Fail at start (one line) for a ``--runs`` that is not a folder or a ``--checkpoint`` that is unreadable."""
    if runs is not None and not Path(runs).is_dir():
        raise PianoforgeError(runs, "--runs must be a folder")
    for p in extra:
        read_checkpoint_meta(p)
