"""A task's training state as flat tensors + JSON (``checkpoints/step-N``, written by
:func:`pianoforge.checkpoint.save_train_state`): every module's state dict, every optimizer's state, torch's RNG.
Used by the engine (``training/loop.py``) to save, resume and branch (``--from-state``)."""

from __future__ import annotations

from typing import Any

import torch

from pianoforge.checkpoint import optimizer_from_tensors, optimizer_to_tensors


def task_state(task, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors: ``module.<name>.<key>``, ``optim.<name>.*``, ``rng.torch``; ``state`` plus the optimizers'
    JSON part under ``optimizers``)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, m in task.modules().items():
        for k, v in m.state_dict().items():
            tensors[f"module.{name}.{k}"] = v
    opt_info = {}
    for name, opt in task.optimizers().items():
        t, info = optimizer_to_tensors(opt, f"optim.{name}")
        tensors.update(t)
        opt_info[name] = info
    tensors["rng.torch"] = torch.get_rng_state()
    return tensors, {**state, "optimizers": opt_info}


def restore_task(task, tensors: dict[str, torch.Tensor], state: dict[str, Any], keep_own_rates: bool = False) -> None:
    """Load modules, optimizers and torch's RNG from a saved state. ``keep_own_rates`` (a branch): the
    optimizers' moments carry over, their hyperparameters (learning rates, weight decay, ...) stay the task's."""
    for name, m in task.modules().items():
        pre = f"module.{name}."
        m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
    for name, opt in task.optimizers().items():
        own = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        optimizer_from_tensors(opt, f"optim.{name}", tensors, state["optimizers"][name])
        if keep_own_rates:
            for group, settings in zip(opt.param_groups, own, strict=True):
                group.update(settings)
    torch.set_rng_state(tensors["rng.torch"])
