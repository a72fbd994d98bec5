"""A small typed piano score loaded from MIDI (by :mod:`pianoforge.midi.smf`, which reads what pretty_midi would,
or by pretty_midi itself for the files that reader leaves to it).

Times are seconds (tempo changes resolved by pretty_midi), pitches MIDI numbers 21..108, velocities
1..127. Sustain pedal (CC64 >= 64 = down) is kept as a list of (start, end) intervals.
"""

from __future__ import annotations

import logging
import sys
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pianoforge.config import HIGHEST_PITCH, LOWEST_PITCH
from pianoforge.errors import ScoreError
from pianoforge.fsutil import atomic_output

if TYPE_CHECKING:
    import pretty_midi

log = logging.getLogger(__name__)

PEDAL_CC = 64
PEDAL_THRESHOLD = 64


@dataclass(frozen=True, slots=True)  # slots: 72 bytes a note instead of ~250 (a long piece holds 10^4-10^5)
class Note:
    pitch: int  # MIDI number, 21..108
    start: float  # seconds
    end: float  # seconds, > start
    velocity: int  # 1..127


@dataclass(frozen=True)
class Score:
    """Notes sorted by (start, pitch); pedal intervals sorted and non-overlapping."""

    notes: tuple[Note, ...]
    pedal: tuple[tuple[float, float], ...] = ()
    source: str = ""
    dropped_out_of_range: int = field(default=0, compare=False)
    merged_tracks: int = field(default=1, compare=False)  # pitched tracks merged into this one part
    dropped_drum_notes: int = field(default=0, compare=False)  # drum-track notes left out
    programs: tuple[int, ...] = field(default=(), compare=False)  # GM programs of the merged tracks (sorted)

    @property
    def end_time(self) -> float:
        """Last note-off or pedal release, seconds."""
        ends = [n.end for n in self.notes] + [e for _, e in self.pedal]
        return max(ends) if ends else 0.0

    @property
    def duration(self) -> float:
        return self.end_time

    def with_pedal_extension(self) -> Score:
        """Notes lengthened while the sustain pedal is down: a note released under the pedal sounds until
        the pedal comes up, or until the same key is struck again, whichever is first."""
        if not self.pedal:
            return self
        starts = np.array([p[0] for p in self.pedal])
        by_pitch: dict[int, list[float]] = {}
        for n in self.notes:
            by_pitch.setdefault(n.pitch, []).append(n.start)
        for v in by_pitch.values():
            v.sort()
        out = []
        for n in self.notes:
            end = n.end
            i = int(np.searchsorted(starts, n.end, side="right")) - 1
            if i >= 0 and self.pedal[i][0] <= n.end < self.pedal[i][1]:
                end = self.pedal[i][1]
                same = by_pitch[n.pitch]
                j = bisect_right(same, n.start)  # the key's next strike: its first start after this one
                if j < len(same):
                    end = min(end, max(n.end, same[j]))
            out.append(replace(n, end=end))
        return replace(self, notes=tuple(out))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Columns pitch (int), start, end (float, s), velocity (int)."""
        return {
            "pitch": np.array([n.pitch for n in self.notes], dtype=np.int64),
            "start": np.array([n.start for n in self.notes], dtype=np.float64),
            "end": np.array([n.end for n in self.notes], dtype=np.float64),
            "velocity": np.array([n.velocity for n in self.notes], dtype=np.int64),
        }


def make_score(notes: list[Note], pedal: list[tuple[float, float]] | None = None, source: str = "") -> Score:
    """Sort and validate notes and pedal intervals into a :class:`Score`."""
    clean = sorted((n for n in notes if n.end > n.start), key=lambda n: (n.start, n.pitch, n.end))
    return Score(tuple(clean), tuple(_merge_intervals(pedal or [])), source)


def _merge_intervals(iv: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted((float(s), float(e)) for s, e in iv if e > s):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def pedal_intervals(control_changes, end_time: float) -> list[tuple[float, float]]:
    """CC64 events -> (down, up) intervals; a pedal still down at the end is closed at ``end_time``."""
    out, down_at = [], None
    for cc in sorted((c for c in control_changes if c.number == PEDAL_CC), key=lambda c: c.time):
        down = cc.value >= PEDAL_THRESHOLD
        if down and down_at is None:
            down_at = cc.time
        elif not down and down_at is not None:
            out.append((down_at, cc.time))
            down_at = None
    if down_at is not None and end_time > down_at:
        out.append((down_at, end_time))
    return out


def load_score(path: str | Path | Score | pretty_midi.PrettyMIDI, tracks: Sequence[int] | None = None,
               programs: Sequence[int] | None = None) -> Score:
    """Read a MIDI file (or take an in-memory ``pretty_midi.PrettyMIDI``; a :class:`Score` is returned as is)
    into a piano :class:`Score`.

    Drum tracks are excluded (their notes counted in ``dropped_drum_notes``); the other tracks, or only those
    selected by ``tracks`` (indices in pretty_midi's instrument order, from 0) and ``programs`` (General MIDI
    programs 0-127), are merged into one part (``merged_tracks``, ``programs``), with a warning when more than
    one track is merged, drums are dropped or a program is not a piano (0-7). Pitches outside A0..C8 are
    dropped with a warning that counts them. Raises :class:`ScoreError` (one line naming the file) for
    missing, non-MIDI, corrupt, truncated, empty, note-less or drum-only files, and for a selection that
    keeps no track.
    """
    if isinstance(path, Score):
        return path
    pm_module = sys.modules.get("pretty_midi")  # not imported yet: no PrettyMIDI object can exist
    if pm_module is not None and isinstance(path, pm_module.PrettyMIDI):
        return score_from_pretty_midi(path, "<PrettyMIDI>", tracks, programs)
    p = Path(path)
    if not p.exists():
        raise ScoreError(p, "file not found")
    if p.is_dir():
        raise ScoreError(p, "is a folder, not a MIDI file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ScoreError(p, f"unreadable ({e.strerror or e})") from e
    head = data[:4]
    if not head:
        raise ScoreError(p, "empty file")
    if head != b"MThd" and head != b"RIFF":
        raise ScoreError(p, "not a MIDI file (no MThd header)")
    from pianoforge.midi.smf import read_smf

    smf = read_smf(data)  # the lean reader (midi/smf.py); None: pretty_midi decides
    if smf is not None:
        return score_from_pretty_midi(smf, p, tracks, programs)  # type: ignore[arg-type]  # same attributes
    import pretty_midi  # lazy: heavy import, only for the files midi/smf.py leaves to it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(p))
    except Exception as e:  # mido/pretty_midi raise many types for corrupt or truncated data
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise ScoreError(p, f"corrupt or truncated MIDI ({msg})") from e
    return score_from_pretty_midi(pm, p, tracks, programs)


def select_tracks(pm: pretty_midi.PrettyMIDI, p: str | Path, tracks: Sequence[int] | None = None,
                  programs: Sequence[int] | None = None) -> tuple[list, int]:
    """(pitched instruments kept, drum notes dropped). ``tracks`` index ``pm.instruments`` from 0."""
    insts = list(pm.instruments)
    if tracks is not None:
        bad = [t for t in tracks if not 0 <= t < len(insts)]
        if bad:
            raise ScoreError(p, f"no track {bad[0]} (the file has {len(insts)} track(s), numbered from 0)")
        insts = [insts[t] for t in sorted(set(tracks))]
    n_drum = sum(len(i.notes) for i in insts if i.is_drum)
    pitched = [i for i in insts if not i.is_drum]
    if programs is not None:
        pitched = [i for i in pitched if i.program in set(programs)]
        if not pitched:
            have = sorted({i.program for i in pm.instruments if not i.is_drum})
            raise ScoreError(p, f"no track plays program(s) {', '.join(map(str, programs))} "
                                f"(the file's programs: {', '.join(map(str, have)) or 'none'})")
    return pitched, n_drum


def score_from_pretty_midi(pm: pretty_midi.PrettyMIDI, p: str | Path, tracks: Sequence[int] | None = None,
                           programs: Sequence[int] | None = None) -> Score:
    """The piano :class:`Score` of a parsed MIDI file; ``p`` names it in errors and in ``Score.source``."""
    pitched, n_drum = select_tracks(pm, p, tracks, programs)
    raw = [n for i in pitched for n in i.notes]
    if not raw:
        raise ScoreError(p, "only drum notes, no piano notes" if n_drum else "no notes")
    sounding = [i for i in pitched if i.notes]
    progs = tuple(sorted({int(i.program) for i in sounding}))
    if len(sounding) > 1 or n_drum or any(q > 7 for q in progs):
        log.warning("%s: %d track(s) merged into one part (GM program(s) %s%s)%s", p, len(sounding),
                    ", ".join(map(str, progs)), "; not all piano" if any(q > 7 for q in progs) else "",
                    f"; {n_drum} drum note(s) dropped" if n_drum else "")
    notes = [
        Note(int(n.pitch), float(n.start), float(n.end), int(min(max(n.velocity, 1), 127)))
        for n in raw if LOWEST_PITCH <= n.pitch <= HIGHEST_PITCH
    ]
    dropped = len(raw) - len(notes)
    if dropped:
        log.warning("%s: dropped %d note(s) outside the piano range A0-C8 (21-108)", p, dropped)
    if not notes:
        raise ScoreError(p, "no notes inside the piano range A0-C8")
    end = max(n.end for n in notes)
    ccs = [c for i in pitched for c in i.control_changes]
    score = make_score(notes, pedal_intervals(ccs, end), source=str(p))
    return replace(score, dropped_out_of_range=dropped, merged_tracks=len(sounding), dropped_drum_notes=n_drum,
                   programs=progs)


def write_midi(score: Score, path: str | Path, program: int = 0, tail_seconds: float = 0.0) -> Path:
    """Write a score as a one-track MIDI file (notes + CC64), atomically.

    ``tail_seconds > 0`` appends a silent CC64=0 event that long after the end, so that FluidSynth keeps
    rendering the release tail (it stops about 1 s after the last event).
    """
    import pretty_midi

    p = Path(path)
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=int(program), name="piano")
    for n in score.notes:
        inst.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), float(n.start), float(n.end)))
    for s, e in score.pedal:
        inst.control_changes.append(pretty_midi.ControlChange(PEDAL_CC, 127, float(s)))
        inst.control_changes.append(pretty_midi.ControlChange(PEDAL_CC, 0, float(e)))
    if tail_seconds > 0:
        inst.control_changes.append(pretty_midi.ControlChange(PEDAL_CC, 0, score.end_time + tail_seconds))
    pm.instruments.append(inst)
    with atomic_output(p, suffix=".mid") as tmp:
        pm.write(str(tmp))
    return p
