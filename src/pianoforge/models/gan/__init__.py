"""GAN networks over normalized spectrogram images (``improvise``, after PianoGAN, Liu et al. 2021).

Images are (B, 1, H, W): H frequency bins (lowest first), W frames, values in [-1, 1] -- the natural-log
magnitude, per-bin dataset z-score, clipped at 3 std and divided by 3
(:meth:`pianoforge.audio.spectral.Normalizer.to_unit`), resized to ``data.resize``.

- ``dcgan`` / ``specgan``: :class:`~pianoforge.models.gan.conv.ConvGenerator` /
  :class:`~pianoforge.models.gan.conv.ConvCritic` (batch norm or none).
- ``stylegan``: :class:`~pianoforge.models.gan.stylegan.StyleGenerator` /
  :class:`~pianoforge.models.gan.stylegan.StyleCritic`, with
  :class:`~pianoforge.models.gan.augment.SpectrogramAugment` (ADA) in training.
- ``framegan`` (ours): :class:`~pianoforge.models.gan.frame.FrameGenerator` /
  :class:`~pianoforge.models.gan.frame.FrameCritic`: frequency bins as channels, 1-D convolutions over
  time, spectral-norm critic, hinge loss.
- ``notegan`` (ours, shipped): :class:`~pianoforge.models.gan.notegan.NoteGenerator` (the FrameGAN trunk
  striking measured piano notes) / :class:`~pianoforge.models.gan.frame.FrameCritic`.

Every generator follows :class:`~pianoforge.models.gan.base.Generator`: z (B, latent_dim) -> (B, 1, H, W),
``latent_dim``, ``latent`` ("uniform" U[-1, 1] or "normal" N(0, 1)), ``sample``, ``init_from_data`` and
``check_geometry``; every critic maps (B, 1, H, W) -> (B,) raw scores. Options no preset uses:
:mod:`pianoforge.models.gan.experimental`.
Sizes: any (H, W) divisible by ``2**n_layers`` (framegan: W only) (128 x 256, 256 x 256, 512 x 512, and 32 x 64 in tests).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from pianoforge.errors import ConfigError
from pianoforge.models.gan.augment import SpectrogramAugment
from pianoforge.models.gan.base import DataContext, Generator, GeneratorBase
from pianoforge.models.gan.config import ARCHS, GanModelConfig, load_gan_preset
from pianoforge.models.gan.conv import ConvCritic, ConvGenerator
from pianoforge.models.gan.frame import FrameCritic, FrameGenerator
from pianoforge.models.gan.notegan import NoteGenerator
from pianoforge.models.gan.stylegan import StyleCritic, StyleGenerator

__all__ = ["ARCHS", "DataContext", "GanModelConfig", "Generator", "SpectrogramAugment", "build_critic",
           "build_generator", "check_geometry", "ema_beta", "ema_update", "generate_images", "load_gan_preset",
           "recalibrate_batch_norm", "sample_latent"]


_GENERATORS: dict[str, type[GeneratorBase]] = {"dcgan": ConvGenerator, "specgan": ConvGenerator,
                                               "stylegan": StyleGenerator, "framegan": FrameGenerator,
                                               "notegan": NoteGenerator}
_CRITICS = {"dcgan": ConvCritic, "specgan": ConvCritic, "stylegan": StyleCritic, "framegan": FrameCritic,
            "notegan": FrameCritic}
assert set(_GENERATORS) == set(_CRITICS) == set(ARCHS)


def build_generator(cfg: GanModelConfig, size: tuple[int, int]) -> GeneratorBase:
    """The generator of ``cfg.arch`` for images of ``size = (H, W)``."""
    return _GENERATORS[cfg.arch](cfg, size)


def check_geometry(cfg: GanModelConfig, size: tuple[int, int], grid: tuple[int, int]) -> None:
    """ConfigError (no origin) if ``cfg.arch`` cannot make images of ``size`` from the STFT ``grid``: the
    layout must divide (:meth:`GanModelConfig.layout`) and the generator must accept the geometry."""
    cfg.layout(size)
    problem = _GENERATORS[cfg.arch].check_geometry(cfg.arch, size, grid)
    if problem:
        raise ConfigError(None, problem)


def build_critic(cfg: GanModelConfig, size: tuple[int, int]) -> nn.Module:
    """The discriminator / critic of ``cfg.arch`` for images of ``size = (H, W)``."""
    return _CRITICS[cfg.arch](cfg, size)


def sample_latent(n: int, dim: int, kind: str, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """(n, dim) latents: "uniform" U[-1, 1] (SpecGAN) or "normal" N(0, 1)."""
    if kind == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2.0 - 1.0
    if kind == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    raise ValueError(f"unknown latent kind {kind!r} (uniform or normal)")


def generate_images(g: Generator, z: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
    """z (B, latent_dim) -> (B, 1, H, W) with any generator (``noise_mode`` applies to stylegan only)."""
    return g.sample(z, noise_mode=noise_mode)


def ema_beta(beta: float, g_steps: int) -> float:
    """Decay of the generator EMA after ``g_steps`` generator updates, ramped up as
    ``min(beta, (1 + n) / (10 + n))`` so early samples are not dominated by the random initialization."""
    return min(float(beta), (1.0 + g_steps) / (10.0 + g_steps))


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, latents: Iterable[torch.Tensor]) -> int:
    """Measure every batch norm's running mean and variance for ``model``'s own weights ("precise BN"): reset
    them, run the latent batches (each (B, latent_dim)) through ``model`` in train mode, keeping a cumulative
    average, then restore the modules' modes and momenta. Returns the number of batch norms (0: nothing run).

    Why: :func:`ema_update` copies the live generator's buffers onto the EMA, whose weights lag behind it, so
    without this the EMA normalizes with statistics of other weights (docs/improvise.md, "The EMA's batch
    norm")."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    try:
        for z in latents:
            model(z)
    finally:
        for m, training in modes.items():
            m.train(training)
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
    return len(norms)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers (batch-norm statistics, noise,
    w_avg) are copied (batch-norm statistics are then measured again for the EMA's weights before it is
    used: :func:`recalibrate_batch_norm`)."""
    for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(p.detach(), 1.0 - beta)
    for be, b in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(b)
