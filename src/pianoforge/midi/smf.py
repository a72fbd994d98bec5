"""A lean reader of Standard MIDI Files that gives what pretty_midi gives, for the score and nothing else.

Why our own: ``pretty_midi.PrettyMIDI(path)`` goes through mido, which makes one Python ``Message`` object per
event, then fills a float64 tick -> seconds array as long as the piece (one entry per tick). On a dense
60-minute piece (27 000 notes, 58 000 events) that is 1.6 s and +53 MB of memory before the first frame is
rendered. This module decodes the file's bytes straight into the few numbers a
:class:`~pianoforge.midi.score.Score` needs (2.5-4x faster, a few MB, no pretty_midi or mido import).

It is a port of pretty_midi 0.2.11's ``_load_tempo_changes``, ``_update_tick_to_time`` and
``_load_instruments`` on those numbers, with the same float64 arithmetic for tick -> seconds (so the same
times to the bit), the same instruments in the same order (keyed by program, channel and track, with the
"straggler" controller events carried into the instrument that follows), the same note pairing (a note-off
closes every open note of its key struck at an earlier tick), tempo from track 0 only. tests/test_smf.py
checks the result equals pretty_midi's on the corpus and on randomized files with running status, tempo
and program changes, drums and overlapping notes.

Anything this reader does not handle exactly as mido would (SMPTE time division, RIFF/RMID wrappers, a
chunk that is not ``MTrk``, bad lengths, a data byte >= 0x80, an unknown status, an empty track, a largest
tick above pretty_midi's ``MAX_TICK``) returns None, and the caller uses pretty_midi, which then accepts
the file or raises its own error: corrupt files get the same one-line errors as before.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

MAX_TICK = 10_000_000
"""pretty_midi's ``MAX_TICK``: above it pretty_midi calls the file corrupt (we leave that verdict to it)."""

_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


class _Unsupported(Exception):
    """Something to leave to pretty_midi."""


@dataclass(slots=True)
class SmfNote:
    velocity: int
    pitch: int
    start: float  # seconds
    end: float  # seconds


@dataclass(slots=True)
class SmfControlChange:
    number: int
    value: int
    time: float  # seconds


@dataclass(slots=True)
class SmfInstrument:
    """What :func:`pianoforge.midi.score.select_tracks` and ``score_from_pretty_midi`` read of a
    ``pretty_midi.Instrument``."""

    program: int
    is_drum: bool = False
    notes: list[SmfNote] = field(default_factory=list)
    control_changes: list[SmfControlChange] = field(default_factory=list)


@dataclass(slots=True)
class SmfFile:
    """The ``instruments`` of a file, in pretty_midi's order."""

    instruments: list[SmfInstrument]
    resolution: int


def _varlen(buf: bytes, i: int, end: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if i >= end:
            raise _Unsupported("truncated variable-length number")
        b = buf[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i
    raise _Unsupported("variable-length number longer than 4 bytes")


_META_LENGTHS = {0x20: 1, 0x21: 1, 0x2F: 0, 0x51: 3, 0x54: 5, 0x58: 4, 0x59: 2}


def _check_meta(kind: int, data: bytes) -> None:
    """Meta events mido or pretty_midi would reject (wrong length, a key, time signature or SMPTE rate they
    cannot decode): left to them, so the file gets their error."""
    if kind in _META_LENGTHS and len(data) != _META_LENGTHS[kind]:
        raise _Unsupported(f"meta event {kind:#x} of length {len(data)}")
    if kind == 0x00 and len(data) not in (0, 2):
        raise _Unsupported("sequence number of the wrong length")
    if kind == 0x51 and int.from_bytes(data, "big") == 0:
        raise _Unsupported("tempo 0")
    if kind == 0x54 and data[0] >> 5 > 3:
        raise _Unsupported("SMPTE offset with an unknown frame rate")
    if kind == 0x58 and data[0] == 0:
        raise _Unsupported("time signature with numerator 0")
    if kind == 0x59 and (not -7 <= (data[0] - 256 if data[0] > 127 else data[0]) <= 7 or data[1] not in (0, 1)):
        raise _Unsupported("key signature mido cannot decode")


def _events(buf: bytes, i: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """A track chunk's events as (absolute tick, kind, channel, a, b): kind 0x80..0xE0 channel messages (note
    off/on: a = note, b = velocity; CC: a = controller, b = value; program: a = program), 0x51 a tempo meta
    event (a = microseconds per beat); other metas and sysex are skipped but still advance the tick."""
    out: list[tuple[int, int, int, int, int]] = []
    tick, status = 0, 0
    while i < end:
        delta, i = _varlen(buf, i, end)
        tick += delta
        if i >= end:
            raise _Unsupported("truncated event")
        b = buf[i]
        if b >= 0x80:
            i += 1
            if b < 0xF0:
                status = b
        elif status == 0 or status == 0xF0:
            raise _Unsupported("running status without a channel status byte")
        else:
            b = status
        if b == 0xFF:  # meta
            if i >= end:
                raise _Unsupported("truncated meta event")
            kind = buf[i]
            n, i = _varlen(buf, i + 1, end)
            if i + n > end:
                raise _Unsupported("meta event past the chunk's end")
            _check_meta(kind, buf[i:i + n])
            out.append((tick, 0x51, 0, int.from_bytes(buf[i:i + 3], "big"), 0) if kind == 0x51 else (tick, 0, 0, 0, 0))
            i += n
            continue
        if b in (0xF0, 0xF7):  # sysex (mido lets it set the running status: a data byte after it is odd)
            status = 0xF0
            n, i = _varlen(buf, i, end)
            if i + n > end:
                raise _Unsupported("sysex past the chunk's end")
            i += n
            out.append((tick, 0, 0, 0, 0))
            continue
        if b >= 0xF0:
            raise _Unsupported(f"status byte {b:#x} in a track")
        kind, channel = b & 0xF0, b & 0x0F
        n = _DATA_BYTES[kind]
        if i + n > end:
            raise _Unsupported("channel message past the chunk's end")
        a = buf[i]
        c = buf[i + 1] if n == 2 else 0
        if a >= 0x80 or c >= 0x80:
            raise _Unsupported("data byte >= 0x80")
        i += n
        out.append((tick, kind, channel, a, c))
    return out


def _tracks(buf: bytes) -> tuple[int, list[list[tuple[int, int, int, int, int]]]]:
    if len(buf) < 14 or buf[:4] != b"MThd":
        raise _Unsupported("no MThd header")
    hlen = int.from_bytes(buf[4:8], "big")
    if hlen < 6 or 8 + hlen > len(buf):
        raise _Unsupported("bad header length")
    if int.from_bytes(buf[8:10], "big") not in (0, 1, 2):
        raise _Unsupported("MIDI file type not 0, 1 or 2")
    n_tracks = int.from_bytes(buf[10:12], "big")
    division = int.from_bytes(buf[12:14], "big")
    if division & 0x8000 or division == 0:
        raise _Unsupported("SMPTE or zero time division")
    i, tracks = 8 + hlen, []
    for _ in range(n_tracks):
        if i + 8 > len(buf) or buf[i:i + 4] != b"MTrk":
            raise _Unsupported("a chunk that is not MTrk")
        size = int.from_bytes(buf[i + 4:i + 8], "big")
        start, end = i + 8, i + 8 + size
        if end > len(buf):
            raise _Unsupported("track past the end of the file")
        ev = _events(buf, start, end)
        if not ev:
            raise _Unsupported("empty track")
        tracks.append(ev)
        i = end
    if not tracks:
        raise _Unsupported("no tracks")
    return division, tracks


def _tick_to_time(resolution: int, track0: list[tuple[int, int, int, int, int]], max_tick: int):
    """pretty_midi's tick scales and tick -> seconds, evaluated per tick instead of stored per tick."""
    scales = [(0, 60.0 / (120.0 * resolution))]
    for tick, kind, _, tempo, _ in track0:
        if kind != 0x51:
            continue
        if tick == 0:
            scales = [(0, 60.0 / ((6e7 / tempo) * resolution))]
        else:
            s = 60.0 / ((6e7 / tempo) * resolution)
            if s != scales[-1][1]:
                scales.append((tick, s))
    starts, offsets = [], []
    last_end = 0  # as pretty_midi: an int 0 until the first interval ends
    for (t0, s), (t1, _) in zip(scales[:-1], scales[1:], strict=True):
        starts.append(t0)
        offsets.append(last_end)
        last_end = last_end + s * (t1 - t0)
    starts.append(scales[-1][0])
    offsets.append(last_end)
    rates = [s for _, s in scales]

    def time_of(tick: int) -> float:
        j = bisect_right(starts, tick) - 1
        return float(offsets[j] + rates[j] * (tick - starts[j]))

    return time_of


def read_smf(data: bytes) -> SmfFile | None:
    """The instruments pretty_midi would find in the MIDI file ``data``, or None where pretty_midi should
    decide (see the module docstring)."""
    try:
        resolution, tracks = _tracks(data)
        max_tick = max(ev[-1][0] for ev in tracks) + 1
        if max_tick > MAX_TICK:
            raise _Unsupported("largest tick above MAX_TICK")
        time_of = _tick_to_time(resolution, tracks[0], max_tick)
    except _Unsupported:
        return None
    instrument_map: dict[tuple[int, int, int], SmfInstrument] = {}
    stragglers: dict[tuple[int, int], SmfInstrument] = {}

    def get(program: int, channel: int, track: int, create: bool) -> SmfInstrument:
        inst = instrument_map.get((program, channel, track))
        if inst is not None:
            return inst
        if not create and (channel, track) in stragglers:
            return stragglers[(channel, track)]
        if create:
            inst = SmfInstrument(program, channel == 9)
            if (channel, track) in stragglers:
                inst.control_changes = stragglers[(channel, track)].control_changes  # shared, as pretty_midi
            instrument_map[(program, channel, track)] = inst
        else:
            inst = SmfInstrument(program)
            stragglers[(channel, track)] = inst
        return inst

    for t_idx, events in enumerate(tracks):
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        program = [0] * 16
        for tick, kind, ch, a, b in events:
            if kind == 0xC0:
                program[ch] = a
            elif kind == 0x90 and b > 0:
                open_notes.setdefault((ch, a), []).append((tick, b))
            elif kind == 0x80 or kind == 0x90:
                key = (ch, a)
                if key in open_notes:
                    notes = open_notes[key]
                    close = [(s, v) for s, v in notes if s != tick]
                    keep = [(s, v) for s, v in notes if s == tick]
                    if close:
                        end = time_of(tick)
                        inst = get(program[ch], ch, t_idx, True)
                        inst.notes.extend(SmfNote(v, a, time_of(s), end) for s, v in close)
                    if close and keep:
                        open_notes[key] = keep
                    else:
                        del open_notes[key]
            elif kind == 0xB0:
                get(program[ch], ch, t_idx, False).control_changes.append(SmfControlChange(a, b, time_of(tick)))
    return SmfFile(list(instrument_map.values()), resolution)
