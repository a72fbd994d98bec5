from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from pianoforge import phase as P
from pianoforge.audio import spectral as S
from pianoforge.audio.render import render_score
from pianoforge.config import AudioConfig, RenderConfig, load_preset
from pianoforge.midi.score import Note, make_score
from pianoforge.phase.engine import Frames


@pytest.fixture(scope="module")
def cfg() -> AudioConfig:
    return load_preset("default").audio


def harmonic_tone(cfg: AudioConfig, f0: float = 220.0, seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    """220 Hz + 7 partials (slightly stretched, decaying at different rates), then 0.25 s of silence."""
    sr = cfg.sample_rate
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros_like(t)
    for h in range(1, 9):
        f = f0 * h * math.sqrt(1 + 1e-4 * h * h)
        phi = 6.28 * torch.rand(1, generator=g).item()
        x += (0.5 / h) * torch.exp(-t * (1.0 + 0.6 * h)) * torch.sin(2 * math.pi * f * t + phi)
    x *= torch.clamp(t / 0.01, max=1.0)  # 10 ms attack
    x = torch.cat([x, torch.zeros(sr // 4, dtype=x.dtype)])
    n = x.shape[0] // cfg.hop_length * cfg.hop_length
    return x[:n].to(torch.float32)


@pytest.fixture(scope="module")
def piano(cfg: AudioConfig) -> torch.Tensor:
    """~2.5 s FluidSynth piano (a melody over a chord) followed by silence, frames * hop samples."""
    notes = [Note(p, 0.0, 1.2, 70) for p in (48, 55, 64)]
    notes += [Note(p, 0.25 * i, 0.25 * i + 0.24, 90) for i, p in enumerate((72, 74, 76, 77, 79, 77, 76, 74))]
    x = render_score(make_score(notes, [(0.0, 1.5)]), cfg.sample_rate, RenderConfig(release_seconds=1.0))
    x = np.concatenate([x, np.zeros(2 * cfg.n_fft, np.float32)])
    return torch.from_numpy(x[: len(x) // cfg.hop_length * cfg.hop_length].copy())


def sc(y: torch.Tensor, mag: torch.Tensor, cfg: AudioConfig) -> float:
    return P.spectral_convergence(y, mag, cfg)


@pytest.mark.parametrize("name", ["default", "lan2018", "gan-cpu"])
def test_frame_engine_is_spectral_stft_istft(name):
    """Griffin-Lim's private engine computes exactly spectral.istft and spectral.stft(spectral.istft(.))."""
    a = load_preset(name).audio
    g = torch.Generator().manual_seed(1)
    spec = S.stft(torch.randn(2, 30 * a.hop_length, generator=g), a)
    spec = spec * torch.polar(torch.ones(spec.shape), 6.28 * torch.rand(spec.shape, generator=g))  # arbitrary
    eng = Frames(a, spec.shape[-1])
    buf = eng.synth(spec.transpose(1, 2).contiguous())
    y = S.istft(spec, a)
    torch.testing.assert_close(eng.audio(buf), y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eng.analyse(buf).transpose(1, 2), S.stft(y, a), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("n_iter", [4, 32])
def test_griffin_lim_matches_librosa(cfg, piano, n_iter):
    """Same algorithm as librosa.griffinlim (init=None is zero phase = our init="zero"). librosa returns
    (frames - 1) * hop samples, we return frames * hop; the piano clip ends in > n_fft of silence, so the
    last frames are empty and the two iterate on the same problem."""
    mag = S.stft(piano, cfg).abs()
    ref = librosa.griffinlim(mag.numpy(), n_iter=n_iter, hop_length=cfg.hop_length, win_length=cfg.n_fft,
                             n_fft=cfg.n_fft, window="hann", center=True, momentum=0.99, init=None)
    y = P.griffin_lim(mag, cfg, n_iter=n_iter, momentum=0.99, init="zero")
    assert y.dtype == torch.float32 and y.shape == piano.shape
    assert len(ref) == len(y) - cfg.hop_length
    yn = y.numpy()
    rel = np.linalg.norm(yn[: len(ref)] - ref) / np.linalg.norm(ref)
    assert rel < (1e-3 if n_iter <= 4 else 1e-2), rel  # float32 rounding, amplified by momentum 0.99
    assert np.abs(yn[len(ref):]).max() < 1e-6
    sc_ours = sc(y, mag, cfg)
    sc_lib = sc(torch.from_numpy(np.pad(ref, (0, cfg.hop_length))), mag, cfg)
    assert abs(sc_ours - sc_lib) < 1e-3 * max(sc_lib, 1e-3) + 1e-5


def test_griffin_lim_converges(cfg, piano):
    mag = S.stft(piano, cfg).abs()
    errs = [sc(P.griffin_lim(mag, cfg, n_iter=n, init="random", seed=3), mag, cfg) for n in (0, 4, 16, 48)]
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < 0.5 * errs[1]


def test_griffin_lim_init_options(cfg, piano):
    mag = S.stft(piano, cfg).abs()
    spec = S.stft(piano, cfg)
    # the true phase as init: 0 iterations give back the signal; phases in radians work too
    torch.testing.assert_close(P.griffin_lim(mag, cfg, 0, init=spec), S.istft(spec, cfg), atol=1e-5, rtol=0)
    from_angle = P.griffin_lim(mag, cfg, 0, init=spec.angle())
    torch.testing.assert_close(from_angle, S.istft(spec, cfg), atol=1e-4, rtol=0)
    a = P.griffin_lim(mag, cfg, 3, seed=5)
    torch.testing.assert_close(a, P.griffin_lim(mag, cfg, 3, seed=5))  # deterministic per seed
    assert not torch.allclose(a, P.griffin_lim(mag, cfg, 3, seed=6))
    assert P.griffin_lim(mag, cfg, 2, length=1000).shape == (1000,)
    assert P.griffin_lim(mag, cfg, 2, length=piano.shape[0] + 7).shape == (piano.shape[0] + 7,)
    with pytest.raises(ValueError):
        P.griffin_lim(mag, cfg, 2, init="bogus")


def test_pghi_phase_advance_matches_sinusoid(cfg):
    """Sign convention: PGHI's phase advance per frame equals the true one of spectral.stft on a sinusoid,
    for the peak bin and its neighbours, and the bin-to-bin phase step (pi for a centred stationary
    sinusoid in the frame-start convention) matches too."""
    sr, f = cfg.sample_rate, 440.7
    t = torch.arange(2 * sr, dtype=torch.float64) / sr
    x = torch.cos(2 * math.pi * f * t + 0.3).to(torch.float32)
    spec = S.stft(x, cfg)
    est = P.pghi(spec.abs(), cfg)
    k0 = round(f / sr * cfg.n_fft)
    for k in (k0 - 1, k0, k0 + 1):
        true_adv = torch.angle(spec[k, 11:80] * spec[k, 10:79].conj())
        est_adv = torch.angle(est[k, 11:80] * est[k, 10:79].conj())
        assert torch.allclose(est_adv, true_adv, atol=0.05), (k, est_adv[:3], true_adv[:3])
    true_step = torch.angle(spec[k0 + 1, 10:80] * spec[k0, 10:80].conj())
    est_step = torch.angle(est[k0 + 1, 10:80] * est[k0, 10:80].conj())
    assert torch.allclose(torch.cos(est_step - true_step), torch.ones(70, dtype=torch.float32), atol=1e-2)
    assert sc(P.direct(est, cfg), spec.abs(), cfg) < 0.05


def test_pghi_beats_random_and_zero_phase(cfg):
    x = harmonic_tone(cfg)
    mag = S.stft(x, cfg).abs()
    e_pghi = sc(P.direct(P.pghi(mag, cfg), cfg), mag, cfg)
    e_random = sc(P.griffin_lim(mag, cfg, n_iter=0, init="random"), mag, cfg)
    e_zero = sc(P.zero_phase(mag, cfg), mag, cfg)
    assert e_pghi < 0.1, e_pghi
    assert e_pghi < 0.2 * e_random and e_pghi < 0.2 * e_zero, (e_pghi, e_random, e_zero)


def test_pghi_returns_magnitude_and_handles_silence(cfg):
    x = harmonic_tone(cfg, seconds=0.5)
    mag = S.stft(x, cfg).abs()
    est = P.pghi(mag, cfg)
    assert est.dtype == torch.complex64 and est.shape == mag.shape
    torch.testing.assert_close(est.abs(), mag, atol=1e-5, rtol=1e-5)
    silent = P.pghi(torch.zeros(cfg.n_bins, 7), cfg)
    assert torch.count_nonzero(silent) == 0
    assert P.reconstruct(torch.zeros(cfg.n_bins, 7), cfg, "pghi+gl", 2).abs().max() == 0


def test_pghi_gl_beats_gl_from_random(cfg, piano):
    mag = S.stft(piano, cfg).abs()
    e_pgl = sc(P.reconstruct(mag, cfg, "pghi+gl", 8), mag, cfg)
    e_gl = sc(P.reconstruct(mag, cfg, "griffinlim", 8), mag, cfg)
    e_pghi = sc(P.reconstruct(mag, cfg, "pghi", 8), mag, cfg)
    assert e_pgl < 0.5 * e_gl, (e_pgl, e_gl)
    assert e_pgl < e_pghi


def test_pghi_needs_gamma_for_rect_window():
    a = load_preset("lan2018").audio
    mag = torch.rand(a.n_bins, 5)
    with pytest.raises(ValueError, match="gamma"):
        P.pghi(mag, a)
    assert P.pghi(mag, a, gamma=0.25 * a.n_fft**2).shape == mag.shape


def test_zero_phase_length_and_dtype(cfg):
    mag = torch.rand(cfg.n_bins, 37, dtype=torch.float64)
    y = P.zero_phase(mag, cfg)
    assert y.shape == (37 * cfg.hop_length,) and y.dtype == torch.float32


def test_direct_reproduces_signal(cfg, piano):
    y = P.direct(S.stft(piano, cfg), cfg)
    assert y.shape == piano.shape and y.dtype == torch.float32
    inner = slice(cfg.n_fft, len(piano) - cfg.n_fft)
    torch.testing.assert_close(y[inner], piano[inner], atol=1e-5, rtol=0)
    y2 = P.direct(torch.view_as_real(S.stft(piano, cfg)), cfg)  # trailing (real, imag) axis
    torch.testing.assert_close(y2, y)
    with pytest.raises(ValueError):
        P.direct(torch.rand(cfg.n_bins, 4), cfg)


def test_reconstruct_methods_and_unknown(cfg):
    x = harmonic_tone(cfg, seconds=0.5)
    mag = S.stft(x, cfg).abs()
    for method in P.PHASE_METHODS:
        y = P.reconstruct(mag, cfg, method, 2)
        assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all(), method
    with pytest.raises(ValueError, match="unknown phase method"):
        P.reconstruct(mag, cfg, "vocoder", 2)
    with pytest.raises(ValueError):
        P.reconstruct(torch.rand(cfg.n_bins + 1, 5), cfg, "zero", 0)


def test_batch_input(cfg):
    xs = torch.stack([harmonic_tone(cfg, f0, seconds=0.5) for f0 in (220.0, 330.0, 261.6)])
    mags = S.stft(xs, cfg).abs()
    assert mags.shape == (3, cfg.n_bins, xs.shape[-1] // cfg.hop_length)
    for method in P.PHASE_METHODS:
        y = P.reconstruct(mags, cfg, method, 3)
        assert y.shape == xs.shape and y.dtype == torch.float32, method
    for i in range(3):  # deterministic methods: batch item == single item
        torch.testing.assert_close(P.reconstruct(mags, cfg, "pghi+gl", 3)[i],
                                   P.reconstruct(mags[i], cfg, "pghi+gl", 3), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(P.zero_phase(mags, cfg)[i], P.zero_phase(mags[i], cfg))
        torch.testing.assert_close(P.griffin_lim(mags, cfg, 3, init="zero")[i],
                                   P.griffin_lim(mags[i], cfg, 3, init="zero"), atol=1e-5, rtol=1e-4)
    assert P.pghi(mags, cfg).shape == mags.shape


def test_log_spectral_distance(cfg, piano):
    x = piano.numpy()
    assert P.log_spectral_distance(x, x, cfg.sample_rate) == 0.0
    half = P.log_spectral_distance(x, 0.5 * x, cfg.sample_rate)
    assert 4.0 < half < 20 * math.log10(2) + 1e-3  # 6.02 dB where loud, less near the 1e-5 floor
    assert P.log_spectral_distance(0.5 * x, x, cfg.sample_rate) == pytest.approx(half)
    assert P.log_spectral_distance(torch.from_numpy(x), np.pad(x, (0, 100)), cfg.sample_rate) == 0.0
    one = P.log_spectral_distance(x, 0.5 * x, cfg.sample_rate, n_ffts=(1024,))
    assert one > 0


def test_c_kernels_equal_the_numba_kernels(cfg):
    """pianoforge/native: the C PGHI is bit-identical to the numba kernel (whole plane and continued from a carried
    frame); the fused Griffin-Lim projection agrees to float rounding (numba compiles it with fastmath)."""
    import math

    from pianoforge import native
    from pianoforge.phase.engine import jit
    from pianoforge.phase.griffinlim import _project_py
    from pianoforge.phase.pghi import _pghi_integrate_py, gamma_of, integrate, log_floor

    lib = native.library()
    if lib is None:
        pytest.skip("no C compiler: the numba kernels are used")
    torch.manual_seed(0)
    kernel, g = jit(_pghi_integrate_py), gamma_of(cfg, None)
    for frames in (1, 2, 37, 300):
        mt = (torch.rand(frames, cfg.n_bins) ** 4).contiguous()
        floor = math.log(float(mt.max()) * 1e-5)
        s = log_floor(mt, floor)
        for first in sorted({0, min(1, frames - 1)}):
            c_carry = np.random.default_rng(frames).random(cfg.n_bins)
            n_carry, c_out, n_out = c_carry.copy(), torch.zeros_like(s), torch.zeros_like(s)
            integrate(s, cfg, g, floor, float(s.max()), first, frames, c_carry, c_out)
            kernel(s.numpy(), np.float32(floor), np.float32(s.max()), float(cfg.hop_length), float(cfg.n_fft), g,
                   P.PGHI_LEVELS, P.PGHI_BLOCK, first, frames, n_carry, n_out.numpy())
            assert torch.equal(c_out, n_out) and np.array_equal(c_carry, n_carry, equal_nan=True), (frames, first)
    reb, prev, mag = torch.randn(2000), torch.randn(2000), torch.rand(1000)
    c_out, n_out = torch.empty(2000), torch.empty(2000)
    lib.pf_project(reb.numpy().ctypes.data, prev.numpy().ctypes.data, mag.numpy().ctypes.data, 1000, 0.5,
                   c_out.numpy().ctypes.data)
    jit(_project_py, fastmath=True)(reb.numpy(), prev.numpy(), mag.numpy(), np.float32(0.5), n_out.numpy())
    torch.testing.assert_close(c_out, n_out, atol=1e-6, rtol=1e-5)


def test_phase_methods_run_without_importing_numba():
    import subprocess
    import sys

    code = ("import sys, torch; import pianoforge.phase as P; from pianoforge.config import load_preset; "
            "from pianoforge import native; cfg = load_preset('default').audio; "
            "[P.reconstruct(torch.rand(cfg.n_bins, 40), cfg, m, 2) for m in P.PHASE_METHODS]; "
            "print(native.library() is not None, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[0] == "False":
        pytest.skip("no C compiler: the numba kernels are used")
    assert out == ["True", "False"]
