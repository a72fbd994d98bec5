"""GAN health at every epoch end: collapse and divergence are detected, not discovered by ear.

- **Diversity** (:func:`pianoforge.adversarial.diversity_ratio`): mean pairwise L1 of a fixed bank of
  generated images (EMA generator, fixed latents) divided by that of a fixed bank of real training
  images. ~1 is healthy; below ``collapse_threshold`` (default 0.25) is reported as MODE COLLAPSE once
  the generator has made ``collapse_warmup_g_steps`` (200) updates (a fresh generator's output is nearly
  constant; that is not a collapse). The ratio is logged every epoch regardless.
- **Divergence** (:func:`divergence_warnings`), from the epoch's mean training metrics: NaN/inf; a
  Wasserstein estimate or gradient penalty beyond ``diverge_wgan`` (specgan); a discriminator loss
  below ``diverge_d_loss`` (dcgan/stylegan: D wins outright, the generator's gradients vanish) or a
  generator loss above ``diverge_g_loss``.

Warnings go to stderr as ``WARNING (epoch N): ...`` and into ``monitor_log.csv`` (column ``warning``).
``gan_curves.png`` plots both losses, the penalty and the diversity.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from pianoforge.training.run_folder import write_rows


class EpochStats:
    """Running means of training metrics within one epoch (and whether any value was non-finite)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.nonfinite: list[str] = []

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            if not math.isfinite(v):
                if k not in self.nonfinite:
                    self.nonfinite.append(k)
                continue
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def divergence_warnings(arch: str, stats: EpochStats, train_cfg: dict[str, Any]) -> list[str]:
    """One-line warnings about diverging training, from one epoch's :class:`EpochStats`."""
    out = []
    if stats.nonfinite:
        out.append(f"DIVERGED: non-finite {', '.join(stats.nonfinite)} this epoch; lower the learning rate and "
                   "resume from an earlier checkpoint")
    m = stats.means()
    if arch == "specgan":
        lim = float(train_cfg["diverge_wgan"])
        if abs(m.get("w_dist", 0.0)) > lim:
            out.append(f"DIVERGING: the critic's Wasserstein estimate |W| = {abs(m['w_dist']):.4g} exceeds {lim:g}")
        if m.get("gp", 0.0) > lim / 100:
            out.append(f"DIVERGING: mean gradient penalty {m['gp']:.4g} exceeds {lim / 100:g} (critic far from 1-Lipschitz)")
    else:
        lo, hi = float(train_cfg["diverge_d_loss"]), float(train_cfg["diverge_g_loss"])
        if "d_loss" in m and m["d_loss"] < lo:
            out.append(f"DISCRIMINATOR WINS: mean D loss {m['d_loss']:.4g} < {lo:g}, the generator's gradients vanish "
                       "(try label smoothing / flipping or a lower D learning rate)")
        if m.get("g_loss", 0.0) > hi:
            out.append(f"DIVERGING: mean G loss {m['g_loss']:.4g} > {hi:g}")
    return out


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row to a CSV file (rewriting it when the columns change)."""
    rows: list[dict[str, Any]] = []
    if path.exists():
        with path.open() as f:
            rows = list(csv.DictReader(f))
    rows = [r for r in rows if int(float(r.get("epoch", 0))) < int(row["epoch"])] + [row]  # a resumed epoch
    write_rows(path, rows)


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def gan_curves(run_dir: Path, out_png: Path) -> Path | None:
    """Losses and penalty against steps (train_log.csv), diversity against epochs (monitor_log.csv)."""
    from pianoforge.viz import _plt, save_figure

    tr, mon = _read(run_dir / "train_log.csv"), _read(run_dir / "monitor_log.csv")
    if not tr and not mon:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("d_loss", "g_loss", "gp", "w_dist"):
        pts = [(float(r["step"]), float(r[key])) for r in tr if r.get(key) not in (None, "")]
        if pts:
            a1.plot(*zip(*pts, strict=True), lw=0.9, label=key)
    a1.set_xlabel("step")
    a1.grid(True, alpha=0.3)
    if a1.lines:
        a1.legend()
    a1.set_title("training losses")
    pts = [(float(r["epoch"]), float(r["diversity"])) for r in mon if r.get("diversity") not in (None, "")]
    if pts:
        a2.plot(*zip(*pts, strict=True), "o-", label="generated / real pairwise L1")
        a2.axhline(1.0, color="gray", lw=0.8, ls="--")
    a2.set_xlabel("epoch")
    a2.set_ylim(bottom=0)
    a2.grid(True, alpha=0.3)
    if pts:
        a2.legend()
    a2.set_title("sample diversity")
    fig.suptitle(run_dir.name)
    return save_figure(fig, out_png)
