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

Long clips (:meth:`FrameTrunk.sample_tiled`, ``generate --seconds``): z (B, M, latent_dim) -> M base grids
joined in time, neighbours crossfaded over a quarter of the grid (B, C, (M - 1) (w0 - w0 // 4) + w0) -> the same
stages and head over the whole sequence -> (B, 1, H, :meth:`FrameTrunk.tiled_frames`). Every layer
after the dense one is translation-equivariant in time, so nothing is trained for it and M = 1 is the plain
forward exactly; :meth:`FrameTrunk.time_context` bounds how far in time a frame depends on the base grid.
"""

from __future__ import annotations

import math

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

    TILE_OVERLAP = 0.5
    """Share of the base grid two neighbouring windows of a long clip crossfade over (w0 // 2 base frames: 8
    of 16, 128 output frames, for the shipped generator; a new window every 2.048 s). Measured
    (docs/improvise.md, "Long clips"): end to end (0) the frame-to-frame change of the log-magnitude rises 40 %
    above its level elsewhere within 16 frames of a join; over a quarter (4 base frames, each step of the mix
    0.25) it is flat nearby but 19 % above at the crossfade's centre (onsets 43 %; 256 clips); over a half it
    is that of any other frame. Every frame of a middle window is then a mix of two latents."""

    @torch.no_grad()
    def base_mean(self) -> torch.Tensor:
        """(C, w0): the expected base grid over the latent distribution, in closed form. Each dense output is
        ``b_i + W_i z``: a normal of mean ``b_i`` and variance ``v ||W_i||^2`` (v = 1 for normal latents; 1/3
        for U[-1, 1], by the central limit); eval batch norm maps it to a normal (m, s), and
        ``E relu = m Phi(m / s) + s phi(m / s)``."""
        c, w0 = self.base
        bn = self.dense_norm
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None]  # (C, 1)
        var = 1.0 if self.latent == "normal" else 1.0 / 3.0
        m = (self.dense.bias.view(c, w0) - bn.running_mean[:, None]) * scale + bn.bias[:, None]
        sd = (self.dense.weight.norm(dim=1).view(c, w0) * math.sqrt(var) * scale.abs()).clamp_min(1e-12)
        a = m / sd
        return m * 0.5 * (1.0 + torch.erf(a / math.sqrt(2.0))) + sd * torch.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)

    def tile_overlap(self) -> int:
        """Base frames two neighbouring windows of a long clip share (crossfaded)."""
        return int(self.base[1] * self.TILE_OVERLAP)

    def tile_stride(self) -> int:
        """Output frames from one window's start to the next one's in a long clip: ``(w0 - overlap) 2**n``."""
        w0 = self.base[1]
        return (w0 - self.tile_overlap()) * (self.size[1] // w0)

    def tiled_frames(self, m: int) -> int:
        """Output frames of a long clip of ``m`` windows: ``(m - 1) stride + W``."""
        return (int(m) - 1) * self.tile_stride() + self.size[1]

    def features_tiled(self, z: torch.Tensor, first: int = 0, total: int | None = None) -> torch.Tensor:
        """z (B, M, latent_dim) -> features (B, C, :meth:`tiled_frames` (M)) of one clip M windows long per row.

        Each latent makes its base grid (C, w0) alone (:meth:`base_features`); window j's grid starts at base
        frame ``j (w0 - r)``, r = :meth:`tile_overlap`, and two neighbours crossfade over the r base frames
        they share with weights w = (i + 0.5) / r and 1 - w: each grid's expected value (:meth:`base_mean`)
        by w, its deviation from it by sqrt(w), so the mix keeps both the mean and, for independent latents,
        the spread of a grid (a plain linear mix halves the variance at the centre: measured, 35-40 % fewer
        strikes there, against 15-25 % with this one); then the upsampling
        convolutions run over the whole sequence at once. Everything after the base grid is
        translation-equivariant in time (nearest x2, conv k with replicate padding at the sequence's two ends
        only, batch norm with its running statistics in eval mode, ReLU), so frames farther than
        :meth:`trunk_context` from a crossfade are those of that latent's own window (with the half-grid
        overlap, only the first window's start and the last one's end), and the convolutions blend the grids
        across it. M = 1 is :meth:`features` exactly.

        ``first``, ``total``: z holds windows ``first .. first + M - 1`` of a clip of ``total`` windows (default:
        the whole clip), so a block of a long clip fades in and out where the whole clip does."""
        return self.net(self.base_tiled(z, first, total))

    def base_tiled(self, z: torch.Tensor, first: int = 0, total: int | None = None) -> torch.Tensor:
        """z (B, M, latent_dim) -> the joined base grids (B, C, (M - 1) (w0 - r) + w0) that
        :meth:`features_tiled` upsamples (arguments as there)."""
        b, m, d = z.shape
        c, w0 = self.base
        total = first + m if total is None else int(total)
        x = self.base_features(z.reshape(b * m, d)).view(b, m, c, w0)  # (B, M, C, w0)
        r, step = self.tile_overlap(), w0 - self.tile_overlap()
        if m == 1 and (r == 0 or total == 1):
            return x[:, 0]
        ramp = (torch.arange(r, dtype=x.dtype, device=x.device) + 0.5) / max(r, 1)
        mu = self.base_mean().to(x.dtype) if r else None
        seq = x.new_zeros(b, c, (m - 1) * step + w0)
        for j in range(m):
            wt = torch.ones(w0, dtype=x.dtype, device=x.device)
            if r and first + j > 0:
                wt[:r] = ramp
            if r and first + j < total - 1:
                wt[w0 - r:] = 1 - ramp
            g = x[:, j] if mu is None else torch.where(wt < 1, (x[:, j] - mu) * wt.sqrt() + mu * wt, x[:, j])
            seq[..., j * step:j * step + w0] += g
        return seq

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

    def sample_tiled(self, z: torch.Tensor, first: int = 0, total: int | None = None) -> torch.Tensor:
        """z (B, M, latent_dim) -> image (B, 1, H, :meth:`tiled_frames` (M)): :meth:`features_tiled`, then the
        head over the whole sequence (NoteGAN: notes struck before a join ring on across it)."""
        return self.head_image(self.features_tiled(z, first, total))

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
