"""The sampler's late part: what a key's waveform may do long after its strike, where the least-squares fit is
least determined (few training notes are held that long, and they overlap other notes).

- ``train.sampler_subf0_after`` > 0: the fit's waveform step solves inside the :class:`SubFundamentalProjection`'s
  set (no energy under a key's fundamental after that time), so a treble key cannot take up the bass notes it
  was fitted beside; the judge heard that energy as ghost notes under sounding chords.
- ``train.sampler_monotone_after`` > 0, a last step after the fit: a struck string's partials only decay once
  the attack is over, so no STFT bin's magnitude may rise by more than ``train.sampler_monotone_rise`` per frame
  (:func:`monotone_late`).
- :func:`sub_fundamental_late`: the same band lowered after a fit, by an STFT edit
  (``scripts/sampler_smooth.py``).

docs/perform.md has the measurements."""

from __future__ import annotations

import numpy as np

from pianoforge.config import LOWEST_PITCH, N_KEYS, pitch_hz


def edit_late(w: np.ndarray, sample_rate: int, after: float, new_late, n_fft: int = 2048,
              hop: int = 256) -> np.ndarray:
    """One key's waveform (L,) with its STFT magnitude (Hann ``n_fft``, ``hop``; scipy's inverse) from ``after``
    seconds on replaced by ``new_late(mag, t, j0)`` -> (bins, frames - j0) (``mag`` (bins, frames) the whole
    magnitude, ``t`` the frame times, ``j0`` the first edited frame), faded in over 4 frames; the phase is kept.
    Float32 (L,); an all-zero waveform, or one too short to reach ``after``, comes back as it is."""
    from scipy.signal import istft, stft

    _f, t, X = stft(w, fs=sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="even",
                    padded=True)
    mag = np.abs(X)
    j0 = int(np.searchsorted(t, after))
    if j0 >= mag.shape[1] - 2 or not np.any(w):
        return w
    late = mag[:, j0:].copy()
    ramp = np.clip(np.arange(late.shape[1]) / 4.0, 0, 1)[None, :]
    mag[:, j0:] = late * (1 - ramp) + new_late(mag, t, j0) * ramp
    _t, y = istft(mag * np.exp(1j * np.angle(X)), fs=sample_rate, window="hann", nperseg=n_fft,
                  noverlap=n_fft - hop, boundary=True)
    return y[:len(w)].astype(np.float32)


def monotone_late(waves: np.ndarray, sample_rate: int, after: float, rise: float = 1.0, n_fft: int = 2048,
                  hop: int = 256) -> np.ndarray:
    """Per key (rows of ``waves`` (88, L), float) and STFT bin (:func:`edit_late`), the magnitude of the frames
    from ``after`` seconds on is limited to ``rise`` times the previous frame's (``rise`` 1: a running
    minimum). Returns float32 (88, L); an all-zero row (a key no training note reached) stays zero."""
    def limit(mag: np.ndarray, _t: np.ndarray, j0: int) -> np.ndarray:
        late = mag[:, j0:]
        if rise <= 1.0:
            return np.minimum.accumulate(late, axis=1)
        new = late.copy()
        for j in range(1, new.shape[1]):
            new[:, j] = np.minimum(new[:, j], rise * new[:, j - 1])
        return new

    return np.stack([edit_late(w, sample_rate, after, limit, n_fft, hop)
                     for w in np.asarray(waves, dtype=np.float32)]).astype(np.float32)


def sub_fundamental_late(waves: np.ndarray, sample_rate: int, after: float, depth_db: float | None = None,
                         ratio: float = 0.8, n_fft: int = 2048, hop: int = 256) -> np.ndarray:
    """Per key (rows of ``waves`` (88, L), key 0 = A0), the STFT magnitude (:func:`edit_late`) of the bins under
    ``ratio`` x the key's fundamental, from ``after`` seconds on, lowered by ``depth_db`` dB, or with ``depth_db``
    None limited to decay at least as fast as the key's energy above them (their level at ``after`` times the
    ratio by which that energy has fallen since). A struck string has no partial under its fundamental; the
    fit's late waveforms of high keys held bass energy from the notes they were fitted beside. The band edge
    is a linear ramp over 2 bins. Returns float32 (88, L)."""
    if depth_db is not None and not (np.isfinite(depth_db) and depth_db >= 0):
        raise ValueError(f"depth_db must be a finite number of dB >= 0, got {depth_db}")
    gain = None if depth_db is None else 10.0 ** (-depth_db / 20.0)

    def edit(key: int):
        f0 = pitch_hz(key + LOWEST_PITCH)

        def lower(mag: np.ndarray, _t: np.ndarray, j0: int) -> np.ndarray:
            late = mag[:, j0:]
            f = np.arange(mag.shape[0]) * sample_rate / n_fft
            band = np.clip((ratio * f0 - f) / (2.0 * sample_rate / n_fft), 0.0, 1.0)[:, None]  # 1 under, 0 over
            if gain is None:
                above = np.sqrt(np.sum(late ** 2 * (1.0 - band), axis=0, keepdims=True))
                new = np.minimum(late, late[:, :1] * above / np.maximum(above[:, :1], 1e-12))
            else:
                new = late * gain
            return late * (1.0 - band) + new * band
        return lower

    return np.stack([edit_late(w, sample_rate, after, edit(k), n_fft, hop)
                     for k, w in enumerate(np.asarray(waves, dtype=np.float32))]).astype(np.float32)


class SubFundamentalProjection:
    """The orthogonal projection, for waveforms (88, ``length``), onto those whose part from ``after`` seconds on
    has no energy under ``ratio`` x its key's fundamental (key 0 = A0); the part before is free. That part is cut
    into :attr:`segments` that double in length (``after`` to 2 ``after``, to 4 ``after``, ... the last one to
    the end), and in each segment's DFT (a circular frame) those bins are set to 0: a direct sum of orthogonal
    projections, so one too. The fit's waveform step solves inside this set (``train.sampler_subf0_after``), so
    a treble key's late waveform cannot take up the bass notes it was fitted beside; the segments let its
    preconditioner follow how fast fewer training notes reach later samples (constant per segment, so that it
    commutes with the projection). Calling it maps (88, length) -> (88, length) float32."""

    def __init__(self, length: int, sample_rate: int, after: float, ratio: float = 0.8) -> None:
        start = int(round(after * sample_rate))
        if not (0 < start < length - 1):
            raise ValueError(f"after = {after} s is not inside a {length}-sample waveform")
        self.start = start
        self.segments: list[tuple[int, int]] = []
        a = start
        while a < length:
            b = length if 2 * a >= length - start // 2 else 2 * a  # no sliver of a last segment
            self.segments.append((a, b))
            a = b
        f0 = pitch_hz(np.arange(N_KEYS) + LOWEST_PITCH)
        self.keep = [(np.fft.rfftfreq(b - a, 1.0 / sample_rate)[None, :] >= ratio * f0[:, None]).astype(np.float32)
                     for a, b in self.segments]  # (88, bins) per segment

    def __call__(self, S: np.ndarray) -> np.ndarray:
        out = np.array(S, dtype=np.float32, copy=True)
        for (a, b), keep in zip(self.segments, self.keep, strict=True):
            out[:, a:b] = np.fft.irfft(np.fft.rfft(out[:, a:b], axis=1) * keep, n=b - a, axis=1).astype(np.float32)
        return out
