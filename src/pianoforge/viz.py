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


def plot_roll(ax, roll: np.ndarray, frame_rate: float, title: str = "score (piano roll)", start_s: float = 0.0) -> None:
    """roll: (88, frames) held channel in [0, 1] (or velocity); its first frame at ``start_s`` seconds."""
    t = roll.shape[1] / frame_rate
    ax.imshow(roll, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
              extent=(start_s, start_s + t, LOWEST_PITCH - 0.5, LOWEST_PITCH + 87.5), vmin=0, vmax=1)
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)


def plot_logmag(ax, logmag: np.ndarray, audio: AudioConfig, title: str, vmin: float | None = None,
                vmax: float | None = None, start_s: float = 0.0, frame_rate: float | None = None):
    """logmag: (frames, bins) natural-log magnitude, its first frame at ``start_s`` seconds, ``frame_rate`` rows
    per second (default ``audio.frame_rate``); shown in dB (20 log10 |X|). Returns the image (for a colorbar)."""
    db = logmag.T * (20.0 / np.log(10.0))
    t = logmag.shape[0] / (audio.frame_rate if frame_rate is None else frame_rate)
    vmax = float(np.max(db)) if vmax is None else vmax
    vmin = vmax - 90.0 if vmin is None else vmin
    im = ax.imshow(db, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                   extent=(start_s, start_s + t, 0, audio.sample_rate / 2 / 1000), vmin=vmin, vmax=vmax)
    ax.set_ylabel("kHz")
    ax.set_title(title)
    return im


def score_and_spectrograms_figure(roll: np.ndarray, spectra: list[tuple[str, np.ndarray]], audio: AudioConfig,
                                  title: str = "", start_s: float = 0.0):
    """A column of panels on one time axis: the piano roll, then one log-magnitude spectrogram per (title,
    (frames, bins)), on a shared dB scale. The colorbar has its own grid column spanning the spectrogram
    rows, so every panel keeps the piano roll's exact width and time axis. ``start_s``: time of the first
    frame (a passage cut from a longer piece). Returns the matplotlib figure (not saved)."""
    plt = _plt()
    n = 1 + len(spectra)
    fig = plt.figure(figsize=(11, 2.6 * n))
    grid = fig.add_gridspec(n, 2, width_ratios=(1.0, 0.018), wspace=0.02)
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[i, 0], sharex=axes[0]) for i in range(1, n)]
    plot_roll(axes[0], roll, audio.frame_rate, start_s=start_s)
    vmax = max(float(np.max(s)) for _, s in spectra) * 20 / np.log(10) if spectra else None
    im = None
    for ax, (name, s) in zip(axes[1:], spectra, strict=True):
        im = plot_logmag(ax, s, audio, name, vmax=vmax, start_s=start_s)
    if im is not None:
        fig.colorbar(im, cax=fig.add_subplot(grid[1:, 1]), label="dB")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig


def score_and_spectrograms(path: str | Path, roll: np.ndarray, spectra: list[tuple[str, np.ndarray]],
                           audio: AudioConfig, title: str = "", start_s: float = 0.0) -> Path:
    """:func:`score_and_spectrograms_figure`, written to ``path`` as PNG."""
    return save_figure(score_and_spectrograms_figure(roll, spectra, audio, title, start_s), path)


def sample_grid(path: str | Path, images, title: str = "", cols: int | None = None) -> Path:
    """(n, 1, H, W) images in [-1, 1] as a grid PNG (frequency up, time right), the scale the GAN sees."""
    plt = _plt()
    n = images.shape[0]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w = images.shape[-2:]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2 * max(w / h, 0.5), rows * 2.2), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0].numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1,
                      interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
