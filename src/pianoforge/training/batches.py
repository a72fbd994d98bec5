"""The engine's batches (``training/loop.py``): which examples a rank trains on in an epoch, the loader over
them, and moving a batch to the device. Seeded so that a resume, mid-epoch included, draws the same batches."""

from __future__ import annotations

import math
from typing import Any

import torch


def epoch_batches(n: int, epoch: int, shuffle: bool, seed: int, rank: int, world: int,
                  batch_size: int) -> list[list[int]]:
    """This rank's batches of example indices for an epoch: a seeded permutation of ``range(n)``, sharded by
    rank, as many on every rank (the ragged last batch dropped while training)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    per_rank = len(order) // world if shuffle else math.ceil(len(order) / world)
    mine = order[rank::world][:per_rank]
    batches = [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    if shuffle and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    return batches


def epoch_loader(dataset, batches: list[list[int]], seed: int, epoch: int, num_workers: int, collate=None):
    """A DataLoader over ``batches`` of ``dataset``."""
    from torch.utils.data import DataLoader

    # A private generator: creating a loader iterator draws a base seed, and drawing it from the global RNG
    # would shift every later random draw after a mid-epoch resume (breaking exact resume).
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate,
                      persistent_workers=False, generator=g)


def to_device(batch: Any, device: torch.device) -> Any:
    """A tensor, or a dict of them, on ``device``; anything else as it is."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
