"""Improvise: the GAN generator of a checkpoint (:class:`GanGenerator`), its window-long clips and
interpolations; the long clips are :class:`~pianoforge.improvise.long.LongClips` (:mod:`.long`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge.audio.spectral import Normalizer
from pianoforge.checkpoint import CheckpointError, load_checkpoint
from pianoforge.config import GAN_PHASES, AudioConfig, Preset
from pianoforge.errors import ConfigError
from pianoforge.gan_audio import images_to_audio
from pianoforge.improvise.denoise import reduce_noise
from pianoforge.improvise.long import LongClips
from pianoforge.models.gan import GanModelConfig, build_generator, generate_images, sample_latent
from pianoforge.models.gan.config import GanInferenceConfig, check_strike_rule

DEFAULT_CHECKPOINT = "gan-default.safetensors"
PHASES = GAN_PHASES


# --------------------------------------------------------------------------------------- checkpoints

def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of the GAN generator shipped in ``pianoforge/weights/``; CheckpointError when absent."""
    p = Path(str(resources.files("pianoforge") / "weights" / name))
    if not p.is_file():
        raise CheckpointError(p, "no shipped GAN generator yet; train one with `pianoforge train gan` and pass "
                                 "--checkpoint RUN/best.safetensors")
    return p


@dataclass
class Clips:
    audio: list[np.ndarray]  # each (frames * hop,) float32 at ``sample_rate``
    logmag: np.ndarray  # (n, frames, bins) natural-log magnitude (frames first, as stored and plotted)
    images: torch.Tensor  # (n, 1, H, W) generator output in [-1, 1]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.audio)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Each clip's audio (frames * hop,) float32, in order."""
        return iter(self.audio)


class GanGenerator(LongClips):
    """A trained generator plus everything needed to turn its images into audio."""

    def __init__(self, model: nn.Module, preset: Preset, normalizer: Normalizer, size: tuple[int, int],
                 grid: tuple[int, int], meta: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.preset, self.normalizer = preset, normalizer
        self.size, self.grid = (int(size[0]), int(size[1])), (int(grid[0]), int(grid[1]))
        self.meta = meta or {}
        inf = GanInferenceConfig.from_preset(preset)
        self.phase, self.iterations = inf.phase, inf.iterations
        self.source: Path | None = None  # the checkpoint file, named in errors (from_checkpoint sets it)
        self.strike_threshold, self.strike_floor = 0.0, 0.0
        self.set_strike_rule(inf.strike_threshold, inf.strike_floor)

    def set_strike_rule(self, threshold: float | None = None, floor: float | None = None) -> None:
        """How a NoteGAN plays its strikes (:meth:`~pianoforge.models.gan.notegan.NoteHead.set_strike_rule`):
        from ``threshold`` dictionary notes, at ``floor`` or louder; ``None`` keeps the current value (at first the
        checkpoint's ``inference`` section); threshold 0: the gate it was trained with. ConfigError for a bad
        value, or a rule on a generator without a note head."""
        t = self.strike_threshold if threshold is None else float(threshold)
        f = self.strike_floor if floor is None else float(floor)
        check_strike_rule(t, f, "inference.", self.source)
        setter = getattr(self.model, "set_strike_rule", None)
        if setter is not None:
            setter(t, f)
        elif t > 0:
            raise ConfigError(self.source, "a strike rule (inference.strike_threshold) needs a notegan generator; "
                                           f"this one is {type(self.model).__name__}")
        self.strike_threshold, self.strike_floor = t, f

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None) -> GanGenerator:
        """Rebuild the generator from a ``kind="gan"`` checkpoint (default: the shipped one)."""
        p = Path(path) if path else shipped_checkpoint()
        tensors, meta = load_checkpoint(p, kind="gan")
        cfg = meta["config"]
        try:
            preset = Preset.from_dict(cfg["preset"], str(p))
            mcfg = GanModelConfig.from_dict(cfg["model"])
            GanInferenceConfig.from_preset(preset)
            size, grid = tuple(cfg["image_size"]), tuple(cfg["grid"])
            model = build_generator(mcfg, size)
            model.load_state_dict(tensors)
            norm = Normalizer.from_dict(cfg["normalizer"])
            if len(norm.mean) != grid[0]:
                raise CheckpointError(p, f"normalizer has {len(norm.mean)} bins but the grid has {grid[0]}")
            gen = cls(model, preset, norm, size, grid, cfg)
            gen.source = p
            return gen
        except CheckpointError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError, ConfigError) as e:
            raise CheckpointError(p, f"checkpoint does not match this pianoforge's GAN models ({str(e)[:120]})") from e

    @property
    def audio_config(self) -> AudioConfig:
        return self.preset.audio

    @property
    def sample_rate(self) -> int:
        return self.preset.audio.sample_rate

    @property
    def seconds(self) -> float:
        return self.grid[1] * self.preset.audio.hop_length / self.sample_rate

    def latent(self, seed: int) -> torch.Tensor:
        """The latent (latent_dim,) of a seed."""
        g = torch.Generator().manual_seed(int(seed))
        return sample_latent(1, self.model.latent_dim, self.model.latent, generator=g)[0]

    @torch.inference_mode()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        """z (n, latent_dim) -> (n, 1, H, W) in [-1, 1] (stylegan: the stored 'const' noise)."""
        dev = next(self.model.parameters()).device
        return generate_images(self.model, z.to(dev), noise_mode="const").float().cpu().clamp(-1.0, 1.0)

    @torch.inference_mode()
    def render(self, z: torch.Tensor, phase_seeds: list[int], denoise: bool = False, phase: str | None = None,
               iterations: int | None = None) -> Clips:
        """Latents (n, latent_dim) -> :class:`Clips`; clip i's Griffin-Lim starts from ``phase_seeds[i]``.
        Images are generated one latent at a time, so a clip is bit-identical whatever else is generated."""
        imgs = torch.cat([self.images(z[i:i + 1]) for i in range(len(z))])
        a = self.preset.audio
        method, n_iter = phase or self.phase, self.iterations if iterations is None else iterations
        audio, logmag = images_to_audio(imgs, self.normalizer, self.grid, a, method, n_iter, phase_seeds)
        if denoise:
            audio = [reduce_noise(y, a.sample_rate, a.hop_length) for y in audio]
        return Clips(audio, logmag.transpose(1, 2).numpy(), imgs, a.sample_rate)

    def generate(self, n: int, seed: int = 0, denoise: bool = False, **kwargs: Any) -> list[np.ndarray]:
        """``n`` clips (frames * hop,) float32 from seeds ``seed .. seed + n - 1`` (reproducible)."""
        return self.generate_clips(n, seed, denoise, **kwargs).audio

    def generate_clips(self, n: int, seed: int = 0, denoise: bool = False, **kwargs: Any) -> Clips:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        seeds = [seed + i for i in range(n)]
        return self.render(torch.stack([self.latent(s) for s in seeds]), seeds, denoise, **kwargs)

    def interpolation_latents(self, seed_a: int, seed_b: int, steps: int) -> torch.Tensor:
        """(steps, latent_dim) from seed_a's latent to seed_b's: straight line for U[-1, 1] latents (stays in
        the box), great circle (slerp) for normal latents (keeps the typical norm)."""
        if steps < 2:
            raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
        za, zb = self.latent(seed_a), self.latent(seed_b)
        t = torch.linspace(0.0, 1.0, steps)[:, None]
        if self.model.latent == "uniform":
            return (1 - t) * za + t * zb
        omega = torch.arccos((za / za.norm()).dot(zb / zb.norm()).clamp(-1 + 1e-7, 1 - 1e-7))
        return (torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / torch.sin(omega)

    def interpolate(self, seed_a: int, seed_b: int, steps: int, denoise: bool = False, **kwargs: Any) -> list[np.ndarray]:
        """``steps`` clips along the latent path from ``seed_a`` to ``seed_b``."""
        return self.interpolate_clips(seed_a, seed_b, steps, denoise, **kwargs).audio

    def interpolate_clips(self, seed_a: int, seed_b: int, steps: int, denoise: bool = False, **kwargs: Any) -> Clips:
        return self.render(self.interpolation_latents(seed_a, seed_b, steps), [seed_a] * steps, denoise, **kwargs)
