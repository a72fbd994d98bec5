"""The note-state channels and the perform ``notes`` head (models/note_synth.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianoforge.config import LOWEST_PITCH, N_KEYS, NOTE_AGE_S, NOTE_RELEASE_S, ScoreConfig, load_preset
from pianoforge.midi.encoding import encode, note_state, note_state_slices
from pianoforge.midi.score import Note, make_score
from pianoforge.models.note_synth import NoteSynthHead, harmonic_combs
from pianoforge.models.perform import build_perform_model

FR = 10.0  # 100 ms frames


def k(pitch: int) -> int:
    return pitch - LOWEST_PITCH


def test_note_state_ages_release_and_velocity():
    # C4 struck at 0.2 s, released at 1.0 s (after the pedal is up), re-struck at 2.0 s; E4 released at
    # 0.5 s under a pedal held until 0.8 s: it sounds until the pedal comes up
    score = make_score([Note(60, 0.2, 1.0, 100), Note(60, 2.0, 2.5, 20), Note(64, 0.0, 0.5, 64)],
                       pedal=[(0.4, 0.8)])
    age, rel, vel = note_state(score, FR, 40)
    c, e = k(60), k(64)
    assert np.all(age[:2, c] == 0) and np.all(vel[:2, c] == 0)  # nothing before the first strike
    f = np.arange(2, 20)
    np.testing.assert_allclose(age[2:20, c], np.exp(-(f - 2) / (NOTE_AGE_S * FR)), rtol=1e-6)
    assert np.all(rel[2:10, c] == 0)  # sounds while held
    np.testing.assert_allclose(rel[10:20, c], np.exp(-(np.arange(10, 20) - 10) / (NOTE_RELEASE_S * FR)), rtol=1e-6)
    np.testing.assert_allclose(vel[2:20, c], 100 / 127)
    # the re-strike resets everything
    assert age[20, c] == 1.0 and rel[20, c] == 0.0 and vel[20, c] == pytest.approx(20 / 127)
    # E4: the pedal holds it to 0.8 s, so its release starts at frame 8, not 5
    assert np.all(rel[:8, e] == 0) and rel[8, e] == 1.0 and rel[9, e] < 1.0
    assert age[30, e] == pytest.approx(math.exp(-30 / (NOTE_AGE_S * FR)), rel=1e-6)


def test_subframe_note_state_counts_from_the_exact_strike_and_release():
    # at FR frames/s: C4 struck 0.3 of a frame into frame 2, released 0.75 into frame 10
    score = make_score([Note(60, 2.3 / FR, 10.75 / FR, 100)])
    age, rel, _ = note_state(score, FR, 20, subframe=True)
    age0, rel0, _ = note_state(score, FR, 20)
    c = k(60)
    f = np.arange(2, 20)
    np.testing.assert_allclose(age[2:20, c], np.exp(-(f - 2 + 0.7) / (NOTE_AGE_S * FR)), rtol=1e-5)
    np.testing.assert_allclose(rel[10:20, c], np.exp(-(np.arange(10, 20) - 10 + 0.25) / (NOTE_RELEASE_S * FR)),
                               rtol=1e-5)
    # same frames, same velocity; only the ages move, by less than one frame
    assert np.array_equal(age > 0, age0 > 0) and np.array_equal(rel > 0, rel0 > 0)
    assert np.all(age[2:, c] < age0[2:, c])
    # two notes in the same frame at different sub-frame positions are told apart
    early = note_state(make_score([Note(60, 2.05 / FR, 1.0, 100)]), FR, 5, subframe=True)[0][2, c]
    late = note_state(make_score([Note(60, 2.95 / FR, 1.0, 100)]), FR, 5, subframe=True)[0][2, c]
    assert early < late < 1.0


def test_subframe_needs_note_state():
    with pytest.raises(ValueError, match="subframe"):
        ScoreConfig(subframe=True)


def test_encode_places_note_state_before_pedal():
    cfg = ScoreConfig(velocity=True, pedal=True, envelopes=True, note_state=True)
    assert cfg.n_channels == 8 * N_KEYS + 1
    score = make_score([Note(69, 0.0, 0.3, 90)], pedal=[(0.0, 0.5)])
    x = encode(score, cfg, FR, 10)
    sl = note_state_slices(cfg)
    age, rel, vel = note_state(score, FR, 10)
    np.testing.assert_array_equal(x[:, sl[0]], age)
    np.testing.assert_array_equal(x[:, sl[1]], rel)
    np.testing.assert_array_equal(x[:, sl[2]], vel)
    assert np.all(x[:5, -1] == 1) and np.all(x[5:, -1] == 0)  # the pedal is still the last channel


def _head(audio, cutoff=1.5):
    preset = load_preset("notesynth")
    model = build_perform_model({**preset.model, "note_release_cutoff": cutoff}, audio, preset.score.n_channels,
                                score=preset.score)
    return model, preset


def test_notes_head_is_silent_without_notes_and_after_the_release_cutoff():
    preset = load_preset("notesynth")
    model, _ = _head(preset.audio)
    fr = preset.audio.frame_rate
    score = make_score([Note(60, 0.5, 1.0, 90)])
    n = int(4.0 * fr)
    x = torch.from_numpy(encode(score, preset.score, fr, n))[None]
    with torch.no_grad():
        logmag = model.head(x)[0]  # (T, bins) natural-log magnitude
    floor = math.log(preset.audio.log_eps)
    strike = int(0.5 * fr)
    assert torch.all(logmag[: strike - 2] - floor < 1e-3)  # true silence before the note (minus look-ahead)
    assert logmag[strike + 2].max() > floor + 3  # the note sounds
    end = int((1.0 + 1.5) * fr) + 1  # released at 1.0 s; silent 1.5 s later by construction
    assert torch.all(logmag[end + 1:] - floor < 1e-3)


def test_notes_head_adds_notes_in_power():
    preset = load_preset("notesynth")
    model, _ = _head(preset.audio)
    fr = preset.audio.frame_rate
    n = int(2.0 * fr)
    one = encode(make_score([Note(60, 0.2, 1.5, 80)]), preset.score, fr, n)
    two = encode(make_score([Note(72, 0.2, 1.5, 80)]), preset.score, fr, n)
    both = encode(make_score([Note(60, 0.2, 1.5, 80), Note(72, 0.2, 1.5, 80)]), preset.score, fr, n)
    head = model.head
    with torch.no_grad():
        head.mlp[0].weight[:, 10] = 0.0  # feature 10 (polyphony) is the one cross-note input: off for this check
        p = [torch.exp(2 * head(torch.from_numpy(a)[None])[0]) for a in (one, two, both)]
    eps2 = preset.audio.log_eps
    t = int(0.8 * fr)
    # (sqrt(P) + eps)^2 ~ P for audible bins; compare where the sum is well above the floor
    audible = (p[0][t] + p[1][t]) > 1e4 * eps2**2
    np.testing.assert_allclose((p[0][t] + p[1][t])[audible].numpy(), p[2][t][audible].numpy(), rtol=0.05)


def test_templates_start_from_frames_where_a_key_sounds_alone():
    preset = load_preset("notesynth")
    audio = preset.audio
    model, _ = _head(audio)
    fr = audio.frame_rate
    n = int(3.0 * fr)
    score = make_score([Note(57, 0.1, 1.0, 90)])  # A3 alone
    x = encode(score, preset.score, fr, n)
    # a made-up "recording": a single partial at bin 100, 40 dB above a flat floor
    spec = np.full((n, audio.n_bins), math.log(1e-3), dtype=np.float32)
    spec[:, 100] = math.log(1e-1)
    found = model.head.init_from_store([(x, spec)])
    assert found == 1
    t = model.head.templates().detach()[k(57), 0]  # (bins,) power, peak 1
    assert int(torch.argmax(t)) == 100
    assert float(t[50]) == pytest.approx(1e-4, rel=1e-3)  # (1e-3 / 1e-1)^2: the measured shape, in power
    other = model.head.templates().detach()[k(60), 0]
    comb = torch.from_numpy(harmonic_combs(audio, model.head.rank)[k(60), 0])
    torch.testing.assert_close(other, comb, rtol=1e-4, atol=1e-10)  # keys never heard alone keep their comb


def test_notes_model_learns_a_note():
    """A few optimizer steps on one note's spectrum lower the loss (the head is differentiable end to end)."""
    preset = load_preset("notesynth")
    model, _ = _head(preset.audio)
    fr = preset.audio.frame_rate
    n = int(2.0 * fr)
    x = torch.from_numpy(encode(make_score([Note(60, 0.2, 1.5, 80)]), preset.score, fr, n))[None]
    target = torch.full((1, n, preset.audio.n_bins), -2.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.mean((model(x) - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_notes_head_needs_note_state_channels():
    preset = load_preset("default")  # no note_state channels
    with pytest.raises(Exception, match="note-state"):
        build_perform_model({**load_preset("notesynth").model}, preset.audio, preset.score.n_channels,
                            score=preset.score)


def test_head_type():
    preset = load_preset("notesynth")
    model, _ = _head(preset.audio)
    assert isinstance(model.head, NoteSynthHead)
    assert model.head.templates().shape == (N_KEYS, model.cfg.note_rank, preset.audio.n_bins)


def test_note_table_starts_from_audio_and_interpolates_between_age_anchors():
    from pianoforge.models.note_synth import age_anchors

    preset = load_preset("notesynth")
    audio = preset.audio
    model = build_perform_model({**preset.model, "note_table": True}, audio, preset.score.n_channels,
                                score=preset.score)
    head = model.head
    fr = audio.frame_rate
    n = int(3.0 * fr)
    x = encode(make_score([Note(57, 0.1, 2.5, 90)]), preset.score, fr, n)
    strike = int(0.1 * fr)
    spec = np.full((n, audio.n_bins), math.log(1e-3), dtype=np.float32)
    spec[:, 100] = math.log(1e-1)
    spec[strike + 20:, 100] = math.log(1e-2)  # the partial drops 20 dB 20 frames after the strike
    head.init_from_store([(x, spec)])
    anchors = age_anchors(fr)
    table = head._exp2(head.table).detach().reshape(N_KEYS, len(anchors), -1)[k(57)]
    j_early, j_late = 5, int(np.searchsorted(anchors, 30 / fr))
    assert float(table[j_late, 100] / table[j_early, 100]) == pytest.approx(1e-2, rel=0.05)  # -20 dB, in power
    # the table part of the forward pass: 0 before the strike, the interpolated anchor spectrum after it
    with torch.no_grad():
        head.mlp[-1].weight.zero_()
        head.mlp[-1].bias.fill_(0.0)  # every gain exp(2 * 0) = 1
        head.theta.fill_(-60.0)  # templates off: the power is the table part alone
        tab = head.power(torch.from_numpy(x)[None])[0]
    assert torch.all(tab[: strike - 2] == 0)
    torch.testing.assert_close(tab[strike + 5, 100], table[5, 100], rtol=1e-4, atol=0)


def test_cached_table_power_follows_the_parameter():
    preset = load_preset("notesynth")
    model = build_perform_model({**preset.model, "note_table": True}, preset.audio, preset.score.n_channels,
                                score=preset.score).eval()
    with torch.no_grad():
        a = model.head._exp2(model.head.table).clone()
        model.head.table.add_(0.5)  # an in-place update bumps the version: the cache must not serve it stale
        b = model.head._exp2(model.head.table)
    torch.testing.assert_close(b, a * math.e, rtol=1e-5, atol=0)


def test_chunked_prediction_equals_one_pass_for_the_frame_local_head():
    """The notes head sees 2 frames ahead and no further, so the renderer's chunks need almost no overlap."""
    from pianoforge.inference import PerformRenderer

    preset = load_preset("notesynth")
    model = build_perform_model({**preset.model, "note_table": True}, preset.audio, preset.score.n_channels,
                                score=preset.score)
    r = PerformRenderer(model, preset)
    notes = [Note(48 + (i * 5) % 30, 0.13 * i, 0.13 * i + 0.5, 40 + (i * 17) % 80) for i in range(60)]
    x = encode(make_score(notes, pedal=[(2.0, 5.0)]), preset.score, preset.audio.frame_rate, 600)
    one = r.predict(x, chunk_frames=0)
    fr = preset.audio.frame_rate
    chunked = r.predict(x, chunk_frames=int(round(preset.inference["chunk_seconds"] * fr)),
                        overlap_frames=int(round(preset.inference["overlap_seconds"] * fr)))
    torch.testing.assert_close(chunked, one, rtol=1e-4, atol=1e-4)


def test_sparse_mix_equals_the_dense_product():
    """power() gathers only sounding rows; it must equal sum_k sum_r w[t, k, r] T[k, r, f] computed densely."""
    preset = load_preset("notesynth")
    model = build_perform_model({**preset.model, "note_table": False}, preset.audio, preset.score.n_channels,
                                score=preset.score)
    head = model.head
    torch.manual_seed(0)
    with torch.no_grad():
        head.theta.add_(torch.randn_like(head.theta))
    fr = preset.audio.frame_rate
    notes = [Note(40 + (i * 7) % 40, 0.1 * i, 0.1 * i + 0.6, 30 + (i * 13) % 90) for i in range(30)]
    x = torch.from_numpy(encode(make_score(notes, pedal=[(1.0, 2.0)]), preset.score, fr, 250))[None]
    with torch.no_grad():
        w, _ = head.excitations(x)
        dense = w.reshape(1, 250, -1) @ head.templates().reshape(N_KEYS * head.rank, -1)
        torch.testing.assert_close(head.power(x), dense, rtol=1e-4, atol=1e-6 * float(dense.max()))


def test_subframe_head_tells_where_in_its_frame_a_note_began():
    """With sub-frame ages (preset notesynth-subframe) two strikes in the same frame, early and late in it,
    give different spectra on and just before the strike frame; on the frame grid (notesynth) they cannot."""
    fr = load_preset("notesynth").audio.frame_rate
    f0 = 20
    outs = {}
    for name in ("notesynth", "notesynth-subframe"):
        preset = load_preset(name)
        torch.manual_seed(0)
        model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, score=preset.score)
        assert model.head.subframe is preset.score.subframe
        with torch.no_grad():
            model.head.mlp[-1].weight.normal_(std=0.5)  # make the MLP's output depend on its inputs
        n = int(1.0 * fr)
        xs = [encode(make_score([Note(60, (f0 + d) / fr, 0.8, 90)]), preset.score, fr, n) for d in (0.05, 0.95)]
        with torch.no_grad():
            outs[name] = [model.head(torch.from_numpy(x)[None])[0] for x in xs]
    grid, sub = outs["notesynth"], outs["notesynth-subframe"]
    for t in (f0 - 1, f0, f0 + 1):  # look-ahead frame, strike frame, the next
        assert torch.equal(grid[0][t], grid[1][t])
        assert (sub[0][t] - sub[1][t]).abs().max() > 1e-3
