"""Inference: what the perform renderer's modules share -- the shipped checkpoint, the phase methods a render
may ask for, and :class:`RenderResult`."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from pianoforge.checkpoint import CheckpointError
from pianoforge.config import INFERENCE_PHASES

DEFAULT_CHECKPOINT = "perform-default.safetensors"
PHASES = INFERENCE_PHASES


def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of a checkpoint shipped inside the package (``pianoforge/weights/``)."""
    p = Path(str(resources.files("pianoforge") / "weights" / name))
    if not p.is_file():
        raise CheckpointError(p, "no shipped checkpoint of that name; pass --checkpoint PATH")
    return p


@dataclass
class RenderResult:
    audio: np.ndarray  # (samples,) float32 at ``sample_rate``
    sample_rate: int
    seconds: float  # audio duration
    wall_s: float  # wall time of the whole render (encode, network, phase)
    logmag: np.ndarray  # (frames, bins) predicted natural-log magnitude

    @property
    def realtime_factor(self) -> float:
        return self.seconds / max(self.wall_s, 1e-9)

