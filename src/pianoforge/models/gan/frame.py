"""FrameGAN: frequency bins as channels, 1-D convolutions over time (ours; not in PianoGAN).

A piano spectrogram is a few harmonic stacks switched on at onsets and decaying. A 2-D conv stack must
learn each stack from small local kernels; here every frame's whole spectrum is one vector, so a note's
harmonic stack is one direction of the last layer (a 1x1 convolution from ``channels`` to H bins), and the
network spends its depth on time: where notes start and how long they ring. It is also cheap: a 1-D conv
over 256 frames costs what a 2-D conv costs over 256 pixels.

Shapes (``n = n_layers``, ``w0 = W / 2**n``, ``C = channels``):

- :class:`FrameGenerator`: z (B, latent_dim) -> dense -> (B, C, w0) -> n stages of [nearest x2 in time,
  conv k (C -> C), batch norm, ReLU] -> conv k=3 (C -> H) -> tanh -> (B, 1, H, W) in (-1, 1).
- :class:`FrameCritic`: (B, 1, H, W) -> (B, H, W) -> conv k (H -> C), LeakyReLU 0.2 -> n stride-2 convs
  (C -> C), LeakyReLU -> minibatch stddev (one channel) -> flatten -> linear -> (B,) raw score; plus, when
  ``patch_channels`` P > 0, a 2-D patch branch that sees local time-frequency texture (thin partials,
  sharp onsets) the frame branch blurs: 3 stride-2 4x4 convs (1 -> P -> 2P -> 4P), a 3x3 conv to one
  logit per patch, mean over patches, added to the score. Spectral normalization on every layer (Miyato
  et al. 2018); trained with the hinge loss.

Heads: :class:`FrameGenerator` ends in a conv k=3 from ``C`` to H bins and tanh, or, with the
experimental ``model.harmonic`` section, in :class:`~pianoforge.models.gan.experimental.HarmonicHead`.
NoteGAN (models/gan/notegan.py) is the same :class:`FrameTrunk` with its own note head and this critic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from pianoforge.models.gan.base import DataContext, GeneratorBase
from pianoforge.models.gan.config import GanModelConfig
from pianoforge.models.gan.stylegan import minibatch_stddev


class FrameTrunk(GeneratorBase):
    """z (B, latent_dim) -> features (B, C, W): the FrameGAN trunk (dense, then n time doublings)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg, self.size = cfg, (int(size[0]), int(size[1]))
        self.latent_dim, self.latent = cfg.latent_dim, cfg.latent
        n, (_, w0) = cfg.layout(size)  # only the time axis halves, n times down to w0
        c, k = cfg.channels, cfg.kernel
        self.base = (c, w0)
        self.dense = nn.Linear(cfg.latent_dim, c * w0)
        self.dense_norm = nn.BatchNorm1d(c)
        layers: list[nn.Module] = []
        for _ in range(n):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv1d(c, c, k, padding=k // 2, padding_mode="replicate"),
                       nn.BatchNorm1d(c), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    tiles_in_time = True

    def base_features(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> the base grid (B, C, w0): dense, batch norm, ReLU (per latent)."""
        return torch.relu(self.dense_norm(self.dense(z).view(z.shape[0], *self.base)))

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> the trunk's features (B, C, W)."""
        return self.net(self.base_features(z))

    def features_tiled(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, M, latent_dim) -> features (B, C, M W) of one clip M windows long per row.

        Each latent makes its base grid (C, w0) alone (:meth:`base_features`); the M grids are joined in time
        (C, M w0) and the upsampling convolutions run over the whole sequence at once. Everything after the
        base grid is translation-equivariant in time (nearest x2, conv k with replicate padding at the
        sequence's two ends only, batch norm with its running statistics in eval mode, ReLU), so frames
        farther than :meth:`trunk_context` from a join are those of that latent's own window, and the
        convolutions blend the two grids across a join. M = 1 is :meth:`features` exactly."""
        b, m, d = z.shape
        c, w0 = self.base
        x = self.base_features(z.reshape(b * m, d))  # (B M, C, w0)
        if m > 1:
            x = x.view(b, m, c, w0).permute(0, 2, 1, 3).reshape(b, c, m * w0)
        return self.net(x)

    def trunk_context(self) -> int:
        """Frames (either side) within which a feature frame depends on the base grid: the kernels' reach at
        each resolution, ``(k // 2) (2**n - 1)``, plus one base frame (the nearest upsampling's rounding)."""
        n = len(self.net) // 4
        return (self.cfg.kernel // 2) * (2**n - 1) + 2**n

    def head_image(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, C, T) -> image (B, 1, H, T): the generator's head (per subclass)."""
        raise NotImplementedError

    def head_context(self) -> tuple[int, int]:
        """(past, future) frames the head reaches in time."""
        return (0, 0)

    def sample_tiled(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, M, latent_dim) -> image (B, 1, H, M W): :meth:`features_tiled`, then the head over the whole
        sequence (NoteGAN: notes struck near a join ring on across it)."""
        return self.head_image(self.features_tiled(z))

    def time_context(self) -> tuple[int, int]:
        past, future = self.head_context()
        return past + self.trunk_context(), future + self.trunk_context()


class FrameGenerator(FrameTrunk):
    """z (B, latent_dim) -> image (B, 1, H, W) in (-1, 1)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__(cfg, size)
        self.head: nn.Module | None = None
        if cfg.harmonic is not None:  # experimental (models/gan/experimental.py)
            from pianoforge.models.gan.experimental import HarmonicHead

            h = cfg.harmonic
            self.head = HarmonicHead(cfg.channels, self.size[0], h.templates_per_key, h.free_templates, h.voices)
        else:
            self.out = nn.Conv1d(cfg.channels, self.size[0], 3, padding=1, padding_mode="replicate")

    def init_from_data(self, context: DataContext) -> None:
        """The harmonic head's fixed normalization and initial templates; nothing for the direct output."""
        if self.head is not None:
            self.head.init_from_data(context.mean, context.std, context.row_hz, context.log_eps)

    def head_image(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is not None:
            return self.head(x)
        return torch.tanh(self.out(x)).unsqueeze(1)

    def head_context(self) -> tuple[int, int]:
        return (0, 0) if self.head is not None else (1, 1)  # harmonic: per frame; direct: conv k=3

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head_image(self.features(z))


class FrameCritic(nn.Module):
    """image (B, 1, H, W) -> raw score (B,)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        n, (_, w0) = cfg.layout(size)
        c, k = cfg.channels, cfg.kernel
        layers: list[nn.Module] = [spectral_norm(nn.Conv1d(int(size[0]), c, k, padding=k // 2)), nn.LeakyReLU(0.2)]
        for _ in range(n):
            layers += [spectral_norm(nn.Conv1d(c, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.group = max(1, int(cfg.mbstd_group))
        self.head = spectral_norm(nn.Linear((c + 1) * w0, 1))
        p = int(cfg.patch_channels)
        self.patch: nn.Module | None = None
        if p > 0:
            self.patch = nn.Sequential(
                spectral_norm(nn.Conv2d(1, p, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(p, 2 * p, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(2 * p, 4 * p, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(4 * p, 1, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x.squeeze(1))  # (B, C, w0)
        h = minibatch_stddev(h.unsqueeze(2), self.group).squeeze(2)  # (B, C + 1, w0)
        score = self.head(h.flatten(1)).squeeze(1)
        if self.patch is not None:
            score = score + self.patch(x).mean(dim=(1, 2, 3))
        return score
