"""What the GAN task checks and builds before training: model config, image geometry, store checks, the data
context a generator starts from, the task's random stream, and the generator-only export."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from pianoforge.checkpoint import save_checkpoint
from pianoforge.config import Preset
from pianoforge.data.store import FeatureStore
from pianoforge.errors import ConfigError, StoreError
from pianoforge.models.gan import DataContext, GanModelConfig, check_geometry
from pianoforge.models.gan.config import GanInferenceConfig, gan_checkpoint_config
from pianoforge.training.config import GanTrainConfig


def gan_model_config(preset: Preset) -> GanModelConfig:
    """The preset's ``model`` section, checked (an old flat layout is read nested)."""
    return GanModelConfig.from_dict(preset.model, f"preset {preset.name}")


def image_geometry(preset: Preset) -> tuple[tuple[int, int], tuple[int, int]]:
    """(image size (H, W), STFT grid (bins, frames)) of a GAN preset; the model must accept them
    (:func:`pianoforge.models.gan.check_geometry`: its layout divides, NoteGAN's image is the STFT grid)."""
    grid = (preset.audio.n_bins, preset.data.example_frames(preset.audio))
    size = tuple(preset.data.resize) if preset.data.resize else grid
    try:
        check_geometry(gan_model_config(preset), size, grid)
    except ConfigError as e:
        raise ConfigError(f"preset {preset.name}", e.problem) from e
    return (int(size[0]), int(size[1])), (int(grid[0]), int(grid[1]))


def data_context(store: FeatureStore, preset: Preset, size: tuple[int, int], grid: tuple[int, int]) -> DataContext:
    """What a fresh generator may take from the training data (:meth:`Generator.init_from_data`)."""
    return DataContext.from_normalizer(store.normalizer, preset.audio, preset.render, size, grid)


def check_gan_store(store: FeatureStore, preset: Preset) -> None:
    """The store must have the preset's geometry (audio, example length, resize) and be fit for training."""
    sp = store.preset
    if (sp.audio, sp.data.example_seconds, sp.data.resize) != (preset.audio, preset.data.example_seconds,
                                                               preset.data.resize):
        geom = "gan-" + preset.name.split("-", 1)[1] if "-" in preset.name else preset.name
        raise StoreError(store.root, f"was built with preset {sp.name!r}, whose geometry (audio, example_seconds, "
                                     f"resize) differs from {preset.name!r}; build one with --preset {geom} "
                                     "and the same --set overrides")
    store.check_trainable()


ROLL_TERMS = ("roll_moment_weight", "roll_level_weight", "roll_interval_weight")
"""Train keys of the terms that compare NoteGAN's strike roll with the stored rolls (g/roll, g/levels, g/intervals)."""
NOTEGAN_TERMS = ("note_critic_weight", *ROLL_TERMS)
"""Train keys whose terms read NoteGAN's strike roll: each needs arch ``notegan``."""


def check_gan_terms(preset: Preset, arch: str, train: GanTrainConfig) -> None:
    """Before any work: a NoteGAN-only term (:data:`NOTEGAN_TERMS`) switched on for another arch, or a strike rule
    (``inference.strike_threshold``: exports carry it, and only a note head can play it), is a
    :class:`ConfigError` naming the key."""
    for key in NOTEGAN_TERMS:
        if float(getattr(train, key)) > 0 and arch != "notegan":
            raise ConfigError(f"preset {preset.name}", f"train.{key} needs arch notegan, not {arch}")
    if GanInferenceConfig.from_preset(preset).strike_threshold > 0 and arch != "notegan":
        raise ConfigError(f"preset {preset.name}", f"inference.strike_threshold needs arch notegan, not {arch}")


class RngState(nn.Module):
    """The task's own random stream (latents, interpolation weights, label noise, augmentation, StyleGAN
    noise), saved as buffers with the training state. Not torch's global generator: the engine's
    DataLoader draws from that when an epoch's iterator is created, at a different point after a resume."""

    def __init__(self, seed: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("cpu_state", torch.Generator().manual_seed(seed).get_state())
        cuda = torch.zeros(0, dtype=torch.uint8)
        if device.type == "cuda":  # sized at construction, so a resumed state loads into it
            with torch.random.fork_rng(devices=[device.index or 0]):
                torch.cuda.manual_seed(seed)
                cuda = torch.cuda.get_rng_state(device)
        self.register_buffer("cuda_state", cuda)

    @contextlib.contextmanager
    def active(self, device: torch.device) -> Iterator[None]:
        """Inside the block torch's global generator(s) run this stream; outside they are untouched."""
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.set_rng_state(self.cpu_state.cpu())
            if cuda:
                torch.cuda.set_rng_state(self.cuda_state.cpu(), device)
            yield
            self.cpu_state = torch.get_rng_state().to(self.cpu_state.device)
            if cuda:
                self.cuda_state = torch.cuda.get_rng_state(device).to(self.cpu_state.device)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` stop requiring grad inside the block (gradients still flow through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)


def export_gan(generator: nn.Module, preset: Preset, cfg: GanModelConfig, store: FeatureStore,
               size: tuple[int, int], grid: tuple[int, int], path: Path) -> Path:
    """Write a generator-only inference checkpoint (``kind="gan"``)."""
    extra = {"data": str(store.root), "data_fingerprint": store.manifest["fingerprint"],
             "data_licences": store.manifest.get("licences", [])}
    config = gan_checkpoint_config(preset, cfg, store.normalizer, size, grid, extra)
    return save_checkpoint(path, generator.state_dict(), kind="gan", config=config)
