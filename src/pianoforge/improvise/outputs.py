"""Improvise: what ``pianoforge generate`` writes -- clips as WAV + spectrogram PNG in a folder
(:func:`generate_to_folder`), in batches or, for long clips, streamed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pianoforge.audio.io import save_audio
from pianoforge.audio.stream import write_audio_stream
from pianoforge.config import AudioConfig
from pianoforge.errors import ConfigError
from pianoforge.fsutil import check_folder
from pianoforge.improvise.generator import Clips, GanGenerator, shipped_checkpoint
from pianoforge.improvise.long import preview_stride

GENERATE_BATCH = 16
"""Clips :func:`generate_to_folder` holds at once (16 clips of 4 s at 8 kHz: a few MB, plus the model)."""


def spectrogram_png(path: str | Path, logmag: np.ndarray, audio: AudioConfig, title: str,
                    frame_rate: float | None = None) -> Path:
    """One clip's (frames, bins) natural-log magnitude as a PNG (dB, like the perform figures); ``frame_rate``:
    of the rows given (default the STFT's; a long clip's preview keeps every k-th frame)."""
    from pianoforge.viz import _plt, plot_logmag, save_figure

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6 if frame_rate is None else 12, 3))
    plot_logmag(ax, logmag, audio, title, frame_rate=frame_rate)
    ax.set_xlabel("seconds")
    return save_figure(fig, path)


def write_clips(clips: Clips, out_dir: Path, names: list[str], audio: AudioConfig) -> list[Path]:
    """Write ``<name>.wav`` and ``<name>.png`` for each clip; returns the WAV paths."""
    paths = []
    for name, y, lm in zip(names, clips.audio, clips.logmag, strict=True):
        paths.append(save_audio(out_dir / f"{name}.wav", y, clips.sample_rate))
        spectrogram_png(out_dir / f"{name}.png", lm, audio, name)
    return paths


def output_names(n: int, seed: int = 0, interpolate: bool = False, seed_b: int | None = None) -> list[str]:
    """File stems :func:`generate_to_folder` writes (each as .wav and .png; an interpolation also writes
    the whole sequence as ``interp-A-B.wav``, the last name)."""
    if not interpolate:
        return [f"clip-seed{seed + i}" for i in range(n)]
    b = seed + 1 if seed_b is None else seed_b
    return [f"interp-{seed}-{b}-{i:03d}" for i in range(n)] + [f"interp-{seed}-{b}"]


def generate_to_folder(out_dir: str | Path, n: int, checkpoint: str | Path | None = None, seed: int = 0,
                       interpolate: bool = False, seed_b: int | None = None, denoise: bool = False,
                       phase: str | None = None, iterations: int | None = None, batch: int = GENERATE_BATCH,
                       progress: bool = False, generator: GanGenerator | None = None,
                       seconds: float | None = None) -> dict[str, Any]:
    """What ``pianoforge generate`` does: N clips (or an N-step interpolation) as WAV + PNG in ``out_dir``.

    ``batch`` clips at a time are generated, written (each file atomically) and dropped, so memory does not
    grow with N (only the list of names does, ~100 B a clip); clip i is the same whatever ``batch`` is (its
    latent and its Griffin-Lim start depend on its seed only). A failure or Ctrl-C leaves the clips written
    before it and no temporary file; an interpolation's whole-sequence WAV is streamed and appears last.
    ``progress``: a bar over the clips on stderr. ``generator``: already loaded from ``checkpoint`` (the CLI
    loads it first, so that a bad checkpoint fails before the output folder is made).

    ``seconds``: the clips' length (default: the generator's window, as without it). Shorter: the window's
    clip cut; longer: a long clip (:meth:`GanGenerator.long_audio`, generators that tile in time), streamed
    one clip at a time, its PNG made of every :func:`preview_stride`-th frame. Not with ``interpolate`` or
    ``denoise``; a ConfigError before anything is written otherwise."""
    from tqdm import tqdm

    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    t0 = time.perf_counter()
    gen = generator if generator is not None else GanGenerator.from_checkpoint(checkpoint)
    samples = gen.window_samples if seconds is None else gen.clip_samples(seconds)
    long = samples > gen.window_samples
    if seconds is not None and (interpolate or denoise) and samples != gen.window_samples:
        raise ConfigError(None, f"--seconds does not apply to {'--interpolate' if interpolate else '--denoise'}")
    out = check_folder(out_dir, create=True)  # a read-only or missing place fails before any work
    kw = {"phase": phase, "iterations": iterations}
    names = output_names(n, seed, interpolate, seed_b)
    bar = tqdm(total=n, unit="clip", desc="generate", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    clip_seconds = samples / gen.sample_rate
    if long:
        with bar:
            for i, name in enumerate(names):
                preview: list[np.ndarray] = []
                write_audio_stream(out / f"{name}.wav", gen.long_audio(seed + i, seconds, preview=preview, **kw),
                                   gen.sample_rate)
                k = preview_stride(-(-samples // gen.audio_config.hop_length))
                spectrogram_png(out / f"{name}.png", np.stack(preview), gen.audio_config,
                                f"{name} ({clip_seconds:g} s)", frame_rate=gen.audio_config.frame_rate / k)
                bar.update(1)
        return {"wavs": [out / f"{name}.wav" for name in names], "sample_rate": gen.sample_rate,
                "seconds": clip_seconds, "wall_s": time.perf_counter() - t0,
                "checkpoint": str(checkpoint) if checkpoint else str(shipped_checkpoint())}
    z = gen.interpolation_latents(seed, seed + 1 if seed_b is None else seed_b, n) if interpolate else None

    def batches() -> Iterator[Clips]:
        for i0 in range(0, n, batch):
            k = min(batch, n - i0)
            clips = (gen.render(z[i0:i0 + k], [seed] * k, denoise, **kw) if z is not None
                     else gen.generate_clips(k, seed + i0, denoise, **kw))
            if samples < gen.window_samples:  # a shorter clip: the window's, cut
                frames = -(-samples // gen.audio_config.hop_length)
                clips = Clips([y[:samples] for y in clips.audio], clips.logmag[:, :frames], clips.images,
                              clips.sample_rate)
            write_clips(clips, out, names[i0:i0 + k], gen.audio_config)
            bar.update(k)
            yield clips

    with bar:
        if interpolate:  # the whole sequence streams into one WAV while its steps are written
            write_audio_stream(out / f"{names[-1]}.wav", (y for c in batches() for y in c.audio), gen.sample_rate)
        else:
            for _ in batches():
                pass
    return {"wavs": [out / f"{name}.wav" for name in names], "sample_rate": gen.sample_rate, "seconds": clip_seconds,
            "wall_s": time.perf_counter() - t0,
            "checkpoint": str(checkpoint) if checkpoint else str(shipped_checkpoint())}
