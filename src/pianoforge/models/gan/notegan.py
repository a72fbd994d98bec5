"""NoteGAN (ours, the shipped generator): a FrameGAN trunk that strikes piano notes measured from the soundfont.

The harmonic head (models/gan/experimental.py) had to *learn* what a piano note is and did not in a CPU
hour. NoteGAN does not learn it at all: before training (:meth:`NoteGenerator.init_from_data`) FluidSynth
renders every key with the training data's soundfont and renderer at the store's geometry, one dictionary
per hold length, and a rank-R KL-NMF per note (:mod:`pianoforge.audio.notes`) stores the notes as fixed
buffers exported with the weights. The FrameGAN trunk (:class:`~pianoforge.models.gan.frame.FrameTrunk`)
then only writes a score for :class:`NoteHead`: which notes, when, how loud.

Shapes: z (B, latent_dim) -> trunk features (B, C, W) -> strikes (B, N, W), N = 88 x holds -> linear
magnitude (B, H, W) -> image (B, 1, H, W) in [-1, 1]. The image must be the STFT grid (rows = bins, or all
but Nyquist; no time resize): :attr:`NoteGenerator.needs_stft_grid`. Critic: FrameGAN's
(:class:`~pianoforge.models.gan.frame.FrameCritic`). Config: ``model.notes``
(:class:`~pianoforge.models.gan.config.NoteHeadConfig`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pianoforge.models.gan.base import DataContext
from pianoforge.models.gan.config import GanModelConfig, NoteHeadConfig, check_strike_rule
from pianoforge.models.gan.frame import FrameTrunk
from pianoforge.models.gan.magnitude import LOG_SCALE, N_KEYS, MagnitudeToImage


def note_dictionary(context: DataContext, notes: NoteHeadConfig) -> tuple[np.ndarray, np.ndarray]:
    """The measured piano notes of this geometry as (spectra (N, R, H), envelopes (N, R, K)), N = 88 per
    hold length, K = ``notes.frames``, rendered with the preset's soundfont and renderer
    (:mod:`pianoforge.audio.notes`); rows = image rows (the STFT bins, the Nyquist bin cut when the image
    drops it: :meth:`NoteGenerator.check_geometry` has checked the rows are bins)."""
    from pianoforge.audio.notes import factorize_notes, render_note_dictionary  # FluidSynth: training only

    mags = [render_note_dictionary(context.audio, context.render, notes.frames, notes.velocity, hold)
            for hold in (notes.holds or (notes.frames,))]
    return factorize_notes(np.concatenate(mags)[:, : int(context.size[0])], notes.rank)


class NoteGenerator(FrameTrunk):
    """z (B, latent_dim) -> image (B, 1, H, W) in [-1, 1]: the FrameGAN trunk, then :class:`NoteHead`."""

    needs_stft_grid = True

    def __init__(self, cfg: GanModelConfig, size: tuple[int, int]) -> None:
        super().__init__(cfg, size)
        n = cfg.notes or NoteHeadConfig()
        self.head = NoteHead(cfg.channels, self.size[0], n.frames, n.rank, len(n.holds) or 1, n.max_strikes,
                             n.max_level, n.min_level, n.hard_gate, n.velocity_head)

    def init_from_data(self, context: DataContext) -> None:
        """Render and factorize the note dictionary and set the head's normalization (a fresh generator)."""
        spectra, envelopes = note_dictionary(context, self.cfg.notes or NoteHeadConfig())
        self.head.init_from_data(context.mean, context.std, context.log_eps, spectra, envelopes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(z))

    def head_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def head_context(self) -> tuple[int, int]:
        """A note rings ``frames`` frames after its strike (causal), a strike looks one frame back (the rise)
        and ``ONSET_POOL // 2`` frames either side (one strike per note in the pool)."""
        pool = NoteHead.ONSET_POOL // 2
        return (self.head.frames - 1 + 1 + pool, pool)

    def set_strike_rule(self, threshold: float, floor: float) -> None:
        """How the head plays at inference (:meth:`NoteHead.set_strike_rule`); (0, 0): as trained."""
        self.head.set_strike_rule(threshold, floor)

    def forward_with_roll(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (image (B, 1, H, W), per-key strike levels (B, 88, W)): the score it plays, for the note
        critic (models/gan/note_critic.py)."""
        head = self.head
        levels = head.strike_levels(self.features(z))
        image = head.to_image(head.magnitude(levels, levels) + head.floor()[:, None])
        return image, head.roll(levels)


class NoteHead(MagnitudeToImage):
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
      with ``max_level`` L > 0, ``L tanh(gain_n a / L)``; with ``min_level`` M > 0, times
      ``sigmoid(4 (s - M) / M)``, so that soft strikes play almost nothing; with ``hard_gate``, a strike under M
      plays nothing and one at M or above plays s, the backward pass being the soft gate's; with
      ``velocity_head``, a strike fires where s >= M, as the hard gate, but plays at ``M + (L - M) sigmoid(v)``,
      ``v`` a second conv1x1 of the features: how loud is decided apart from whether): linear |STFT| in the
      store's units; notes add in
      magnitude (as in NMF), ``gain`` (N,) and ``floor`` (H,) are learned;
    - the strike rule (:meth:`set_strike_rule`, inference only, never trained with): with a threshold T > 0, a
      strike plays where ``gain_n a >= T`` (capped by ``max_level``), at ``max(level, F)`` with the floor F, in
      place of the soft or hard gate (with the velocity head: fires at T instead of M, plays at
      ``max(M + (L - M) sig(v), F)``). The gate teaches the trunk to write strikes it then mutes; real scores
      have no strike under 0.5 dictionary notes (velocity 40), and the rule plays those strikes as a pianist
      would (docs/improvise.md, "The strike rule");
    - image ``clamp((log(m + eps) - mean) / (3 std), -1, 1)``: the dataset's own map, as HarmonicHead.

    So every sound the generator makes is a piano note the soundfont would play; what it learns is the
    score: which keys, when, how loud. ``log_gain`` and ``log_floor`` are stored divided by :data:`LOG_SCALE`.
    """

    LEAK = 0.25
    ONSET_POOL = 5
    VELOCITY_START = 1.1
    """The velocity head's first level (dictionary notes; the real scores' median strike is 1.12)."""

    def __init__(self, channels: int, height: int, frames: int, rank: int, holds: int = 1,
                 max_strikes: int = 0, max_level: float = 0.0, min_level: float = 0.0, hard_gate: bool = False,
                 velocity_head: bool = False) -> None:
        super().__init__(height)
        self.frames, self.rank = int(frames), int(rank)
        self.max_strikes, self.max_level, self.min_level = int(max_strikes), float(max_level), float(min_level)
        self.hard_gate = bool(hard_gate)
        self.strike_threshold, self.strike_floor = 0.0, 0.0
        if velocity_head and not 0 < self.min_level < self.max_level:
            raise ValueError("note head: velocity_head needs 0 < min_level < max_level")
        self.n = N_KEYS * int(holds)
        self.act = nn.Conv1d(channels, self.n, 1)
        with torch.no_grad():
            self.act.weight.mul_(2.0)
            self.act.bias.fill_(-2.0)  # about 1 % of (key, frame) pre-activations start positive
        self.vel: nn.Conv1d | None = None
        if velocity_head:  # each note's strike level, from min_level to max_level; starts near the real median
            self.vel = nn.Conv1d(channels, self.n, 1)
            with torch.no_grad():
                self.vel.weight.mul_(0.1)
                start = (self.VELOCITY_START - self.min_level) / (self.max_level - self.min_level)
                self.vel.bias.fill_(math.log(start / (1 - start)) if 0 < start < 1 else 0.0)
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

    def set_strike_rule(self, threshold: float, floor: float) -> None:
        """Play a strike where its level (gain x strike, capped) is at least ``threshold`` dictionary notes, at
        ``floor`` or louder, instead of gating it; ``threshold`` 0: the trained gate (``floor`` must be 0 then).
        A setting of inference (:class:`~pianoforge.models.gan.config.GanInferenceConfig`), not a weight."""
        check_strike_rule(threshold, floor)
        self.strike_threshold, self.strike_floor = float(threshold), float(floor)

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

    def strike_levels(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, C, W) -> the levels (B, N, W) of the notes struck, in dictionary-note units."""
        return self.levels(self.onsets(x), self.vel(x) if self.vel is not None else None)

    def levels(self, onsets: torch.Tensor, velocity: torch.Tensor | None = None) -> torch.Tensor:
        """Strikes (B, N, W) -> their levels (B, N, W) in dictionary-note units (gain, soft cap, gate or strike
        rule); with the velocity head, ``velocity`` (B, N, W) is its pre-activation ``v``."""
        a = onsets * torch.exp(LOG_SCALE * self.log_gain)[:, None]
        loud = None  # the velocity head's level of each strike, M + (L - M) sig(v)
        if self.vel is not None:
            if velocity is None:
                raise ValueError("note head: the velocity head needs the velocity pre-activation")
            loud = self.min_level + (self.max_level - self.min_level) * torch.sigmoid(velocity)
        elif self.max_level > 0:  # soft cap: no strike louder than max_level dictionary notes
            a = self.max_level * torch.tanh(a / self.max_level)
        if self.strike_threshold > 0:  # the strike rule (inference): fire from T, play at F or louder
            fire = (a >= self.strike_threshold).to(a.dtype)
            return fire * (a if loud is None else loud).clamp(min=self.strike_floor)
        if loud is not None:  # fire where a >= M (backward: the soft gate's sigmoid); play at the head's level
            m = self.min_level
            soft = torch.sigmoid(4.0 * (a - m) / m)
            return (soft + ((a >= m).to(a.dtype) - soft).detach()) * loud
        if self.min_level > 0:  # soft gate: a x sigmoid(4 (a - L) / L); 0.12 a at a = L / 2, 0.98 a at 2 L
            soft = a * torch.sigmoid(4.0 * (a - self.min_level) / self.min_level)
            # hard gate: forward a where a >= L, else 0 (no soft strike sounds at all); backward: the soft gate's
            a = soft + (a * (a >= self.min_level) - soft).detach() if self.hard_gate else soft
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
        levels = self.strike_levels(x)
        return self.to_image(self.magnitude(levels, levels) + self.floor()[:, None])
