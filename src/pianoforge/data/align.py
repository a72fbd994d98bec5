"""Does a recording match its MIDI? Onset-envelope cross-correlation, in numpy.

An onset envelope is drawn from the MIDI (each note onset adds its velocity / 127 at its frame) and
another from the audio (spectral flux: the positive frame-to-frame rise of log-compressed STFT magnitude,
averaged over bins, the quantity ``librosa.onset.onset_strength`` computes on a mel spectrogram). Their
normalized cross-correlation over lags of +-``search`` seconds peaks at the offset of the audio against
the MIDI; the peak's height (a correlation coefficient, 1 = identical envelopes) says whether the pair
belongs together at all. Envelopes are at :data:`ENV_RATE` frames per second and the peak is refined by
a parabola through its neighbours, so the offset resolves a few milliseconds.

Why numpy rather than librosa: the data path needs no more than numpy (librosa and scipy are in the
``eval`` extra only), and the whole check is forty lines; the flux is computed on a linear-frequency STFT
rather than a mel one, which changes the weighting across bands but not where the onsets are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pianoforge.config import pitch_hz

ENV_RATE = 100.0
"""Onset envelope frames per second (10 ms)."""
SMOOTH_SECONDS = 0.02
"""Both envelopes are smoothed by a Hann window of this length, so that a jitter of a frame or two (a
hammer's strike versus the MIDI time) costs little correlation."""


@dataclass(frozen=True)
class Alignment:
    """``offset``: seconds the audio is late against the MIDI (3.0: three seconds of leading silence);
    ``score``: the normalized correlation at that offset (0.50-0.59 for six matching random-note pieces
    rendered with TimGM6mb, 0.20-0.37 for the audio of another of them); ``peak_ratio``: the peak over the
    highest correlation further than :data:`PEAK_EXCLUSION` seconds from it (1.6-2.6 matching, 1.0-1.3 not):
    a pair that belongs together has one clear peak."""

    offset: float
    score: float
    peak_ratio: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {"offset": round(self.offset, 4), "score": round(self.score, 4),
                "peak_ratio": round(self.peak_ratio, 3)}


N_BANDS = 12
"""Log-spaced frequency bands (50 Hz .. Nyquist, at most 8 kHz), each with its own pair of envelopes: audio of
another piece with onsets on the same rhythmic grid still differs in *which* bands rise."""
MIN_ONSETS = 8
"""Fewer distinct onsets (10 ms frames) than this and any audio of a few notes correlates about as well
as the right one (four-note scales: 0.59 matching, up to 0.47 swapped): the pair is then not judged."""
PEAK_EXCLUSION = 0.1
"""Seconds either side of the correlation peak that :attr:`Alignment.peak_ratio` does not compare with."""
PEAK_RATIO_CAP = 99.0
HARMONICS = 6
"""A MIDI note adds to the bands of its first harmonics (weight 1/h), where a piano's energy is."""


def band_edges(sample_rate: int) -> np.ndarray:
    """(N_BANDS + 1,) band edges in Hz."""
    return np.geomspace(50.0, min(sample_rate / 2, 8000.0), N_BANDS + 1)


def midi_onset_envelope(pitches: np.ndarray, onsets: np.ndarray, velocities: np.ndarray, n_frames: int,
                        sample_rate: int, rate: float = ENV_RATE) -> np.ndarray:
    """(bands, n_frames) float64: each note's velocity / 127 / h added at its onset frame in the band of
    its h-th harmonic (onsets in seconds, pitches MIDI numbers)."""
    env = np.zeros((N_BANDS, n_frames))
    edges = band_edges(sample_rate)
    k = np.round(np.asarray(onsets, dtype=np.float64) * rate).astype(np.int64)
    f0 = pitch_hz(np.asarray(pitches, dtype=np.float64))
    v = np.asarray(velocities, dtype=np.float64) / 127.0
    for h in range(1, HARMONICS + 1):
        b = np.searchsorted(edges, h * f0) - 1
        ok = (k >= 0) & (k < n_frames) & (b >= 0) & (b < N_BANDS)
        np.add.at(env, (b[ok], k[ok]), v[ok] / h)
    return _smooth(env, rate)


def audio_onset_envelope(x: np.ndarray, sample_rate: int, rate: float = ENV_RATE) -> np.ndarray:
    """(bands, frames) float64 spectral flux of mono audio, ``frames = len(x) // hop``, ``hop = sr / rate``."""
    hop = max(1, int(round(sample_rate / rate)))
    n_fft = 1 << int(np.ceil(np.log2(max(0.032 * sample_rate, 64))))  # ~32 ms
    x = np.asarray(x, dtype=np.float32)
    frames = len(x) // hop
    padded = np.pad(x, (n_fft // 2, n_fft))
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = np.searchsorted(band_edges(sample_rate), freqs) - 1
    members = [np.flatnonzero(band == b) for b in range(N_BANDS)]
    out = np.zeros((N_BANDS, frames))
    prev = None
    for a in range(0, frames, 2048):  # blocks of frames: memory stays bounded on long recordings
        idx = (np.arange(a, min(a + 2048, frames))[:, None] * hop) + np.arange(n_fft)[None, :]
        mag = np.log1p(1000.0 * np.abs(np.fft.rfft(padded[idx] * win, axis=1)))
        ref = np.vstack([mag[:1] if prev is None else prev, mag[:-1]])
        flux = np.maximum(mag - ref, 0.0)
        for b, cols in enumerate(members):
            if len(cols):
                out[b, a:a + len(mag)] = flux[:, cols].mean(axis=1)
        prev = mag[-1:]
    return _smooth(out, rate)


def _smooth(env: np.ndarray, rate: float) -> np.ndarray:
    n = max(3, int(round(SMOOTH_SECONDS * rate)) | 1)
    w = np.hanning(n + 2)[1:-1]
    w /= w.sum()
    return np.stack([np.convolve(row, w, mode="same") for row in np.atleast_2d(env)]).reshape(env.shape)


def cross_correlate(midi_env: np.ndarray, audio_env: np.ndarray, rate: float = ENV_RATE,
                    search: float = 5.0) -> Alignment:
    """The offset (s) in ``[-search, search]`` that best lines ``audio_env`` (bands, frames) up with
    ``midi_env`` (bands, frames'), and its normalized correlation: the mean over the bands where the MIDI
    has onsets of each band's correlation coefficient at that lag."""
    m = np.atleast_2d(np.asarray(midi_env, dtype=np.float64))
    a = np.atleast_2d(np.asarray(audio_env, dtype=np.float64))
    used = [b for b in range(m.shape[0]) if m[b].std() > 0 and a[b].std() > 0]
    n_m, n_a = m.shape[1], a.shape[1]
    if not used or n_m < 2 or n_a < 2:
        return Alignment(0.0, 0.0)
    size = 1 << int(np.ceil(np.log2(n_m + n_a)))
    c = np.zeros(size)
    for b in used:
        mb = (m[b] - m[b].mean()) / m[b].std()
        ab = (a[b] - a[b].mean()) / a[b].std()
        c += np.fft.irfft(np.conj(np.fft.rfft(mb, size)) * np.fft.rfft(ab, size), size)  # sum m[t] a[t+lag]
    max_lag = int(round(search * rate))
    lags = np.arange(-max_lag, max_lag + 1)
    lags = lags[(lags > -n_m) & (lags < n_a)]
    vals = c[lags % size] / (len(used) * n_m)
    i = int(np.argmax(vals))
    frac = 0.0
    if 0 < i < len(vals) - 1:  # parabolic refinement of the peak
        y0, y1, y2 = vals[i - 1], vals[i], vals[i + 1]
        den = y0 - 2 * y1 + y2
        frac = float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) if den < 0 else 0.0
    far = np.abs(lags - lags[i]) > PEAK_EXCLUSION * rate
    rival = float(vals[far].max()) if far.any() else 0.0
    ratio = PEAK_RATIO_CAP if rival <= 0 or vals[i] <= 0 else min(float(vals[i]) / rival, PEAK_RATIO_CAP)
    return Alignment(float((lags[i] + frac) / rate), float(vals[i]), ratio)


def align(pitches: np.ndarray, onsets: np.ndarray, velocities: np.ndarray, x: np.ndarray, sample_rate: int,
          search: float = 5.0) -> Alignment:
    """Offset and score of audio ``x`` against a score's notes: pitches, onsets (s), velocities (1-127)."""
    audio_env = audio_onset_envelope(x, sample_rate)
    midi_env = midi_onset_envelope(pitches, onsets, velocities, audio_env.shape[1], sample_rate)
    return cross_correlate(midi_env, audio_env, ENV_RATE, search)


def distinct_onsets(onsets: np.ndarray, rate: float = ENV_RATE) -> int:
    """Number of distinct onset frames (chords count once)."""
    return len(np.unique(np.round(np.asarray(onsets, dtype=np.float64) * rate)))


def shift_audio(x: np.ndarray, offset: float, sample_rate: int) -> np.ndarray:
    """Audio moved earlier by ``offset`` seconds (leading samples cut; a negative offset pads silence)."""
    k = int(round(offset * sample_rate))
    if k >= 0:
        return x[k:]
    return np.concatenate([np.zeros(-k, dtype=x.dtype), x])
