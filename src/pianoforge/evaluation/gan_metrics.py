"""GAN metrics: generated clips against real held-out clips, in feature spaces nothing here was trained in.

**Fréchet distance** (:func:`frechet_distance`) between Gaussians fitted to per-clip feature vectors of a
fixed, documented spectral feature set (:func:`clip_features`, 66 dimensions):

- each clip is resampled to 16 kHz (soxr) and analysed with a 1024-point periodic-Hann STFT, hop 256;
- power spectrum -> 32 Slaney mel bands from 27.5 Hz (A0) to 2700 Hz (above C7, and below the 2750 Hz
  Nyquist of the slowest geometry, so every geometry is measured in the same space) -> ``ln(power + 1e-10)``;
- features: the mean and the standard deviation over frames of each band (64), and the mean and standard
  deviation of the spectral flux (the half-wave-rectified frame-to-frame increase of the log-mel bands,
  summed over bands: onsets) (2).

With tens of clips instead of FID's 50 000 images the Fréchet distance is biased upwards by the sample
size, so the report also gives the distance between two halves of the real set: a model is as good as
this feature space can tell when its distance reaches that floor. Compare numbers at equal ``n`` only.

**Diversity**: mean pairwise Euclidean distance between clips in the feature space standardized by the
real clips' per-dimension std (:func:`mean_pairwise_feature_distance`), and its ratio to the real
clips' (~1 healthy, -> 0 collapse); **NDB** (Richardson & Weiss 2018, :func:`ndb`): k-means bins of the
real clips, the number of bins whose share of generated clips differs from the real share (two-proportion
z-test, p < 0.05), divided by the number of bins (0 best).

**Tonality** (:func:`tonality_db`, tonal vs noise-like): the spectral flatness of the power spectrum
(27.5-2700 Hz, same STFT as the features) after dividing out its envelope (an 11-bin, ~170 Hz moving average
over frequency), so a spectral tilt does not count as tonal: per frame geometric / arithmetic mean, in dB,
averaged over the frames within 40 dB of the clip's 90th-percentile frame energy (not its loudest frame, so
one click cannot leave only itself to measure); the set's value is the median over clips.
White noise measures about -2 dB, a harmonic tone about -15 dB, real `gan-cpu` clips -9 to -12 dB. Not part
of the FD features, so FDs stay comparable with earlier reports.

**Musical statistics** (:func:`musical_statistics`) from transcribing every clip with the judge
(:func:`pianoforge.evaluation.judge.transcribe`, basic-pitch): note density (notes per second), polyphony
(mean number of sounding notes over the 10 ms frames in which at least one sounds), pitch-class entropy
(bits, of the note-count histogram over the 12 pitch classes; 0 = one pitch class, log2 12 = 3.58 =
uniform), mean pitch and pitch range (MIDI numbers), and the fraction of clips with no notes.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

FEATURE_SR = 16000
FEATURE_N_FFT = 1024
FEATURE_HOP = 256
FEATURE_N_MELS = 32
FEATURE_FMIN = 27.5
FEATURE_FMAX = 2700.0
FEATURE_DIM = 2 * FEATURE_N_MELS + 2
POLYPHONY_FPS = 100


# -------------------------------------------------------------------------------------------- features

@functools.cache
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=FEATURE_SR, n_fft=FEATURE_N_FFT, n_mels=FEATURE_N_MELS, fmin=FEATURE_FMIN,
                               fmax=FEATURE_FMAX, htk=False, norm="slaney").astype(np.float64)


def clip_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(samples,) mono audio at ``sample_rate`` -> (66,) float64 feature vector (see the module docstring)."""
    power = _power_spectrogram(audio, sample_rate)  # (bins, frames)
    logmel = np.log(_mel_basis() @ power + 1e-10)  # (n_mels, frames)
    flux = np.maximum(np.diff(logmel, axis=1), 0.0).sum(axis=0) if logmel.shape[1] > 1 else np.zeros(1)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1), [flux.mean(), flux.std()]])


def _power_spectrogram(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(bins, frames) float64 power of the feature STFT (16 kHz, 1024-point Hann, hop 256)."""
    from pianoforge.audio.io import resample

    x = resample(np.asarray(audio, dtype=np.float32), int(sample_rate), FEATURE_SR)
    x = np.pad(x, (0, max(0, FEATURE_N_FFT - len(x))))
    with torch.inference_mode():
        spec = torch.stft(torch.from_numpy(x), FEATURE_N_FFT, FEATURE_HOP, window=torch.hann_window(FEATURE_N_FFT),
                          center=True, return_complex=True)
    return spec.abs().double().numpy() ** 2


def tonality_db(audio: np.ndarray, sample_rate: int, floor_db: float = 40.0, envelope_bins: int = 11) -> float:
    """Mean whitened spectral flatness (dB, <= 0; lower = more tonal) of a clip's frames within ``floor_db``
    of its 90th-percentile frame energy, 27.5-2700 Hz: each frame's power divided by its moving average over ``envelope_bins``
    bins (11 x 15.6 Hz ~ 170 Hz: the spectral envelope), then geometric / arithmetic mean."""
    from scipy.ndimage import uniform_filter1d

    power = _power_spectrogram(audio, sample_rate)
    freqs = np.arange(power.shape[0]) * FEATURE_SR / FEATURE_N_FFT
    p = power[(freqs >= FEATURE_FMIN) & (freqs <= FEATURE_FMAX)] + 1e-12
    energy = p.mean(axis=0)
    p = p[:, energy >= np.percentile(energy, 90) * 10 ** (-floor_db / 10)]  # a click cannot set the level
    q = p / uniform_filter1d(p, envelope_bins, axis=0, mode="nearest")
    flat = np.exp(np.log(q).mean(axis=0)) / q.mean(axis=0)
    return float(10 * np.log10(flat).mean())


def feature_matrix(clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """(n, 66) features of n clips."""
    return np.stack([clip_features(c, sample_rate) for c in clips]) if len(clips) else np.zeros((0, FEATURE_DIM))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``||mu_a - mu_b||**2 + Tr(S_a + S_b - 2 (S_a S_b)**0.5)`` between Gaussians fitted to feature sets
    (n, d) and (m, d) (n, m >= 2). The matrix square root is taken as ``(S_a**0.5 S_b S_a**0.5)**0.5``
    through symmetric eigendecompositions, which is exact for PSD covariances and never complex."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (n>=2, d) feature sets of the same d, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sb @ root_a), 0, None)).sum()
    return float(max(mu @ mu + np.trace(sa) + np.trace(sb) - 2.0 * cross, 0.0))


def _standardize(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (x - ref.mean(0)) / np.maximum(ref.std(0), 1e-8)


def mean_pairwise_feature_distance(x: np.ndarray, ref: np.ndarray) -> float:
    """Mean Euclidean distance over pairs of rows of ``x``, in the space standardized by ``ref``'s std."""
    z = _standardize(x, ref)
    n = len(z)
    if n < 2:
        return 0.0
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    return float(d.sum() / (n * (n - 1)))


def ndb(real: np.ndarray, gen: np.ndarray, k: int | None = None, seed: int = 0) -> dict[str, float]:
    """Number of statistically different bins (Richardson & Weiss 2018) between feature sets (n, d), (m, d):
    k-means bins of the standardized real features (k = n // 5 clamped to [2, 20] by default), a
    two-proportion z-test per bin at p < 0.05. Returns ``{"ndb", "k", "ndb_k"}``. The bins are scikit-learn's
    k-means (k-means++, best of 10 seeded starts)."""
    from scipy.stats import norm
    from sklearn.cluster import KMeans

    k = int(k or min(20, max(2, len(real) // 5)))
    if len(real) < k or len(gen) < 1:
        return {"ndb": float("nan"), "k": float(k), "ndb_k": float("nan")}
    zr, zg = _standardize(real, real), _standardize(gen, real)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(zr)
    pr = np.bincount(km.labels_, minlength=k) / len(zr)
    pg = np.bincount(km.predict(zg), minlength=k) / len(zg)
    p = (pr * len(zr) + pg * len(zg)) / (len(zr) + len(zg))
    se = np.sqrt(np.maximum(p * (1 - p) * (1 / len(zr) + 1 / len(zg)), 1e-12))
    different = int((2 * norm.sf(np.abs(pr - pg) / se) < 0.05).sum())
    return {"ndb": float(different), "k": float(k), "ndb_k": different / k}


# ------------------------------------------------------------------------------------- musical statistics

MUSIC_KEYS = ("note_density", "polyphony", "pitch_class_entropy", "mean_pitch", "pitch_range", "silent")


def note_statistics(notes: Sequence[Any], seconds: float) -> dict[str, float]:
    """Statistics of one clip's transcribed notes (objects with ``pitch``, ``start``, ``end`` in seconds)."""
    if not notes:
        return {"note_density": 0.0, "polyphony": 0.0, "pitch_class_entropy": 0.0, "mean_pitch": float("nan"),
                "pitch_range": 0.0, "silent": 1.0}
    pitches = np.array([n.pitch for n in notes])
    frames = np.zeros(max(1, int(np.ceil(seconds * POLYPHONY_FPS))))
    for n in notes:
        frames[int(n.start * POLYPHONY_FPS):max(int(n.start * POLYPHONY_FPS) + 1, int(n.end * POLYPHONY_FPS))] += 1
    hist = np.bincount(pitches % 12, minlength=12) / len(pitches)
    nz = hist[hist > 0]
    return {"note_density": len(notes) / max(seconds, 1e-9), "polyphony": float(frames[frames > 0].mean()),
            "pitch_class_entropy": float(-(nz * np.log2(nz)).sum()), "mean_pitch": float(pitches.mean()),
            "pitch_range": float(pitches.max() - pitches.min()), "silent": 0.0}


def musical_statistics(clips: Sequence[np.ndarray], sample_rate: int) -> dict[str, float]:
    """Means over clips of :func:`note_statistics` of their basic-pitch transcriptions (``mean_pitch`` over
    clips with notes)."""
    from pianoforge.evaluation.judge import transcribe

    rows = [note_statistics(transcribe(c, sample_rate), len(c) / sample_rate) for c in clips]
    out = {}
    for k in MUSIC_KEYS:
        v = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return out


# ----------------------------------------------------------------------------------------------- report

SETS = ("generated", "real-resynthesized", "real")
"""Clip sets of a GAN evaluation: the generator's; the real clips' log-magnitude through the GAN image
chain (normalize, clip, resize, and back) and the generator's phase reconstruction -- what a perfect
generator could sound like; the real held-out clips (stored audio)."""


def compare_sets(sets: dict[str, list[np.ndarray]], sample_rate: int, judge: bool = True,
                 seed: int = 0) -> dict[str, Any]:
    """Metrics of every set in ``sets`` (which must hold ``"real"``) against the real clips."""
    feats = {k: feature_matrix(v, sample_rate) for k, v in sets.items()}
    real = feats["real"]
    rows: dict[str, dict[str, float]] = {}
    real_div = mean_pairwise_feature_distance(real, real)
    for name, f in feats.items():
        row: dict[str, float] = {"n": float(len(f))}
        if name != "real":
            row["fd"] = frechet_distance(f, real)
            row.update({f"ndb_{k}": v for k, v in ndb(real, f, seed=seed).items()})
        elif len(real) >= 8:
            row["fd"] = frechet_distance(real[0::2], real[1::2])  # the split-half floor
        div = mean_pairwise_feature_distance(f, real)
        row.update(diversity=div, diversity_ratio=div / max(real_div, 1e-12))
        if len(sets[name]):
            row["tonality_db"] = float(np.median([tonality_db(c, sample_rate) for c in sets[name]]))
        if judge:
            row.update(musical_statistics(sets[name], sample_rate))
        rows[name] = row
    return rows


def fd_sample_warning(n_generated: int, n_real: int) -> str | None:
    """A warning when either set has fewer clips than the feature space has dimensions: both covariances are
    then singular and the FD is mostly sample-size bias (comparable only between evaluations at the same n)."""
    n = min(int(n_generated), int(n_real))
    if n >= FEATURE_DIM:
        return None
    which = "generated" if n_generated <= n_real else "real"
    return (f"FD from {n} {which} clips in a {FEATURE_DIM}-d feature space: fewer clips than features, so the "
            f"covariances are singular and the FD is mostly sample-size bias; compare it only at equal n, or "
            f"use -n {FEATURE_DIM} or more (and a split with as many examples)")


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def report_md(result: dict[str, Any]) -> str:
    r = result["sets"]
    lines = [f"# GAN evaluation: {result['checkpoint']}", "",
             f"{result['n_generated']} generated clips (seeds {result['seed']}..{result['seed'] + result['n_generated'] - 1})"
             f" against {result['n_real']} real clips of split `{result['split']}` of `{result['data']}`; "
             f"{result['seconds']:.2f} s clips at {result['sample_rate']} Hz; phase {result['phase']}.", "",
             "FD: Fréchet distance in the fixed 66-d log-mel feature space (for `real`: between two halves of the "
             "real set, the floor at this n). Diversity: mean pairwise distance in real-standardized features "
             "(ratio to real). NDB/K: share of k-means bins with a significantly different occupancy. Tonality: "
             "median whitened spectral flatness in dB (white noise ~ -2, lower = more tonal).", "",
             "| set | n | FD | diversity ratio | NDB/K | tonality (dB) | notes/s | polyphony | pitch-class entropy (bits) | mean pitch | silent |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in SETS:
        if name not in r:
            continue
        x = r[name]
        lines.append(f"| {name} | {int(x['n'])} | {_fmt(x.get('fd'), '.2f')} | {_fmt(x.get('diversity_ratio'))} | "
                     f"{_fmt(x.get('ndb_ndb_k'), '.2f')} | {_fmt(x.get('tonality_db'), '.1f')} | "
                     f"{_fmt(x.get('note_density'), '.2f')} | "
                     f"{_fmt(x.get('polyphony'), '.2f')} | {_fmt(x.get('pitch_class_entropy'), '.2f')} | "
                     f"{_fmt(x.get('mean_pitch'), '.1f')} | {_fmt(x.get('silent'), '.2f')} |")
    lines += [f"\nWarning: {w}" for w in result.get("warnings", [])]
    lines += ["", "Sample grids: `generated.png`, `real.png`; listen: `audio/`.", ""]
    return "\n".join(lines)


def evaluate_gan(checkpoint: str | Path | None, data: str | Path, out: str | Path, split: str = "test", n: int = 64,
                 seed: int = 0, judge: bool = True, denoise: bool = False, phase: str | None = None,
                 iterations: int | None = None, listen: int = 4, strike_threshold: float | None = None,
                 strike_floor: float | None = None) -> dict[str, Any]:
    """Generate ``n`` clips, take up to ``n`` real clips of ``split`` (evenly spaced examples), compare them
    (:func:`compare_sets`) and write ``metrics.json``, ``report.md``, ``generated.png``, ``real.png`` and
    ``listen`` WAVs of each set under ``out/audio/``. ``strike_threshold`` / ``strike_floor``: a NoteGAN's
    strike rule (:meth:`GanGenerator.set_strike_rule`; None: the checkpoint's)."""
    from pianoforge.audio.io import save_audio
    from pianoforge.data.gan_images import GanImages, image_to_logmag, logmag_to_image
    from pianoforge.data.store import FeatureStore
    from pianoforge.errors import StoreError
    from pianoforge.fsutil import write_text_atomic
    from pianoforge.improvise import GanGenerator, logmag_to_audio, sample_grid

    t0 = time.perf_counter()
    gen = GanGenerator.from_checkpoint(checkpoint)
    gen.set_strike_rule(strike_threshold, strike_floor)
    store = FeatureStore(data)
    sp, gp = store.preset, gen.preset
    if (sp.audio, sp.data.example_seconds) != (gp.audio, gp.data.example_seconds):
        raise StoreError(store.root, f"geometry (audio, example_seconds) differs from the checkpoint's preset "
                                     f"{gp.name!r}; evaluate on a store built with its geometry")
    ds = GanImages(store, split)
    if len(ds) < 2:
        raise StoreError(store.root, f"split {split!r} has {len(ds)} examples; need at least 2")
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    warning = fd_sample_warning(n, len(idx))
    if warning:  # before any clip is made
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    method = phase or gen.phase
    n_iter = gen.iterations if iterations is None else iterations
    clips = gen.generate_clips(n, seed, denoise, phase=method, iterations=n_iter)
    real, resyn, real_imgs = [], [], []
    for j, i in enumerate(idx):
        real.append(ds.audio(int(i)).numpy())
        img = logmag_to_image(ds.logmag(int(i)), gen.normalizer, gen.size)
        real_imgs.append(img[None])
        y = logmag_to_audio(image_to_logmag(img, gen.normalizer, gen.grid), gen.audio_config, method, n_iter, seed=j)
        resyn.append(y)
    sets = {"generated": clips.audio, "real-resynthesized": resyn, "real": real}
    rows = compare_sets(sets, gen.sample_rate, judge=judge, seed=seed)
    o = Path(out)
    (o / "audio").mkdir(parents=True, exist_ok=True)
    sample_grid(o / "generated.png", clips.images[:16], title="generated")
    sample_grid(o / "real.png", torch.stack(real_imgs[:16]), title=f"real ({split})")
    for name, audio in sets.items():
        for k, y in enumerate(audio[:listen]):
            save_audio(o / "audio" / f"{name}-{k:02d}.wav", y, gen.sample_rate)
    result = {"checkpoint": str(checkpoint) if checkpoint else "shipped gan-default", "data": str(data),
              "split": split, "n_generated": n, "n_real": len(real), "seed": seed, "phase": f"{method} {n_iter}",
              "strike_rule": {"threshold": gen.strike_threshold, "floor": gen.strike_floor},
              "denoise": denoise, "sample_rate": gen.sample_rate, "seconds": gen.seconds, "sets": rows,
              "features": {"sr": FEATURE_SR, "n_fft": FEATURE_N_FFT, "hop": FEATURE_HOP, "n_mels": FEATURE_N_MELS,
                           "fmin": FEATURE_FMIN, "fmax": FEATURE_FMAX, "dim": FEATURE_DIM},
              "warnings": [warning] if warning else [], "wall_s": round(time.perf_counter() - t0, 2)}
    write_text_atomic(o / "metrics.json", json.dumps(result, indent=1, default=float) + "\n")
    write_text_atomic(o / "report.md", report_md(result))
    return result
