"""The perform training task: score frames -> spectrogram, on a dataset store.

``train_perform`` is what ``pianoforge train perform`` calls. The run folder gets ``run_config.json``,
``train_log.csv``, ``val_log.csv``, ``loss_curve.png``, ``checkpoints/`` (exact-resume states),
``best.safetensors`` (the inference checkpoint with the best validation loss) and ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pianoforge.checkpoint import save_checkpoint
from pianoforge.config import Preset
from pianoforge.data.dataset import PerformExamples
from pianoforge.data.store import FeatureStore
from pianoforge.errors import ConfigError, StoreError
from pianoforge.losses import check_losses, perform_losses
from pianoforge.models.perform import build_perform_model
from pianoforge.training.loop import LoopSettings, TaskFactory, launch, prepare_run

DEFAULT_TRAIN = {"batch_size": 16, "lr": 1e-3, "losses": {"lms": 1.0}, "grad_clip": None, "max_epochs": 100,
                 "weight_decay": 0.0, "early_stop_patience": 20, "template_lr_scale": 1.0,
                 "sampler_rounds": 2, "sampler_iterations": 20,  # sampler_*: model.head sampler's fit
                 "sampler_monotone_after": 0.0, "sampler_monotone_rise": 1.0,
                 "sampler_weight_power": 0.0, "sampler_weight_floor": 1e-3,
                 "sampler_subf0_after": 0.0, "sampler_subf0_ratio": 0.8}


def check_store(store: FeatureStore, preset: Preset) -> None:
    """The store must share the preset's audio geometry and score encoding, and be fit for training."""
    sp = store.preset
    if sp.audio != preset.audio or sp.score != preset.score:
        raise StoreError(store.root, f"was built with preset {sp.name!r} (audio/score geometry differs from "
                                     f"{preset.name!r}); build one with --preset {preset.name}")
    store.check_trainable()


class PerformTask:
    monitor = "val/loss"

    def __init__(self, store: FeatureStore, preset: Preset, device: torch.device) -> None:
        self.preset = preset
        self.store = store
        tr = {**DEFAULT_TRAIN, **preset.train}
        self.train_cfg = tr
        self.weights = {k: float(v) for k, v in tr["losses"].items()}
        self.model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, store.normalizer,
                                         score=preset.score)
        check_losses(self.weights, self.model.cfg.output)
        if self.model.cfg.head == "notes":
            self._init_templates(store)
        if tr.get("init_from"):
            self._init_from(Path(tr["init_from"]))
        self.model.to(device)
        self.net = self.model
        lr = float(tr["lr"])
        spectra = ("head.theta", "head.table")  # the notes head's log spectra: template_lr_scale x the lr
        templates = [p for n, p in self.model.named_parameters() if n in spectra]
        rest = [p for n, p in self.model.named_parameters() if n not in spectra]
        groups = [{"params": rest}] + ([{"params": templates, "lr": lr * float(tr["template_lr_scale"])}]
                                       if templates else [])
        self.opt = torch.optim.Adam(groups, lr=lr, weight_decay=float(tr["weight_decay"]))
        # Training examples take their length and stride from the *training* preset (so data.example_seconds
        # can be varied on one store: the example-duration experiment); validation keeps the store's fixed
        # windows, so validation errors stay comparable across example durations.
        d = preset.data
        self.train_dataset = PerformExamples(store, "train", d.example_frames(preset.audio),
                                             d.stride_frames(preset.audio))
        val = PerformExamples(store, "validation")
        self.val_dataset = val if len(val) else None

    def _init_templates(self, store: FeatureStore) -> None:
        """The notes head's templates start from the training audio: each key's mean spectrum where it
        sounds alone (deterministic: every training piece, in store order)."""
        frames = []
        for p in store.pieces("train"):
            arr = store.arrays(p["piece_id"])
            frames.append((arr.score, arr.spec))
        n = self.model.head.init_from_store(frames)
        print(f"[train] notes head: {n} of 88 key templates initialised from training audio "
              f"(the rest start as harmonic combs)", flush=True)

    def _init_from(self, path: Path) -> None:
        """Fine-tuning: start from an inference checkpoint of the same model configuration (a resumed run then
        overwrites these weights with its own state). The normalization buffers stay the store's."""
        from pianoforge.checkpoint import load_checkpoint
        from pianoforge.errors import ConfigError

        tensors, meta = load_checkpoint(path, kind="perform")
        if meta["config"].get("model") != self.model.cfg.to_dict():
            raise ConfigError(path, "--init-from checkpoint has another model configuration than the preset")
        own = self.model.state_dict()
        missing = [k for k in own if k not in tensors]
        if missing:
            raise ConfigError(path, f"--init-from checkpoint lacks {len(missing)} weights, e.g. {missing[0]}")
        keep = ("mean", "std", "el_gain")  # buffers derived from the store / config, not learned
        self.model.load_state_dict({k: (own[k] if k in keep else tensors[k]) for k in own})

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.opt}

    def wrap(self, fn) -> None:
        self.net = fn(self.model)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        out = self.net(batch["score"])
        losses = perform_losses(self.model, out, batch, self.weights)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.train_cfg.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.train_cfg["grad_clip"]))
        self.opt.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def val_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        out = self.net(batch["score"])
        weights = dict(self.weights)
        weights.setdefault("lms", 0.0)  # always report the paper's LMS MSE for comparability
        d = perform_losses(self.model, out, batch, weights)
        return {f"val/{k.split('/')[-1]}" if k != "loss" else "val/loss": float(v) for k, v in d.items()}

    def export(self, path: Path) -> None:
        export_perform(self.model, self.preset, path, {"data": str(self.store.root),
                                                      "data_fingerprint": self.store.manifest["fingerprint"],
                                                      "data_licences": self.store.manifest.get("licences", [])})


def export_perform(model, preset: Preset, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write an inference checkpoint: weights + buffers (normalization) + the full preset."""
    cfg = {"preset": preset.to_dict(), "model": model.cfg.to_dict(), **(extra or {})}
    return save_checkpoint(path, model.state_dict(), kind="perform", config=cfg)


def train_perform(data: Path, preset: Preset, out: Path, settings: LoopSettings | None = None) -> dict[str, Any] | None:
    """Train (or resume) a perform model. Returns the run summary.

    The preset's train, model and inference sections are checked before the run folder is touched.
    ``settings``: the engine's (:func:`~pianoforge.training.config.loop_settings` derives them from the train
    section and the command line); None: the preset's alone."""
    from pianoforge.training.config import check_perform_preset, loop_settings

    if isinstance(preset.model, dict) and preset.model.get("head") == "sampler":
        from pianoforge.training.sampler_train import train_sampler

        if settings is not None and (settings.from_state or settings.keep_epoch_states):
            raise ConfigError(f"preset {preset.name}", "a sampler is fitted by least squares, not by the training "
                                                       "loop: --from-state and --keep-epoch-states do not apply")

        return train_sampler(data, preset, out)  # least squares, not the gradient loop (its flags do not apply)
    store = FeatureStore(data)
    check_store(store, preset)
    tr = check_perform_preset(preset)
    settings = settings if settings is not None else loop_settings(tr)
    prepare_run(out, "perform", preset, data, store.manifest["fingerprint"], settings)
    return launch(TaskFactory(PerformTask, Path(data), preset), settings, out)
