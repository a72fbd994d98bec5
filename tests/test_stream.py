"""Streaming render: block encoding == whole-piece encoding, block phase == whole-plane phase, and the
streamed render == the whole-piece render (no seams, no level jumps), with no output file left on failure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pianoforge.config import ScoreConfig, load_preset
from pianoforge.midi.blocks import BlockEncoder
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import Note, make_score

FR = 62.5


def dense_score(seconds: float = 20.0, seed: int = 0):
    """Fast notes, re-strikes of held keys, one very long held note, overlapping pedal."""
    rng = np.random.default_rng(seed)
    notes = [Note(40, 0.3, seconds - 1.0, 70)]  # held across every block
    t = 0.0
    while t < seconds - 1.5:
        p = int(rng.integers(21, 109))
        notes.append(Note(p, t, t + float(rng.uniform(0.02, 2.5)), int(rng.integers(1, 128))))
        if rng.random() < 0.2:  # the same key again while it is held
            notes.append(Note(p, t + 0.05, t + 0.3, int(rng.integers(1, 128))))
        t += float(rng.uniform(0.0, 0.15))
    pedal = [(s, s + 1.5) for s in np.arange(0.5, seconds - 2, 2.0)]
    return make_score(notes, pedal)


@pytest.mark.parametrize("cfg", [ScoreConfig(), ScoreConfig(velocity=False, pedal=False),
                                 ScoreConfig(envelopes=True), ScoreConfig(envelopes=True, pedal_extend=True),
                                 load_preset("notesynth").score, load_preset("notesynth-subframe").score])
def test_block_encoding_equals_whole_piece_exactly(cfg):
    score = dense_score()
    n = frames_for(score.end_time + 1.5, FR)
    whole = encode(score, cfg, FR, n)
    enc = BlockEncoder(score, cfg, FR, n)
    for size in (13, 250, n):
        got = np.concatenate([enc.block(a, a + size) for a in range(0, n, size)])
        assert got.dtype == np.float32 and np.array_equal(got, whole), size
    for a, b in ((0, 10), (333, 600), (n - 5, n + 20), (17, 17)):  # random access, past the end
        assert np.array_equal(enc.block(a, b), whole[a:min(b, n)])


# ------------------------------------------------------------------------------------------ phase blocks

def test_phase_stream_equals_the_whole_plane_for_every_method():
    from pianoforge import phase as P
    from pianoforge.audio import spectral as S

    cfg = load_preset("default").audio
    rng = np.random.default_rng(1)
    t = np.arange(int(6.0 * cfg.sample_rate)) / cfg.sample_rate
    x = torch.from_numpy((np.sin(2 * np.pi * 220 * t) * np.exp(-t % 1.3) + 0.01 * rng.standard_normal(t.size))
                         .astype(np.float32))
    spec = S.stft(x, cfg)
    mag = spec.abs()
    ref = P.pghi(mag, cfg, tol=P.STREAM_TOL, reference=P.full_scale(cfg))
    whole = {"pghi+gl": P.griffin_lim(mag, cfg, 3, init=ref), "pghi": P.direct(ref, cfg),
             "zero": P.zero_phase(mag, cfg), "direct": P.direct(spec, cfg)}
    mt, st = mag.T.contiguous(), spec.T.contiguous()
    for method, (push, block) in itertools.product(whole, [(1, 16), (37, 64), (500, 4096)]):
        src = st if method == "direct" else mt
        y = torch.cat(list(P.stream_reconstruct([src[i:i + push] for i in range(0, src.shape[0], push)], cfg,
                                                method, 3, block_frames=block)))
        assert y.shape == x.shape
        tol = 1e-5 * float(whole[method].abs().max())  # float rounding, amplified by GL's momentum
        torch.testing.assert_close(y, whole[method], atol=tol, rtol=0, msg=f"{method} {push} {block}")
    gl = [torch.cat(list(P.stream_reconstruct([mt[i:i + 50] for i in range(0, mt.shape[0], 50)], cfg, "griffinlim",
                                              4, block_frames=b))) for b in (32, 4096)]
    torch.testing.assert_close(gl[0], gl[1], atol=1e-5 * float(gl[1].abs().max()), rtol=0)  # random starts are per frame, not per block


# ------------------------------------------------------------------------------------------- renderers

def _renderer(kind: str):
    from pianoforge.inference import PerformRenderer, shipped_checkpoint
    from pianoforge.models.perform import build_perform_model

    if kind in ("shipped", "shipped-numpy"):  # the shipped notes head on the torch engine, and on the numpy one
        return PerformRenderer.from_checkpoint(shipped_checkpoint("perform-default-v3.safetensors"),
                                               engine="numpy" if kind == "shipped-numpy" else "torch")
    torch.manual_seed(0)
    if kind == "notesynth":
        preset = load_preset("notesynth")
        model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, score=preset.score)
    else:
        preset = load_preset("default", ["model.conv_channels=16", "model.dense_units=16", "model.rnn_units=8",
                                         *([f"model.output={kind}"] if kind != "tiny" else [])])
        model = build_perform_model(preset.model, preset.audio, preset.score.n_channels)
    return PerformRenderer(model, preset)


def _whole_plane(r, score):
    """Today's whole-piece path with the streaming PGHI floor: encode all, predict all, reconstruct all."""
    from pianoforge import phase as P
    from pianoforge.audio.spectral import inverse_log_magnitude

    out = r.predict(r.encode(score))
    if r.model.carries_phase:
        return out, r.synthesize(out)
    a = r.preset.audio
    if r.engine == "numpy":
        out = torch.from_numpy(out)
        lm = torch.from_numpy(r.model.to_logmag(out.numpy()))
    else:
        lm = r.model.to_logmag(out[None])[0]
    mag = inverse_log_magnitude(lm, a.log_eps).T.contiguous()
    init = P.pghi(mag, a, tol=P.STREAM_TOL, reference=P.full_scale(a))
    return out, P.griffin_lim(mag, a, r.iterations, init=init).numpy()


def _frame_db(y: np.ndarray, hop: int) -> np.ndarray:
    n = len(y) // hop
    return 10 * np.log10(np.mean(y[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)


HELD_CHORD = make_score([Note(p, 0.2, 70.0, 90) for p in (36, 48, 55, 64, 67)], pedal=[(0.1, 70.5)])


@pytest.mark.parametrize("kind", ["shipped", "shipped-numpy", "notesynth", "tiny", "complex", "time"])
@pytest.mark.parametrize("name", ["held chord", "fast passage"])
def test_stream_equals_the_whole_piece_across_block_boundaries(kind, name):
    r = _renderer(kind)
    r.block_frames = 512  # 8 s phase blocks: several boundaries in the piece
    score = HELD_CHORD if name == "held chord" else dense_score(45.0, seed=3)
    if name == "held chord" and kind in ("complex", "time"):
        pytest.skip("one piece is enough for the phase-carrying outputs")
    hop = r.preset.audio.hop_length
    out, whole = _whole_plane(r, score)
    blocks = list(r.stream(score))
    assert len(blocks) >= 2 and all(b.dtype == np.float32 for b in blocks)
    got = np.concatenate(blocks)
    assert got.shape == whole.shape == (r.n_frames(score) * hop,)
    enc = BlockEncoder(score, r.preset.score, r.preset.audio.frame_rate, r.n_frames(score))
    streamed_out = torch.cat([torch.as_tensor(o) for o in r.outputs(enc.block, r.n_frames(score), group=2)])
    assert float((streamed_out - out).abs().max()) < 1e-4  # network windows batched differently: same output
    # = whole plane to float rounding: the network's 1e-5 batching differences can flip a PGHI level or two
    assert np.abs(got - whole).max() < 1e-2 * np.abs(whole).max()
    loud = _frame_db(whole, hop) > _frame_db(whole, hop).max() - 50
    assert np.abs(_frame_db(got, hop) - _frame_db(whole, hop))[loud].max() < 0.05  # no level jump anywhere


def test_stream_matches_todays_whole_piece_render_in_level_and_spectrum():
    """Against today's synthesize (PGHI floored at the piece's own peak): the waveform differs (the PGHI phase
    is integrated from other starting points) but the level per frame and the spectrum do not."""
    from pianoforge import phase as P
    from pianoforge.audio.spectral import inverse_log_magnitude

    r = _renderer("shipped")
    score = dense_score(30.0, seed=5)
    a = r.preset.audio
    out = r.predict(r.encode(score))
    today = r.synthesize(out)
    got = np.concatenate(list(r.stream(score)))
    mag = inverse_log_magnitude(r.model.to_logmag(out[None])[0], a.log_eps).T.contiguous()
    sc_today = P.spectral_convergence(torch.from_numpy(today), mag, a)
    sc_stream = P.spectral_convergence(torch.from_numpy(got), mag, a)
    assert abs(sc_stream - sc_today) < 0.01, (sc_stream, sc_today)
    loud = _frame_db(today, a.hop_length) > _frame_db(today, a.hop_length).max() - 40
    diff = np.abs(_frame_db(got, a.hop_length) - _frame_db(today, a.hop_length))[loud]
    # measured: perform-default-v1 p99 < 2.0 dB; the notes-head default (true silence between notes, so more
    # frames where the two PGHI floors differ) median 0.22, p99 2.32 dB, with spectral convergence equal above
    assert np.median(diff) < 0.3 and np.percentile(diff, 99) < 3.0, (np.median(diff), np.percentile(diff, 99))


def test_render_midi_streams_into_the_file(tmp_path):
    import soundfile as sf

    from pianoforge.audio.io import PEAK_LIMIT, resample

    r = _renderer("tiny")
    score = dense_score(12.0)
    res = r.render_midi(score, tmp_path / "a.wav")
    y, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == r.sample_rate and len(y) == len(res.audio) == r.n_frames(score) * r.preset.audio.hop_length
    peak = np.abs(res.audio).max()
    expect = res.audio * (PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0)
    assert np.abs(y - expect).max() < 2 / 32768 and res.logmag.shape == (r.n_frames(score), r.preset.audio.n_bins)
    assert np.array_equal(res.audio, r.render_score(score).audio)
    lean = r.render_midi(score, tmp_path / "b.flac", keep_arrays=False, sample_rate=22050)
    assert lean.audio.size == 0 and lean.logmag.size == 0 and lean.sample_rate == 22050
    z, sr = sf.read(tmp_path / "b.flac", dtype="float32")
    one_shot = resample(res.audio, r.sample_rate, 22050)
    assert sr == 22050 and abs(len(z) - len(one_shot)) <= 1
    n = min(len(z), len(one_shot))
    assert np.abs(z[:n] - one_shot[:n] * (PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0)).max() < 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.flac"]


def test_a_block_failing_mid_stream_leaves_no_file(tmp_path):
    r = _renderer("tiny")
    calls = {"n": 0}
    forward = r.model.forward

    def failing(x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return forward(x)

    r.model.forward = failing
    with pytest.raises(RuntimeError, match="boom"):
        r.render_midi(dense_score(60.0), tmp_path / "out.wav")
    assert calls["n"] == 3 and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown phase method"):
        r.stream(dense_score(5.0), phase="vocoder")
    with pytest.raises(ValueError, match="direct"):
        r.render_midi(dense_score(5.0), tmp_path / "x.wav", phase="direct")
    assert list(tmp_path.iterdir()) == []
