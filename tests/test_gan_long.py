"""Issue 19 item 2: clips longer than the generator's window (``generate --seconds``), tiled in time.

The FrameGAN trunk's layers after its dense base grid are translation-equivariant in time, so a long clip
joins the base grids of several latents and runs the rest over the whole sequence
(``FrameTrunk.sample_tiled``). These tests pin what that promises: one window is the plain clip exactly,
frames away from a join are the plain window of their latent, blocks computed with context equal the
whole sequence, and the CLI writes clips of the asked length and refuses bad lengths in one line.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import run_in_process as run
from pianoforge.errors import ConfigError
from pianoforge.improvise import GanGenerator


@pytest.fixture(scope="module")
def gen() -> GanGenerator:
    return GanGenerator.from_checkpoint()


def _latents(gen: GanGenerator, seeds) -> torch.Tensor:
    return torch.stack([gen.latent(s) for s in seeds])


@torch.inference_mode()
def test_one_tile_is_the_plain_window_exactly(gen):
    m = gen.model
    z = _latents(gen, [3, 4])
    assert torch.equal(m.sample_tiled(z[:, None]), m(z))
    assert torch.equal(m.features_tiled(z[:, None]), m.features(z))


@torch.inference_mode()
def test_base_mean_is_the_expected_base_grid(gen):
    """The closed-form expected base grid (the crossfade's mean) matches 4096 sampled latents' mean."""
    m = gen.model
    z = torch.randn(4096, m.latent_dim, generator=torch.Generator().manual_seed(1))
    mu, emp = m.base_mean(), m.base_features(z).mean(0)
    assert mu.shape == emp.shape == m.base
    assert (mu - emp).abs().mean() < 0.03 * mu.mean() and (mu - emp).abs().max() < 0.1


@torch.inference_mode()
def test_every_base_frame_of_a_long_clip_mixes_two_windows_keeping_mean_and_spread(gen):
    """Window j's base grid joins at base frame j (w0 - r); where two overlap, the mix is
    mu + sqrt(1 - w) (x_prev - mu) + sqrt(w) (x_next - mu), w = (i + 0.5) / r; the trunk then runs over the whole
    sequence, the same layers as for one window (features_tiled == net(base_tiled))."""
    m, w = gen.model, gen.grid[1]
    c, w0 = m.base
    r = m.tile_overlap()
    s, fade = m.tile_stride(), r * (w // w0)
    assert (r, s, fade) == (w0 // 2, 128, 128) and m.tiled_frames(3) == 2 * s + w
    z = _latents(gen, [0, 1, 2])
    x = m.base_features(z)  # (3, C, w0): each latent's own grid
    mu = m.base_mean()
    seq = m.base_tiled(z[None])[0]
    assert seq.shape == (c, 2 * (w0 - r) + w0)
    torch.testing.assert_close(seq[:, :w0 - r], x[0][:, :w0 - r])  # the clip opens on window 0 alone
    wt = (torch.arange(r, dtype=x.dtype) + 0.5) / r
    assert mu.shape == (c, w0)
    out_mu, in_mu = mu[:, w0 - r:], mu[:, :r]  # expected grid where a window fades out / in
    for j in (1, 2):
        start = j * (w0 - r)
        expect = ((x[j - 1][:, w0 - r:] - out_mu) * (1 - wt).sqrt() + out_mu * (1 - wt)
                  + (x[j][:, :r] - in_mu) * wt.sqrt() + in_mu * wt)
        torch.testing.assert_close(seq[:, start:start + r], expect, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.features_tiled(z[None]), m.net(seq[None]))


@torch.inference_mode()
def test_a_long_clip_begins_as_its_seed_window(gen):
    """The first window's latent is the seed's own: a 2-window clip strikes what the plain clip strikes up to
    the trunk's reach before the first crossfade, and its image there is the plain image (rings are causal)."""
    m = gen.model
    z = gen.tile_latents(7, 2)
    assert torch.equal(z[0], gen.latent(7))
    until = m.tile_stride() - m.trunk_context() - 3
    long = m.sample_tiled(z[None])
    plain = m(z[:1])
    np.testing.assert_allclose(long[..., :until], plain[..., :until], atol=1e-4)
    s_long = m.head.onsets(m.features_tiled(z[None]))[0, :, :until]
    s_plain = m.head.onsets(m.features(z[:1]))[0, :, :until]
    torch.testing.assert_close(s_long, s_plain, atol=1e-4, rtol=0)
    # later windows do not change earlier ones: window j's latent does not depend on the clip's length
    assert torch.equal(gen.tile_latents(7, 5)[:2], z)


@torch.inference_mode()
def test_blocks_with_context_equal_the_whole_sequence(gen):
    m = gen.model
    frames = m.tiled_frames(6) - 37
    assert gen.windows_for(frames) == 6 and gen.windows_for(m.tiled_frames(6)) == 6
    assert gen.windows_for(gen.grid[1]) == 1 and gen.windows_for(gen.grid[1] + 1) == 2
    whole = m.sample_tiled(gen.tile_latents(5, 6)[None]).clamp(-1, 1)[0, 0, :, :frames]
    for block_tiles in (1, 2, 4):
        blocks = list(gen.long_images(5, frames, block_tiles=block_tiles))
        assert [b.shape[-1] for b in blocks][:-1] == [block_tiles * m.tile_stride()] * (len(blocks) - 1)
        np.testing.assert_allclose(torch.cat(blocks, dim=-1), whole, atol=1e-4)


@pytest.mark.parametrize("seconds", [10.0, 5.0011])
def test_long_audio_has_the_asked_length(gen, seconds):
    audio, preview = gen.generate_long(2, seconds, iterations=2)
    assert audio.dtype == np.float32 and len(audio) == round(seconds * gen.sample_rate)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    frames = math.ceil(len(audio) / gen.audio_config.hop_length)
    assert preview.shape == (frames, gen.grid[0])


def without_strike_rule(preset):
    """The shipped NoteGAN's preset without its strike rule (inference.strike_*), for a generator without notes."""
    from pianoforge.config import Preset

    inference = {k: v for k, v in (preset.inference or {}).items() if not k.startswith("strike_")}
    return Preset.from_dict({**preset.to_dict(), "inference": inference}, "test")


def test_bad_lengths_and_archs_are_config_errors(gen):
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1e9, 0.001):
        with pytest.raises(ConfigError):
            gen.clip_samples(bad)
    from pianoforge.models.gan import GanModelConfig, build_generator

    dc = build_generator(GanModelConfig.from_dict({"arch": "dcgan"}), (128, 256))
    with pytest.raises(ConfigError, match="arch dcgan cannot generate clips longer than its window"):
        dc.sample_tiled(torch.zeros(1, 2, dc.latent_dim))
    other = GanGenerator(dc, without_strike_rule(gen.preset), gen.normalizer, (128, 256), gen.grid)
    assert other.clip_samples(2.0) == 2 * gen.sample_rate  # shorter than the window: fine
    with pytest.raises(ConfigError, match="cannot generate clips longer than its window"):
        other.clip_samples(10.0)


def test_cli_seconds_writes_clips_of_that_length(tmp_path, capsys):
    out = tmp_path / "clips"
    code, stdout, err = run(capsys, "generate", "-n", "2", "--seed", "4", "--seconds", "10", "--iterations", "2",
                            "-q", "-o", out)
    assert code == 0, err
    for s in (4, 5):
        info = sf.info(str(out / f"clip-seed{s}.wav"))
        assert (info.frames, info.samplerate) == (80000, 8000)
        assert (out / f"clip-seed{s}.png").stat().st_size > 0
    assert "10 s each" in stdout
    code, _, err = run(capsys, "generate", "-n", "1", "--seconds", "1.5", "--iterations", "2", "-q", "-o",
                       tmp_path / "short")
    assert code == 0, err
    assert sf.info(str(tmp_path / "short" / "clip-seed0.wav")).frames == 12000


@pytest.mark.parametrize(("args", "words"), [
    (["--seconds", "0"], ["--seconds", "0"]), (["--seconds", "-2"], ["--seconds"]),
    (["--seconds", "nan"], ["--seconds", "finite"]), (["--seconds", "inf"], ["--seconds"]),
    (["--seconds", "ten"], ["--seconds"]), (["--seconds", "1e6"], ["--seconds", "3600"]),
    (["--seconds", "0.001"], ["shorter than one frame"]),
    (["--seconds", "10", "--interpolate", "-n", "3"], ["--seconds", "--interpolate"]),
    (["--seconds", "10", "--denoise"], ["--seconds", "--denoise"]),
])
def test_cli_refuses_bad_seconds_in_one_line(tmp_path, capsys, args, words):
    code, stdout, err = run(capsys, "generate", "-o", tmp_path / "clips", *args)
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert code == 2 and stdout == "" and len(lines) == 1 and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "clips").exists()


@torch.inference_mode()
def test_framegan_tiles_too(gen):
    """The plain FrameGAN head (conv k=3 + tanh) on the same trunk: one window is its forward, blocks with
    context equal the whole clip (random weights, eval mode)."""
    from pianoforge.models.gan import GanModelConfig, build_generator

    torch.manual_seed(0)
    fg = build_generator(GanModelConfig.from_dict({"arch": "framegan"}), (256, 256)).eval()
    assert fg.tiles_in_time and fg.time_context() == (47, 47)
    z = torch.randn(2, fg.latent_dim)
    assert torch.equal(fg.sample_tiled(z[:, None]), fg(z))
    other = GanGenerator(fg, without_strike_rule(gen.preset), gen.normalizer, (256, 256), gen.grid)
    frames = fg.tiled_frames(4) - 5
    whole = fg.sample_tiled(other.tile_latents(1, 4)[None]).clamp(-1, 1)[0, 0, :, :frames]
    np.testing.assert_allclose(torch.cat(list(other.long_images(1, frames, block_tiles=1)), dim=-1), whole, atol=1e-4)


def test_cli_seconds_of_the_window_is_plain_generate(tmp_path, capsys):
    """--seconds equal to the window takes the plain path: the same bytes as without it."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "generate", "-n", "1", "--iterations", "2", "-q", "-o", a)[0] == 0
    assert run(capsys, "generate", "-n", "1", "--iterations", "2", "-q", "-o", b, "--seconds", "4.096")[0] == 0
    assert (a / "clip-seed0.wav").read_bytes() == (b / "clip-seed0.wav").read_bytes()
