"""Typed ``train`` sections of the perform and GAN presets, and the engine settings derived from them.

:func:`perform_train_config` and :func:`gan_train_config` check a preset's ``train`` section key by key
(unknown keys, wrong types and out-of-range values: a one-line :class:`~pianoforge.errors.ConfigError`
naming ``train.<key>``); :func:`loop_settings` derives :class:`~pianoforge.training.loop.LoopSettings`
from a checked section plus the command line's flags. To add a train key, add a field (with its range
check in ``__post_init__``) to the dataclass here; a perform key may instead be added to
``training.perform.DEFAULT_TRAIN``, which this module accepts (typed like its default) in ``extra``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pianoforge.adversarial import COLLAPSE_THRESHOLD
from pianoforge.config import Preset, section_from_dict
from pianoforge.errors import ConfigError


@dataclass
class LoopSettings:
    """What the engine (``training/loop.py``) does: limits, batch, checkpoints, processes. Derive them from a
    checked train section with :func:`loop_settings`; out-of-range values are a ConfigError."""

    max_epochs: int = 100
    max_minutes: float | None = None
    max_steps: int | None = None
    batch_size: int = 16
    num_workers: int = 0
    seed: int = 0
    early_stop_patience: int = 20  # epochs without improvement of the monitored value
    lr_plateau_patience: int | None = None  # multiply every learning rate by lr_plateau_factor after N bad epochs
    lr_plateau_factor: float = 0.5
    ckpt_every_steps: int = 200  # also at every epoch end
    keep_checkpoints: int = 2
    log_every_steps: int = 10
    devices: int = 1
    num_nodes: int = 1
    node_rank: int = 0
    accelerator: str = "auto"  # auto | cpu | cuda
    master_addr: str = "127.0.0.1"
    master_port: int = 0  # 0: pick a free port (single node)
    progress: bool = True
    no_validation: bool = False  # train without a validation split, monitoring the training loss
    from_state: str | None = None  # a new run starts from this training state (train_state_folder resolves it)
    keep_epoch_states: bool = False  # also keep every epoch's state as checkpoints/epoch-NNNN

    def __post_init__(self) -> None:
        ints = {"max_epochs": 1, "batch_size": 1, "num_workers": 0, "early_stop_patience": 1, "ckpt_every_steps": 1,
                "keep_checkpoints": 1, "log_every_steps": 1, "devices": 1, "num_nodes": 1, "node_rank": 0,
                "master_port": 0}
        bad = [f"{k} must be >= {lo}, got {getattr(self, k)}" for k, lo in ints.items() if getattr(self, k) < lo]
        if self.max_steps is not None and self.max_steps < 1:
            bad.append(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            bad.append(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.lr_plateau_patience is not None and self.lr_plateau_patience < 1:
            bad.append(f"lr_plateau_patience must be >= 1, got {self.lr_plateau_patience}")
        if self.node_rank >= self.num_nodes:
            bad.append(f"node_rank must be < num_nodes ({self.num_nodes}), got {self.node_rank}")
        if self.accelerator not in ("auto", "cpu", "cuda"):
            bad.append(f"accelerator must be auto, cpu or cuda, got {self.accelerator!r}")
        if bad:
            raise ConfigError(None, "training settings: " + "; ".join(bad))


def _check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(None, f"train.{key} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class _Common:
    """Keys every task has; each task's defaults come from its own DEFAULT_TRAIN."""

    batch_size: int = 16  # examples per batch and process
    lr: float = 1e-3
    grad_clip: float | None = None  # gradient-norm clipping (None: off)
    max_epochs: int = 100
    early_stop_patience: int = 20  # epochs without a better monitored value
    lr_plateau_patience: int | None = None  # cut every learning rate after N epochs without improvement
    lr_plateau_factor: float = 0.5  # ... multiplying it by this

    def _check_common(self) -> None:
        _check(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        _check(self.lr > 0, "lr", "> 0", self.lr)
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or null", self.grad_clip)
        _check(self.max_epochs >= 1, "max_epochs", "an integer >= 1", self.max_epochs)
        _check(self.early_stop_patience >= 1, "early_stop_patience", "an integer >= 1", self.early_stop_patience)
        _check(self.lr_plateau_patience is None or self.lr_plateau_patience >= 1, "lr_plateau_patience",
               "an integer >= 1 or null", self.lr_plateau_patience)
        _check(0 < self.lr_plateau_factor < 1, "lr_plateau_factor", "in (0, 1)", self.lr_plateau_factor)


@dataclass(frozen=True)
class PerformTrainConfig(_Common):
    """The ``train`` section of a perform preset (defaults: ``training.perform.DEFAULT_TRAIN``)."""

    losses: dict[str, float] = field(default_factory=lambda: {"lms": 1.0})  # name -> weight (losses.LOSSES)
    weight_decay: float = 0.0
    init_from: str | None = None  # fine-tuning: an inference checkpoint of the same model (--init-from)
    extra: dict[str, Any] = field(default_factory=dict)  # other keys of DEFAULT_TRAIN, typed like their default

    def __post_init__(self) -> None:
        self._check_common()
        from pianoforge import losses  # the names as they are now (new losses register there)

        _check(bool(self.losses), "losses", "a mapping of at least one loss name to a weight", self.losses)
        bad = sorted(set(self.losses) - set(losses.LOSSES))
        _check(not bad, "losses", f"a mapping of loss names ({', '.join(losses.LOSSES)}) to weights", bad)
        _check(all(w >= 0 for w in self.losses.values()) and any(w > 0 for w in self.losses.values()),
               "losses", "weights >= 0, at least one > 0", self.losses)
        _check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)


@dataclass(frozen=True)
class GanTrainConfig(_Common):
    """The ``train`` section of a GAN preset; these defaults are ``training.gan.DEFAULT_TRAIN``."""

    batch_size: int = 32
    lr: float = 1e-4
    lr_d: float | None = None  # critic learning rate (None: lr; TTUR when larger)
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 1  # critic steps per generator step
    ema_beta: float = 0.999
    # batches (of batch_size latents) that measure the EMA generator's batch-norm statistics for its own weights
    # before it is validated, sampled or exported (0: the live generator's statistics, as before 2026-12-07)
    ema_bn_batches: int = 16
    # learning rates (all networks) constant for lr_decay_after steps, then linearly to 0 over lr_decay_steps
    # (0: constant throughout)
    lr_decay_after: int = 0
    lr_decay_steps: int = 0
    gp_weight: float = 10.0  # specgan
    label_smoothing: float = 0.0  # dcgan
    label_flip: float = 0.0  # dcgan
    r1_gamma: float = 1.0  # stylegan (lazy R1: every r1_every steps, scaled by r1_every)
    r1_every: int = 16
    ada: bool = False  # adaptive augmentation (stylegan, framegan)
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 20.0
    moment_weight: float = 0.0  # generator loss += weight * per-row moment distance to the real batch (notegan)
    note_critic_weight: float = 0.0  # notegan: generator loss += weight * hinge loss of a critic of the strike roll
    roll_moment_weight: float = 0.0  # notegan: generator loss += weight * distance of its strike statistics to the data's
    roll_level_weight: float = 0.0  # notegan: generator loss += weight * distance of its strikes per level band
    roll_interval_weight: float = 0.0  # notegan: ... of the interval classes it strikes together (harmony)
    max_epochs: int = 200
    early_stop_patience: int = 1_000_000  # GAN validation numbers are too noisy to stop on
    grid_samples: int = 16
    audio_samples: int = 2
    diversity_samples: int = 32
    sample_seed: int = 1234
    gl_iterations: int = 32  # Griffin-Lim iterations of the per-epoch audio samples
    keep_epoch_exports: bool = False  # also export every epoch's EMA generator to epochs/epoch-NNNN.safetensors
    collapse_threshold: float = COLLAPSE_THRESHOLD
    collapse_warmup_g_steps: int = 200  # a fresh generator's near-constant output is not a collapse
    diverge_wgan: float = 1000.0
    diverge_d_loss: float = 0.01
    diverge_g_loss: float = 20.0

    def __post_init__(self) -> None:
        self._check_common()
        _check(self.lr_d is None or self.lr_d > 0, "lr_d", "> 0 or null", self.lr_d)
        _check(all(0 <= b < 1 for b in self.betas), "betas", "two numbers in [0, 1)", list(self.betas))
        _check(0 <= self.ema_beta < 1, "ema_beta", "in [0, 1)", self.ema_beta)
        _check(0 <= self.label_smoothing < 0.5, "label_smoothing", "in [0, 0.5)", self.label_smoothing)
        _check(0 <= self.label_flip <= 1, "label_flip", "in [0, 1]", self.label_flip)
        _check(0 < self.ada_target < 1, "ada_target", "in (0, 1)", self.ada_target)
        _check(self.ada_kimg > 0, "ada_kimg", "> 0", self.ada_kimg)
        for key in ("n_critic", "r1_every", "ada_interval", "grid_samples", "diversity_samples"):
            _check(getattr(self, key) >= 1, key, "an integer >= 1", getattr(self, key))
        for key in ("audio_samples", "gl_iterations", "collapse_warmup_g_steps", "lr_decay_after", "lr_decay_steps",
                    "ema_bn_batches"):
            _check(getattr(self, key) >= 0, key, "an integer >= 0", getattr(self, key))
        for key in ("gp_weight", "r1_gamma", "moment_weight", "note_critic_weight", "roll_moment_weight",
                    "roll_level_weight", "roll_interval_weight", "collapse_threshold",
                    "diverge_d_loss"):
            _check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))
        for key in ("diverge_wgan", "diverge_g_loss"):
            _check(getattr(self, key) > 0, key, "> 0", getattr(self, key))


def perform_train_config(preset: Preset) -> PerformTrainConfig:
    """The perform ``train`` section over ``training.perform.DEFAULT_TRAIN``, checked key by key."""
    from pianoforge.training.perform import DEFAULT_TRAIN

    origin = f"preset {preset.name}"
    d = {**DEFAULT_TRAIN, **preset.train}
    names = {f.name for f in dataclasses.fields(PerformTrainConfig)} - {"extra"}
    extra = {}
    for key in sorted(set(d) - names):
        if key not in DEFAULT_TRAIN:
            known = ", ".join(sorted(names | set(DEFAULT_TRAIN)))
            raise ConfigError(origin, f"unknown key(s) in train: {key} (known: {known})")
        extra[key] = _like(d[key], DEFAULT_TRAIN[key], key, origin)
    return section_from_dict(PerformTrainConfig, {k: v for k, v in d.items() if k in names}, "train", origin,
                             extra=extra)


def _like(value: Any, default: Any, key: str, origin: str) -> Any:
    """A DEFAULT_TRAIN key the dataclass does not name: typed like its default (default None: anything)."""
    if default is None:
        return value
    if isinstance(default, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = number and (isinstance(default, float) or isinstance(value, int))
        what = "a number" if isinstance(default, float) else "an integer"
    else:
        ok, what = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise ConfigError(origin, f"train.{key} must be {what}, got {value!r}")
    return value


def gan_train_config(preset: Preset) -> GanTrainConfig:
    """The GAN ``train`` section over :class:`GanTrainConfig`'s defaults, checked key by key."""
    return section_from_dict(GanTrainConfig, preset.train, "train", f"preset {preset.name}")


def loop_settings(train: PerformTrainConfig | GanTrainConfig, *, max_epochs: int | None = None,
                  batch_size: int | None = None, **flags: Any) -> LoopSettings:
    """Engine settings from a checked train section; ``max_epochs``/``batch_size`` given here win over it,
    ``flags`` are the other :class:`LoopSettings` fields (steps, minutes, workers, devices, ...)."""
    return LoopSettings(max_epochs=train.max_epochs if max_epochs is None else max_epochs,
                        batch_size=train.batch_size if batch_size is None else batch_size,
                        early_stop_patience=train.early_stop_patience,
                        lr_plateau_patience=train.lr_plateau_patience,
                        lr_plateau_factor=train.lr_plateau_factor, **flags)


def check_perform_preset(preset: Preset) -> PerformTrainConfig:
    """Everything a perform run reads from its preset, checked before any work: the train section, the model
    (built once, on the CPU), its losses against its output, the inference section. Returns the train config."""
    from pianoforge.config import InferenceConfig
    from pianoforge.losses import check_losses
    from pianoforge.models.perform import build_perform_model

    origin = f"preset {preset.name}"
    tr = perform_train_config(preset)
    if isinstance(preset.model, dict) and preset.model.get("head") == "sampler":  # no torch model to build
        from pianoforge.models.perform_config import PerformModelConfig

        PerformModelConfig.from_dict({**preset.model, "in_channels": preset.score.n_channels}, origin)
        InferenceConfig.from_preset(preset)
        return tr
    try:
        model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, score=preset.score)
        check_losses(tr.losses, model.cfg.output)
    except ConfigError as e:
        raise ConfigError(origin, e.problem) from e
    except ValueError as e:
        raise ConfigError(origin, str(e)) from e
    InferenceConfig.from_preset(preset)
    return tr
