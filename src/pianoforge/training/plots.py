"""Loss-curve PNG from the CSV logs of a run."""

from __future__ import annotations

import csv
from pathlib import Path


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def loss_curve(train_csv: Path, val_csv: Path, out_png: Path, monitor: str = "val/loss") -> Path:
    """Training loss (every logged step) and validation metric (every epoch) against steps."""
    from pianoforge.viz import _plt, save_figure

    plt = _plt()
    tr, va = _read(train_csv), _read(val_csv)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if tr and "loss" in tr[0]:
        ax.plot([float(r["step"]) for r in tr], [float(r["loss"]) for r in tr], lw=0.8, alpha=0.7, label="train loss")
    if va and monitor in va[0]:
        ax.plot([float(r["step"]) for r in va], [float(r[monitor]) for r in va], "o-", lw=1.5, label=monitor)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(out_png.parent.name)
    return save_figure(fig, out_png)
