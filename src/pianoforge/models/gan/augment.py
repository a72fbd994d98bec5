"""Adaptive discriminator augmentation (Karras et al. 2020, "ADA") for spectrogram images.

Every image shown to the critic, real or generated, in both the critic and the generator steps, passes
through :class:`SpectrogramAugment`. Each transform is applied to each sample independently with
probability ``p``; all are differentiable in the image, so generator gradients flow through them:

- time shift: circular roll along the frame axis by up to ``max_shift`` of the width;
- time mask and frequency mask (SpecAugment): one band of up to ``max_mask`` of the width / height set to
  0, which is the per-bin dataset mean in the normalized [-1, 1] scale;
- gain: a constant offset ~ U[-gain, gain] (a loudness change in normalized units).

Never a flip of the frequency axis (pitch is not symmetric) nor of time (piano notes decay). ``p`` is
adapted from the overfitting heuristic r_t = E[sign(D(real))]: every ``interval`` critic steps,
``p += sign(r_t - target) * batch * interval / (kimg * 1000)``, clamped to [0, 1). ``p`` and the
running sums are buffers, so they are saved and restored with the training state (exact resume); under
DDP the sums are all-reduced, so every process uses the same ``p``.
"""

from __future__ import annotations

import torch
from torch import nn


class SpectrogramAugment(nn.Module):
    """(B, 1, H, W) -> (B, 1, H, W); H = frequency bins (low first), W = frames."""

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 20.0, max_shift: float = 0.125,
                 max_mask: float = 0.125, gain: float = 0.1, enabled: bool = True) -> None:
        super().__init__()
        self.target, self.interval, self.kimg = float(target), int(interval), float(kimg)
        self.max_shift, self.max_mask, self.gain, self.enabled = float(max_shift), float(max_mask), float(gain), enabled
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("stats", torch.zeros(3))  # sum of sign(D(real)), count, critic steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if not self.enabled or p <= 0:
            return x
        b, _, h, w = x.shape
        dev = x.device

        def on() -> torch.Tensor:
            return (torch.rand(b, device=dev) < p).float()

        cols = torch.arange(w, device=dev)
        shift = (torch.randint(-int(self.max_shift * w), int(self.max_shift * w) + 1, (b,), device=dev) * on()).long()
        idx = (cols[None, :] - shift[:, None]) % w  # (B, W)
        x = torch.gather(x, 3, idx[:, None, None, :].expand(b, 1, h, w))
        keep = torch.ones(b, 1, h, w, device=dev, dtype=x.dtype)
        for axis, n in ((3, w), (2, h)):
            size = (torch.rand(b, device=dev) * self.max_mask * n).long() * on().long()
            start = (torch.rand(b, device=dev) * (n - size + 1).float()).long()
            ar = torch.arange(n, device=dev)[None, :]
            band = ((ar >= start[:, None]) & (ar < (start + size)[:, None])).to(x.dtype)  # (B, n)
            shape = (b, 1, 1, n) if axis == 3 else (b, 1, n, 1)
            keep = keep * (1.0 - band.reshape(shape))
        offset = (torch.rand(b, device=dev) * 2 - 1) * self.gain * on()
        return x * keep + offset[:, None, None, None]

    @torch.no_grad()
    def update(self, real_scores: torch.Tensor, batch: int) -> None:
        """Accumulate sign(D(real)) of one critic step (``batch`` images per process); adjust ``p`` every
        ``interval`` steps by ``sign(r_t - target)`` times the images seen since over ``kimg`` thousand."""
        if not self.enabled:
            return
        delta = torch.stack([real_scores.detach().sign().sum().cpu(), torch.tensor(float(real_scores.numel())),
                             torch.tensor(1.0)]).to(self.stats)
        world = 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
            torch.distributed.all_reduce(delta)  # every rank adapts the same p
            delta[2] /= world
        self.stats += delta
        if self.stats[2] >= self.interval:
            rt = float(self.stats[0] / self.stats[1].clamp_min(1.0))
            step = batch * world * self.interval / (self.kimg * 1000.0)
            self.p.copy_((self.p + (1.0 if rt > self.target else -1.0) * step).clamp(0.0, 1.0 - 1e-6))
            self.stats.zero_()
