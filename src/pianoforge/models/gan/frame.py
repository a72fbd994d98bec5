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

``model.head``: ``"direct"`` (above: a conv k=3 from ``C`` to H bins, tanh), ``"harmonic"``
(:class:`HarmonicHead`: the features drive nonnegative activations of a bank of spectral templates, one or
more per piano key with harmonic partials plus a few free ones, summed in linear magnitude and mapped to
the image with the dataset's own log + per-bin normalization), or ``"notes"`` (:class:`NoteHead`, preset
``notegan``: the features strike piano notes measured from the data's soundfont, summed the same way).
These heads need the data: the trainer calls :meth:`FrameGenerator.init_from_data` on a fresh generator;
a checkpoint restores it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from pianoforge.audio.spectral import GAN_CLIP_STD, log_magnitude
from pianoforge.models.gan.config import GanModelConfig
from pianoforge.models.gan.stylegan import minibatch_stddev


class FrameGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, 1, H, W) in (-1, 1)."""

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg, self.size = cfg, (int(size[0]), int(size[1]))
        self.latent_dim, self.latent = cfg.latent_dim, cfg.latent
        n, (_, w0) = cfg.layout(size)  # framegan: only the time axis halves, n times down to w0
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
        self.head: HarmonicHead | NoteHead | None = None
        if cfg.head == "harmonic":
            self.head = HarmonicHead(c, self.size[0], cfg.templates_per_key, cfg.free_templates, cfg.voices)
        elif cfg.head == "notes":
            self.head = NoteHead(c, self.size[0], cfg.note_frames, cfg.note_rank, len(cfg.note_holds) or 1,
                                 cfg.note_max_strikes, cfg.note_max_level)
        else:
            self.out = nn.Conv1d(c, self.size[0], 3, padding=1, padding_mode="replicate")

    def init_from_data(self, mean: np.ndarray, std: np.ndarray, row_hz: np.ndarray, log_eps: float,
                       notes: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Harmonic and note heads only (no-op otherwise): set the head's fixed normalization and its
        initial templates.

        ``mean``/``std`` (H,): the per-bin dataset moments of the natural-log magnitude for the image rows;
        ``row_hz`` (H,): the centre frequency of each image row in Hz; ``log_eps``: the store's log floor;
        ``notes`` (note head): the measured dictionary as spectra (N, R, H) and envelopes (N, R, K)
        (:func:`pianoforge.audio.notes.factorize_notes`, rows mapped to the image rows).
        """
        if isinstance(self.head, NoteHead):
            if notes is None:
                raise ValueError("the note head needs the note dictionary (notes=(spectra, envelopes))")
            self.head.init_from_data(mean, std, log_eps, *notes)
        elif self.head is not None:
            self.head.init_from_data(mean, std, row_hz, log_eps)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> the trunk's features (B, C, W)."""
        x = torch.relu(self.dense_norm(self.dense(z).view(z.shape[0], *self.base)))
        return self.net(x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.features(z)
        if self.head is not None:
            return self.head(x)
        return torch.tanh(self.out(x)).unsqueeze(1)

    def forward_with_roll(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Note head only: z -> (image (B, 1, H, W), per-key strike levels (B, 88, W))."""
        if not isinstance(self.head, NoteHead):
            raise ValueError("only the note head plays a score")
        head = self.head
        levels = head.levels(head.onsets(self.features(z)))
        image = head.to_image(head.magnitude(levels, levels) + head.floor()[:, None])
        return image, head.roll(levels)


N_KEYS = 88
"""Piano keys A0 (MIDI 21, 27.5 Hz) .. C8 (MIDI 108, 4186 Hz)."""
INHARMONICITY = 4e-4
"""Stretch of the initial partials: ``f_h = h f0 sqrt(1 + B h^2)`` (a mid-range piano string; learned after)."""
LOG_SCALE = 50.0
"""Harmonic head: log-domain parameters are stored / LOG_SCALE (a per-parameter learning-rate multiplier)."""


class _MagnitudeToImage(nn.Module):
    """Base of the harmonic and note heads: a linear magnitude (B, H, W) -> image (B, 1, H, W) in [-1, 1]
    by ``Normalizer.to_unit(log(m + eps))``, with the training moments held as buffers ``mean``, ``std``
    (H,) and ``eps`` (exported with the weights, set by :meth:`set_moments`)."""

    def __init__(self, height: int) -> None:
        super().__init__()
        self.height = int(height)
        self.register_buffer("mean", torch.zeros(self.height))
        self.register_buffer("std", torch.ones(self.height))
        self.register_buffer("eps", torch.tensor(1e-5))

    @torch.no_grad()
    def set_moments(self, mean: np.ndarray, std: np.ndarray, log_eps: float) -> None:
        self.mean.copy_(torch.as_tensor(mean)), self.std.copy_(torch.as_tensor(std))
        self.eps.fill_(float(log_eps))

    def to_image(self, mag: torch.Tensor) -> torch.Tensor:
        z = (log_magnitude(mag, self.eps) - self.mean[:, None]) / self.std[:, None]
        return (z.clamp(-GAN_CLIP_STD, GAN_CLIP_STD) / GAN_CLIP_STD).unsqueeze(1)


class HarmonicHead(_MagnitudeToImage):
    """Features (B, C, W) -> image (B, 1, H, W) in [-1, 1] through nonnegative spectral templates.

    - activations ``a = sum_v softplus(l_v0) * softmax_k(l_vk)``: a conv1x1 gives ``voices`` x (K + 1)
      logits per frame; per voice one for its loudness and K for which templates sound, K = 88 *
      ``per_key`` + ``n_free``. The softmax makes the templates compete, so a voice holds about one note
      rather than a comb of all 88 (with independent activations every key rose and fell together:
      broadband bursts), and ``voices`` sets how many notes a frame can hold; the template logits' weights
      start 8x the default init, so from the first step each voice already picks a few keys;
    - templates ``T = exp(log_t)``: (K, H), linear magnitude, peak 1 at initialization. Key k's j-th
      template starts as partials at ``h f0_k sqrt(1 + B h^2)`` with amplitudes ``h^-(1 + j)`` (brighter
      first: attack and ring), each a Gaussian of 0.7 row; free templates start flat at 0.1 %;
    - magnitude ``m = exp(log_gain) * a^T T + exp(log_floor)``: (B, H, W), in the store's |STFT| units;
    - image ``clamp((log(m + eps) - mean) / (3 std), -1, 1)``: exactly the dataset's map from magnitude
      to image (``Normalizer.to_unit``), with the training statistics held as buffers.

    So the generator can only say which templates sound when and how loud; the sum is in the magnitude
    domain, where notes add, and every harmonic stack is a single channel. Everything but the
    normalization buffers is learned. ``log_t``, ``log_gain`` and ``log_floor`` are stored divided by
    :data:`LOG_SCALE` (use :meth:`templates`, :meth:`gain`, :meth:`floor`).
    """

    def __init__(self, channels: int, height: int, per_key: int, n_free: int, voices: int = 1) -> None:
        super().__init__(height)
        self.k = N_KEYS * int(per_key) + int(n_free)
        self.per_key, self.n_free, self.voices = int(per_key), int(n_free), int(voices)
        self.act = nn.Conv1d(channels, self.voices * (self.k + 1), 1)
        with torch.no_grad():
            w = self.act.weight.view(self.voices, self.k + 1, channels, 1)
            w[:, 1:] *= 8.0  # template logits with a std of a few units: a few keys win per frame
            self.act.bias.zero_()
            self.act.bias.view(self.voices, self.k + 1)[:, 0] = 0.55 - math.log(self.voices)  # sum ~ 1
        # log-domain parameters are stored divided by LOG_SCALE: Adam moves a parameter by about lr per
        # step whatever its scale, and 2e-4 nepers per step would leave templates, gain and floor where
        # they started (an earlier version did)
        self.log_t = nn.Parameter(torch.zeros(self.k, self.height))
        self.log_gain = nn.Parameter(torch.zeros(()))
        self.log_floor = nn.Parameter(torch.full((self.height,), -5.0 / LOG_SCALE))

    @torch.no_grad()
    def init_from_data(self, mean: np.ndarray, std: np.ndarray, row_hz: np.ndarray, log_eps: float) -> None:
        mean, std, row_hz = (np.asarray(a, dtype=np.float64) for a in (mean, std, row_hz))
        if not mean.shape == std.shape == row_hz.shape == (self.height,):
            raise ValueError(f"harmonic head: mean, std and row_hz must have shape ({self.height},)")
        self.set_moments(mean, std, log_eps)
        step = float(row_hz[1] - row_hz[0]) if self.height > 1 else 1.0
        t = np.full((self.k, self.height), 1e-3)
        for key in range(N_KEYS):
            f0 = 440.0 * 2.0 ** ((key + 21 - 69) / 12)
            h = np.arange(1, 64)
            f = h * f0 * np.sqrt(1.0 + INHARMONICITY * h**2)
            keep = f < row_hz[-1] + step
            for j in range(self.per_key):
                amp = h[keep] ** -(1.0 + j)
                d = (row_hz[None, :] - f[keep, None]) / (0.7 * step)
                spec = (amp[:, None] * np.exp(-0.5 * d**2)).sum(0)
                if spec.max() > 0:
                    t[key * self.per_key + j] = np.maximum(spec / spec.max(), 1e-6)
        self.log_t.copy_(torch.as_tensor(np.log(t) / LOG_SCALE))
        # one active template at a = 1 reaches the loudest bins' mean + 1.5 std; the floor sits half a std
        # below each bin's mean (most of a real clip's bins are background near the mean)
        self.log_gain.fill_(float(np.max(mean + 1.5 * std)) / LOG_SCALE)
        self.log_floor.copy_(torch.as_tensor((mean - 0.5 * std) / LOG_SCALE))

    def templates(self) -> torch.Tensor:
        """(K, H) linear-magnitude templates."""
        return torch.exp(LOG_SCALE * self.log_t)

    def gain(self) -> torch.Tensor:
        """() linear gain applied to the template sum."""
        return torch.exp(LOG_SCALE * self.log_gain)

    def floor(self) -> torch.Tensor:
        """(H,) linear-magnitude floor added to every frame."""
        return torch.exp(LOG_SCALE * self.log_floor)

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, C, W) -> nonnegative template activations (B, K, W): per voice, the softplus
        loudness times a softmax over the templates; voices add."""
        b, _, w = x.shape
        logits = self.act(x).view(b, self.voices, self.k + 1, w)
        return (F.softplus(logits[:, :, :1]) * torch.softmax(logits[:, :, 1:], dim=2)).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag = torch.einsum("bkw,kh->bhw", self.activations(x), self.templates()) * self.gain()
        return self.to_image(mag + self.floor()[:, None])


class NoteHead(_MagnitudeToImage):
    """Features (B, C, W) -> image (B, 1, H, W) in [-1, 1] by striking measured piano notes.

    - notes: N = 88 x ``holds`` (note index ``j * 88 + key`` for the j-th hold length of ``note_holds``);
    - onsets: a conv1x1 gives each note a "key down" level ``q = relu(p)`` (B, N, W) and the note is struck
      where the level rises, ``a_t = relu(q_t - q_{t-1})`` (``q_{-1} = 0``), kept only where it is the
      maximum of its note within +-2 frames and, with ``max_strikes`` > 0, among the ``max_strikes``
      strongest strikes of its frame (a chord, not the keyboard). Striking on rises rather than on the level itself matters: a
      level held over a stretch of frames (the trunk upsamples by repetition) fired a strike every few
      frames (a buzz) and a whole chord at once; the first runs were made of such blocks. The backward pass
      also leaks ``LEAK`` of the gradient to ``p`` everywhere, so a note never struck still learns
      whether it should be;
    - note ``D_n = sum_r spectra[n, r] (H) x envelopes[n, r] (K)``: the key struck at t = 0, held for its
      hold length and released, K = ``note_frames`` frames, rendered by FluidSynth with the data's
      soundfont and factorized to rank R (:mod:`pianoforge.audio.notes`); a fixed buffer, exported;
    - magnitude ``m[:, t] = sum_n sum_tau s_n[t - tau] D_n[:, tau] + floor`` with ``s = gain_n a`` (or,
      with ``max_level`` L > 0, ``L tanh(gain_n a / L)``): linear |STFT| in the store's units; notes add in
      magnitude (as in NMF), ``gain`` (N,) and ``floor`` (H,) are learned;
    - image ``clamp((log(m + eps) - mean) / (3 std), -1, 1)``: the dataset's own map, as HarmonicHead.

    So every sound the generator makes is a piano note the soundfont would play; what it learns is the
    score: which keys, when, how loud. ``log_gain`` and ``log_floor`` are stored divided by :data:`LOG_SCALE`.
    """

    LEAK = 0.25
    ONSET_POOL = 5

    def __init__(self, channels: int, height: int, frames: int, rank: int, holds: int = 1,
                 max_strikes: int = 0, max_level: float = 0.0) -> None:
        super().__init__(height)
        self.frames, self.rank = int(frames), int(rank)
        self.max_strikes, self.max_level = int(max_strikes), float(max_level)
        self.n = N_KEYS * int(holds)
        self.act = nn.Conv1d(channels, self.n, 1)
        with torch.no_grad():
            self.act.weight.mul_(2.0)
            self.act.bias.fill_(-2.0)  # about 1 % of (key, frame) pre-activations start positive
        self.register_buffer("spectra", torch.zeros(self.n, self.rank, self.height))
        self.register_buffer("envelopes", torch.zeros(self.n, self.rank, self.frames))
        self.log_gain = nn.Parameter(torch.zeros(self.n))
        self.log_floor = nn.Parameter(torch.full((self.height,), -5.0 / LOG_SCALE))

    @torch.no_grad()
    def init_from_data(self, mean: np.ndarray, std: np.ndarray, log_eps: float, spectra: np.ndarray,
                       envelopes: np.ndarray) -> None:
        mean, std = (np.asarray(a, dtype=np.float64) for a in (mean, std))
        if not mean.shape == std.shape == (self.height,):
            raise ValueError(f"note head: mean and std must have shape ({self.height},)")
        if spectra.shape != (self.n, self.rank, self.height) or envelopes.shape != (self.n, self.rank, self.frames):
            raise ValueError(f"note head: spectra must be ({self.n}, {self.rank}, {self.height}) and envelopes "
                             f"({self.n}, {self.rank}, {self.frames}), got {spectra.shape} and {envelopes.shape}")
        self.set_moments(mean, std, log_eps)
        self.spectra.copy_(torch.as_tensor(spectra)), self.envelopes.copy_(torch.as_tensor(envelopes))
        self.log_gain.zero_()  # onsets of about 1 are notes at the dictionary's velocity
        self.log_floor.copy_(torch.as_tensor((mean - 1.0 * std) / LOG_SCALE))  # below most bins' mean

    def floor(self) -> torch.Tensor:
        """(H,) linear-magnitude floor added to every frame."""
        return torch.exp(LOG_SCALE * self.log_floor)

    def onsets(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, C, W) -> strike strengths (B, N, W), >= 0, at most one per note in 5 frames (and
        ``max_strikes`` per frame)."""
        p = self.act(x)
        q = torch.relu(p)
        a = torch.relu(q - F.pad(q, (1, 0))[..., :-1])
        keep = a >= F.max_pool1d(a, self.ONSET_POOL, 1, self.ONSET_POOL // 2)
        if 0 < self.max_strikes < self.n:
            top = torch.topk(a * keep, self.max_strikes, dim=1).indices  # (B, max_strikes, W)
            keep = keep & torch.zeros_like(keep).scatter_(1, top, True)
        keep = keep.to(a.dtype)
        return a * keep + self.LEAK * (p - p.detach())  # forward: a * keep; backward: also LEAK * dp

    def levels(self, onsets: torch.Tensor) -> torch.Tensor:
        """Strikes (B, N, W) -> their levels (B, N, W) in dictionary-note units (gain, soft cap)."""
        a = onsets * torch.exp(LOG_SCALE * self.log_gain)[:, None]
        if self.max_level > 0:  # soft cap: no strike louder than max_level dictionary notes
            a = self.max_level * torch.tanh(a / self.max_level)
        return a

    def roll(self, levels: torch.Tensor) -> torch.Tensor:
        """Levels (B, N, W) -> per-key strike levels (B, 88, W), summed over the hold lengths."""
        b, n, w = levels.shape
        return levels.view(b, n // N_KEYS, N_KEYS, w).sum(1)

    def magnitude(self, onsets: torch.Tensor, levels: torch.Tensor | None = None) -> torch.Tensor:
        """Strikes (B, N, W) -> linear magnitude (B, H, W), without the floor."""
        b, _, w = onsets.shape
        a = self.levels(onsets) if levels is None else levels
        a = a.repeat_interleave(self.rank, dim=1)  # (B, N R, W)
        kernel = self.envelopes.flip(-1).reshape(self.n * self.rank, 1, self.frames)
        rings = F.conv1d(F.pad(a, (self.frames - 1, 0)), kernel, groups=self.n * self.rank)  # causal
        return torch.einsum("bkrw,krh->bhw", rings.view(b, self.n, self.rank, w), self.spectra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.magnitude(self.onsets(x)) + self.floor()[:, None])


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
