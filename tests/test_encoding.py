from __future__ import annotations

import numpy as np
import pytest

from pianoforge.config import LOWEST_PITCH, N_KEYS, ScoreConfig, load_preset
from pianoforge.midi.encoding import (
    HELD,
    ONSET,
    VELOCITY,
    decode,
    encode,
    frames_for,
    pedal_channel,
    piano_roll,
)
from pianoforge.midi.score import Note, make_score

FR = 10.0  # 100 ms frames: frame k covers [k/10, (k+1)/10) s
FULL = ScoreConfig(velocity=True, pedal=True)
PED = 2 * N_KEYS + N_KEYS  # index of the pedal channel with velocity + pedal


def k(pitch: int) -> int:
    return pitch - LOWEST_PITCH


def frames_where(col: np.ndarray) -> list[int]:
    return np.flatnonzero(col).tolist()


def golden_score():
    return make_score([
        Note(60, 0.0, 1.0, 127),   # C4, then re-struck with no gap
        Note(60, 1.0, 1.5, 64),
        Note(64, 0.3, 0.7, 100),   # 0.3 * 10 = 2.9999999999999996: must still fall in frame 3
        Note(67, 0.25, 0.26, 50),  # shorter than a frame: holds its onset frame only
        Note(72, 0.0, 0.4, 90),    # released under the pedal, re-struck at 0.9 under the pedal
        Note(72, 0.9, 1.0, 30),
    ], pedal=[(0.3, 1.2)])


def test_channel_counts_and_layout():
    assert load_preset("lan2018").score.n_channels == 176
    assert load_preset("default").score.n_channels == 441
    assert pedal_channel(FULL) == 264 == PED
    assert pedal_channel(ScoreConfig(velocity=False, pedal=False)) is None
    assert (ONSET.start, HELD.start, VELOCITY.start) == (0, 88, 176)


def test_golden_encoding():
    x = encode(golden_score(), FULL, FR)
    assert x.shape == (15, 265)  # ends at 1.5 s
    assert x.dtype == np.float32
    on, held, vel, ped = x[:, ONSET], x[:, HELD], x[:, VELOCITY], x[:, PED]

    # re-struck with no gap: two onsets, held throughout, velocity switches at the second onset
    assert frames_where(on[:, k(60)]) == [0, 10]
    assert frames_where(held[:, k(60)]) == list(range(15))
    np.testing.assert_array_equal(vel[:10, k(60)], np.full(10, 1.0, np.float32))
    np.testing.assert_array_equal(vel[10:, k(60)], np.full(5, 64 / 127, np.float32))

    assert frames_where(on[:, k(64)]) == [3]
    assert frames_where(held[:, k(64)]) == [3, 4, 5, 6]
    np.testing.assert_array_equal(vel[3:7, k(64)], np.full(4, 100 / 127, np.float32))
    assert vel[7, k(64)] == 0 and vel[2, k(64)] == 0

    assert frames_where(on[:, k(67)]) == [2]
    assert frames_where(held[:, k(67)]) == [2]
    assert vel[2, k(67)] == np.float32(50 / 127)

    assert frames_where(on[:, k(72)]) == [0, 9]
    assert frames_where(held[:, k(72)]) == [0, 1, 2, 3, 9]

    assert frames_where(ped) == list(range(3, 12))

    # nothing else is set anywhere
    touched = {k(60), k(64), k(67), k(72)}
    others = [i for i in range(N_KEYS) if i not in touched]
    assert not on[:, others].any() and not held[:, others].any() and not vel[:, others].any()
    assert set(np.unique(x).tolist()) <= {0.0, 1.0, np.float32(64 / 127).item(), np.float32(100 / 127).item(),
                                          np.float32(50 / 127).item(), np.float32(90 / 127).item(),
                                          np.float32(30 / 127).item()}


def test_golden_encoding_with_pedal_extension():
    s = golden_score()
    ext = s.with_pedal_extension()
    ends = [(n.pitch, n.start, n.end) for n in ext.notes]
    assert ends == [(60, 0.0, 1.0),   # released under the pedal, but re-struck at that very moment
                    (72, 0.0, 0.9),   # released under the pedal; the same key is struck again at 0.9
                    (67, 0.25, 0.26),  # released before the pedal goes down
                    (64, 0.3, 1.2),   # released under the pedal: lasts until pedal-up
                    (72, 0.9, 1.2),   # released under the pedal: until pedal-up
                    (60, 1.0, 1.5)]   # released after pedal-up
    x = encode(s, ScoreConfig(pedal_extend=True), FR)
    assert np.array_equal(x, encode(ext, FULL, FR))
    held, on, vel = x[:, HELD], x[:, ONSET], x[:, VELOCITY]
    assert frames_where(held[:, k(64)]) == list(range(3, 12))
    assert frames_where(on[:, k(64)]) == [3]  # extension never adds onsets
    np.testing.assert_array_equal(vel[3:12, k(64)], np.full(9, 100 / 127, np.float32))
    assert frames_where(held[:, k(72)]) == list(range(0, 12))
    assert frames_where(on[:, k(72)]) == [0, 9]
    assert frames_where(held[:, k(67)]) == [2]
    assert frames_where(held[:, k(60)]) == list(range(15))
    assert frames_where(on[:, k(60)]) == [0, 10]
    # without pedal_extend the same score encodes differently
    assert not np.array_equal(x, encode(s, FULL, FR))


def test_lan2018_layout_has_no_velocity_or_pedal():
    cfg = load_preset("lan2018").score
    x = encode(golden_score(), cfg, FR)
    assert x.shape == (15, 176)
    full = encode(golden_score(), FULL, FR)
    np.testing.assert_array_equal(x, full[:, :176])


def test_n_frames_cuts_and_pads():
    s = golden_score()
    short = encode(s, FULL, FR, n_frames=5)
    assert short.shape == (5, 265)
    np.testing.assert_array_equal(short, encode(s, FULL, FR)[:5])
    long = encode(s, FULL, FR, n_frames=30)
    np.testing.assert_array_equal(long[:15], encode(s, FULL, FR))
    assert not long[15:].any()


def test_frames_for():
    assert frames_for(1.5, FR) == 15
    assert frames_for(1.51, FR) == 16
    assert frames_for(0.3, FR) == 3
    assert frames_for(0.0, FR) == 0
    assert encode(make_score([]), FULL, FR).shape == (1, 265)


def test_golden_decode():
    x = encode(golden_score(), FULL, FR)
    d = decode(x, FULL, FR)
    got = [(n.pitch, round(n.start, 9), round(n.end, 9), n.velocity) for n in d.notes]
    assert got == [(60, 0.0, 1.0, 127), (72, 0.0, 0.4, 90), (67, 0.2, 0.3, 50), (64, 0.3, 0.7, 100),
                   (72, 0.9, 1.0, 30), (60, 1.0, 1.5, 64)]
    assert d.pedal == (pytest.approx((0.3, 1.2)),)


def test_decode_held_without_onset_and_defaults():
    cfg = ScoreConfig(velocity=False, pedal=False)
    x = np.zeros((10, cfg.n_channels), np.float32)
    x[2:5, HELD.start + k(69)] = 1.0  # held, never struck
    x[6:8, HELD.start + k(70)] = 0.7  # above the threshold
    x[6:8, HELD.start + k(71)] = 0.3  # below it
    d = decode(x, cfg, FR, default_velocity=55)
    assert [(n.pitch, n.start, n.end, n.velocity) for n in d.notes] == [(69, 0.2, 0.5, 55),
                                                                         (70, 0.6, 0.8, 55)]
    with pytest.raises(ValueError, match="176"):
        decode(np.zeros((10, 265), np.float32), cfg, FR)


def random_grid_score(rng, fr: float, n_frames: int, pedal: bool = True):
    """Notes and pedal intervals whose times lie on the frame grid; same-key notes never overlap (they
    may touch: a re-strike with no gap)."""
    notes = []
    for pitch in rng.choice(np.arange(21, 109), size=12, replace=False):
        f = int(rng.integers(0, 10))
        while f < n_frames - 1:
            length = int(rng.integers(1, 12))
            end = min(f + length, n_frames)
            notes.append(Note(int(pitch), f / fr, end / fr, int(rng.integers(1, 128))))
            f = end + int(rng.choice([0, 0, 1, 5]))  # often re-struck with no gap
    ped = []
    if pedal:
        f = int(rng.integers(0, 5))
        while f < n_frames - 2:
            e = min(f + int(rng.integers(1, 10)), n_frames)
            ped.append((f / fr, e / fr))
            f = e + int(rng.integers(1, 6))
    return make_score(notes, ped)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("preset", ["default", "lan2018"])
def test_round_trip_on_grid(seed, preset):
    p = load_preset(preset)
    fr = p.audio.frame_rate
    s = random_grid_score(np.random.default_rng(seed), fr, 80, pedal=p.score.pedal)
    x = encode(s, p.score, fr, n_frames=80)
    d = decode(x, p.score, fr)
    key = lambda n: (n.pitch, n.start)  # noqa: E731
    orig, back = sorted(s.notes, key=key), sorted(d.notes, key=key)
    assert len(back) == len(orig)
    for a, b in zip(orig, back, strict=True):
        assert (a.pitch, a.start, a.end) == (b.pitch, pytest.approx(b.start, abs=1e-9), pytest.approx(b.end, abs=1e-9))
        if p.score.velocity:
            assert a.velocity == b.velocity
        else:
            assert b.velocity == 80
    if p.score.pedal:
        assert len(d.pedal) == len(s.pedal)
        for a, b in zip(s.pedal, d.pedal, strict=True):
            assert a == pytest.approx(b, abs=1e-9)
    np.testing.assert_array_equal(encode(d, p.score, fr, n_frames=80), x)


@pytest.mark.parametrize("seed", range(4))
def test_reencode_is_identical_off_grid(seed):
    """decode(encode(s)) quantizes to frames; encoding that again changes nothing."""
    rng = np.random.default_rng(100 + seed)
    notes = []
    for _ in range(60):
        start = float(rng.uniform(0, 4))
        notes.append(Note(int(rng.integers(21, 109)), start, start + float(rng.uniform(0.01, 1.0)),
                          int(rng.integers(1, 128))))
    s = make_score(notes, [(float(a), float(a + rng.uniform(0.05, 0.8))) for a in rng.uniform(0, 4, 4)])
    fr = load_preset("default").audio.frame_rate
    for cfg in (FULL, ScoreConfig(pedal_extend=True)):
        x = encode(s, cfg, fr)
        d = decode(x, cfg, fr)
        assert np.array_equal(encode(d, FULL, fr, n_frames=x.shape[0]), x)


def test_velocity_round_trip_through_float16():
    fr = 62.5
    notes = [Note(21 + (v % 88), (v // 88) * 0.5 + (v % 88) / fr, (v // 88) * 0.5 + (v % 88) / fr + 0.1, v)
             for v in range(1, 128)]
    s = make_score(notes)
    x = encode(s, FULL, fr).astype(np.float16).astype(np.float32)  # as stored
    d = decode(x, FULL, fr)
    assert sorted(n.velocity for n in d.notes) == list(range(1, 128))
    for n in d.notes:
        f = int(round(n.start * fr))
        assert abs(float(x[f, VELOCITY.start + n.pitch - 21]) - n.velocity / 127) <= 1 / 127


def test_piano_roll():
    x = encode(golden_score(), FULL, FR)
    roll = piano_roll(x)
    assert roll.shape == (88, 15)
    np.testing.assert_array_equal(roll, x[:, HELD].T)


def test_restrike_inside_a_held_note_keeps_latest_velocity():
    """MIDI allows a key to be struck again while an earlier note on it is still on; from the re-strike on,
    the velocity channel is the re-strike's until the key is released (decode reads it back that way)."""
    s = make_score([Note(60, 0.0, 1.0, 127), Note(60, 0.3, 0.5, 10)])
    x = encode(s, FULL, FR)
    assert frames_where(x[:, ONSET.start + k(60)]) == [0, 3]
    assert frames_where(x[:, HELD.start + k(60)]) == list(range(10))
    np.testing.assert_array_equal(x[:3, VELOCITY.start + k(60)], np.ones(3, np.float32))
    np.testing.assert_array_equal(x[3:10, VELOCITY.start + k(60)], np.full(7, 10 / 127, np.float32))
    d = decode(x, FULL, FR)
    assert [(n.start, n.end, n.velocity) for n in d.notes] == [(0.0, 0.3, 127), (0.3, 1.0, 10)]
    np.testing.assert_array_equal(encode(d, FULL, FR), x)


def test_envelope_channels_golden():
    """Note-age envelope restarts at every onset (also a re-strike with no gap); release-age envelope runs
    from the last held frame until the key is held again; the pedal stays the last channel."""
    from pianoforge.config import ENVELOPE_ATTACK_S, ENVELOPE_RELEASE_S
    from pianoforge.midi.encoding import envelope_slices

    cfg = ScoreConfig(velocity=True, pedal=True, envelopes=True)
    assert cfg.n_channels == 88 * 5 + 1 and pedal_channel(cfg) == 440
    att_s, rel_s = envelope_slices(cfg)
    assert (att_s.start, rel_s.start) == (264, 352) and envelope_slices(FULL) is None
    x = encode(golden_score(), cfg, FR)
    base = encode(golden_score(), FULL, FR)
    np.testing.assert_array_equal(x[:, :264], base[:, :264])  # envelopes are appended, nothing else moves
    np.testing.assert_array_equal(x[:, 440], base[:, PED])
    att, rel = x[:, att_s], x[:, rel_s]
    ta, tr = ENVELOPE_ATTACK_S * FR, ENVELOPE_RELEASE_S * FR
    c4 = k(60)  # held 0..14, struck at 0 and 10
    np.testing.assert_allclose(att[:10, c4], np.exp(-np.arange(10) / ta), rtol=1e-6)
    np.testing.assert_allclose(att[10:15, c4], np.exp(-np.arange(5) / ta), rtol=1e-6)
    assert not rel[:, c4].any()
    e4 = k(64)  # held frames 3..6: release from frame 7 on, measured from frame 6
    assert frames_where(att[:, e4]) == [3, 4, 5, 6] and att[3, e4] == 1.0
    np.testing.assert_allclose(rel[7:15, e4], np.exp(-np.arange(1, 9) / tr), rtol=1e-6)
    assert not rel[:7, e4].any()
    c5 = k(72)  # held 0..3, released 4..8, held again 9
    assert rel[9, c5] == 0 and att[9, c5] == 1.0 and rel[8, c5] == pytest.approx(np.exp(-5 / tr))
    assert not att[:, k(61)].any() and not rel[:, k(61)].any()  # never played
    # decode ignores the envelopes: same notes back
    assert decode(x, cfg, FR).notes == decode(base, FULL, FR).notes


def test_envelopes_see_notes_begun_before_a_window():
    """Computed over the whole piece: a window cut mid-note still carries the note's true age."""
    cfg = ScoreConfig(velocity=False, pedal=False, envelopes=True)
    x = encode(make_score([Note(60, 0.0, 3.0, 80)]), cfg, FR)
    from pianoforge.midi.encoding import envelope_slices

    att = x[:, envelope_slices(cfg)[0]][:, k(60)]
    assert att[20] == pytest.approx(np.exp(-2.0)) and att[20] < att[10] < att[0] == 1.0
