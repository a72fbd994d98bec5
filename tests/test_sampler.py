"""The learned sampler (models/sampler.py, training/sampler_fit.py): its event clock against real FluidSynth
renders, streaming equal to one pass, the fit's operator and adjoint, a fit on real FluidSynth audio, the
preset's checks, training and rendering through the CLI, and its faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_in_process, write_midi_file
from pianoforge.audio.render import render_score
from pianoforge.config import AudioConfig, load_preset
from pianoforge.errors import ConfigError
from pianoforge.midi.score import Note, Score
from pianoforge.models.sampler import (
    NoteSampler,
    SamplerConfig,
    event_samples,
    log_magnitude,
    sounding_ends,
)
from pianoforge.training.sampler_fit import Piece, SamplerFit, loudness_weight

SR = 16000
SMALL = {"seconds": 0.6, "timbre_seconds": 0.2, "release_seconds": 0.3, "fade_seconds": 0.05}


def _random_sampler(cfg: SamplerConfig, seed: int = 0) -> NoteSampler:
    m = NoteSampler.empty(cfg, AudioConfig())
    rng = np.random.default_rng(seed)
    m.waves = rng.standard_normal(m.waves.shape).astype(np.float32)
    m.timbre = rng.standard_normal(m.timbre.shape).astype(np.float32)
    m.timbre_knots = rng.standard_normal(len(m.timbre_knots))
    return m


def _random_score(seed: int, n: int = 40, seconds: float = 3.0) -> Score:
    rng = np.random.default_rng(seed)
    notes = [Note(int(p), float(s), float(s + d), int(v)) for p, s, d, v in
             zip(rng.integers(21, 109, n), rng.uniform(0, seconds, n), rng.uniform(0.05, 1.5, n),
                 rng.integers(1, 128, n), strict=True)]
    return Score(tuple(sorted(notes, key=lambda x: (x.start, x.pitch))), ((1.0, 2.0),))


def test_event_clock_matches_fluidsynth_renders():
    """Notes at random times start, in FluidSynth's render of the store's MIDI, exactly where
    :func:`event_samples` says (the sampler preset's clock), up to one constant latency."""
    cfg = SamplerConfig(**load_preset("sampler").model["sampler"])
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0.2, 1.2, 12))
    starts = []
    for t in times:
        x = render_score(Score((Note(72, float(t), float(t) + 0.3, 100),)), SR, n_samples=2 * SR)
        starts.append(int(np.argmax(np.abs(x) > 1e-7)))
    predicted = event_samples(times, SR, cfg)
    latency = starts[0] - predicted[0]
    assert 0 <= latency < 200
    assert np.array_equal(np.asarray(starts) - latency, predicted)


def test_sounding_end_is_key_up_pedal_up_or_the_next_strike():
    score = Score((Note(60, 0.0, 0.5, 80), Note(60, 0.8, 1.0, 80), Note(64, 0.1, 0.3, 80), Note(67, 0.2, 0.4, 80)),
                  ((0.25, 2.0),))
    # every key-up falls under the pedal: all sound to the pedal-up, the re-struck 60 included
    assert sounding_ends(score).tolist() == pytest.approx([2.0, 2.0, 2.0, 2.0])
    # no pedal: a strike of a key still down lifts it
    assert sounding_ends(Score((Note(60, 0.0, 1.0, 80), Note(60, 0.5, 0.7, 80)))).tolist() == pytest.approx([0.5, 0.7])


@pytest.mark.parametrize("notes, pedal", [
    ([(60, 0.5, 0.8), (60, 1.5, 1.8)], [(0.3, 3.0)]),  # re-struck after its key-up, under the pedal
    ([(60, 0.5, 2.0), (60, 1.2, 1.6)], [(0.3, 3.0)]),  # re-struck while down, under the pedal
    ([(60, 0.5, 2.0), (60, 1.2, 1.6)], []),  # re-struck while down, no pedal
    ([(60, 0.5, 0.8), (62, 0.6, 0.9), (60, 1.0, 1.3)], [(0.7, 2.5)]),  # pedal down between key-down and key-up
])
def test_sounding_ends_make_fluidsynth_a_sum_of_notes(notes, pedal):
    """FluidSynth's render of a score is the sum of its notes rendered alone, each held to its sounding end."""
    score = Score(tuple(Note(p, s, e, 90) for p, s, e in notes), tuple(pedal))
    full = render_score(score, SR, n_samples=4 * SR)
    alone = sum(render_score(Score((Note(n.pitch, n.start, float(e), n.velocity),)), SR, n_samples=4 * SR)
                for n, e in zip(score.notes, sounding_ends(score), strict=True))
    assert np.sum((full - alone) ** 2) / np.sum(full ** 2) < 1e-9


def test_stream_blocks_equal_one_pass_and_the_fit_operator():
    cfg = SamplerConfig(**SMALL)
    m = _random_sampler(cfg)
    score = _random_score(0)
    n = int(4.5 * SR)
    whole = m.render(m.events(score), 0, n)
    for block in (777, 5000, n):
        assert np.allclose(np.concatenate(list(m.stream(score, n, block))), whole, atol=1e-5)
    fit = SamplerFit(m, [Piece("x", m.events(score), np.zeros(n, np.float32))])
    assert np.allclose(fit.forward(m.waves, m.timbre, fit.pieces[0]), whole, atol=1e-5)
    assert np.abs(whole).max() > 1.0  # the notes are there


def test_adjoint_is_the_transpose_of_the_forward():
    cfg = SamplerConfig(**SMALL)
    m = _random_sampler(cfg, 1)
    score = _random_score(1)
    n = int(4.5 * SR)
    piece = Piece("x", m.events(score), np.zeros(n, np.float32))
    fit = SamplerFit(m, [piece])
    r = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    gs, gc = np.zeros_like(m.waves), np.zeros_like(m.timbre)
    fit.adjoint(r, piece, gs, gc)
    lhs = float(np.vdot(fit.forward(m.waves, m.timbre, piece).astype(np.float64), r))
    rhs = float(np.vdot(gs.astype(np.float64), m.waves) + np.vdot(gc.astype(np.float64), m.timbre))
    assert lhs == pytest.approx(rhs, rel=1e-4)


def test_loudness_weight_divides_by_the_local_power():
    assert loudness_weight(np.ones(100, np.float32), 0.0) is None
    x = np.zeros(40000, np.float32)
    x[:20000] = np.sin(np.arange(20000) * 0.3)  # loud first half (power 1/2), silent second half
    w = loudness_weight(x, 1.0, floor=1e-3, window=2048)
    assert w.shape == x.shape and w.dtype == np.float32
    mean = 0.25  # the piece's mean power
    assert w[5000] == pytest.approx(1 / ((0.5 + 1e-3 * mean) / mean), rel=0.02)
    assert w[30000] == pytest.approx(1e3, rel=1e-3)  # silence: the floor
    assert np.all(np.diff(w[18000:23000]) >= -1e-3 * w[18000:23000].max())  # rises across the fade-out


def test_weighted_fit_minimises_the_weighted_error():
    """``A^T W A`` is the weighted energy's operator, and a fit under the loudness weight reaches a weighted
    error below the plain fit's (the same CG iterations) on audio the model cannot explain exactly."""
    cfg = SamplerConfig(**SMALL)
    truth = _random_sampler(cfg, 3)
    score = _random_score(4, n=30)
    ev = truth.events(score)
    n = int(4.5 * SR)
    y = truth.render(ev, 0, n)
    y = y + 0.05 * np.std(y) * np.random.default_rng(5).standard_normal(n).astype(np.float32)  # unexplained part
    w = loudness_weight(y, 1.0)
    m = NoteSampler.empty(cfg, AudioConfig())
    m.timbre_knots = truth.timbre_knots.copy()
    fit_w = SamplerFit(m, [Piece("x", ev, y, w)])
    x = np.random.default_rng(6).standard_normal(m.waves.shape).astype(np.float32)
    xc = np.zeros_like(m.timbre)
    gs, _ = fit_w.normal(x, xc)
    energy = float(np.sum(w * fit_w.forward(x, xc, fit_w.pieces[0]).astype(np.float64) ** 2))
    assert float(np.vdot(gs.astype(np.float64), x)) == pytest.approx(energy, rel=1e-4)

    def werr(model, weight):
        r = y - model.render(ev, 0, n)
        return float(np.sum(weight * r.astype(np.float64) ** 2))

    m_plain = NoteSampler.empty(cfg, AudioConfig())
    m_plain.timbre_knots = truth.timbre_knots.copy()
    SamplerFit(m_plain, [Piece("x", ev, y)]).fit_waves(40, lambda s: None)
    fit_w.fit_waves(40, lambda s: None)
    assert werr(m, w) < 0.99 * werr(m_plain, w)  # measured: 0.978


def test_fit_learns_fluidsynth_notes_and_predicts_an_unseen_mixture():
    """Waveforms fitted to real FluidSynth renders of a few keys (alone and in chords, several velocities)
    predict a new mixture of those keys far better than silence and close to the render itself."""
    cfg = SamplerConfig(**{**SMALL, "onset_ticks_per_second": 1920})
    m = NoteSampler.empty(cfg, AudioConfig())
    keys = (60, 64, 67)
    rng = np.random.default_rng(0)
    train = []
    for i in range(3):
        notes = [Note(int(rng.choice(keys)), 0.1 + 0.37 * j + float(rng.uniform(0, 0.02)), 0.1 + 0.37 * j + 0.3,
                      int(rng.integers(40, 127))) for j in range(8)]
        notes.append(Note(64, 1.0 + 0.1 * i, 1.25 + 0.1 * i, 90))
        score = Score(tuple(sorted(notes, key=lambda x: (x.start, x.pitch))))
        train.append(Piece(f"p{i}", m.events(score), render_score(score, SR, n_samples=4 * SR)))
    fit = SamplerFit(m, train)
    for _ in range(2):
        fit.fit_waves(25, lambda s: None)
        fit.fit_curves()
    assert fit.error() < 0.02
    test = Score((Note(60, 0.2, 0.5, 70), Note(67, 0.2, 0.45, 110), Note(64, 0.9, 1.2, 100)))
    ref = render_score(test, SR, n_samples=2 * SR)
    y = m.render(m.events(test), 0, 2 * SR)
    assert np.sum((y - ref) ** 2) / np.sum(ref ** 2) < 0.05
    lm_y, lm_ref = log_magnitude(y, AudioConfig()), log_magnitude(ref, AudioConfig())
    loud = lm_ref.max(axis=1) > np.log(1e-2)
    assert np.abs(lm_y[loud] - lm_ref[loud]).mean() < 1.0  # natural-log units: within a factor e on average


def test_log_magnitude_matches_the_torch_analysis():
    from pianoforge.audio.spectral import log_magnitude_np

    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32) * 0.1
    a = AudioConfig()
    assert np.abs(log_magnitude(x, a) - log_magnitude_np(x, a)).max() < 2e-3


@pytest.mark.parametrize("override, text", [
    ("model.sampler.seconds=0", "seconds must be > 0.1"),
    ("model.sampler.onset_quantum=0", "onset_quantum"),
    ("model.sampler.velocity_knots=[5,127]", "velocity_knots"),
    ("model.output=logmag", "needs model.output time"),
])
def test_bad_sampler_config_is_one_line(override, text):
    from pianoforge.training.config import check_perform_preset

    with pytest.raises(ConfigError) as e:
        check_perform_preset(load_preset("sampler", [override]))
    assert text in str(e.value) and "\n" not in str(e.value)


def test_unknown_sampler_key_is_refused():
    with pytest.raises(ConfigError, match="unknown key"):
        SamplerConfig.from_dict({"secnds": 2.0})


@pytest.fixture(scope="module")
def sampler_store(tmp_path_factory):
    from pianoforge.data.build import build
    from pianoforge.data.sources import midi_folder

    d = tmp_path_factory.mktemp("sampler-midi")
    rng = np.random.default_rng(5)
    for i in range(5):
        notes = [(int(rng.integers(55, 70)), 0.1 + 0.3 * j, 0.1 + 0.3 * j + 0.25, int(rng.integers(50, 120)))
                 for j in range(6)]
        write_midi_file(d / f"p{i}.mid", notes, pedal=[(0.5, 127), (1.2, 0)] if i % 2 else [])
    out = tmp_path_factory.mktemp("sampler-store") / "store"
    build(midi_folder(d), out, load_preset("sampler"), workers=1, progress=False)
    return out, d


def _small_sets() -> list[str]:
    return ["--set", "model.sampler.seconds=0.6", "--set", "model.sampler.timbre_seconds=0.2",
            "--set", "model.sampler.release_seconds=0.3", "--set", "train.sampler_rounds=1",
            "--set", "train.sampler_iterations=4", "--set", "train.sampler_monotone_after=0.3",
            "--set", "train.sampler_weight_power=0.5"]


def test_train_render_and_rerun_through_the_cli(sampler_store, tmp_path, capsys):
    store, midi_dir = sampler_store
    run = tmp_path / "run"
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets())
    assert code == 0, err
    assert (run / "best.safetensors").is_file() and "sampler fit complete" in out
    log = (run / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("round,step,train_error") and len(log) == 5 and log[-1].split(",")[1] == "monotone"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["train_error"] < 0.5
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets())
    assert code == 0 and "nothing to do" in out
    wav = tmp_path / "out.wav"
    code, out, err = run_in_process(capsys, "render", midi_dir / "p0.mid", "-o", wav, "--checkpoint",
                                    run / "best.safetensors")
    assert code == 0, err
    import soundfile as sf

    y, sr = sf.read(str(wav))
    assert sr == SR and np.abs(y).max() > 1e-3
    code, out, err = run_in_process(capsys, "render", midi_dir / "p0.mid", "-o", tmp_path / "t.wav", "--checkpoint",
                                    run / "best.safetensors", "--engine", "torch")
    assert code == 2 and "no torch form" in err and len(err.strip().splitlines()) == 1


def test_non_finite_fit_stops_without_a_checkpoint(sampler_store, tmp_path, capsys, monkeypatch):
    from pianoforge.training import sampler_fit

    store, _ = sampler_store

    def poisoned(self, iterations, report, project=None):
        self.m.waves[:] = np.nan

    monkeypatch.setattr(sampler_fit.SamplerFit, "fit_waves", poisoned)
    run = tmp_path / "nan-run"
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets())
    assert code != 0 and "non-finite" in err
    assert not (run / "best.safetensors").exists()


def test_shipped_layers_keep_the_sampler_free_of_torch():
    src = Path(__file__).resolve().parents[1] / "src" / "pianoforge" / "models" / "sampler.py"
    assert "import torch" not in src.read_text()


def test_monotone_late_removes_a_late_rise_and_keeps_a_decay():
    from pianoforge.training.sampler_late import monotone_late

    t = np.arange(int(1.5 * SR)) / SR
    decay = np.sin(2 * np.pi * 440 * t) * np.exp(-t / 0.5)
    bump = 0.05 * np.sin(2 * np.pi * 660 * t) * np.exp(-((t - 1.1) / 0.05) ** 2)  # a swell 1.1 s in
    waves = np.zeros((88, len(t)), np.float32)
    waves[40], waves[41] = decay, decay + bump
    out = monotone_late(waves, SR, after=0.5)
    assert out.shape == waves.shape and out.dtype == np.float32
    assert not out[0].any()  # a key no note reached stays silent
    late = t > 0.6
    err_decay = np.sum((out[40] - decay)[late] ** 2) / np.sum(decay[late] ** 2)
    assert err_decay < 1e-3  # a decaying partial passes (-30 dB)
    band = np.fft.rfft((out[41] - decay) * late)
    bump_band = np.fft.rfft(bump * late)
    f = np.fft.rfftfreq(len(t), 1 / SR)
    sel = np.abs(f - 660) < 30
    assert np.sum(np.abs(band[sel]) ** 2) < 0.05 * np.sum(np.abs(bump_band[sel]) ** 2)  # the swell: -13 dB or more
    loose = monotone_late(waves, SR, after=0.5, rise=100.0)  # a rise allowed anywhere: the input comes back
    assert np.max(np.abs(loose[41] - waves[41])) < 1e-4


def test_sub_fundamental_late_lowers_only_the_band_under_the_fundamental():
    from pianoforge.training.sampler_late import sub_fundamental_late

    t = np.arange(int(2.0 * SR)) / SR
    string = np.sin(2 * np.pi * 440 * t) * np.exp(-t / 0.4)  # key 48 = A4, 440 Hz
    hum = 0.1 * np.sin(2 * np.pi * 110 * t)  # energy two octaves under it that does not decay
    waves = np.zeros((88, len(t)), np.float32)
    waves[48] = string + hum
    f = np.fft.rfftfreq(len(t), 1 / SR)

    def band_energy(x: np.ndarray, hz: float, sel: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x * sel)) ** 2
        return float(np.sum(spec[np.abs(f - hz) < 30]))

    early, late = t < 0.4, t > 0.9
    out = sub_fundamental_late(waves, SR, after=0.5, depth_db=20.0)
    assert out.shape == waves.shape and out.dtype == np.float32 and not out[0].any()
    assert band_energy(out[48], 110, late) < 0.02 * band_energy(hum, 110, late)  # -17 dB or more
    assert band_energy(out[48], 440, late) == pytest.approx(band_energy(string, 440, late), rel=0.05)
    assert np.max(np.abs(out[48] - waves[48])[early]) < 1e-4  # before `after`, nothing changes
    follow = sub_fundamental_late(waves, SR, after=0.5)  # the band decays with the string: 1.2 s ~ -26 dB
    ratio = band_energy(follow[48], 110, t > 1.6) / band_energy(hum, 110, t > 1.6)
    assert ratio < 0.05
    with pytest.raises(ValueError, match="depth_db"):
        sub_fundamental_late(waves, SR, after=0.5, depth_db=float("nan"))


def test_bad_monotone_setting_is_one_line(sampler_store, tmp_path, capsys):
    store, _ = sampler_store
    run = tmp_path / "bad"
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets(), "--set", "train.sampler_monotone_rise=0.5")
    assert code != 0 and "sampler_monotone_rise" in err and len(err.strip().splitlines()) == 1
    assert not (run / "best.safetensors").exists()
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets(), "--set", "train.sampler_weight_power=-1")
    assert code != 0 and "sampler_weight_power" in err and len(err.strip().splitlines()) == 1
    assert not (run / "best.safetensors").exists()
    code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                    "--out", run, *_small_sets(), "--set", "train.sampler_subf0_after=0.55")
    assert code != 0 and "sampler_subf0_after" in err and len(err.strip().splitlines()) == 1
    assert not (run / "best.safetensors").exists()


def test_SubFundamentalProjection_is_an_orthogonal_projection():
    from pianoforge.training.sampler_late import SubFundamentalProjection

    L = 4000
    P = SubFundamentalProjection(L, SR, after=0.05)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((88, L)).astype(np.float32), rng.standard_normal((88, L)).astype(np.float32)
    px = P(x)
    assert px.shape == x.shape and px.dtype == np.float32
    assert np.allclose(P(px), px, atol=1e-4)  # idempotent
    assert np.vdot(px, y) == pytest.approx(np.vdot(x, P(y)), rel=1e-4)  # symmetric
    assert np.array_equal(px[:, :800], x[:, :800])  # the part before `after` is free
    assert P.segments == [(800, 1600), (1600, 3200), (3200, 4000)]  # doubling from `after`, to the end
    for a, b in P.segments:  # key 60 = A5, 880 Hz: nothing under 704 Hz in any segment
        spec = np.abs(np.fft.rfft(px[60, a:b])) ** 2
        f = np.fft.rfftfreq(b - a, 1 / SR)
        assert spec[f < 0.8 * 880].sum() < 1e-8 * spec.sum() and spec[f > 0.8 * 880].sum() > 0
    with pytest.raises(ValueError, match="after"):
        SubFundamentalProjection(L, SR, after=1.0)


def test_a_fit_inside_the_projection_keeps_the_late_band_empty(sampler_store, tmp_path, capsys):
    from safetensors.numpy import load_file

    from pianoforge.training.sampler_late import SubFundamentalProjection

    store, _ = sampler_store
    runs = {}
    for name, after in (("free", 0.0), ("subf0", 0.2)):
        run = tmp_path / name
        code, out, err = run_in_process(capsys, "train", "perform", "--data", store, "--preset", "sampler",
                                        "--out", run, *_small_sets(), "--set", "train.sampler_monotone_after=0",
                                        "--set", f"train.sampler_subf0_after={after}")
        assert code == 0, err
        runs[name] = load_file(str(run / "best.safetensors"))["waves"].astype(np.float32)
        print(name, json.loads((run / "summary.json").read_text())["train_error"])
    P = SubFundamentalProjection(runs["free"].shape[1], SR, after=0.2)

    def off(w: np.ndarray) -> float:  # energy outside the projection's range, relative
        return float(np.sum((P(w) - w) ** 2) / max(np.sum(w ** 2), 1e-30))

    assert off(runs["subf0"]) < 1e-5  # float16 storage only
    assert off(runs["free"]) > 100 * off(runs["subf0"])  # an unconstrained fit does put energy there
