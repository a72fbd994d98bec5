"""GAN images -> audio: the inverse chain shared by generation (``improvise``) and the training samples.

(n, 1, H, W) images in [-1, 1] -> :func:`pianoforge.data.gan_images.image_to_logmag` (the Nyquist bin
back at its training mean, a resized time axis resized back, ``Normalizer.from_unit`` with the TRAINING
statistics) -> (n, bins, frames) natural-log magnitude -> ``exp(.) - eps`` -> phase reconstruction ->
(frames * hop,) float32 audio per clip. Here (the phase layer) so that training need not import inference.
"""

from __future__ import annotations

import numpy as np
import torch

from pianoforge.audio.spectral import Normalizer, inverse_log_magnitude
from pianoforge.config import GAN_PHASES, AudioConfig
from pianoforge.data.gan_images import image_to_logmag


def logmag_to_audio(logmag: torch.Tensor, audio: AudioConfig, phase: str = "griffinlim", iterations: int = 32,
                    seed: int = 0) -> np.ndarray:
    """(bins, frames) natural-log magnitude -> (frames * hop,) float32 audio."""
    from pianoforge import phase as ph

    if phase not in GAN_PHASES:
        raise ValueError(f"unknown phase method {phase!r} (one of {', '.join(GAN_PHASES)})")
    mag = inverse_log_magnitude(logmag.float(), audio.log_eps).contiguous()
    kwargs = {"seed": int(seed)} if phase in ("griffinlim", "pghi+gl") else {}
    return ph.reconstruct(mag, audio, phase, iterations, **kwargs).numpy().astype(np.float32)


def images_to_audio(images: torch.Tensor, normalizer: Normalizer, grid: tuple[int, int], audio: AudioConfig,
                    phase: str, iterations: int, seeds: list[int]) -> tuple[list[np.ndarray], torch.Tensor]:
    """(n, 1, H, W) images -> (n clips of (frames * hop,) float32, logmag (n, bins, frames)); clip i's
    Griffin-Lim starts from ``seeds[i]``."""
    logmag = image_to_logmag(images[:, 0], normalizer, grid)
    return [logmag_to_audio(logmag[i], audio, phase, iterations, seed=seeds[i]) for i in range(len(images))], logmag
