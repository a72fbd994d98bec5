"""Copy a finished training run into the package: weights to ``src/pianoforge/weights/NAME.safetensors`` and
the run's logs (train/val CSV, loss curve, summary, run config) to ``docs/runs/NAME/``.

    python scripts/ship_checkpoint.py runs/default/best.safetensors perform-default

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
LOGS = ("train_log.csv", "val_log.csv", "loss_curve.png", "summary.json", "run_config.json", "monitor_log.csv")
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="the run's inference checkpoint (best.safetensors)")
    ap.add_argument("name", help="shipped name, e.g. perform-default, perform-lan2018, gan-default")
    a = ap.parse_args()
    from pianoforge.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(a.checkpoint)  # raises a one-line error on a foreign or corrupt file
    size = a.checkpoint.stat().st_size
    if size >= MAX_BYTES:
        sys.exit(f"error: {a.checkpoint}: {size / 2**20:.1f} MiB, over the 20 MB limit for shipped files")
    dst = ROOT / "src" / "pianoforge" / "weights" / f"{a.name}.safetensors"
    _copy(a.checkpoint, dst)
    run = a.checkpoint.parent
    docs = ROOT / "docs" / "runs" / a.name
    copied = []
    for f in LOGS:
        if (run / f).exists():
            _copy(run / f, docs / f)
            copied.append(f)
    print(f"{dst} ({size / 2**20:.2f} MiB, kind {meta.get('kind')}); logs {', '.join(copied)} -> {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
