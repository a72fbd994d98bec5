from __future__ import annotations

import logging

import pytest

from conftest import scale, write_bad_midis, write_midi_file, write_tempo_change_midi
from pianoforge.errors import PianoforgeError, ScoreError
from pianoforge.midi.score import Note, load_score, make_score, pedal_intervals, write_midi


def test_load_simple(tmp_path):
    p = write_midi_file(tmp_path / "a.mid", [(64, 0.5, 1.0, 70), (60, 0.0, 0.5, 100)])
    s = load_score(p)
    assert s.source == str(p)
    assert [n.pitch for n in s.notes] == [60, 64]  # sorted by start
    n0, n1 = s.notes
    assert (n0.start, n0.end, n0.velocity) == (pytest.approx(0.0), pytest.approx(0.5), 100)
    assert (n1.start, n1.end, n1.velocity) == (pytest.approx(0.5), pytest.approx(1.0), 70)
    assert s.end_time == pytest.approx(1.0)
    assert s.pedal == ()
    assert s.dropped_out_of_range == 0
    arrs = s.to_arrays()
    assert arrs["pitch"].tolist() == [60, 64]
    assert arrs["velocity"].tolist() == [100, 70]


def test_tempo_change_gives_seconds(tmp_path):
    s = load_score(write_tempo_change_midi(tmp_path / "tempo.mid"))
    got = [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in s.notes]
    assert got == [(60, 0.0, 0.5), (64, 0.5, 1.5), (67, 1.5, 2.5)]
    assert s.end_time == pytest.approx(2.5)


def test_drum_tracks_excluded_and_tracks_merged(tmp_path):
    p = write_midi_file(tmp_path / "multi.mid", [(60, 0.0, 1.0, 80)],
                        extra_tracks=[[(48, 0.25, 0.75, 60)], [(72, 0.5, 1.5, 90)]],
                        drums=[(60, 0.0, 0.5, 127), (36, 0.1, 0.2, 127), (42, 2.0, 3.0, 127)])
    s = load_score(p)
    assert [(n.pitch, n.velocity) for n in s.notes] == [(60, 80), (48, 60), (72, 90)]
    assert s.end_time == pytest.approx(1.5)  # the drum note at 2-3 s is ignored


def test_out_of_range_pitches_dropped_with_counting_warning(tmp_path, caplog):
    p = write_midi_file(tmp_path / "range.mid", [(20, 0.0, 0.5, 80), (21, 0.0, 0.5, 80), (108, 0.5, 1.0, 80),
                                                 (109, 0.5, 1.0, 80), (127, 0.5, 1.0, 80), (0, 1.0, 2.0, 80)])
    with caplog.at_level(logging.WARNING, logger="pianoforge.midi.score"):
        s = load_score(p)
    assert [n.pitch for n in s.notes] == [21, 108]
    assert s.dropped_out_of_range == 4
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("dropped 4 note(s)" in m and str(p) in m for m in msgs), msgs


def test_only_out_of_range_is_an_error(tmp_path):
    p = write_midi_file(tmp_path / "high.mid", [(120, 0.0, 1.0, 80)])
    with pytest.raises(ScoreError, match="piano range"):
        load_score(p)


def test_pedal_intervals_from_cc64(tmp_path):
    p = write_midi_file(tmp_path / "ped.mid", scale(60, n=8, step=0.25),
                        pedal=[(0.25, 100), (0.5, 120), (0.75, 30), (1.0, 64), (1.25, 63), (1.5, 127)])
    s = load_score(p)
    # 64 counts as down, 63 as up; repeated "down" values do not restart; still down at the end -> closed at
    # the last note-off (2.0 s)
    assert s.pedal == (pytest.approx((0.25, 0.75)), pytest.approx((1.0, 1.25)), pytest.approx((1.5, 2.0)))


def test_pedal_intervals_function():
    class CC:
        def __init__(self, number, value, time):
            self.number, self.value, self.time = number, value, time

    ccs = [CC(64, 0, 0.1), CC(64, 127, 0.2), CC(7, 0, 0.3), CC(64, 0, 0.5), CC(64, 127, 3.0)]
    assert pedal_intervals(ccs, end_time=2.0) == [(0.2, 0.5)]  # down after the end: dropped
    assert pedal_intervals(ccs, end_time=4.0) == [(0.2, 0.5), (3.0, 4.0)]


def test_make_score_sorts_and_merges():
    s = make_score([Note(64, 1.0, 2.0, 80), Note(60, 1.0, 1.5, 80), Note(50, 0.5, 0.5, 80), Note(40, 0.0, 1.0, 9)],
                   pedal=[(1.0, 2.0), (0.0, 0.5), (0.4, 0.8), (3.0, 3.0)])
    assert [n.pitch for n in s.notes] == [40, 60, 64]  # zero-length note removed
    assert s.pedal == ((0.0, 0.8), (1.0, 2.0))  # overlaps merged, empty interval removed
    assert s.end_time == 2.0


def test_pedal_extension():
    s = make_score([
        Note(60, 0.0, 0.5, 80),   # released under the pedal (0.4-2.0), re-struck at 1.2 -> ends at 1.2
        Note(60, 1.2, 1.5, 90),   # released under the pedal, no later onset -> pedal-up 2.0
        Note(64, 0.0, 0.3, 70),   # released before the pedal goes down -> unchanged
        Note(67, 0.5, 2.1, 70),   # released between the pedals -> unchanged
        Note(72, 2.1, 2.2, 70),   # second pedal (2.15-3.0) is down at its release -> 3.0
    ], pedal=[(0.4, 2.0), (2.15, 3.0)])
    ext = s.with_pedal_extension()
    ends = {(n.pitch, n.start): n.end for n in ext.notes}
    assert ends == {(60, 0.0): 1.2, (60, 1.2): 2.0, (64, 0.0): 0.3, (67, 0.5): 2.1, (72, 2.1): 3.0}
    assert [(n.pitch, n.start, n.velocity) for n in ext.notes] == [(n.pitch, n.start, n.velocity) for n in s.notes]
    # no pedal: nothing to do
    plain = make_score([Note(60, 0.0, 0.5, 80)])
    assert plain.with_pedal_extension() == plain


def test_write_midi_round_trip(tmp_path):
    s = make_score([Note(60, 0.0, 0.5, 100), Note(64, 0.25, 1.0, 50), Note(108, 1.0, 1.5, 1)],
                   pedal=[(0.1, 0.9)])
    p = write_midi(s, tmp_path / "out.mid")
    back = load_score(p)
    assert len(back.notes) == 3
    for a, b in zip(s.notes, back.notes, strict=True):
        assert (a.pitch, a.velocity) == (b.pitch, b.velocity)
        assert a.start == pytest.approx(b.start, abs=2e-3) and a.end == pytest.approx(b.end, abs=2e-3)
    assert len(back.pedal) == 1 and back.pedal[0] == pytest.approx((0.1, 0.9), abs=2e-3)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.mid"]


@pytest.mark.parametrize("kind", ["corrupt", "empty", "noteless", "drums", "truncated", "text"])
def test_bad_midi_raises_one_line_score_error(tmp_path, kind):
    path, words = write_bad_midis(tmp_path)[kind]
    with pytest.raises(ScoreError) as ei:
        load_score(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ")
    assert words.lower() in msg.lower()
    assert "\n" not in msg
    assert isinstance(ei.value, PianoforgeError)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ScoreError, match="not found"):
        load_score(tmp_path / "nope.mid")
    with pytest.raises(ScoreError, match="folder"):
        load_score(tmp_path)
