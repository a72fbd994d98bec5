"""midi/smf.py: the lean MIDI reader gives exactly the score pretty_midi gives (the same notes to the bit, the
same pedal, the same tracks in the same order), and leaves every file it does not handle to pretty_midi."""

from __future__ import annotations

import warnings
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from pianoforge.errors import ScoreError
from pianoforge.midi import score as score_mod
from pianoforge.midi.score import load_score, score_from_pretty_midi
from pianoforge.midi.smf import read_smf

EXAMPLE = Path(score_mod.__file__).resolve().parents[1] / "examples" / "etude.mid"


def _random_midi(path: Path, seed: int) -> None:
    """A file with what real files have: several tracks (tempo only on track 0, or not), running status (mido
    writes it), note-on velocity 0 as note-off, a note-off and a new note-on of the same key at one tick,
    overlapping notes of one key, program changes mid-track, CC64 before the first note, drums on channel 9,
    sysex, text metas, pitch bends, pitches outside the piano."""
    rng = np.random.default_rng(seed)
    mf = mido.MidiFile(type=int(rng.integers(0, 2)), ticks_per_beat=int(rng.choice([96, 220, 384, 480, 960])))
    n_tracks = 1 if mf.type == 0 else int(rng.integers(1, 4))
    for t in range(n_tracks):
        events: list[tuple[int, mido.Message | mido.MetaMessage]] = []
        if t == 0:
            events.append((0, mido.MetaMessage("set_tempo", tempo=int(rng.integers(300_000, 900_000)))))
            for _ in range(int(rng.integers(0, 4))):
                events.append((int(rng.integers(1, 20_000)),
                               mido.MetaMessage("set_tempo", tempo=int(rng.integers(250_000, 1_200_000)))))
            events.append((0, mido.MetaMessage("time_signature", numerator=3, denominator=4)))
            events.append((0, mido.MetaMessage("key_signature", key="Eb")))
        events.append((0, mido.MetaMessage("track_name", name=f"track {t}")))
        events.append((int(rng.integers(0, 50)), mido.Message("sysex", data=[1, 2, 3])))
        for _ in range(int(rng.integers(40, 160))):
            ch = int(rng.choice([0, 0, 1, 9]))
            on = int(rng.integers(0, 20_000))
            dur = int(rng.choice([0, 1, int(rng.integers(2, 3000))]))
            pitch = int(rng.integers(15, 115)) if rng.random() < 0.95 else 60
            vel = int(rng.integers(1, 128))
            events.append((on, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            off = (mido.Message("note_on", channel=ch, note=pitch, velocity=0) if rng.random() < 0.5
                   else mido.Message("note_off", channel=ch, note=pitch, velocity=int(rng.integers(0, 128))))
            events.append((on + dur, off))
            if rng.random() < 0.1:  # a re-strike of the same key at the note-off's tick
                events.append((on + dur, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
                events.append((on + dur + 100, mido.Message("note_off", channel=ch, note=pitch)))
        for _ in range(int(rng.integers(0, 30))):
            events.append((int(rng.integers(0, 20_000)),
                           mido.Message("control_change", channel=int(rng.choice([0, 1])), control=int(rng.choice([64, 64, 7])),
                                        value=int(rng.integers(0, 128)))))
        for _ in range(int(rng.integers(0, 4))):
            events.append((int(rng.integers(0, 20_000)),
                           mido.Message("program_change", channel=int(rng.choice([0, 1])), program=int(rng.integers(0, 12)))))
        events.append((int(rng.integers(0, 20_000)), mido.Message("pitchwheel", channel=0, pitch=100)))
        events.sort(key=lambda e: e[0])  # stable: same-tick events keep their order
        track, last = mido.MidiTrack(), 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - last))
            last = tick
        mf.tracks.append(track)
    mf.save(str(path))


def _pretty(path: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return score_from_pretty_midi(pretty_midi.PrettyMIDI(str(path)), path, **kw)


@pytest.mark.parametrize("seed", range(40))
def test_the_lean_reader_equals_pretty_midi_on_random_files(tmp_path, seed):
    path = tmp_path / f"r{seed}.mid"
    _random_midi(path, seed)
    assert read_smf(path.read_bytes()) is not None  # handled here, not left to pretty_midi
    for kw in ({}, {"tracks": [0]}, {"programs": [0]}):
        try:
            ref = _pretty(path, **kw)
        except ScoreError as e:
            with pytest.raises(ScoreError) as got:
                load_score(path, **kw)
            assert str(got.value) == str(e)
            continue
        got = load_score(path, **kw)
        assert got == ref  # notes (times to the bit) and pedal
        assert (got.merged_tracks, got.dropped_drum_notes, got.programs, got.dropped_out_of_range) == \
            (ref.merged_tracks, ref.dropped_drum_notes, ref.programs, ref.dropped_out_of_range)


def test_the_lean_reader_equals_pretty_midi_on_the_example():
    assert load_score(EXAMPLE) == _pretty(EXAMPLE)


def test_files_it_does_not_handle_go_to_pretty_midi(tmp_path):
    good = tmp_path / "g.mid"
    _random_midi(good, 1)
    data = good.read_bytes()
    smpte = data[:12] + bytes([0xE7, 0x28]) + data[14:]  # SMPTE time division
    assert read_smf(smpte) is None
    assert read_smf(data[: len(data) - 7]) is None  # truncated: the last track runs past the end
    assert read_smf(b"RIFF" + data) is None
    bad = bytearray(data)
    bad[8:10] = (7).to_bytes(2, "big")  # file type 7
    assert read_smf(bytes(bad)) is None
    # and load_score then gives pretty_midi's one-line error, naming the file
    trunc = tmp_path / "t.mid"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScoreError, match="t.mid"):
        load_score(trunc)


def test_a_long_file_is_read_without_pretty_midi(tmp_path):
    """The point of the reader: no pretty_midi import, no per-tick array."""
    import subprocess
    import sys

    path = tmp_path / "long.mid"
    _random_midi(path, 3)
    code = ("import sys; from pianoforge.midi.score import load_score; "
            f"s = load_score({str(path)!r}); print(len(s.notes) > 0, 'pretty_midi' in sys.modules, 'mido' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "False"]
