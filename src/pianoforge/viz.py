"""Pictures people would rather look at than read: piano rolls and log-magnitude spectrograms.

Uses matplotlib's Agg backend (headless); every figure is written atomically as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pianoforge.config import LOWEST_PITCH, AudioConfig
from pianoforge.fsutil import atomic_output


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG atomically (:func:`pianoforge.fsutil.atomic_output`) and close it."""
    p = Path(path)
    try:
        with atomic_output(p, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        _plt().close(fig)
    return p


def plot_roll(ax, roll: np.ndarray, frame_rate: float, title: str = "score (piano roll)") -> None:
    """roll: (88, frames) held channel in [0, 1] (or velocity)."""
    t = roll.shape[1] / frame_rate
    ax.imshow(roll, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
              extent=(0, t, LOWEST_PITCH - 0.5, LOWEST_PITCH + 87.5), vmin=0, vmax=1)
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)


def plot_logmag(ax, logmag: np.ndarray, audio: AudioConfig, title: str, vmin: float | None = None,
                vmax: float | None = None) -> None:
    """logmag: (frames, bins) natural-log magnitude; shown in dB (20 log10 |X|)."""
    db = logmag.T * (20.0 / np.log(10.0))
    t = logmag.shape[0] / audio.frame_rate
    vmax = float(np.max(db)) if vmax is None else vmax
    vmin = vmax - 90.0 if vmin is None else vmin
    im = ax.imshow(db, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                   extent=(0, t, 0, audio.sample_rate / 2 / 1000), vmin=vmin, vmax=vmax)
    ax.set_ylabel("kHz")
    ax.set_title(title)
    return im


def score_and_spectrograms(path: str | Path, roll: np.ndarray, spectra: list[tuple[str, np.ndarray]],
                           audio: AudioConfig, title: str = "") -> Path:
    """A column of panels: the piano roll, then one log-magnitude spectrogram per (title, (frames, bins))."""
    plt = _plt()
    n = 1 + len(spectra)
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.6 * n), sharex=True)
    plot_roll(axes[0], roll, audio.frame_rate)
    vmax = max(float(np.max(s)) for _, s in spectra) * 20 / np.log(10) if spectra else None
    for ax, (name, s) in zip(axes[1:], spectra, strict=True):
        im = plot_logmag(ax, s, audio, name, vmax=vmax)
        fig.colorbar(im, ax=ax, pad=0.01, label="dB")
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
