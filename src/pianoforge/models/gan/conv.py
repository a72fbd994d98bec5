"""DCGAN and SpecGAN: 5x5 stride-2 (transposed) convolution stacks (Radford et al. 2016; Donahue et al. 2018).

Shapes (``n = n_layers``, ``(h0, w0) = (H, W) / 2**n``, ``c_i`` = :meth:`GanModelConfig.stage_channels`):

- :class:`ConvGenerator`: z (B, latent_dim) -> dense -> (B, c_0, h0, w0) -> n transposed convs, each
  doubling H and W -> (B, 1, H, W) in (-1, 1) (tanh). ReLU between layers; batch norm after the dense
  layer and every hidden deconvolution when ``norm == "batch"`` (DCGAN), none for SpecGAN.
- :class:`ConvCritic`: x (B, 1, H, W) -> n stride-2 convs, each halving H and W (LeakyReLU 0.2; batch norm
  after all but the first when ``norm == "batch"``) -> (B, c_0, h0, w0) -> flatten -> linear -> (B,) raw
  score: a logit for DCGAN (BCE with logits = sigmoid + BCE), a linear critic value for WGAN-GP.
"""

from __future__ import annotations

import torch
from torch import nn

from pianoforge.models.gan.base import GeneratorBase
from pianoforge.models.gan.config import GanModelConfig


def _init_dcgan(m: nn.Module) -> None:
    """DCGAN's initialization: weights N(0, 0.02), batch-norm scales N(1, 0.02), zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ConvGenerator(GeneratorBase):
    """z (B, latent_dim) -> image (B, 1, H, W) in (-1, 1)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg, self.size = cfg, (int(size[0]), int(size[1]))
        self.latent_dim, self.latent = cfg.latent_dim, cfg.latent
        n, (h0, w0) = cfg.layout(size)
        ch = cfg.stage_channels(n)
        self.base = (ch[0], h0, w0)
        bn = cfg.norm == "batch"
        self.dense = nn.Linear(cfg.latent_dim, ch[0] * h0 * w0)
        self.dense_norm = nn.BatchNorm2d(ch[0]) if bn else nn.Identity()
        k, pad = cfg.kernel, cfg.kernel // 2
        layers: list[nn.Module] = []
        for i in range(n):
            cout = ch[i + 1] if i + 1 < n else 1
            layers.append(nn.ConvTranspose2d(ch[i], cout, k, stride=2, padding=pad, output_padding=1))
            if i + 1 < n:
                layers += [nn.BatchNorm2d(cout) if bn else nn.Identity(), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        if bn:
            self.apply(_init_dcgan)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(z.shape[0], *self.base)
        x = torch.relu(self.dense_norm(x))
        return torch.tanh(self.net(x))


class ConvCritic(nn.Module):
    """image (B, 1, H, W) -> raw score (B,)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        n, (h0, w0) = cfg.layout(size)
        ch = cfg.stage_channels(n)[::-1]  # image side first
        bn = cfg.norm == "batch"
        k, pad = cfg.kernel, cfg.kernel // 2
        layers: list[nn.Module] = []
        cin = 1
        for i in range(n):
            layers.append(nn.Conv2d(cin, ch[i], k, stride=2, padding=pad))
            if bn and i > 0:
                layers.append(nn.BatchNorm2d(ch[i]))
            layers.append(nn.LeakyReLU(0.2))
            cin = ch[i]
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(cin * h0 * w0, 1)
        if bn:
            self.apply(_init_dcgan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x).flatten(1)).squeeze(1)
