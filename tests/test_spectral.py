from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianoforge.audio import spectral as S
from pianoforge.config import AudioConfig, load_preset
from pianoforge.data.dataset import resize_image

ROUND_TRIP_PRESETS = ("lan2018", "default", "gan-10s", "gan-cpu")


def noise(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(n, generator=g)


@pytest.mark.parametrize("name", ROUND_TRIP_PRESETS)
def test_stft_istft_round_trip(name):
    a = load_preset(name).audio
    frames = 40
    x = noise(frames * a.hop_length)
    spec = S.stft(x, a)
    assert spec.shape == (a.n_bins, frames)
    assert spec.is_complex()
    y = S.istft(spec, a)
    assert y.shape == x.shape
    tail = a.n_fft // 2 if a.center else 0
    keep = len(x) - tail
    assert keep > 0
    assert torch.max(torch.abs(y[:keep] - x[:keep])).item() < 1e-4
    if not a.center:  # non-overlapping rectangular frames: exact everywhere
        assert torch.max(torch.abs(y - x)).item() < 1e-4


@pytest.mark.parametrize("name", ROUND_TRIP_PRESETS)
@pytest.mark.parametrize("extra", [0, 1, 37])
def test_frames_is_samples_floordiv_hop(name, extra):
    a = load_preset(name).audio
    n = 25 * a.hop_length + (extra % a.hop_length)
    x = noise(n, seed=extra)
    spec = S.stft(x, a)
    assert spec.shape[-1] == n // a.hop_length == S.n_frames(n, a)
    assert S.istft(spec, a).shape[-1] == (n // a.hop_length) * a.hop_length
    assert S.istft(spec, a, length=n).shape[-1] == n


def test_stft_batched_matches_single():
    a = load_preset("gan-cpu").audio
    xb = torch.stack([noise(20 * a.hop_length, s) for s in range(3)]).reshape(3, 1, -1)
    sb = S.stft(xb, a)
    assert sb.shape == (3, 1, a.n_bins, 20)
    for i in range(3):
        torch.testing.assert_close(sb[i, 0], S.stft(xb[i, 0], a))
    yb = S.istft(sb, a)
    assert yb.shape == xb.shape


def test_stft_frame_k_is_centred_on_k_hop():
    """An impulse at sample k*hop shows up in frame k (centred) with a flat magnitude spectrum."""
    a = load_preset("default").audio
    x = torch.zeros(20 * a.hop_length)
    x[7 * a.hop_length] = 1.0
    mag = S.stft(x, a).abs()
    assert int(torch.argmax(mag.sum(0))) == 7
    torch.testing.assert_close(mag[:, 7], torch.ones(a.n_bins), atol=1e-5, rtol=0)


def test_log_magnitude_finite_on_silence():
    for name in ROUND_TRIP_PRESETS:
        a = load_preset(name).audio
        lm = S.log_magnitude_of(torch.zeros(10 * a.hop_length), a)
        assert torch.isfinite(lm).all()
        torch.testing.assert_close(lm, torch.full_like(lm, math.log(a.log_eps)))


def test_log_magnitude_inverse():
    mag = torch.rand(5, 7) * 3
    back = S.inverse_log_magnitude(S.log_magnitude(mag, 1e-5), 1e-5)
    torch.testing.assert_close(back, mag, atol=1e-5, rtol=1e-5)
    assert (S.inverse_log_magnitude(torch.full((3,), -50.0), 1e-5) == 0).all()


def test_log_magnitude_np_is_frames_first():
    a = load_preset("lan2018").audio
    x = np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000).astype(np.float32)
    lm = S.log_magnitude_np(x, a)
    assert lm.shape == (8000 // a.hop_length, a.n_bins)
    assert lm.dtype == np.float32
    # 1 kHz at 8 kHz with n_fft 400: bin 50
    assert set(np.argmax(lm, axis=1).tolist()) == {50}


def test_gan10s_example_geometry_from_audio():
    p = load_preset("gan-10s")
    t = p.data.example_frames(p.audio)
    lm = S.log_magnitude_np(np.zeros(t * p.audio.hop_length, np.float32), p.audio)
    assert lm.shape == (430, 257)


# ------------------------------------------------------------------------------------------- Normalizer

def moments_normalizer(data: np.ndarray) -> S.Normalizer:
    """data: (frames, bins)."""
    d = data.astype(np.float64)
    return S.Normalizer.from_moments(d.shape[0], d.sum(0), (d**2).sum(0))


def test_from_moments_matches_numpy():
    rng = np.random.default_rng(1)
    data = rng.normal(loc=np.linspace(-5, 2, 9), scale=np.linspace(0.5, 3, 9), size=(500, 9))
    n = moments_normalizer(data)
    np.testing.assert_allclose(n.mean, data.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(n.std, data.std(0), rtol=1e-8)
    # a constant bin gets the floor, never a zero std
    const = moments_normalizer(np.full((10, 2), 4.0))
    assert np.all(const.std == pytest.approx(1e-3))
    back = S.Normalizer.from_dict(n.to_dict())
    np.testing.assert_allclose(back.mean, n.mean)
    np.testing.assert_allclose(back.std, n.std)


@pytest.fixture()
def normalizer_and_data():
    rng = np.random.default_rng(2)
    bins = 6
    mean = np.linspace(-8, 1, bins)
    std = np.linspace(0.5, 2.5, bins)
    return S.Normalizer(mean, std), torch.from_numpy(rng.normal(mean[:, None], std[:, None], (bins, 50))).float()


def test_normalize_denormalize_inverse(normalizer_and_data):
    norm, x = normalizer_and_data
    z = norm.normalize(x)
    torch.testing.assert_close(norm.denormalize(z), x, atol=1e-5, rtol=1e-5)
    # per-bin z-scores: bin i uses mean[i], std[i]
    torch.testing.assert_close(z[2], (x[2] - float(norm.mean[2])) / float(norm.std[2]))


def test_to_unit_range_and_exact_inverse(normalizer_and_data):
    norm, x = normalizer_and_data
    x = x.clone()
    x[0, :5] = float(norm.mean[0] + 10 * norm.std[0])  # far beyond +3 std
    x[1, :5] = float(norm.mean[1] - 10 * norm.std[1])  # far beyond -3 std
    u = norm.to_unit(x)
    assert u.shape == x.shape
    assert u.min() >= -1 and u.max() <= 1
    assert torch.all(u[0, :5] == 1) and torch.all(u[1, :5] == -1)
    z = norm.normalize(x)
    inside = z.abs() < S.GAN_CLIP_STD
    assert inside.sum() > 100
    back = norm.from_unit(u)
    torch.testing.assert_close(back[inside], x[inside], atol=1e-5, rtol=1e-5)
    # clipped values come back at exactly +-3 std
    torch.testing.assert_close(back[0, :5], torch.full((5,), float(norm.mean[0] + 3 * norm.std[0])))
    torch.testing.assert_close(back[1, :5], torch.full((5,), float(norm.mean[1] - 3 * norm.std[1])))


def test_normalizer_on_batches(normalizer_and_data):
    norm, x = normalizer_and_data
    xb = torch.stack([x, x + 1])
    torch.testing.assert_close(norm.normalize(xb)[1], norm.normalize(x + 1))


# ----------------------------------------------------------------------------------------- resize_image

def test_resize_image_round_trip_smooth():
    h, w = 129, 256
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.sin(2 * math.pi * yy) * torch.cos(3 * math.pi * xx) + 0.5 * yy
    small = resize_image(img, (128, 200))
    assert small.shape == (128, 200)
    back = resize_image(small, (h, w))
    assert back.shape == img.shape
    assert torch.max(torch.abs(back - img)).item() < 0.02
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert small[r, c].item() == pytest.approx(img[r, c].item(), abs=1e-6)
        assert back[r, c].item() == pytest.approx(img[r, c].item(), abs=1e-6)


def test_resize_image_exact_for_bilinear_and_batched():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 9), torch.linspace(0, 1, 17), indexing="ij")
    img = (2 * yy - 3 * xx + 1).expand(2, 3, 9, 17)
    up = resize_image(img, (33, 65))
    assert up.shape == (2, 3, 33, 65)
    torch.testing.assert_close(resize_image(up, (9, 17)), img, atol=1e-5, rtol=0)


def test_window_rect_and_hann():
    rect = AudioConfig(sample_rate=8000, n_fft=400, hop_length=400, window="rect", center=False)
    assert torch.all(S.window(rect) == 1)
    w = S.window(AudioConfig())
    assert w.shape == (1024,) and w[0] == 0 and w[512] == pytest.approx(1.0)
