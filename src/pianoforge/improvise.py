"""Improvise: piano clips from noise with a GAN generator checkpoint. Never imports training code.

``GanGenerator.from_checkpoint(path)`` needs nothing but the checkpoint: the generator's (EMA) weights,
and in its JSON config the full preset, the model config, the image size, the STFT grid and the
normalization statistics of the training data. The inverse chain (exact wherever the forward chain
of :mod:`pianoforge.data.gan_images` is):

1. image (n, 1, H, W), clamped to [-1, 1] (the tanh / training range);
2. inverse resize to the STFT grid (bins, frames): the Nyquist bin the images drop comes back at its
   training mean, a resized time axis is resized back (:func:`pianoforge.data.gan_images.image_to_logmag`);
3. ``Normalizer.from_unit``: times 3 std, times the per-bin std, plus the per-bin mean of the TRAINING
   data (the statistics stored in the checkpoint, never recomputed) -> natural-log magnitude;
4. ``exp(.) - eps`` -> linear magnitude -> phase reconstruction (Griffin-Lim by default) -> audio of
   ``frames * hop`` samples at the preset's sample rate;
5. optionally, stationary spectral gating (noisereduce) with a noise profile taken from the clip's
   quietest frames -- not from the whole signal, which would treat the music as noise.

A clip's latent depends on its seed only: clip k of ``generate(n, seed)`` is ``generate(1, seed + k)``.

Long clips (``generate --seconds``, :meth:`GanGenerator.long_audio`; generators that tile in time: the
FrameGAN trunk, i.e. framegan and the shipped notegan): a clip of M windows draws M latents from its seed's
random stream (the first is the seed's own latent, so a long clip begins as the window-long clip of its seed
does), joins their base grids in time (neighbours crossfaded over a quarter of a grid, so a new window starts
every 3.072 s for the shipped generator) and runs the rest of the generator over the whole sequence
(:meth:`~pianoforge.models.gan.frame.FrameTrunk.sample_tiled`): notes struck before a join ring on after it
and the convolutions blend the two grids. It is computed a few windows at a time with enough windows of
context on each side that every frame is the whole sequence's (:meth:`GanGenerator.long_images`), and the
magnitudes stream through :class:`~pianoforge.phase.stream.PhaseStream` (one phase reconstruction over the
whole clip, no joins in it either) into the streaming WAV writer: memory does not grow with the length.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge.audio.io import save_audio
from pianoforge.audio.spectral import Normalizer, inverse_log_magnitude
from pianoforge.audio.stream import write_audio_stream
from pianoforge.checkpoint import CheckpointError, load_checkpoint
from pianoforge.config import GAN_PHASES, AudioConfig, Preset
from pianoforge.data.gan_images import image_to_logmag, logmag_to_image
from pianoforge.errors import ConfigError, PianoforgeError
from pianoforge.fsutil import check_folder
from pianoforge.gan_audio import images_to_audio, logmag_to_audio
from pianoforge.models.gan import GanModelConfig, build_generator, generate_images, sample_latent
from pianoforge.models.gan.config import GanInferenceConfig, gan_checkpoint_config
from pianoforge.names import GAN_MAX_SECONDS
from pianoforge.viz import sample_grid

__all__ = ["Clips", "GanGenerator", "gan_checkpoint_config", "generate_to_folder", "image_to_logmag", "logmag_to_audio", "logmag_to_image",
           "reduce_noise", "sample_grid"]

DEFAULT_CHECKPOINT = "gan-default.safetensors"
PHASES = GAN_PHASES
GENERATE_BATCH = 16
"""Clips :func:`generate_to_folder` holds at once (16 clips of 4 s at 8 kHz: a few MB, plus the model)."""
LONG_BLOCK_TILES = 8
"""Windows of a long clip generated together (plus the context windows on each side)."""
PREVIEW_FRAMES = 4096
"""A long clip's spectrogram PNG shows at most this many frames (every k-th frame beyond)."""
NOISE_QUANTILE = 0.1
"""Noise reduction: the quietest 10 % of frames (by RMS) form the noise profile."""


# ------------------------------------------------------------------------------------ the inverse chain

def noise_profile(audio: np.ndarray, frame: int, quantile: float = NOISE_QUANTILE) -> np.ndarray:
    """The quietest ``quantile`` of ``frame``-sample frames (by RMS, at least 4 frames), concatenated."""
    n = len(audio) // frame
    if n < 4:
        return np.asarray(audio, dtype=np.float32)
    frames = np.asarray(audio[: n * frame], dtype=np.float32).reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    k = max(4, int(round(quantile * n)))
    return frames[np.sort(np.argsort(rms, kind="stable")[:k])].reshape(-1)


def reduce_noise(audio: np.ndarray, sample_rate: int, frame: int) -> np.ndarray:
    """Stationary spectral gating (noisereduce) with :func:`noise_profile` as the noise clip."""
    try:
        import noisereduce
    except ImportError as e:
        raise PianoforgeError(None, "noise reduction needs noisereduce; install with `pip install -e .[eval]`") from e
    x = np.asarray(audio, dtype=np.float32)
    if not np.any(x):
        return x
    y = noisereduce.reduce_noise(y=x, sr=int(sample_rate), y_noise=noise_profile(x, frame), stationary=True,
                                 n_fft=max(256, 2 * frame))
    return np.asarray(y, dtype=np.float32)


# --------------------------------------------------------------------------------------- checkpoints

def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of the GAN generator shipped in ``pianoforge/weights/``; CheckpointError when absent."""
    p = Path(str(resources.files("pianoforge") / "weights" / name))
    if not p.is_file():
        raise CheckpointError(p, "no shipped GAN generator yet; train one with `pianoforge train gan` and pass "
                                 "--checkpoint RUN/best.safetensors")
    return p


@dataclass
class Clips:
    audio: list[np.ndarray]  # each (frames * hop,) float32 at ``sample_rate``
    logmag: np.ndarray  # (n, frames, bins) natural-log magnitude (frames first, as stored and plotted)
    images: torch.Tensor  # (n, 1, H, W) generator output in [-1, 1]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.audio)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Each clip's audio (frames * hop,) float32, in order."""
        return iter(self.audio)


class GanGenerator:
    """A trained generator plus everything needed to turn its images into audio."""

    def __init__(self, model: nn.Module, preset: Preset, normalizer: Normalizer, size: tuple[int, int],
                 grid: tuple[int, int], meta: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.preset, self.normalizer = preset, normalizer
        self.size, self.grid = (int(size[0]), int(size[1])), (int(grid[0]), int(grid[1]))
        self.meta = meta or {}
        inf = GanInferenceConfig.from_preset(preset)
        self.phase, self.iterations = inf.phase, inf.iterations

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None) -> GanGenerator:
        """Rebuild the generator from a ``kind="gan"`` checkpoint (default: the shipped one)."""
        p = Path(path) if path else shipped_checkpoint()
        tensors, meta = load_checkpoint(p, kind="gan")
        cfg = meta["config"]
        try:
            preset = Preset.from_dict(cfg["preset"], str(p))
            mcfg = GanModelConfig.from_dict(cfg["model"])
            GanInferenceConfig.from_preset(preset)
            size, grid = tuple(cfg["image_size"]), tuple(cfg["grid"])
            model = build_generator(mcfg, size)
            model.load_state_dict(tensors)
            norm = Normalizer.from_dict(cfg["normalizer"])
        except (KeyError, ValueError, TypeError, RuntimeError, ConfigError) as e:
            raise CheckpointError(p, f"checkpoint does not match this pianoforge's GAN models ({str(e)[:120]})") from e
        if len(norm.mean) != grid[0]:
            raise CheckpointError(p, f"normalizer has {len(norm.mean)} bins but the grid has {grid[0]}")
        return cls(model, preset, norm, size, grid, cfg)

    @property
    def audio_config(self) -> AudioConfig:
        return self.preset.audio

    @property
    def sample_rate(self) -> int:
        return self.preset.audio.sample_rate

    @property
    def seconds(self) -> float:
        return self.grid[1] * self.preset.audio.hop_length / self.sample_rate

    def latent(self, seed: int) -> torch.Tensor:
        """The latent (latent_dim,) of a seed."""
        g = torch.Generator().manual_seed(int(seed))
        return sample_latent(1, self.model.latent_dim, self.model.latent, generator=g)[0]

    @torch.inference_mode()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        """z (n, latent_dim) -> (n, 1, H, W) in [-1, 1] (stylegan: the stored 'const' noise)."""
        dev = next(self.model.parameters()).device
        return generate_images(self.model, z.to(dev), noise_mode="const").float().cpu().clamp(-1.0, 1.0)

    @torch.inference_mode()
    def render(self, z: torch.Tensor, phase_seeds: list[int], denoise: bool = False, phase: str | None = None,
               iterations: int | None = None) -> Clips:
        """Latents (n, latent_dim) -> :class:`Clips`; clip i's Griffin-Lim starts from ``phase_seeds[i]``.
        Images are generated one latent at a time, so a clip is bit-identical whatever else is generated."""
        imgs = torch.cat([self.images(z[i:i + 1]) for i in range(len(z))])
        a = self.preset.audio
        method, n_iter = phase or self.phase, self.iterations if iterations is None else iterations
        audio, logmag = images_to_audio(imgs, self.normalizer, self.grid, a, method, n_iter, phase_seeds)
        if denoise:
            audio = [reduce_noise(y, a.sample_rate, a.hop_length) for y in audio]
        return Clips(audio, logmag.transpose(1, 2).numpy(), imgs, a.sample_rate)

    def generate(self, n: int, seed: int = 0, denoise: bool = False, **kwargs: Any) -> list[np.ndarray]:
        """``n`` clips (frames * hop,) float32 from seeds ``seed .. seed + n - 1`` (reproducible)."""
        return self.generate_clips(n, seed, denoise, **kwargs).audio

    def generate_clips(self, n: int, seed: int = 0, denoise: bool = False, **kwargs: Any) -> Clips:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        seeds = [seed + i for i in range(n)]
        return self.render(torch.stack([self.latent(s) for s in seeds]), seeds, denoise, **kwargs)

    # ------------------------------------------------------------------ long clips (tiled in time)

    @property
    def window_samples(self) -> int:
        """Samples of one window-long clip (``frames * hop``)."""
        return self.grid[1] * self.preset.audio.hop_length

    @property
    def tiles_in_time(self) -> bool:
        """Whether this generator makes clips longer than its window (:meth:`long_audio`)."""
        return bool(getattr(self.model, "tiles_in_time", False))

    def clip_samples(self, seconds: float) -> int:
        """Samples of a ``seconds``-long clip, checked: a ConfigError (one line) when it is not finite, shorter
        than one frame, longer than :data:`GAN_MAX_SECONDS`, or longer than the window for a generator that
        cannot tile in time."""
        a = self.preset.audio
        if not np.isfinite(seconds) or seconds <= 0:
            raise ConfigError(None, f"clip length must be a finite number of seconds > 0, got {seconds}")
        if seconds > GAN_MAX_SECONDS:
            raise ConfigError(None, f"clip length {seconds:g} s is above the limit of {GAN_MAX_SECONDS:g} s")
        n = int(round(float(seconds) * a.sample_rate))
        if n < a.hop_length:
            raise ConfigError(None, f"clip length {seconds:g} s is shorter than one frame "
                                    f"({a.hop_length / a.sample_rate:g} s)")
        if n > self.window_samples and not self.tiles_in_time:
            raise ConfigError(None, f"arch {self.model.cfg.arch} cannot generate clips longer than its window "
                                    f"({self.seconds:g} s), asked for {seconds:g} s")
        return n

    def tile_latents(self, seed: int, m: int) -> torch.Tensor:
        """(m, latent_dim): the latents of a long clip's m windows, drawn one after another from the seed's
        random stream; the first is :meth:`latent` (seed), and window j's latent does not depend on m."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.cat([sample_latent(1, self.model.latent_dim, self.model.latent, generator=g) for _ in range(m)])

    def windows_for(self, frames: int) -> int:
        """Windows (latents) of a long clip of ``frames`` frames: the fewest whose
        :meth:`~pianoforge.models.gan.frame.FrameTrunk.tiled_frames` reach it."""
        w, s = self.grid[1], self.model.tile_stride()
        return 1 + max(0, -(-(int(frames) - w) // s))

    @torch.inference_mode()
    def long_images(self, seed: int, frames: int, block_tiles: int = LONG_BLOCK_TILES) -> Iterator[torch.Tensor]:
        """The image (H, frames) of a long clip in order, as (H, f) blocks: the frames from window a's start to
        window a + ``block_tiles``'s (the last block cut at ``frames``), each computed from its windows plus
        enough context windows on each side (:meth:`~pianoforge.models.gan.base.GeneratorBase.time_context`,
        and the crossfade a block's first window lacks) that it equals ``sample_tiled`` of the whole clip (to
        float rounding: the convolutions run over other lengths)."""
        if block_tiles < 1:
            raise ValueError(f"block_tiles must be at least 1, got {block_tiles}")
        model = self.model
        m, s = self.windows_for(frames), model.tile_stride()
        fade = model.tile_overlap() * (self.grid[1] // model.base[1])  # output frames of one crossfade
        past, future = model.time_context()
        cp, cf = -(-(past + fade) // s), -(-future // s)
        z = self.tile_latents(seed, m)
        dev = next(model.parameters()).device
        for a in range(0, m, block_tiles):
            b = min(m, a + block_tiles)
            lo, hi = max(0, a - cp), min(m, b + cf)
            img = model.sample_tiled(z[None, lo:hi].to(dev), lo, m).float().cpu().clamp(-1.0, 1.0)[0, 0]
            stop = frames if b == m else b * s
            yield img[:, (a - lo) * s:stop - lo * s]

    def long_audio(self, seed: int, seconds: float, phase: str | None = None, iterations: int | None = None,
                   preview: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """A ``seconds``-long clip as float32 audio blocks (all together ``round(seconds * rate)`` samples), for
        :func:`~pianoforge.audio.stream.write_audio_stream`. The images of :meth:`long_images` go through the
        inverse chain block by block and one streaming phase reconstruction (:class:`PhaseStream`, seeded by
        ``seed``). ``preview``: every :func:`preview_stride`-th frame's (bins,) natural-log magnitude is
        appended to it (for the PNG)."""
        n = self.clip_samples(seconds)
        frames = -(-n // self.preset.audio.hop_length)
        return self.images_audio(self.long_images(seed, frames), n, seed, phase, iterations, preview)

    def images_audio(self, images: Iterable[torch.Tensor], samples: int, seed: int = 0, phase: str | None = None,
                     iterations: int | None = None, preview: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """(H, f) image blocks of one clip, in order -> its float32 audio blocks, ``samples`` in all (the blocks
        must hold ``ceil(samples / hop)`` frames): the inverse chain per block, one streaming phase
        reconstruction over the whole clip (:class:`~pianoforge.phase.stream.PhaseStream`, seeded by
        ``seed``); ``preview`` as in :meth:`long_audio`."""
        from pianoforge.phase.stream import PhaseStream

        a = self.preset.audio
        n = int(samples)
        k = preview_stride(-(-n // a.hop_length))
        stream = PhaseStream(a, phase or self.phase, self.iterations if iterations is None else iterations,
                             seed=int(seed))
        t, left = 0, n

        def emit(blocks: list[torch.Tensor]) -> Iterator[np.ndarray]:
            nonlocal left
            for y in blocks:
                y = y.numpy().astype(np.float32)[:left]
                left -= len(y)
                if len(y):
                    yield y

        for img in images:
            with torch.inference_mode():
                logmag = image_to_logmag(img, self.normalizer, (self.grid[0], img.shape[-1]))  # (bins, f)
                mag = inverse_log_magnitude(logmag, a.log_eps).T.contiguous()  # (f, bins)
            if preview is not None:
                preview.extend(logmag.T[(-t) % k::k].numpy().copy())  # a copy: not views of the block
            t += img.shape[-1]
            yield from emit(stream.push(mag))
        yield from emit(stream.finish())

    def generate_long(self, seed: int, seconds: float, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """One long clip in memory: (audio (round(seconds * rate),) float32, preview (frames / k, bins) natural-
        log magnitude of every :func:`preview_stride`-th frame). For long clips prefer :meth:`long_audio`."""
        preview: list[np.ndarray] = []
        audio = np.concatenate(list(self.long_audio(seed, seconds, preview=preview, **kwargs)))
        return audio, np.stack(preview)

    def interpolation_latents(self, seed_a: int, seed_b: int, steps: int) -> torch.Tensor:
        """(steps, latent_dim) from seed_a's latent to seed_b's: straight line for U[-1, 1] latents (stays in
        the box), great circle (slerp) for normal latents (keeps the typical norm)."""
        if steps < 2:
            raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
        za, zb = self.latent(seed_a), self.latent(seed_b)
        t = torch.linspace(0.0, 1.0, steps)[:, None]
        if self.model.latent == "uniform":
            return (1 - t) * za + t * zb
        omega = torch.arccos((za / za.norm()).dot(zb / zb.norm()).clamp(-1 + 1e-7, 1 - 1e-7))
        return (torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / torch.sin(omega)

    def interpolate(self, seed_a: int, seed_b: int, steps: int, denoise: bool = False, **kwargs: Any) -> list[np.ndarray]:
        """``steps`` clips along the latent path from ``seed_a`` to ``seed_b``."""
        return self.interpolate_clips(seed_a, seed_b, steps, denoise, **kwargs).audio

    def interpolate_clips(self, seed_a: int, seed_b: int, steps: int, denoise: bool = False, **kwargs: Any) -> Clips:
        return self.render(self.interpolation_latents(seed_a, seed_b, steps), [seed_a] * steps, denoise, **kwargs)


def preview_stride(frames: int) -> int:
    """Every k-th frame of a ``frames``-long clip goes into its PNG: at most :data:`PREVIEW_FRAMES` frames."""
    return max(1, -(-int(frames) // PREVIEW_FRAMES))


# ------------------------------------------------------------------------------------------- outputs

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
