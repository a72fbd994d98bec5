"""Checkpoints: safetensors tensors + JSON metadata + a format version. No pickles anywhere.

Two kinds of artifact:
- an **inference checkpoint**: one ``.safetensors`` file whose header metadata holds
  ``{"format": "pianoforge-checkpoint", "format_version": "1", "kind": ..., "config": <JSON>}``.
  It holds the model weights and buffers (normalization stats included), so it alone rebuilds the model.
- a **training state**: a folder ``step-XXXXXXX/`` with ``tensors.safetensors`` (model, optimizer and RNG
  tensors) and ``state.json`` (step, epoch, position in the epoch, early-stopping state, optimizer hyper-
  parameters), written into a temporary folder and renamed, then named in ``LATEST`` (atomic replace).
Unknown formats and versions are rejected with a clear message.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError

from pianoforge.errors import PianoforgeError
from pianoforge.fsutil import atomic_output, write_text_atomic

if TYPE_CHECKING:  # torch is imported where tensors are made: reading an inference checkpoint as numpy
    import torch  # (load_checkpoint_numpy, the numpy engine) needs no torch

FORMAT = "pianoforge-checkpoint"
FORMAT_VERSION = 1
STATE_FORMAT = "pianoforge-train-state"


class CheckpointError(PianoforgeError):
    """A checkpoint that is missing, corrupt, or of an unknown format or version."""


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: dict[str, Any],
                    dtype: torch.dtype | None = None) -> Path:
    """Write an inference checkpoint atomically. ``dtype`` (e.g. torch.float16) shrinks float tensors."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind,
            "config": json.dumps(config, sort_keys=True)}
    with atomic_output(p) as tmp:
        save_file(out, str(tmp), metadata=meta)
    return p


def save_checkpoint_numpy(path: str | Path, tensors: dict[str, np.ndarray], kind: str, config: dict[str, Any]) -> Path:
    """:func:`save_checkpoint` for numpy arrays (kept in their own dtypes), without torch."""
    from safetensors.numpy import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind,
            "config": json.dumps(config, sort_keys=True)}
    with atomic_output(p) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=meta)
    return p


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """Validate the header of an inference checkpoint and return ``{"kind", "config", ...}``."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "checkpoint not found")
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(p, f"not a safetensors checkpoint or corrupt ({' '.join(str(e).split())[:120]})") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(p, f"not a {FORMAT} file")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(p, f"unsupported checkpoint format version {meta.get('format_version')!r} "
                                 f"(this pianoforge reads {FORMAT_VERSION})")
    try:
        config = json.loads(meta["config"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(p, "checkpoint metadata has no valid config") from e
    return {"kind": meta.get("kind"), "config": config}


def load_checkpoint(path: str | Path, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors as float32, metadata). ``kind`` checks the checkpoint holds that kind of model."""
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(path)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(path, f"holds a {meta['kind']!r} model, expected {kind!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(path, f"corrupt tensors ({' '.join(str(e).split())[:120]})") from e
    bad = non_finite_tensors(tensors)
    if bad:
        raise CheckpointError(path, f"{len(bad)} of {len(tensors)} tensors hold NaN or infinite values (e.g. "
                                    f"{bad[0]!r}); the model diverged when it was trained, use another checkpoint")
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}, meta


def load_checkpoint_numpy(path: str | Path, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """:func:`load_checkpoint` without torch: (numpy arrays, float ones as float32; metadata), the same checks
    and messages."""
    from safetensors.numpy import load_file

    meta = read_checkpoint_meta(path)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(path, f"holds a {meta['kind']!r} model, expected {kind!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(path, f"corrupt tensors ({' '.join(str(e).split())[:120]})") from e
    bad = sorted(k for k, v in tensors.items() if v.dtype.kind == "f" and not bool(np.isfinite(v).all()))
    if bad:
        raise CheckpointError(path, f"{len(bad)} of {len(tensors)} tensors hold NaN or infinite values (e.g. "
                                    f"{bad[0]!r}); the model diverged when it was trained, use another checkpoint")
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in tensors.items()}, meta


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity, sorted."""
    import torch

    return sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))


# -------------------------------------------------------------------------------------- train state

def optimizer_to_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able rest."""
    import torch

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                           info: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    pre = f"{prefix}.state."
    for k, v in tensors.items():
        if k.startswith(pre):
            idx, name = k[len(pre):].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for k, v in info.get("scalars", {}).items():
        idx, name = k.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_train_state(ckpt_dir: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                     keep: int = 2, keep_as: str | None = None) -> Path:
    """Write ``ckpt_dir/step-XXXXXXX`` atomically, point ``LATEST`` at it, prune older ``step-*`` ones.
    ``keep_as``: also keep the same state as ``ckpt_dir/<keep_as>`` (e.g. ``epoch-0004``), never pruned: a
    run can later be branched from it (``--from-state``)."""
    from safetensors.torch import save_file

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = ckpt_dir / name
    with atomic_output(final, folder=True) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"format": STATE_FORMAT, "format_version": FORMAT_VERSION,
                                                    **state}, indent=1))
    if keep_as:  # the same files under a second name: hard links (never rewritten in place), else copies
        with atomic_output(ckpt_dir / keep_as, folder=True) as tmp:
            for f in final.iterdir():
                try:
                    os.link(f, tmp / f.name)
                except OSError:
                    shutil.copyfile(f, tmp / f.name)
    write_text_atomic(ckpt_dir / "LATEST", name + "\n")
    steps = sorted(d for d in ckpt_dir.glob("step-*") if d.is_dir())
    for old in steps[:-keep]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    for stale in ckpt_dir.glob(".tmp-*"):  # temporaries named before fsutil's (older pianoforge)
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_train_state(ckpt_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The state named by ``LATEST``, or None when there is none yet."""
    latest = ckpt_dir / "LATEST"
    if not latest.exists():
        return None
    return read_train_state(ckpt_dir / latest.read_text().strip())


def train_state_folder(path: Path) -> Path:
    """The training-state folder ``path`` names: a run folder (its latest state), its ``checkpoints`` folder,
    or one state folder (``checkpoints/step-N``, ``checkpoints/epoch-N``). CheckpointError otherwise."""
    path = Path(path)
    for ckpt_dir in (path / "checkpoints", path):
        if (ckpt_dir / "LATEST").is_file():
            return ckpt_dir / (ckpt_dir / "LATEST").read_text().strip()
    if (path / "state.json").is_file() and (path / "tensors.safetensors").is_file():
        return path
    raise CheckpointError(path, "is not a run folder or a training state (no checkpoints/LATEST, no state.json "
                                "with tensors.safetensors)")


def read_train_state(d: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One training-state folder's tensors and state (CheckpointError when unreadable or of another format)."""
    from safetensors.torch import load_file

    try:
        state = json.loads((d / "state.json").read_text())
        tensors = load_file(str(d / "tensors.safetensors"))
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(d, f"corrupt training state ({' '.join(str(e).split())[:120]})") from e
    if state.get("format") != STATE_FORMAT or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(d, f"unsupported training state version {state.get('format_version')!r}")
    return tensors, state
