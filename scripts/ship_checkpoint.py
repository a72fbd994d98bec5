"""Copy a finished training run into the package: weights to ``src/pianoforge/weights/NAME.safetensors`` and
the run's logs (train/val CSV, loss curve, summary, run config, a GAN run's ``epoch_select.json``) to
``docs/runs/NAME/``. A GAN epoch's export (``RUN/epochs/epoch-NNNN.safetensors``) ships with ``RUN``'s logs.

    python scripts/ship_checkpoint.py runs/default/best.safetensors perform-default
    python scripts/ship_checkpoint.py runs/notesynth/best.safetensors perform-default \
        --inference chunk_seconds=8 --inference overlap_seconds=0.1

``--inference KEY=VALUE`` rewrites the checkpoint's ``inference`` section (how it renders, never what it learned;
checked by :class:`pianoforge.config.InferenceConfig`, or for a GAN by
:class:`pianoforge.models.gan.config.GanInferenceConfig`, e.g. NoteGAN's ``strike_threshold`` and
``strike_floor``) and re-saves the same tensors.

    python scripts/ship_checkpoint.py runs/gan/notegan-gate10-iv/epochs/epoch-0005.safetensors gan-default \
        --inference strike_threshold=0.25 --inference strike_floor=0.5

The checkpoint is loaded first (a perform or GAN checkpoint, safetensors + JSON only), so a broken file is
never shipped; every shipped file must stay under 20 MB. Files are written atomically with mode 0644.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ("train_log.csv", "val_log.csv", "loss_curve.png", "summary.json", "run_config.json", "monitor_log.csv",
        "epoch_select.json", "epoch_select-t*.json")
MAX_BYTES = 20 * 1024 * 1024


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _ship_with_inference(src: Path, dst: Path, settings: list[str], kind: str) -> None:
    """Re-save ``src`` at ``dst`` with its preset's inference section updated by ``KEY=VALUE`` strings."""
    import yaml

    from pianoforge.checkpoint import load_checkpoint, save_checkpoint
    from pianoforge.config import InferenceConfig, Preset
    from pianoforge.models.gan.config import GanInferenceConfig

    tensors, meta = load_checkpoint(src, kind=kind)
    config = meta["config"]
    inference = dict(config["preset"].get("inference") or {})
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"error: --inference {item!r} is not KEY=VALUE")
        inference[key.strip()] = yaml.safe_load(value)
    config["preset"]["inference"] = inference
    section = GanInferenceConfig if kind == "gan" else InferenceConfig
    section.from_preset(Preset.from_dict(config["preset"], str(src)))  # one-line error if invalid
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst, tensors, kind=kind, config=config)
    os.chmod(dst, 0o644)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="the run's inference checkpoint (best.safetensors)")
    ap.add_argument("name", help="shipped name, e.g. perform-default, perform-lan2018, gan-default")
    ap.add_argument("--inference", action="append", default=[], metavar="KEY=VALUE",
                    help="set a key of the checkpoint's inference section (repeatable)")
    a = ap.parse_args()
    from pianoforge.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(a.checkpoint)  # raises a one-line error on a foreign or corrupt file
    size = a.checkpoint.stat().st_size
    if size >= MAX_BYTES:
        sys.exit(f"error: {a.checkpoint}: {size / 2**20:.1f} MiB, over the 20 MB limit for shipped files")
    dst = ROOT / "src" / "pianoforge" / "weights" / f"{a.name}.safetensors"
    if a.inference:
        _ship_with_inference(a.checkpoint, dst, a.inference, meta.get("kind", "perform"))
    else:
        _copy(a.checkpoint, dst)
    run = a.checkpoint.parent
    if run.name == "epochs":  # an epoch's export (train.keep_epoch_exports): the run folder is one up
        run = run.parent
    docs = ROOT / "docs" / "runs" / a.name
    copied = []
    for pattern in LOGS:
        for f in sorted(run.glob(pattern)):
            _copy(f, docs / f.name)
            copied.append(f.name)
    print(f"{dst} ({size / 2**20:.2f} MiB, kind {meta.get('kind')}); logs {', '.join(copied)} -> {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
