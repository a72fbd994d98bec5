"""GAN images from stored log-magnitude spectrograms, and their documented inverse.

Forward (:func:`logmag_to_image`), (..., bins, frames) natural-log magnitude -> (..., H, W) in [-1, 1]:

1. ``Normalizer.to_unit``: per-bin dataset z-score (train-split moments), clipped at +-3 std, divided by 3;
2. frequency: when ``H == bins - 1`` the Nyquist bin (the top one) is dropped -- every GAN geometry has
   ``2**k + 1`` bins and an image side of ``2**k``, and a 1-bin bilinear resize smears each harmonic
   peak over its neighbours (measured: 1.5 dB mean round-trip error on piano at the ``gan-cpu``
   geometry, against 0 for the dropped-bin rule); any other height is a bilinear resize;
3. time: a bilinear resize (:func:`pianoforge.data.dataset.resize_image`) when ``W != frames``.

Inverse (:func:`image_to_logmag`): clamp to [-1, 1]; the same bilinear resize back to ``frames`` (and
``bins``); a dropped Nyquist bin comes back at 0, i.e. its training mean; ``Normalizer.from_unit``. It is
exact wherever nothing was clipped at 3 std and no bilinear resize happened -- for ``gan-cpu``
(129 x 256 -> 128 x 256) everywhere but the Nyquist bin; for the paper geometries the time axis
(430 -> 256, 781 -> 512 frames) is a smooth interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from pianoforge.audio.spectral import Normalizer
from pianoforge.data.dataset import _window, resize_image
from pianoforge.data.store import FeatureStore
from pianoforge.midi.encoding import ONSET, VELOCITY


def drops_nyquist(size: tuple[int, int], grid: tuple[int, int]) -> bool:
    """Whether images of ``size = (H, W)`` drop the top bin of a ``grid = (bins, frames)`` spectrogram."""
    return int(size[0]) == int(grid[0]) - 1


def logmag_to_image(logmag: torch.Tensor, normalizer: Normalizer, size: tuple[int, int] | None) -> torch.Tensor:
    """(..., bins, frames) natural-log magnitude -> (..., H, W) in [-1, 1]; ``size=None`` keeps the grid."""
    x = normalizer.to_unit(logmag.float())
    if size is None:
        return x
    h, w = int(size[0]), int(size[1])
    if drops_nyquist((h, w), tuple(x.shape[-2:])):
        x = x[..., :-1, :]
    if tuple(x.shape[-2:]) != (h, w):
        x = resize_image(x, (h, w))
    return x


def image_to_logmag(images: torch.Tensor, normalizer: Normalizer, grid: tuple[int, int]) -> torch.Tensor:
    """(..., H, W) images (clamped to [-1, 1]) -> (..., bins, frames) natural-log magnitude."""
    x = images.float().clamp(-1.0, 1.0)
    bins, frames = int(grid[0]), int(grid[1])
    if drops_nyquist(tuple(x.shape[-2:]), (bins, frames)):
        if x.shape[-1] != frames:
            x = resize_image(x, (x.shape[-2], frames))
        x = torch.cat([x, x.new_zeros(*x.shape[:-2], 1, frames)], dim=-2)
    elif tuple(x.shape[-2:]) != (bins, frames):
        x = resize_image(x, (bins, frames))
    return normalizer.from_unit(x)


class GanImages(Dataset):
    """Fixed-length examples of a store as GAN images: item (1, H, W) float32 in [-1, 1].

    Examples as :class:`pianoforge.data.dataset.PerformExamples` index them (the store's example length; the
    store's stride for ``train``, none otherwise; silence past a piece's end), with
    :func:`logmag_to_image` at ``data.resize``.
    """

    def __init__(self, store: FeatureStore, split: str) -> None:
        self.store = store
        p = store.preset
        self.t = p.data.example_frames(p.audio)
        stride = p.data.stride_frames(p.audio) if split == "train" else self.t
        self.pieces = store.pieces(split)
        self.index = store.examples(split, self.t, stride)
        self.floor = math.log(p.audio.log_eps)
        self.grid = (p.audio.n_bins, self.t)
        self.size = (int(p.data.resize[0]), int(p.data.resize[1])) if p.data.resize else self.grid
        self.norm = store.normalizer

    def __len__(self) -> int:
        return len(self.index)

    def logmag(self, i: int) -> torch.Tensor:
        """Example ``i`` as (bins, frames) natural-log magnitude."""
        pi, start = (int(v) for v in self.index[i])
        spec = _window(self.store.arrays(self.pieces[pi]["piece_id"]).spec, start, self.t, self.floor)
        return torch.from_numpy(spec).T

    def audio(self, i: int) -> torch.Tensor:
        """Example ``i``'s stored waveform (frames * hop,) in [-1, 1]."""
        pi, start = (int(v) for v in self.index[i])
        hop = self.store.preset.audio.hop_length
        return torch.from_numpy(_window(self.store.arrays(self.pieces[pi]["piece_id"]).audio, start * hop,
                                        self.t * hop, 0.0))

    def __getitem__(self, i: int) -> torch.Tensor:
        return logmag_to_image(self.logmag(i), self.norm, self.size)[None]

    def score(self, i: int) -> np.ndarray:
        """Example ``i``'s stored score window (frames, channels) (:mod:`pianoforge.midi.encoding` layout)."""
        pi, start = (int(v) for v in self.index[i])
        return _window(self.store.arrays(self.pieces[pi]["piece_id"]).score, start, self.t, 0.0)

    def roll(self, i: int) -> torch.Tensor:
        """Example ``i``'s strikes (88, frames) from the stored score: velocity / 127 at each onset frame
        (1 where the store has no velocity channels), 0 elsewhere."""
        score = self.score(i)
        onset = score[:, ONSET].astype("float32")
        if self.store.preset.score.velocity:
            onset = onset * score[:, VELOCITY].astype("float32")
        return torch.from_numpy(onset).T.contiguous()


class GanImagesWithRolls(Dataset):
    """:class:`GanImages` items paired with their strike rolls: ``(image (1, H, W), roll (88, frames))``."""

    def __init__(self, images: GanImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.images.roll(i)
