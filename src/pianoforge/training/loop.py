"""A compact training engine: seeded, resumable to the exact batch, DDP-ready, with logs and plots.

Why not Lightning: its checkpoints are pickles (we load only safetensors + JSON), and resuming to the
exact batch from our own files needs control of the sampler and loop. This loop uses plain
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
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pianoforge.checkpoint import (
    load_train_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_train_state,
)


@dataclass
class LoopSettings:
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


# ------------------------------------------------------------------------------------------ run folder

def prepare_run(out: Path, kind: str, preset, data: Path, fingerprint: str, settings: LoopSettings) -> None:
    """Write ``run_config.json`` for a new run, or check that a run being resumed used the same preset and
    dataset (a one-line ConfigError otherwise)."""
    from pianoforge.errors import ConfigError

    cfg_path = out / "run_config.json"
    run_cfg = json.loads(json.dumps({"kind": kind, "preset": preset.to_dict(), "data": str(Path(data).resolve()),
                                     "data_fingerprint": fingerprint}))  # tuples -> lists, as read back
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old.get("preset") != run_cfg["preset"] or old.get("data_fingerprint") != run_cfg["data_fingerprint"]:
            raise ConfigError(out, "run folder holds a run with another preset or dataset; use a new --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        cfg_path.write_text(json.dumps({**run_cfg, "settings": asdict(settings)}, indent=1))


class TaskFactory:
    """Picklable ``make_task(device)`` for :func:`launch` (DDP workers are spawned processes):
    ``task_class(FeatureStore(data), preset, device)``."""

    def __init__(self, task_class, data: Path, preset) -> None:
        self.task_class, self.data, self.preset = task_class, Path(data), preset

    def __call__(self, device: torch.device):
        from pianoforge.data.store import FeatureStore

        return self.task_class(FeatureStore(self.data), self.preset, device)


# ------------------------------------------------------------------------------------------ launching

def launch(make_task, settings: LoopSettings, run_dir: Path) -> dict[str, Any] | None:
    """Run training, spawning ``devices`` local processes for DDP when asked (unless under torchrun)."""
    world = settings.devices * settings.num_nodes
    if world > 1 and "LOCAL_RANK" not in os.environ:
        import torch.multiprocessing as mp

        if not settings.master_port:
            settings.master_port = _free_port()
        mp.spawn(_worker, args=(make_task, settings, run_dir), nprocs=settings.devices, join=True)
        return _read_summary(run_dir)
    local = int(os.environ.get("LOCAL_RANK", 0))
    return _worker(local, make_task, settings, run_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    p = run_dir / "summary.json"
    return json.loads(p.read_text()) if p.exists() else None


def _worker(local_rank: int, make_task, settings: LoopSettings, run_dir: Path) -> dict[str, Any] | None:
    world = settings.devices * settings.num_nodes
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    else:
        rank = settings.node_rank * settings.devices + local_rank
    use_cuda = settings.accelerator == "cuda" or (settings.accelerator == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        os.environ.setdefault("MASTER_ADDR", settings.master_addr)
        os.environ.setdefault("MASTER_PORT", str(settings.master_port))
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    try:
        return Trainer(make_task, settings, run_dir, rank, world, device).fit()
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


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

    # -- state ----------------------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        for name, m in self.task.modules().items():
            for k, v in m.state_dict().items():
                tensors[f"module.{name}.{k}"] = v
        opt_info = {}
        for name, opt in self.task.optimizers().items():
            t, info = optimizer_to_tensors(opt, f"optim.{name}")
            tensors.update(t)
            opt_info[name] = info
        tensors["rng.torch"] = torch.get_rng_state()
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                 "best": self.best if math.isfinite(self.best) else None, "bad_epochs": self.bad_epochs,
                 "plateau_epochs": self.plateau_epochs,
                 "elapsed_s": self.elapsed_before + time.perf_counter() - self.t0, "optimizers": opt_info,
                 "history": self.history}
        return tensors, state

    def _restore(self) -> bool:
        loaded = load_train_state(self.ckpt_dir)
        if loaded is None:
            return False
        tensors, state = loaded
        for name, m in self.task.modules().items():
            pre = f"module.{name}."
            m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
        for name, opt in self.task.optimizers().items():
            optimizer_from_tensors(opt, f"optim.{name}", tensors, state["optimizers"][name])
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best = state["best"] if state["best"] is not None else math.inf
        self.bad_epochs, self.elapsed_before = state["bad_epochs"], state["elapsed_s"]
        self.plateau_epochs = state.get("plateau_epochs", 0)
        self.history = state.get("history", [])
        return True

    def _save(self) -> None:
        if self.is_main:
            tensors, state = self._state()
            save_train_state(self.ckpt_dir, self.step, tensors, state, self.s.keep_checkpoints)
        self._barrier()

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    # -- data -----------------------------------------------------------------------------------------
    def _epoch_batches(self, n: int, epoch: int, shuffle: bool) -> list[list[int]]:
        """This rank's batches for an epoch: a seeded permutation, sharded by rank, equal on every rank."""
        g = torch.Generator().manual_seed(self.s.seed * 1000003 + epoch)
        order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
        per_rank = len(order) // self.world if shuffle else math.ceil(len(order) / self.world)
        mine = order[self.rank::self.world][:per_rank]
        bs = self.s.batch_size
        batches = [mine[i:i + bs] for i in range(0, len(mine), bs)]
        if shuffle and len(batches) > 1 and len(batches[-1]) < bs:
            batches = batches[:-1]  # drop the ragged last batch while training
        return batches

    def _loader(self, dataset, batches: list[list[int]]):
        from torch.utils.data import DataLoader

        # A private generator: creating a loader iterator draws a base seed, and drawing it from the global RNG
        # would shift every later random draw after a mid-epoch resume (breaking exact resume).
        g = torch.Generator().manual_seed(self.s.seed * 7919 + self.epoch)
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.s.num_workers,
                          collate_fn=getattr(self.task, "collate", None), persistent_workers=False, generator=g)

    def _to_device(self, batch):
        if torch.is_tensor(batch):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    # -- loop -----------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any] | None:
        from tqdm import tqdm

        self.t0 = time.perf_counter()
        resumed = self._restore()
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.logs = _Logs(self.run_dir, self.step if resumed else 0, resumed)
            if resumed:
                print(f"resuming {self.run_dir} at epoch {self.epoch + 1}, step {self.step}", flush=True)
        stop_reason = None
        n_train = len(self.task.train_dataset)
        if n_train < self.s.batch_size * self.world:
            raise ValueError(f"only {n_train} training examples for batch size {self.s.batch_size} x {self.world} "
                             "processes; lower --batch-size or build more data")
        while self.epoch < self.s.max_epochs and stop_reason is None:
            batches = self._epoch_batches(n_train, self.epoch, shuffle=True)
            skip = self.batch_in_epoch
            for m in self.task.modules().values():
                m.train()
            bar = tqdm(total=len(batches), initial=skip, desc=f"epoch {self.epoch + 1}", unit="batch",
                       disable=not (self.is_main and self.s.progress), dynamic_ncols=True, leave=False)
            for batch in self._loader(self.task.train_dataset, batches[skip:]):
                metrics = self.task.train_step(self._to_device(batch), self.step)
                self.step += 1
                self.batch_in_epoch += 1
                bar.update()
                if not all(math.isfinite(v) for v in metrics.values()):
                    stop_reason = f"non-finite training loss at step {self.step}: {metrics}"
                    break
                if self.is_main and self.step % self.s.log_every_steps == 0:
                    bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in list(metrics.items())[:3]})
                    self.logs.train(self.step, self.epoch + 1, self._elapsed(), metrics)
                if self.step % self.s.ckpt_every_steps == 0:
                    self._save()
                stop_reason = self._limits_reached()
                if stop_reason:
                    break
            bar.close()
            if stop_reason and self.batch_in_epoch < len(batches):
                break  # interrupted mid-epoch by a limit: checkpoint below, no validation
            self.epoch += 1
            self.batch_in_epoch = 0
            val = self._validate()
            improved = val.get(self.task.monitor, math.inf) < self.best
            if improved:
                self.best = val[self.task.monitor]
                self.bad_epochs = self.plateau_epochs = 0
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
                self.logs.plot(self.task.monitor)
                if hasattr(self.task, "on_epoch_end"):
                    self.task.on_epoch_end(self.run_dir, self.epoch)
                print(f"epoch {self.epoch}: " + " ".join(f"{k}={v:.5g}" for k, v in val.items())
                      + (" (best)" if improved else ""), flush=True)
            self._save()
            if self.bad_epochs >= self.s.early_stop_patience:
                stop_reason = f"early stop: no improvement of {self.task.monitor} for {self.bad_epochs} epochs"
        if stop_reason is None:
            stop_reason = f"reached max_epochs={self.s.max_epochs}"
        self._save()
        summary = None
        if self.is_main:
            if not (self.run_dir / "best.safetensors").exists():
                self.task.export(self.run_dir / "best.safetensors")
            summary = {"stop_reason": stop_reason, "epochs": self.epoch, "steps": self.step,
                       "best": self.best if math.isfinite(self.best) else None, "monitor": self.task.monitor,
                       "elapsed_s": round(self._elapsed(), 1), "world_size": self.world,
                       "device": str(self.device), "settings": asdict(self.s)}
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
            print(stop_reason, flush=True)
        self._barrier()
        return summary

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
            n = len(next(iter(b.values()))) if isinstance(b, dict) else len(b)
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


class _Logs:
    """CSV logs (train_log.csv every few steps, val_log.csv every epoch) and a loss-curve PNG.

    On resume, rows past the checkpoint's step are dropped so the curve continues without duplicates.
    """

    def __init__(self, run_dir: Path, resume_step: int, resumed: bool) -> None:
        self.run_dir = run_dir
        self.train_path, self.val_path = run_dir / "train_log.csv", run_dir / "val_log.csv"
        for p, key in ((self.train_path, "step"), (self.val_path, "step")):
            if not resumed and p.exists():
                p.unlink()
            elif resumed and p.exists():
                with p.open() as f:
                    rows = list(csv.DictReader(f))
                keep = [r for r in rows if int(float(r[key])) <= resume_step]
                _write_rows(p, keep)
        self.tb = None
        try:  # TensorBoard when installed
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception:
            self.tb = None

    def train(self, step: int, epoch: int, elapsed: float, metrics: dict[str, float]) -> None:
        _append(self.train_path, {"step": step, "epoch": epoch, "elapsed_s": round(elapsed, 2),
                                  **{k: round(v, 7) for k, v in metrics.items()}})
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def val(self, row: dict[str, Any]) -> None:
        _append(self.val_path, row)
        if self.tb:
            for k, v in row.items():
                if k not in ("epoch", "step", "elapsed_s"):
                    self.tb.add_scalar(k, v, row["step"])

    def plot(self, monitor: str) -> None:
        from pianoforge.training.plots import loss_curve

        try:
            loss_curve(self.train_path, self.val_path, self.run_dir / "loss_curve.png", monitor)
        except Exception as e:  # a plot must never kill a training run
            print(f"warning: loss curve not drawn ({e})", flush=True)


def _append(path: Path, row: dict[str, Any]) -> None:
    rows = []
    if path.exists():
        with path.open() as f:
            rows = list(csv.DictReader(f))
    if rows and set(row) <= set(rows[0]):
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=list(rows[0])).writerow(row)
        return
    _write_rows(path, rows + [row])


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
