"""A compact StyleGAN2-style generator and residual critic (Karras et al. 2020) for 1-channel spectrograms.

Kept from StyleGAN2: equalized learning rate; a mapping MLP z -> w (pixel-normalized z, lr multiplier
0.01) with a tracked average ``w_avg`` for truncation; a learned constant input; modulated + demodulated
3x3 convolutions; per-layer noise inputs with learned strength; skip-connected 1-channel "toImage"
outputs; a residual critic with minibatch standard deviation. Simplified: one w for every layer (no style
mixing), bilinear up/down-sampling instead of FIR filters, no path-length regularization.

Shapes (``n = n_layers``, ``(h0, w0) = (H, W) / 2**n``, ``c_i`` = channels at resolution i, base = 0):

- :class:`StyleGenerator`: z (B, latent_dim) -> w (B, w_dim) -> const (B, c_0, h0, w0) -> a modulated
  conv at the base, then per stage an upsample x2 + 2 modulated convs -> image (B, 1, H, W), unbounded
  (the training data lie in [-1, 1]; :mod:`pianoforge.improvise` clamps).
- :class:`StyleCritic`: image (B, 1, H, W) -> 1x1 conv -> n residual blocks (each halves H, W) ->
  minibatch stddev -> 3x3 conv -> dense -> dense -> (B,) logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pianoforge.models.gan.base import GeneratorBase
from pianoforge.models.gan.config import GanModelConfig

SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) with StyleGAN's gain sqrt(2) (keeps activations at unit variance)."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Module):
    """Linear layer with weights stored at N(0, 1/lr_mul) and scaled at run time by lr_mul / sqrt(fan_in)."""

    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return _lrelu(y) if self.act else y


class EqualConv2d(nn.Module):
    """Conv2d (same padding) with equalized learning rate."""

    def __init__(self, cin: int, cout: int, k: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.pad = 1.0 / math.sqrt(cin * k * k), k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class ModulatedConv(nn.Module):
    """x (B, cin, H, W), w (B, w_dim) -> (B, cout, H', W'): a convolution whose weights are scaled per sample
    by the style ``s = affine(w)`` (bias 1) and, with ``demod``, renormalized to unit L2 norm per output
    channel. Computed as StyleGAN2's non-fused form, ``conv(x * s, W) * d`` with
    ``d = 1 / sqrt(sum_{in, k} (W s)**2)``: the same result as per-sample weights, but one batched
    convolution (a grouped convolution per sample is ~10x slower on a CPU)."""

    def __init__(self, cin: int, cout: int, k: int, w_dim: int, demod: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.cin, self.cout, self.k, self.demod, self.up = cin, cout, k, demod, up
        self.scale = 1.0 / math.sqrt(cin * k * k)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # (B, cin)
        wt = self.weight * self.scale
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = F.conv2d(x * s[:, :, None, None], wt, padding=self.k // 2)
        if self.demod:
            d = torch.rsqrt(s.pow(2) @ wt.pow(2).sum(dim=(2, 3)).T + 1e-8)  # (B, cout)
            y = y * d[:, :, None, None]
        return y


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + scaled noise + bias + lrelu, at a fixed output resolution ``res = (h, w)``."""

    def __init__(self, cin: int, cout: int, w_dim: int, res: tuple[int, int], up: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, *res))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, *x.shape[-2:], device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return _lrelu(x + self.bias[None, :, None, None])


class ToImage(nn.Module):
    """Modulated 1x1 conv (no demodulation) to one channel, plus bias."""

    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, 1, 1, w_dim, demod=False)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGenerator(GeneratorBase):
    """z (B, latent_dim) -> image (B, 1, H, W). ``noise_mode``: "random" (training), "const" (the stored
    noise: reproducible sampling), "none". ``psi`` < 1 truncates w towards ``w_avg``."""

    W_AVG_BETA = 0.995  # tracking rate of w_avg during training

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg, self.size = cfg, (int(size[0]), int(size[1]))
        self.latent_dim, self.latent = cfg.latent_dim, cfg.latent
        n, (h0, w0) = cfg.layout(size)
        ch = cfg.resolution_channels(n)  # base first
        dims = [cfg.latent_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.mapping = nn.Sequential(*[EqualLinear(dims[i], dims[i + 1], lr_mul=cfg.mapping_lr_mul, act=True)
                                       for i in range(cfg.mapping_layers)])
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.const = nn.Parameter(torch.randn(ch[0], h0, w0))
        self.layers = nn.ModuleList([SynthesisLayer(ch[0], ch[0], cfg.w_dim, (h0, w0), up=False)])
        self.to_image = nn.ModuleList([ToImage(ch[0], cfg.w_dim)])
        for i in range(1, n + 1):
            res = (h0 << i, w0 << i)
            self.layers.append(SynthesisLayer(ch[i - 1], ch[i], cfg.w_dim, res, up=True))
            self.layers.append(SynthesisLayer(ch[i], ch[i], cfg.w_dim, res, up=False))
            self.to_image.append(ToImage(ch[i], cfg.w_dim))

    def map(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """z (B, latent_dim) -> w (B, w_dim); tracks ``w_avg`` in training mode."""
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1.0 - self.W_AVG_BETA)
        if psi != 1.0:
            w = self.w_avg.lerp(w, psi)
        return w

    def synthesize(self, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """w (B, w_dim) -> image (B, 1, H, W)."""
        x = self.const[None].expand(w.shape[0], -1, -1, -1)
        x = self.layers[0](x, w, noise_mode)
        img = self.to_image[0](x, w)
        for i in range(1, len(self.to_image)):
            x = self.layers[2 * i - 1](x, w, noise_mode)
            x = self.layers[2 * i](x, w, noise_mode)
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False) + self.to_image[i](x, w)
        return img

    def sample(self, z: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        return self(z, noise_mode=noise_mode)

    def forward(self, z: torch.Tensor, noise_mode: str = "random", psi: float = 1.0) -> torch.Tensor:
        return self.synthesize(self.map(z, psi), noise_mode)


class CriticBlock(nn.Module):
    """Residual block: two 3x3 convs + average-pool, 1x1 skip; (B, cin, H, W) -> (B, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqualConv2d(cin, cin, 3), EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(_lrelu(self.conv1(_lrelu(self.conv0(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / SQRT2


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the mean over features of the stddev across groups of ``group`` samples
    (the largest divisor of B not above ``group``). (B, C, H, W) -> (B, C + 1, H, W)."""
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    y = x.reshape(g, b // g, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/g,)
    y = y.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)
    return torch.cat([x, y], dim=1)


class StyleCritic(nn.Module):
    """image (B, 1, H, W) -> logit (B,)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        n, (h0, w0) = cfg.layout(size)
        ch = cfg.resolution_channels(n)[::-1]  # image resolution first, base last
        self.group = cfg.mbstd_group
        self.from_image = EqualConv2d(1, ch[0], 1)
        self.blocks = nn.Sequential(*[CriticBlock(ch[i], ch[i + 1]) for i in range(n)])
        c0 = ch[-1]
        self.conv = EqualConv2d(c0 + 1, c0, 3)
        self.fc = EqualLinear(c0 * h0 * w0, c0, act=True)
        self.out = EqualLinear(c0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(_lrelu(self.from_image(x)))
        x = _lrelu(self.conv(minibatch_stddev(x, self.group)))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
