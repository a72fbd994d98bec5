"""Launching the training engine: one process, ``devices`` spawned local processes (DDP over
``torch.distributed``: gloo on CPU, NCCL on GPUs), or the processes ``torchrun`` started (its
environment variables are honoured). :class:`TaskFactory` rebuilds a task inside each process."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from pianoforge.errors import TrainingError
from pianoforge.training.config import LoopSettings


class TaskFactory:
    """Picklable ``make_task(device)`` for :func:`launch` (DDP workers are spawned processes):
    ``task_class(FeatureStore(data), preset, device)``."""

    def __init__(self, task_class, data: Path, preset) -> None:
        self.task_class, self.data, self.preset = task_class, Path(data), preset

    def __call__(self, device: torch.device):
        from pianoforge.data.store import FeatureStore

        return self.task_class(FeatureStore(self.data), self.preset, device)


def launch(make_task, settings: LoopSettings, run_dir: Path) -> dict[str, Any] | None:
    """Run training, spawning ``devices`` local processes for DDP when asked (unless under torchrun)."""
    if settings.accelerator == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(None, "--accelerator cuda: torch sees no CUDA GPU here; use --accelerator cpu "
                                      "(or auto: CUDA when there is one)")
        if settings.devices > torch.cuda.device_count():
            raise TrainingError(None, f"--devices {settings.devices}: only {torch.cuda.device_count()} CUDA GPU(s)")
    world = settings.devices * settings.num_nodes
    if world > 1 and "LOCAL_RANK" not in os.environ:
        import torch.multiprocessing as mp

        if not settings.master_port:
            settings.master_port = _free_port()
        try:
            mp.spawn(_worker, args=(make_task, settings, run_dir), nprocs=settings.devices, join=True)
        except mp.ProcessRaisedException as e:  # a worker's one-line error stays one line, not a traceback
            last = str(e).strip().splitlines()[-1]
            if last.startswith("pianoforge.errors.") and ": " in last:
                raise TrainingError(None, last.split(": ", 1)[1]) from None
            raise
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
        from pianoforge.training.loop import Trainer

        return Trainer(make_task, settings, run_dir, rank, world, device).fit()
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
