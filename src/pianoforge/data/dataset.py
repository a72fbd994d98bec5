"""Torch datasets over a :class:`~pianoforge.data.store.FeatureStore` (memory-mapped, so workers share
pages and memory does not grow with corpus size).

:class:`PerformExamples` item (dict of float32 tensors), T = example frames:
    ``score`` (T, channels) frame encoding in [0, 1];
    ``spec``  (T, bins) natural-log magnitude (not normalized; normalize with ``store.normalizer``);
    ``audio`` (T * hop,) waveform in [-1, 1].
Past a piece's end, examples are padded with silence (score 0, audio 0, spec log(eps)).

:class:`pianoforge.data.gan_images.GanImages` gives the GAN images (PianoGAN normalization, exact inverse).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from pianoforge.data.store import FeatureStore


class PerformExamples(Dataset):
    def __init__(self, store: FeatureStore, split: str, example_frames: int | None = None,
                 stride_frames: int | None = None) -> None:
        self.store = store
        self.split = split
        p = store.preset
        self.t = example_frames or p.data.example_frames(p.audio)
        stride = stride_frames or (p.data.stride_frames(p.audio) if split == "train" else self.t)
        self.pieces = store.pieces(split)
        self.index = store.examples(split, self.t, stride)
        self.hop = p.audio.hop_length
        self.floor = math.log(p.audio.log_eps)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        pi, start = (int(v) for v in self.index[i])
        arr = self.store.arrays(self.pieces[pi]["piece_id"])
        t, hop = self.t, self.hop
        score = _window(arr.score, start, t, 0.0)
        spec = _window(arr.spec, start, t, self.floor)
        audio = _window(arr.audio, start * hop, t * hop, 0.0)
        return {"score": torch.from_numpy(score), "spec": torch.from_numpy(spec), "audio": torch.from_numpy(audio)}


def _window(a: np.ndarray, start: int, length: int, fill: float) -> np.ndarray:
    """a[start:start+length] as float32, padded with ``fill`` past the end."""
    out = np.asarray(a[start:start + length], dtype=np.float32)
    if out.shape[0] < length:
        pad = np.full((length - out.shape[0], *a.shape[1:]), fill, dtype=np.float32)
        out = np.concatenate([out, pad], axis=0)
    return out


def resize_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., H, W) -> (..., h, w) bilinear (align_corners=True, so corner values are kept).

    The documented inverse is the same call with the original size; it is exact for signals that are
    linear along each axis and otherwise a smooth interpolation (the GAN geometries resize by < 2x).
    """
    lead = x.shape[:-2]
    y = torch.nn.functional.interpolate(x.reshape(-1, 1, *x.shape[-2:]), size=size, mode="bilinear",
                                        align_corners=True)
    return y.reshape(*lead, *size)
