"""Improvise: long clips (``generate --seconds``, :meth:`GanGenerator.long_audio`; generators that tile in time: the
FrameGAN trunk, i.e. framegan and the shipped notegan).

A clip of M windows draws M latents from its seed's
random stream (the first is the seed's own latent, so a long clip begins as the window-long clip of its seed
does), joins their base grids in time (neighbours crossfaded over half a grid, so a new window starts
every 2.048 s for the shipped generator) and runs the rest of the generator over the whole sequence
(:meth:`~pianoforge.models.gan.frame.FrameTrunk.sample_tiled`): notes struck before a join ring on after it
and the convolutions blend the two grids. It is computed a few windows at a time with enough windows of
context on each side that every frame is the whole sequence's (:meth:`GanGenerator.long_images`), and the
magnitudes stream through :class:`~pianoforge.phase.stream.PhaseStream` (one phase reconstruction over the
whole clip, no joins in it either) into the streaming WAV writer: memory does not grow with the length.

:class:`LongClips` holds these methods; :class:`~pianoforge.improvise.generator.GanGenerator` inherits them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge.audio.spectral import Normalizer, inverse_log_magnitude
from pianoforge.config import Preset
from pianoforge.data.gan_images import image_to_logmag
from pianoforge.errors import ConfigError
from pianoforge.models.gan import sample_latent
from pianoforge.names import GAN_MAX_SECONDS

LONG_BLOCK_TILES = 8
"""Windows of a long clip generated together (plus the context windows on each side)."""
PREVIEW_FRAMES = 4096
"""A long clip's spectrogram PNG shows at most this many frames (every k-th frame beyond)."""


class LongClips:
    """The long-clip methods of :class:`~pianoforge.improvise.generator.GanGenerator` (tiled in time), which
    sets the attributes below."""

    model: nn.Module
    preset: Preset
    normalizer: Normalizer
    grid: tuple[int, int]
    phase: str
    iterations: int
    seconds: float

    @property
    def window_samples(self) -> int:
        """Samples of one window-long clip (``frames * hop``)."""
        return self.grid[1] * self.preset.audio.hop_length

    @property
    def tiles_in_time(self) -> bool:
        """Whether this generator makes clips longer than its window (:meth:`long_audio`)."""
        return bool(getattr(self.model, "tiles_in_time", False))

    def clip_samples(self, seconds: float) -> int:
        """Samples of a ``seconds``-long clip, checked: a ConfigError (one line) when it is not finite, shorter
        than one frame, longer than :data:`GAN_MAX_SECONDS`, or longer than the window for a generator that
        cannot tile in time."""
        a = self.preset.audio
        if not np.isfinite(seconds) or seconds <= 0:
            raise ConfigError(None, f"clip length must be a finite number of seconds > 0, got {seconds}")
        if seconds > GAN_MAX_SECONDS:
            raise ConfigError(None, f"clip length {seconds:g} s is above the limit of {GAN_MAX_SECONDS:g} s")
        n = int(round(float(seconds) * a.sample_rate))
        if n < a.hop_length:
            raise ConfigError(None, f"clip length {seconds:g} s is shorter than one frame "
                                    f"({a.hop_length / a.sample_rate:g} s)")
        if n > self.window_samples and not self.tiles_in_time:
            raise ConfigError(None, f"arch {self.model.cfg.arch} cannot generate clips longer than its window "
                                    f"({self.seconds:g} s), asked for {seconds:g} s")
        return n

    def tile_latents(self, seed: int, m: int) -> torch.Tensor:
        """(m, latent_dim): the latents of a long clip's m windows, drawn one after another from the seed's
        random stream; the first is :meth:`latent` (seed), and window j's latent does not depend on m."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.cat([sample_latent(1, self.model.latent_dim, self.model.latent, generator=g) for _ in range(m)])

    def windows_for(self, frames: int) -> int:
        """Windows (latents) of a long clip of ``frames`` frames: the fewest whose
        :meth:`~pianoforge.models.gan.frame.FrameTrunk.tiled_frames` reach it."""
        w, s = self.grid[1], self.model.tile_stride()
        return 1 + max(0, -(-(int(frames) - w) // s))

    @torch.inference_mode()
    def long_images(self, seed: int, frames: int, block_tiles: int = LONG_BLOCK_TILES) -> Iterator[torch.Tensor]:
        """The image (H, frames) of a long clip in order, as (H, f) blocks: the frames from window a's start to
        window a + ``block_tiles``'s (the last block cut at ``frames``), each computed from its windows plus
        enough context windows on each side (:meth:`~pianoforge.models.gan.base.GeneratorBase.time_context`,
        and the crossfade a block's first window lacks) that it equals ``sample_tiled`` of the whole clip (to
        float rounding: the convolutions run over other lengths)."""
        if block_tiles < 1:
            raise ValueError(f"block_tiles must be at least 1, got {block_tiles}")
        model = self.model
        m, s = self.windows_for(frames), model.tile_stride()
        fade = model.tile_overlap() * (self.grid[1] // model.base[1])  # output frames of one crossfade
        past, future = model.time_context()
        cp, cf = -(-(past + fade) // s), -(-future // s)
        z = self.tile_latents(seed, m)
        dev = next(model.parameters()).device
        for a in range(0, m, block_tiles):
            b = min(m, a + block_tiles)
            lo, hi = max(0, a - cp), min(m, b + cf)
            img = model.sample_tiled(z[None, lo:hi].to(dev), lo, m).float().cpu().clamp(-1.0, 1.0)[0, 0]
            stop = frames if b == m else b * s
            yield img[:, (a - lo) * s:stop - lo * s]

    def long_audio(self, seed: int, seconds: float, phase: str | None = None, iterations: int | None = None,
                   preview: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """A ``seconds``-long clip as float32 audio blocks (all together ``round(seconds * rate)`` samples), for
        :func:`~pianoforge.audio.stream.write_audio_stream`. The images of :meth:`long_images` go through the
        inverse chain block by block and one streaming phase reconstruction (:class:`PhaseStream`, seeded by
        ``seed``). ``preview``: every :func:`preview_stride`-th frame's (bins,) natural-log magnitude is
        appended to it (for the PNG)."""
        n = self.clip_samples(seconds)
        frames = -(-n // self.preset.audio.hop_length)
        return self.images_audio(self.long_images(seed, frames), n, seed, phase, iterations, preview)

    def images_audio(self, images: Iterable[torch.Tensor], samples: int, seed: int = 0, phase: str | None = None,
                     iterations: int | None = None, preview: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """(H, f) image blocks of one clip, in order -> its float32 audio blocks, ``samples`` in all (the blocks
        must hold ``ceil(samples / hop)`` frames): the inverse chain per block, one streaming phase
        reconstruction over the whole clip (:class:`~pianoforge.phase.stream.PhaseStream`, seeded by
        ``seed``); ``preview`` as in :meth:`long_audio`."""
        from pianoforge.phase.stream import PhaseStream

        a = self.preset.audio
        n = int(samples)
        k = preview_stride(-(-n // a.hop_length))
        stream = PhaseStream(a, phase or self.phase, self.iterations if iterations is None else iterations,
                             seed=int(seed))
        t, left = 0, n

        def emit(blocks: list[torch.Tensor]) -> Iterator[np.ndarray]:
            nonlocal left
            for y in blocks:
                y = y.numpy().astype(np.float32)[:left]
                left -= len(y)
                if len(y):
                    yield y

        for img in images:
            with torch.inference_mode():
                logmag = image_to_logmag(img, self.normalizer, (self.grid[0], img.shape[-1]))  # (bins, f)
                mag = inverse_log_magnitude(logmag, a.log_eps).T.contiguous()  # (f, bins)
            if preview is not None:
                preview.extend(logmag.T[(-t) % k::k].numpy().copy())  # a copy: not views of the block
            t += img.shape[-1]
            yield from emit(stream.push(mag))
        yield from emit(stream.finish())

    def generate_long(self, seed: int, seconds: float, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """One long clip in memory: (audio (round(seconds * rate),) float32, preview (frames / k, bins) natural-
        log magnitude of every :func:`preview_stride`-th frame). For long clips prefer :meth:`long_audio`."""
        preview: list[np.ndarray] = []
        audio = np.concatenate(list(self.long_audio(seed, seconds, preview=preview, **kwargs)))
        return audio, np.stack(preview)


def preview_stride(frames: int) -> int:
    """Every k-th frame of a ``frames``-long clip goes into its PNG: at most :data:`PREVIEW_FRAMES` frames."""
    return max(1, -(-int(frames) // PREVIEW_FRAMES))
