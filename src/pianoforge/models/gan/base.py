"""What every GAN generator offers the trainer and the sampler: the generator protocol and its data context.

A generator maps z (B, latent_dim) -> image (B, 1, H, W) in [-1, 1] (``data/gan_images.py``'s scale) and
follows :class:`Generator`: ``latent_dim`` and ``latent`` ("uniform" U[-1, 1] or "normal" N(0, 1)),
``sample(z, noise_mode)`` (StyleGAN's noise inputs; the others ignore it), ``init_from_data(context)``
(called once on a fresh generator before training; a checkpoint restores what it set) and
``check_geometry(size, grid)`` (a ConfigError for an image the model cannot make, before any work), and for
clips longer than the window ``tiles_in_time``, ``sample_tiled(z (B, M, latent_dim))`` and ``time_context()``
(the FrameGAN trunk's; the others raise "arch X cannot generate clips longer than its window").
:class:`GeneratorBase` gives the defaults (no data needed, any geometry its layout accepts), so the trainer
asks every generator the same questions instead of testing its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from pianoforge.config import AudioConfig, RenderConfig
from pianoforge.data.gan_images import drops_nyquist
from pianoforge.errors import ConfigError


def rows_are_bins(size: tuple[int, int], grid: tuple[int, int]) -> bool:
    """Whether the image rows of ``size = (H, W)`` are the STFT bins of ``grid`` (all, or all but Nyquist)."""
    return int(size[0]) == int(grid[0]) or drops_nyquist(size, grid)


@dataclass(frozen=True)
class DataContext:
    """What a generator may take from the training data before its first step.

    ``mean``, ``std`` (H,): per image row, the dataset moments of the natural-log magnitude (the train
    split's :class:`~pianoforge.audio.spectral.Normalizer`, at the row's bin); ``row_hz`` (H,): each row's
    centre frequency in Hz; ``log_eps``: the store's log floor; ``audio``, ``render``: the preset's STFT and
    renderer (NoteGAN renders its note dictionary with them); ``size`` (H, W) and ``grid`` (bins, frames).
    """

    mean: np.ndarray
    std: np.ndarray
    row_hz: np.ndarray
    log_eps: float
    audio: AudioConfig
    render: RenderConfig
    size: tuple[int, int]
    grid: tuple[int, int]

    @classmethod
    def from_normalizer(cls, normalizer: Any, audio: AudioConfig, render: RenderConfig, size: tuple[int, int],
                        grid: tuple[int, int]) -> DataContext:
        """Per-row moments from a per-bin normalizer: rows are bins when ``H`` is ``bins`` or ``bins - 1``
        (Nyquist dropped); otherwise the bilinear resize (``align_corners=True``) puts row i at bin
        ``i (bins - 1) / (H - 1)``."""
        h, bins = int(size[0]), int(grid[0])
        pos = np.arange(h, dtype=np.float64) if rows_are_bins(size, grid) else np.linspace(0.0, bins - 1.0, h)
        idx = np.arange(bins, dtype=np.float64)
        return cls(np.interp(pos, idx, normalizer.mean), np.interp(pos, idx, normalizer.std),
                   pos * audio.sample_rate / audio.n_fft, float(audio.log_eps), audio, render,
                   (int(size[0]), int(size[1])), (int(grid[0]), int(grid[1])))


@runtime_checkable
class Generator(Protocol):
    """The GAN generator protocol (see the module docstring)."""

    latent_dim: int
    latent: str

    def __call__(self, z: torch.Tensor) -> torch.Tensor: ...

    def sample(self, z: torch.Tensor, noise_mode: str = "random") -> torch.Tensor: ...

    def init_from_data(self, context: DataContext) -> None: ...


class GeneratorBase(nn.Module):
    """Defaults of :class:`Generator` for generators that need nothing from the data."""

    latent_dim: int
    latent: str
    needs_stft_grid: ClassVar[bool] = False
    """True: the image must be the STFT grid (rows = bins, or all but Nyquist; no time resize)."""

    def sample(self, z: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """z (B, latent_dim) -> (B, 1, H, W); ``noise_mode`` matters to StyleGAN only."""
        return self(z)

    def init_from_data(self, context: DataContext) -> None:
        """Nothing to set from the data (heads that need it override this)."""

    tiles_in_time: ClassVar[bool] = False
    """True: :meth:`sample_tiled` makes clips longer than the window (FrameGAN's trunk: models/gan/frame.py)."""

    def sample_tiled(self, z: torch.Tensor, first: int = 0, total: int | None = None) -> torch.Tensor:
        """z (B, M, latent_dim), M latents per clip -> (B, 1, H, T): one clip M windows long, its latents'
        base grids joined in time (``first``, ``total``: z is windows first.. of a clip of total). Only generators whose layers after the first are translation-equivariant
        in time can (:attr:`tiles_in_time`); the others raise a ConfigError."""
        arch = getattr(getattr(self, "cfg", None), "arch", type(self).__name__)
        raise ConfigError(None, f"arch {arch} cannot generate clips longer than its window")

    def time_context(self) -> tuple[int, int]:
        """(past, future) frames: output frame t of :meth:`sample_tiled` depends on the base grid only within
        frames [t - past, t + future] (a bound); generators that cannot tile raise as :meth:`sample_tiled`."""
        self.sample_tiled(torch.zeros(1, 1, self.latent_dim))
        return (0, 0)

    @classmethod
    def check_geometry(cls, arch: str, size: tuple[int, int], grid: tuple[int, int]) -> str | None:
        """None if this generator can make images of ``size`` from the STFT ``grid``, else the problem."""
        h, w = int(size[0]), int(size[1])
        if cls.needs_stft_grid and (not rows_are_bins(size, grid) or w != int(grid[1])):
            return (f"{arch} needs an image on the STFT grid ({grid[0]} or {grid[0] - 1} bins x {grid[1]} "
                    f"frames), not {h} x {w}")
        return None
