"""A compact training engine: seeded, resumable to the exact batch, DDP-ready, with logs and plots.

Why not Lightning: its checkpoints are pickles (we load only safetensors + JSON), and resuming to the
exact batch from our own files needs control of the sampler and loop (Lightning is not a dependency). This
loop uses plain
``torch.distributed`` DDP, so the same command scales to several GPUs or nodes (``--devices``,
``--num-nodes``; or launch under ``torchrun``, whose environment variables are honoured).

A *task* owns models, optimizers and the step logic (so GANs can do their own manual optimization):

- ``modules() -> dict[str, nn.Module]`` and ``optimizers() -> dict[str, Optimizer]``;
- ``wrap(fn)``: called once with a function that wraps a module for DDP (identity when single-process);
- ``train_step(batch, step) -> dict[str, float]`` (does backward and optimizer steps itself);
- ``val_step(batch) -> dict[str, float]`` (means over the batch; weighted by batch size here);
- ``train_dataset``, ``val_dataset``, ``collate`` (optional), ``monitor`` (a val key, lower is better);
- ``export(path)``: write the inference checkpoint of the current weights;
- ``on_epoch_end(run_dir, epoch)`` (optional): e.g. sample grids.

Faults: a non-finite training loss (or non-finite weights at a save) stops the run with a
:class:`~pianoforge.errors.TrainingError` naming the step, before anything non-finite is saved: the
checkpoints and ``best.safetensors`` keep the last finite state. A task without validation examples is
refused unless ``no_validation`` (then the epoch mean of the training ``loss`` is monitored, or, for tasks
without one, the latest epoch is kept). Rerunning a finished run (its step, epoch or early-stop limit
reached) does nothing and says so; a larger ``--max-epochs``/``--max-steps`` continues it.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pianoforge.checkpoint import load_train_state, read_train_state, save_train_state, train_state_folder
from pianoforge.errors import TrainingError
from pianoforge.fsutil import write_text_atomic
from pianoforge.training.batches import epoch_batches, epoch_loader, to_device
from pianoforge.training.config import LoopSettings
from pianoforge.training.launch import TaskFactory, launch
from pianoforge.training.run_folder import Logs, prepare_run
from pianoforge.training.train_state import restore_task, task_state

__all__ = ["LoopSettings", "TaskFactory", "Trainer", "launch", "prepare_run"]


# --------------------------------------------------------------------------------------------- trainer

class Trainer:
    def __init__(self, make_task, settings: LoopSettings, run_dir: Path, rank: int, world: int,
                 device: torch.device) -> None:
        self.s, self.run_dir, self.rank, self.world, self.device = settings, run_dir, rank, world, device
        self.is_main = rank == 0
        _seed_everything(settings.seed + rank)
        self.task = make_task(device)
        for m in self.task.modules().values():
            m.to(device)
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.task.wrap(lambda m: DDP(m, device_ids=ids) if any(p.requires_grad for p in m.parameters()) else m)
        else:
            self.task.wrap(lambda m: m)
        self.ckpt_dir = run_dir / "checkpoints"
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best = math.inf
        self.bad_epochs = 0
        self.plateau_epochs = 0  # bad epochs since the last improvement or learning-rate cut
        self.elapsed_before = 0.0
        self.history: list[dict[str, Any]] = []

    # -- state -----------------------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                 "best": self.best if math.isfinite(self.best) else None, "bad_epochs": self.bad_epochs,
                 "plateau_epochs": self.plateau_epochs,
                 "elapsed_s": self.elapsed_before + time.perf_counter() - self.t0, "history": self.history}
        return task_state(self.task, state)

    def _restore(self) -> str | None:
        """Load the run's own latest state ("resumed"), else the ``from_state`` one ("branched": its weights,
        optimizer moments, step, epoch and random state; this run's best, logs and clock start afresh), else
        None."""
        loaded = load_train_state(self.ckpt_dir)
        how = "resumed"
        if loaded is None and self.s.from_state:
            loaded, how = read_train_state(train_state_folder(Path(self.s.from_state))), "branched"
        if loaded is None:
            return None
        tensors, state = loaded
        restore_task(self.task, tensors, state, keep_own_rates=how == "branched")
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if how == "branched":
            return how
        self.best = state["best"] if state["best"] is not None else math.inf
        self.bad_epochs, self.elapsed_before = state["bad_epochs"], state["elapsed_s"]
        self.plateau_epochs = state.get("plateau_epochs", 0)
        self.history = state.get("history", [])
        return how

    def _save(self, keep_as: str | None = None) -> None:
        self._assert_finite_weights("the checkpoint")  # on every process: DDP weights are the same everywhere
        if self.is_main:
            tensors, state = self._state()
            save_train_state(self.ckpt_dir, self.step, tensors, state, self.s.keep_checkpoints, keep_as)
        self._barrier()

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    # -- data -----------------------------------------------------------------------------------------
    def _epoch_batches(self, n: int, epoch: int, shuffle: bool) -> list[list[int]]:
        return epoch_batches(n, epoch, shuffle, self.s.seed, self.rank, self.world, self.s.batch_size)

    def _loader(self, dataset, batches: list[list[int]]):
        return epoch_loader(dataset, batches, self.s.seed, self.epoch, self.s.num_workers,
                            getattr(self.task, "collate", None))

    def _to_device(self, batch):
        return to_device(batch, self.device)

    # -- loop -----------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any] | None:
        self.t0 = time.perf_counter()
        restored = self._restore()
        resumed = restored == "resumed"
        n_train = self._check_data()
        finished = self._finished() if resumed else None  # a branch was checked by prepare_run
        if finished:
            return self._already_finished(finished)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.logs = Logs(self.run_dir, self.step if resumed else 0, resumed)
            if resumed:
                print(f"resuming {self.run_dir} at epoch {self.epoch + 1}, step {self.step}", flush=True)
            elif restored:
                print(f"{self.run_dir}: a new run from the state of {self.s.from_state} (epoch {self.epoch}, "
                      f"step {self.step})", flush=True)
            if self.s.no_validation:
                print(f"no validation (--no-validation): best.safetensors is the epoch with the lowest mean "
                      f"training loss ({self.monitor}), or the latest epoch for tasks without one", flush=True)
        stop_reason = None
        while self.epoch < self.s.max_epochs and stop_reason is None:
            stop_reason, complete = self._train_epoch(n_train)
            if not complete:
                break  # interrupted mid-epoch by a limit: checkpoint below, no validation
            self._end_epoch()
            if self.bad_epochs >= self.s.early_stop_patience:
                stop_reason = f"early stop: no improvement of {self.monitor} for {self.bad_epochs} epochs"
        if stop_reason is None:
            stop_reason = f"reached max_epochs={self.s.max_epochs}"
        self._save()
        summary = None
        if self.is_main:
            if not (self.run_dir / "best.safetensors").exists():
                self.task.export(self.run_dir / "best.safetensors")
            summary = {"stop_reason": stop_reason, "epochs": self.epoch, "steps": self.step,
                       "best": self.best if math.isfinite(self.best) else None, "monitor": self.monitor,
                       "elapsed_s": round(self._elapsed(), 1), "world_size": self.world,
                       "device": str(self.device), "settings": asdict(self.s)}
            write_text_atomic(self.run_dir / "summary.json", json.dumps(summary, indent=1))
            print(stop_reason, flush=True)
        self._barrier()
        return summary

    def _check_data(self) -> int:
        """Training examples (enough for a batch on every process) and a validation split (or no_validation)."""
        store = getattr(getattr(self.task, "store", None), "root", None)
        n_train = len(self.task.train_dataset)
        if n_train < self.s.batch_size * self.world:
            most = n_train // self.world
            raise TrainingError(store, f"has {n_train} training examples, fewer than batch size {self.s.batch_size}"
                                       f" x {self.world} process(es); use --batch-size {most} or less"
                                       if most else f"has {n_train} training examples for {self.world} processes; "
                                       "build more data")
        val = self.task.val_dataset
        self.validating = not self.s.no_validation
        if self.validating and (val is None or len(val) == 0):
            raise TrainingError(store, "has no validation examples, so nothing would choose best.safetensors or "
                                       "stop early; build a store with a validation split, or pass --no-validation "
                                       "(monitors the training loss)")
        self.monitor = self.task.monitor if self.validating else "train/loss"
        return n_train

    def _finished(self) -> str | None:
        """Why a restored run has nothing left to do under these settings (None: it has)."""
        if self.s.max_steps is not None and self.step >= self.s.max_steps:
            return f"reached max_steps={self.s.max_steps}"
        if self.epoch >= self.s.max_epochs and self.batch_in_epoch == 0:
            return f"reached max_epochs={self.s.max_epochs}"
        if self.bad_epochs >= self.s.early_stop_patience and self.batch_in_epoch == 0:
            return f"early stop: no improvement for {self.bad_epochs} epochs"
        return None

    def _already_finished(self, reason: str) -> dict[str, Any] | None:
        """A rerun of a finished run: no step, no file written; the saved summary is returned."""
        if self.is_main:
            print(f"{self.run_dir}: already finished ({reason}) at epoch {self.epoch}, step {self.step}; nothing to "
                  "do (a larger --max-epochs or --max-steps continues it)", flush=True)
        path = self.run_dir / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {
            "stop_reason": reason, "epochs": self.epoch, "steps": self.step,
            "best": self.best if math.isfinite(self.best) else None, "monitor": self.monitor, "elapsed_s": 0.0}
        return {**summary, "already_finished": True} if self.is_main else None

    def _train_epoch(self, n_train: int) -> tuple[str | None, bool]:
        """Train (the rest of) one epoch. Returns (stop reason or None, whether the epoch was completed)."""
        from tqdm import tqdm

        batches = self._epoch_batches(n_train, self.epoch, shuffle=True)
        skip = self.batch_in_epoch
        for m in self.task.modules().values():
            m.train()
        bar = tqdm(total=len(batches), initial=skip, desc=f"epoch {self.epoch + 1}", unit="batch",
                   disable=not (self.is_main and self.s.progress), dynamic_ncols=True, leave=False)
        self.train_sums = {"n": 0.0, "loss": 0.0}
        stop_reason = None
        for batch in self._loader(self.task.train_dataset, batches[skip:]):
            metrics = self.task.train_step(self._to_device(batch), self.step)
            self.step += 1
            self.batch_in_epoch += 1
            bar.update()
            self._check_finite(metrics)
            if "loss" in metrics:
                self.train_sums["n"] += 1
                self.train_sums["loss"] += metrics["loss"]
            if self.is_main and self.step % self.s.log_every_steps == 0:
                bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in list(metrics.items())[:3]})
                self.logs.train(self.step, self.epoch + 1, self._elapsed(), metrics)
            if self.step % self.s.ckpt_every_steps == 0:
                self._save()
            stop_reason = self._limits_reached()
            if stop_reason:
                break
        bar.close()
        return stop_reason, self.batch_in_epoch >= len(batches)

    def _check_finite(self, metrics: dict[str, float]) -> None:
        """Stop (TrainingError, nothing saved) at the first non-finite training metric on any process."""
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if self.world > 1:
            flag = torch.tensor([float(bool(bad))])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad = bad or (["on another process"] if flag.item() > 0 else [])
        if bad:
            raise TrainingError(self.run_dir, f"non-finite training loss at step {self.step} ({', '.join(bad)}); "
                                              f"stopped without saving it: {self._last_saved()}; lower the "
                                              "learning rate or check the data")

    def _last_saved(self) -> str:
        latest = self.ckpt_dir / "LATEST"
        if latest.exists():
            return f"checkpoints/{latest.read_text().strip()} holds the last finite state (a rerun resumes there)"
        return "no state was saved yet (a rerun starts afresh)"

    def _end_epoch(self) -> None:
        """Validate (or average the training loss), keep the best export, log, checkpoint."""
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.validating:
            val = self._validate()
        else:
            n = self.train_sums["n"]
            val = {self.monitor: self.train_sums["loss"] / n} if n else {}
        improved = val.get(self.monitor, math.inf) < self.best or (not self.validating and not val)
        if improved:
            self.best = val.get(self.monitor, math.inf)
            self.bad_epochs = self.plateau_epochs = 0
            self._assert_finite_weights("best.safetensors")
            if self.is_main:
                self.task.export(self.run_dir / "best.safetensors")
        else:
            self.bad_epochs += 1
            self.plateau_epochs += 1
            if self.s.lr_plateau_patience and self.plateau_epochs >= self.s.lr_plateau_patience:
                self._cut_lr()
        if self.is_main:
            row = {"epoch": self.epoch, "step": self.step, "elapsed_s": round(self._elapsed(), 2), **val}
            self.history.append(row)
            self.logs.val(row)
            self.logs.plot(self.monitor)
            if hasattr(self.task, "on_epoch_end"):
                self.task.on_epoch_end(self.run_dir, self.epoch)
            print(f"epoch {self.epoch}: " + " ".join(f"{k}={v:.5g}" for k, v in val.items())
                  + (" (best)" if improved else ""), flush=True)
        self._save(f"epoch-{self.epoch:04d}" if self.s.keep_epoch_states else None)

    def _assert_finite_weights(self, what: str) -> None:
        """TrainingError before ``what`` would be written from non-finite weights."""
        for name, m in self.task.modules().items():
            for k, v in m.state_dict().items():
                if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                    raise TrainingError(self.run_dir, f"{name}.{k} became non-finite by step {self.step}; {what} "
                                                      f"not written: {self._last_saved()}; lower the learning rate")

    def _cut_lr(self) -> None:
        """Reduce-on-plateau: multiply every optimizer's learning rate by ``lr_plateau_factor`` (the rates
        live in the optimizer state, so a resumed run keeps them)."""
        self.plateau_epochs = 0
        lrs = []
        for opt in self.task.optimizers().values():
            for g in opt.param_groups:
                g["lr"] = g["lr"] * self.s.lr_plateau_factor
                lrs.append(g["lr"])
        if self.is_main:
            print(f"no improvement for {self.s.lr_plateau_patience} epochs: learning rate now "
                  + ", ".join(f"{v:.3g}" for v in sorted(set(lrs))), flush=True)

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def _limits_reached(self) -> str | None:
        if self.s.max_steps is not None and self.step >= self.s.max_steps:
            return f"reached max_steps={self.s.max_steps}"
        if self.s.max_minutes is not None:
            flag = torch.tensor([float(time.perf_counter() - self.t0 >= self.s.max_minutes * 60)])
            if self.world > 1:
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank stops at the same step
            if flag.item() > 0:
                return f"reached max_minutes={self.s.max_minutes}"
        return None

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        ds = self.task.val_dataset
        if ds is None or len(ds) == 0:
            return {}
        for m in self.task.modules().values():
            m.eval()
        sums: dict[str, float] = {}
        count = 0
        for batch in self._loader(ds, self._epoch_batches(len(ds), 0, shuffle=False)):
            b = self._to_device(batch)
            n = len(next(iter(b.values()))) if isinstance(b, dict) else len(b[0]) if isinstance(b, (tuple, list)) \
                else len(b)
            for k, v in self.task.val_step(b).items():
                sums[k] = sums.get(k, 0.0) + v * n
            count += n
        keys = sorted(sums)
        vec = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(vec)
        return {k: float(vec[i] / vec[-1]) for i, k in enumerate(keys)}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
