"""The numpy engine (models/notes_numpy.py + phase/npstream.py): the same output as the torch model and phase
stream to float rounding, chosen automatically for qualifying checkpoints, and a render that imports no torch.

Tolerances (measured on the etude, float32 both ways): the de-normalized log-magnitude differs by at most
1.34e-3 above the log floor (at -73 dB re full scale, where the float32 torch model itself is 4.2e-4 from its
float64 evaluation and numpy 9.2e-4) and by at most 3.3e-4 above -6 (|X| > 2.5e-3); the audio by 1.2e-5.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from pianoforge.config import load_preset
from pianoforge.inference import PerformRenderer, shipped_checkpoint
from pianoforge.midi.score import Note, load_score, make_score
from pianoforge.models import notes_numpy
from pianoforge.models.perform import build_perform_model

LOG_FLOOR = math.log(1e-5)
LOGMAG_TOL = 2e-3  # above the log floor
LOGMAG_TOL_LOUD = 5e-4  # where log|X| > -6
AUDIO_TOL = 1e-4  # absolute, full scale 1.0
V3 = "perform-default-v3.safetensors"  # the neural notes head (shipped default before the sampler)


def _random_score(seed: int, seconds: float = 12.0):
    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(int(seconds * 6)):
        s = float(rng.uniform(0, seconds))
        notes.append(Note(int(rng.integers(21, 109)), s, s + float(rng.uniform(0.02, 3.0)), int(rng.integers(1, 128))))
    pedal = [(float(a), float(a) + float(rng.uniform(0.2, 2.0))) for a in rng.uniform(0, seconds, 4)]
    return make_score(notes, pedal)


def _random_model(preset_name: str, overrides: list[str], seed: int):
    """A notes-head model with every weight random (not the near-constant initial MLP), and its preset."""
    preset = load_preset(preset_name, overrides)
    torch.manual_seed(seed)
    model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, score=preset.score).eval()
    with torch.no_grad():
        for name, p in model.head.named_parameters():
            if name.startswith("mlp") or name.startswith("key_embed"):
                p.normal_(0.0, 0.4)
        model.head.mlp[-1].bias.add_(-3.0)
        model.mean.normal_(-6.0, 1.0)
        model.std.uniform_(0.5, 2.0)
    return model, preset


def _numpy_of(model, preset) -> notes_numpy.NumpyNotesModel:
    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return notes_numpy.NumpyNotesModel.from_tensors(model.cfg.to_dict(), preset.audio, tensors)


def _compare(lm_numpy: np.ndarray, lm_torch: np.ndarray) -> tuple[float, float]:
    d = np.abs(lm_numpy - lm_torch)
    return float(d[lm_torch > LOG_FLOOR + 0.01].max()), float(d[lm_torch > -6.0].max(initial=0.0))


def test_erf_and_floor_match_torch():
    from pianoforge.models.note_synth import FLOOR

    assert notes_numpy.FLOOR == FLOOR
    x = np.linspace(-7, 7, 20001, dtype=np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    assert np.max(np.abs(notes_numpy.erf(x) - ref)) < 1e-6
    g = torch.nn.GELU()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(notes_numpy.gelu(x) - g)) < 2e-6


def test_c_bias_gelu_is_the_numpy_gelu_and_c_overlap_add_the_numpy_one():
    """pianoforge/native: pf_bias_gelu is bit-identical to gelu(h + bias) (same float32 operations, vectorized);
    pf_ola (window, overlap-add, envelope in one pass) equals the numpy steps to float rounding."""
    from pianoforge import native
    from pianoforge.phase.npstream import Frames

    if native.library() is None:
        pytest.skip("no C compiler: the numpy paths are used")
    rng = np.random.default_rng(3)
    h = (rng.standard_normal((257, 67)) * 4).astype(np.float32)  # beyond the erf clamp at |x / sqrt 2| = 4
    h[0, :3] = [0.0, -0.0, 40.0]
    bias = rng.standard_normal(67).astype(np.float32)
    ref = notes_numpy.gelu(h + bias)
    out = notes_numpy.bias_gelu(h.copy(), bias)
    assert out.dtype == np.float32 and np.array_equal(out, ref)
    cfg = load_preset("default").audio
    eng = Frames(cfg, 53)
    spec = (rng.standard_normal((2, 53, cfg.n_bins)) + 1j * rng.standard_normal((2, 53, cfg.n_bins))).astype(np.complex64)
    import scipy.fft as sfft

    fr = sfft.irfft(spec, n=cfg.n_fft, axis=-1) * eng.win
    ref = eng._ola(fr) * eng.inv_env
    got = eng.synth(spec)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max()
    assert not np.array_equal(got, np.zeros_like(got))


def test_the_notes_head_does_not_read_the_envelopes():
    """The numpy renderer encodes without the envelope channels (BlockEncoder(envelopes=False)); that is only
    right if the head's output does not depend on them, on the shipped default and on a random model."""
    from pianoforge.midi.blocks import BlockEncoder
    from pianoforge.midi.encoding import envelope_slices

    r = PerformRenderer.from_checkpoint(shipped_checkpoint(V3), engine="numpy")
    assert r.model.reads_envelopes is False
    score = load_score(shipped_checkpoint(V3).parents[1] / "examples" / "etude.mid")
    a, cfg = r.preset.audio, r.preset.score
    t = r.n_frames(score)
    full = BlockEncoder(score, cfg, a.frame_rate, t).block(0, t)
    lean = BlockEncoder(score, cfg, a.frame_rate, t, envelopes=False).block(0, t)
    env = envelope_slices(cfg)
    assert env is not None and full[:, env[0]].any() and not lean[:, env[0]].any()  # they differ there only
    assert np.array_equal(np.delete(full, np.r_[env[0], env[1]], axis=1), np.delete(lean, np.r_[env[0], env[1]], axis=1))
    noisy = lean.copy()
    noisy[:, env[0]] = np.random.default_rng(0).random(noisy[:, env[0]].shape)
    assert np.array_equal(r.model(full[None]), r.model(lean[None])) and np.array_equal(r.model(noisy[None]),
                                                                                      r.model(lean[None]))


def test_which_checkpoints_run_on_numpy():
    engines = {name: PerformRenderer.from_checkpoint(shipped_checkpoint(name)).engine
               for name in ("perform-default.safetensors", V3, "perform-default-v1.safetensors",
                            "perform-lan2018.safetensors")}
    assert engines == {"perform-default.safetensors": "numpy", V3: "numpy", "perform-default-v1.safetensors": "torch",
                       "perform-lan2018.safetensors": "torch"}
    assert PerformRenderer.from_checkpoint(shipped_checkpoint(V3), engine="torch").engine == "torch"
    assert not notes_numpy.qualifies({"head": "notes", "note_residual": True})
    from pianoforge.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="numpy engine"):
        PerformRenderer.from_checkpoint(shipped_checkpoint("perform-default-v1.safetensors"), engine="numpy")


def test_shipped_notes_head_numpy_equals_torch_on_the_etude():
    from pianoforge.demo import example_score

    rn = PerformRenderer.from_checkpoint(shipped_checkpoint(V3))
    rt = PerformRenderer.from_checkpoint(shipped_checkpoint(V3), engine="torch")
    score = load_score(example_score())
    a, b = rn.render_score(score), rt.render_score(score)
    worst, loud = _compare(a.logmag, b.logmag)
    assert worst < LOGMAG_TOL and loud < LOGMAG_TOL_LOUD, (worst, loud)
    assert a.audio.shape == b.audio.shape
    assert float(np.max(np.abs(a.audio - b.audio))) < AUDIO_TOL
    assert float(np.max(np.abs(a.audio))) > 0.05  # a real render, not silence on both sides


@pytest.mark.parametrize("preset_name,overrides", [("notesynth", []), ("notesynth", ["model.note_table=false"]),
                                                   ("notesynth-subframe", [])])
def test_random_models_and_scores_numpy_equals_torch(preset_name, overrides):
    model, preset = _random_model(preset_name, overrides, seed=1)
    npm = _numpy_of(model, preset)
    for seed in (0, 1):
        from pianoforge.midi.encoding import encode, frames_for

        score = _random_score(seed)
        t = frames_for(score.end_time + 1.5, preset.audio.frame_rate)
        x = encode(score, preset.score, preset.audio.frame_rate, t)[None]
        with torch.inference_mode():
            lt = model.to_logmag(model(torch.from_numpy(x))).numpy()
        ln = npm.to_logmag(npm(x))
        assert np.mean(lt > -6.0) > 0.05  # the random model is not silent
        worst, loud = _compare(ln, lt)
        assert worst < LOGMAG_TOL and loud < LOGMAG_TOL_LOUD, (preset_name, overrides, seed, worst, loud)


def test_a_changed_weight_is_seen():
    """The comparison can fail: key 60's spectra (templates and note table) 1 % louder move the numpy output
    past the tolerance."""
    model, preset = _random_model("notesynth", [], seed=2)
    npm = _numpy_of(model, preset)
    score = make_score([Note(60, 0.1, 2.0, 100), Note(64, 0.5, 2.0, 90)])
    x = PerformRenderer(model, preset).encode(score)[None]
    base = npm.to_logmag(npm(x))
    k, n = 60 - 21, len(npm.anchors)
    npm.bank[k * npm.rank:(k + 1) * npm.rank] *= 1.01
    npm.bank[88 * npm.rank + k * n:88 * npm.rank + (k + 1) * n] *= 1.01
    assert np.max(np.abs(npm.to_logmag(npm(x)) - base)) > LOGMAG_TOL


def test_numpy_phase_stream_blocks_do_not_matter_and_match_torch():
    from pianoforge.phase import PhaseStream
    from pianoforge.phase.npstream import NumpyPhaseStream, available

    if not available():
        pytest.skip("no C compiler: the numpy engine uses the torch phase stream")
    cfg = load_preset("notesynth").audio
    rng = np.random.default_rng(0)
    mag = (np.exp(rng.normal(-4, 2, (700, cfg.n_bins))) * (rng.random((700, cfg.n_bins)) < 0.3)).astype(np.float32)

    def run(cls, wrap, step, method):
        ps = cls(cfg, method, 4, block_frames=256)
        out = [np.asarray(y) for i in range(0, len(mag), step) for y in ps.push(wrap(mag[i:i + step]))]
        return np.concatenate(out + [np.asarray(y) for y in ps.finish()])

    for method in ("pghi+gl", "pghi", "zero"):
        one = run(NumpyPhaseStream, lambda m: m, len(mag), method)
        assert len(one) == len(mag) * cfg.hop_length
        np.testing.assert_allclose(run(NumpyPhaseStream, lambda m: m, 97, method), one, atol=1e-6)
        np.testing.assert_allclose(run(PhaseStream, torch.from_numpy, 97, method), one, atol=1e-3 * np.abs(one).max())


def test_stream_equals_render_score_on_the_numpy_engine():
    r = PerformRenderer.from_checkpoint()
    r.block_frames = 256  # several phase blocks
    score = _random_score(3, seconds=20.0)
    whole = r.render_score(score).audio
    blocks = list(r.stream(score))
    assert len(blocks) > 2 and all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_a_render_imports_no_torch(tmp_path):
    """The whole render path (CLI parse, MIDI load, encoding, numpy model, phase, WAV) without torch or numba;
    ``--engine torch`` forces torch."""
    from pianoforge.demo import example_score

    wav = tmp_path / "e.wav"
    code = ("import sys; from pianoforge.cli import main; "
            f"rc = main(['render', {str(example_score())!r}, '-o', {str(wav)!r}, '--threads', '1']); "
            "print('MODULES', rc, 'torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MODULES 0 False False" in out and "numpy engine" in out, out
    assert wav.stat().st_size > 100_000
    code = code.replace("'1']", f"'1', '--engine', 'torch', '--force', '--checkpoint', {str(shipped_checkpoint(V3))!r}]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MODULES 0 True" in out and "torch engine" in out, out


def test_engine_numpy_with_another_checkpoint_is_one_line(tmp_path):
    from pianoforge.demo import example_score

    r = subprocess.run([sys.executable, "-m", "pianoforge.cli", "render", str(example_score()), "-o",
                        str(tmp_path / "x.wav"), "--engine", "numpy", "--checkpoint",
                        str(shipped_checkpoint("perform-default-v1.safetensors"))], capture_output=True, text=True)
    assert r.returncode == 2 and "numpy engine" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.wav").exists()
