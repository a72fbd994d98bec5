"""A learned sampler: the perform model that writes the waveform itself (``model.head: sampler``).

A piano is close to a sum of notes, and on an instrument that is sample-accurate (FluidSynth, a digital
piano) the sum is exact: a note is the same waveform wherever it is struck, scaled by its velocity and cut by a
release envelope. This model learns exactly those parts **from training audio** (never from a soundfont):

    y(t) = sum over notes n of  g(v_n) * [ S[k_n, t - o_n] + c(v_n) * C[k_n, t - o_n] ] * e(t - r_n)

- ``S`` (88 keys x ``seconds * sr`` samples): each key's waveform from its strike on; ``C`` (88 x
  ``timbre_seconds * sr``) a second waveform that velocity mixes in (a brighter or duller strike);
- ``g``, ``c``: piecewise-linear curves of velocity on :attr:`SamplerConfig.velocity_knots` (loudness and
  timbre against velocity);
- ``e``: the release envelope, a curve of samples since the note stopped sounding (1 before, anchors every
  ``release_step`` samples after, 0 past ``release_seconds``), one per velocity knot and interpolated between
  them like ``g`` (a piano's dampers, and FluidR3's, stop a loud note more slowly than a soft one: -5 dB
  against -12 dB in the first 50 ms at velocity 100 and 60). ``release_model: exponential`` (default) fits
  them as a delay then an exponential decay per knot (dampers), ``table`` as free anchors;
- ``o_n``, ``r_n``: the note's strike and its sounding end (:func:`sounding_ends`: its key-up, moved to a new
  strike of the key if that comes while the key is down, and to the pedal-up if the pedal is down at the
  key-up), in samples on the instrument's event clock (:func:`event_samples`: ``onset_quantum`` 1 and
  ``onset_ticks_per_second`` 0 are exact times; the preset states FluidSynth's 64-sample blocks and the MIDI
  clock of the files the store writes);
- a note still sounding ``seconds`` after its strike fades out over ``fade_seconds`` at the end of ``S``.

Because the output is audio (no magnitude, no phase reconstruction), ``carries_phase`` is true and the
renderer streams blocks of samples straight to the writer. Everything is numpy; no torch import.
The parameters are fitted by linear least squares (:mod:`pianoforge.training.sampler_fit`): given ``g``,
``c`` and ``e`` the audio is linear in ``S`` and ``C``, and given those, linear in the curves.

Shapes and units: audio float32 in [-1, 1] at ``AudioConfig.sample_rate``; times in samples from t = 0 of
the score; keys 0..87 = MIDI 21..108 (:data:`pianoforge.config.LOWEST_PITCH`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pianoforge.config import LOWEST_PITCH, N_KEYS, AudioConfig, section_from_dict
from pianoforge.errors import ConfigError
from pianoforge.midi.score import Score

PARAMS = ("waves", "timbre", "gain_knots", "timbre_knots", "release")
"""The checkpoint tensors of a sampler, in this order."""


@dataclass(frozen=True)
class SamplerConfig:
    """The ``model.sampler`` section (seconds and samples at the preset's sample rate)."""

    seconds: float = 4.0
    timbre_seconds: float = 1.0
    release_seconds: float = 1.0
    release_step: int = 64
    release_model: str = "exponential"
    fade_seconds: float = 0.05
    onset_quantum: int = 64
    onset_ticks_per_second: int = 0
    velocity_knots: tuple[int, ...] = (1, 16, 32, 48, 64, 80, 96, 112, 127)

    def __post_init__(self) -> None:
        checks = [(self.seconds > 0.1, "seconds must be > 0.1"),
                  (0 <= self.timbre_seconds <= self.seconds, "timbre_seconds must be in [0, seconds]"),
                  (0 < self.release_seconds <= 10, "release_seconds must be in (0, 10]"),
                  (1 <= self.release_step <= 4096, "release_step must be in [1, 4096]"),
                  (self.release_model in ("exponential", "table"), "release_model must be exponential or table"),
                  (0 <= self.fade_seconds < self.seconds, "fade_seconds must be in [0, seconds)"),
                  (1 <= self.onset_quantum <= 4096, "onset_quantum must be in [1, 4096]"),
                  (0 <= self.onset_ticks_per_second <= 100000, "onset_ticks_per_second must be in [0, 100000]"),
                  (len(self.velocity_knots) >= 2 and list(self.velocity_knots) == sorted(set(self.velocity_knots))
                   and self.velocity_knots[0] <= 1 and self.velocity_knots[-1] >= 127,
                   "velocity_knots must rise strictly from <= 1 to >= 127")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(None, f"model.sampler: {msg}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SamplerConfig:
        """The ``model.sampler`` section, checked key by key (:func:`pianoforge.config.section_from_dict`)."""
        return section_from_dict(cls, d, "model.sampler")

    def lengths(self, sample_rate: int) -> dict[str, int]:
        """Sample counts: waves, timbre, release (a multiple of ``release_step``), fade."""
        rel = int(np.ceil(self.release_seconds * sample_rate / self.release_step)) * self.release_step
        return {"waves": int(round(self.seconds * sample_rate)), "timbre": int(round(self.timbre_seconds * sample_rate)),
                "release": rel, "fade": int(round(self.fade_seconds * sample_rate))}


@dataclass
class NoteEvents:
    """A score as the sampler plays it: per note (sorted by onset) the key 0..87, the strike and the sounding
    end in samples (on the event clock), the velocity 1..127, and ``reach``: the sample after its last one."""

    key: np.ndarray
    onset: np.ndarray
    release: np.ndarray
    velocity: np.ndarray
    reach: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.key)


def sounding_ends(score: Score) -> np.ndarray:
    """Each note's sounding end in seconds. A strike of the same key while the key is still down lifts it
    there (one string, one damper); the note then ends at its key-up, unless the sustain pedal is down at that
    moment: then at the pedal-up. So a note released under the pedal is *not* ended by a new strike of its key
    (measured on FluidSynth: with these ends, the notes rendered alone sum to its render of the whole, to 1e-14
    of the energy, in each case: re-strike under the pedal after or before the key-up, without the pedal)."""
    arr = score.to_arrays()
    start, end, pitch = arr["start"], arr["end"], arr["pitch"]
    order = np.lexsort((start, pitch))
    p, s = pitch[order], start[order]
    nxt = np.full(len(order), np.inf)
    same = p[1:] == p[:-1]
    nxt[:-1][same] = s[1:][same]
    next_strike = np.empty_like(end)
    next_strike[order] = nxt
    key_up = np.minimum(end, next_strike)
    out = key_up.copy()
    if score.pedal:
        downs = np.array([q[0] for q in score.pedal])
        ups = np.array([q[1] for q in score.pedal])
        i = np.maximum(np.searchsorted(downs, key_up, side="right") - 1, 0)
        held = (key_up >= downs[i]) & (key_up < ups[i])
        out = np.where(held, ups[i], key_up)
    return np.maximum(out, start)


def event_samples(seconds: np.ndarray, sample_rate: int, cfg: SamplerConfig) -> np.ndarray:
    """When the instrument acts on events at ``seconds``: the first block of ``onset_quantum`` samples that
    starts at or after the event; with ``onset_ticks_per_second`` (a MIDI clock), the first block whose start,
    rounded to the clock's ticks, reaches the event's tick (how a MIDI player that runs once per block, such as
    FluidSynth's, dispatches events). int64 sample indices."""
    q = int(cfg.onset_quantum)
    t = np.asarray(seconds, dtype=np.float64)
    tps = int(cfg.onset_ticks_per_second)
    if tps == 0:
        return np.ceil(t * sample_rate / q - 1e-9).astype(np.int64) * q
    ticks = np.round(t * tps)
    ticks_per_block = q * tps / sample_rate  # the first block b with round(b * ticks_per_block) >= ticks
    return np.ceil((ticks - 0.5) / ticks_per_block - 1e-9).astype(np.int64) * q


def note_events(score: Score, sample_rate: int, cfg: SamplerConfig, lengths: dict[str, int] | None = None) -> NoteEvents:
    """The notes of ``score`` as :class:`NoteEvents` on the instrument's event clock (:func:`event_samples`)."""
    lengths = lengths or cfg.lengths(sample_rate)
    arr = score.to_arrays()
    if len(arr["pitch"]) == 0:
        z = np.zeros(0, np.int64)
        return NoteEvents(z, z, z, z, z)
    on = event_samples(arr["start"], sample_rate, cfg)
    off = event_samples(sounding_ends(score), sample_rate, cfg)
    off = np.maximum(off, on)
    reach = np.minimum(on + lengths["waves"], off + lengths["release"])
    order = np.argsort(on, kind="stable")
    return NoteEvents((arr["pitch"][order] - LOWEST_PITCH).astype(np.int64), on[order], off[order],
                      arr["velocity"][order].astype(np.int64), reach[order])


def knot_weights(velocity: np.ndarray, knots: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear interpolation on ``knots``: (index of the lower knot, weight of the upper one) per
    velocity; a curve's value is ``(1 - w) * c[i] + w * c[i + 1]``."""
    k = np.asarray(knots, dtype=np.float64)
    v = np.clip(np.asarray(velocity, dtype=np.float64), k[0], k[-1])
    i = np.clip(np.searchsorted(k, v, side="right") - 1, 0, len(k) - 2)
    return i, (v - k[i]) / (k[i + 1] - k[i])


def curve(values: np.ndarray, velocity: np.ndarray, knots: tuple[int, ...]) -> np.ndarray:
    i, w = knot_weights(velocity, knots)
    return (1 - w) * values[i] + w * values[i + 1]


def release_curve(anchors: np.ndarray, step: int) -> np.ndarray:
    """(n_release,) per-sample release envelope from its anchors (one every ``step`` samples, the first at
    0), linearly interpolated; its last anchor is forced to 0 so the note ends silent."""
    a = np.asarray(anchors, dtype=np.float32)
    x = np.arange(len(a) * step, dtype=np.float32) / step
    env = np.interp(x, np.arange(len(a), dtype=np.float32), np.append(a[:-1], 0.0).astype(np.float32))
    return env.astype(np.float32)


class NoteSampler:
    """The sampler's parameters and its renderer (numpy). ``params``: :data:`PARAMS` arrays: ``waves`` (88,
    L) float32, ``timbre`` (88, Lc), ``gain_knots`` and ``timbre_knots`` (K,), ``release`` (K, n_anchors)."""

    carries_phase = True

    def __init__(self, cfg: SamplerConfig, audio: AudioConfig, params: dict[str, np.ndarray],
                 model_cfg: Any = None) -> None:
        self.scfg = cfg
        self.cfg = model_cfg  # the PerformModelConfig it came from (renderer, eval and reports read it)
        self.audio = audio
        self.lengths = cfg.lengths(audio.sample_rate)
        self.waves = np.ascontiguousarray(params["waves"], dtype=np.float32)
        self.timbre = np.ascontiguousarray(params["timbre"], dtype=np.float32)
        self.gain_knots = np.asarray(params["gain_knots"], dtype=np.float64)
        self.timbre_knots = np.asarray(params["timbre_knots"], dtype=np.float64)
        self.release = np.asarray(params["release"], dtype=np.float32)
        L, Lc, K = self.lengths["waves"], self.lengths["timbre"], len(cfg.velocity_knots)
        want = {"waves": (N_KEYS, L), "timbre": (N_KEYS, Lc), "gain_knots": (K,), "timbre_knots": (K,),
                "release": (K, self.lengths["release"] // cfg.release_step)}
        for name, shape in want.items():
            got = tuple(np.shape(params[name]))
            if got != shape:
                raise ValueError(f"sampler tensor {name} has shape {got}, the config says {shape}")
        self.set_release(self.release)
        fade = self.lengths["fade"]
        self.fade = np.linspace(1.0, 0.0, fade, dtype=np.float32) if fade else np.zeros(0, np.float32)

    @classmethod
    def from_tensors(cls, model: dict[str, Any], audio: AudioConfig, tensors: dict[str, np.ndarray]) -> NoteSampler:
        """From a checkpoint's ``model`` section and its tensors (ValueError / ConfigError if they disagree)."""
        from pianoforge.models.perform_config import PerformModelConfig

        mc = PerformModelConfig.from_dict(model)
        if mc.head != "sampler":
            raise ValueError(f"model.head is {mc.head!r}, not sampler")
        missing = [k for k in PARAMS if k not in tensors]
        if missing:
            raise ValueError(f"sampler checkpoint lacks tensor {missing[0]!r}")
        return cls(mc.sampler_config, audio, {k: tensors[k] for k in PARAMS}, mc)

    @classmethod
    def empty(cls, cfg: SamplerConfig, audio: AudioConfig) -> NoteSampler:
        n = cfg.lengths(audio.sample_rate)
        k = np.asarray(cfg.velocity_knots, dtype=np.float64)
        rel_n = n["release"] // cfg.release_step
        t = np.arange(rel_n) * cfg.release_step / audio.sample_rate
        return cls(cfg, audio, {"waves": np.zeros((N_KEYS, n["waves"]), np.float32),
                                "timbre": np.zeros((N_KEYS, n["timbre"]), np.float32),
                                "gain_knots": (k / 127.0) ** 2, "timbre_knots": k / 127.0 - 0.5,
                                "release": np.tile(np.exp(-t / 0.1).astype(np.float32), (len(k), 1))})

    def set_release(self, anchors: np.ndarray) -> None:
        """New release anchors (K, n_anchors); ``envs`` (K, n_release) holds their per-sample curves."""
        self.release = np.asarray(anchors, dtype=np.float32)
        self.envs = np.stack([release_curve(a, self.scfg.release_step) for a in self.release])
        self._env_cache: dict[int, np.ndarray] = {}

    def release_env(self, velocity: int) -> np.ndarray:
        """(n_release,) per-sample release envelope of a note of this velocity (cached per velocity)."""
        env = self._env_cache.get(velocity)
        if env is None:
            i, w = knot_weights(np.array([velocity]), self.scfg.velocity_knots)
            i, w = int(i[0]), np.float32(w[0])
            env = self._env_cache[velocity] = self.envs[i] * (1 - w) + self.envs[i + 1] * w
        return env

    def num_parameters(self) -> int:
        """Stored values (waveform samples, velocity knots, release anchors)."""
        return int(sum(np.size(v) for v in self.params().values()))

    def params(self) -> dict[str, np.ndarray]:
        return {"waves": self.waves, "timbre": self.timbre, "gain_knots": self.gain_knots.astype(np.float32),
                "timbre_knots": self.timbre_knots.astype(np.float32), "release": self.release}

    def events(self, score: Score) -> NoteEvents:
        return note_events(score, self.audio.sample_rate, self.scfg, self.lengths)

    def note_shape(self, ev: NoteEvents, n: int, tau0: int, tau1: int) -> np.ndarray:
        """Note ``n``'s multiplier along its own time axis for samples ``tau0 <= tau < tau1`` since its strike:
        release envelope times the end-of-table fade (without the velocity gain)."""
        w = np.ones(tau1 - tau0, np.float32)
        rel = int(ev.release[n] - ev.onset[n])
        n_rel = self.envs.shape[1]
        a, b = max(tau0, rel), min(tau1, rel + n_rel)
        if b > a:
            w[a - tau0:b - tau0] = self.release_env(int(ev.velocity[n]))[a - rel:b - rel]
        if rel + n_rel < tau1:
            w[max(rel + n_rel, tau0) - tau0:] = 0.0
        f0 = self.lengths["waves"] - len(self.fade)
        a, b = max(tau0, f0), min(tau1, self.lengths["waves"])
        if b > a:
            w[a - tau0:b - tau0] *= self.fade[a - f0:b - f0]
        return w

    def render(self, ev: NoteEvents, start: int, n: int) -> np.ndarray:
        """Samples ``[start, start + n)`` of the score whose events are ``ev``: float32 (n,)."""
        out = np.zeros(n, np.float32)
        end = start + n
        lo = int(np.searchsorted(ev.onset, start - self.lengths["waves"], side="left"))
        hi = int(np.searchsorted(ev.onset, end, side="left"))
        if hi <= lo:
            return out
        idx = np.arange(lo, hi)
        idx = idx[ev.reach[idx] > start]
        g = curve(self.gain_knots, ev.velocity[idx], self.scfg.velocity_knots).astype(np.float32)
        c = curve(self.timbre_knots, ev.velocity[idx], self.scfg.velocity_knots).astype(np.float32)
        Lc = self.lengths["timbre"]
        for j, m in enumerate(idx):
            o = int(ev.onset[m])
            t0, t1 = max(start, o), min(end, int(ev.reach[m]))
            if t1 <= t0:
                continue
            tau0, tau1 = t0 - o, t1 - o
            k = int(ev.key[m])
            seg = self.waves[k, tau0:tau1] * g[j]
            if tau0 < Lc and c[j] != 0:
                b = min(tau1, Lc)
                seg[:b - tau0] += (g[j] * c[j]) * self.timbre[k, tau0:b]
            if int(ev.release[m]) < t1 or tau1 > self.lengths["waves"] - len(self.fade):
                seg *= self.note_shape(ev, m, tau0, tau1)
            out[t0 - start:t1 - start] += seg
        return out

    def stream(self, score: Score, n_samples: int, block: int) -> Any:
        """Float32 audio blocks of ``block`` samples (the last shorter) covering ``[0, n_samples)``."""
        ev = self.events(score)
        for s in range(0, n_samples, block):
            yield self.render(ev, s, min(block, n_samples - s))


def log_magnitude(audio: np.ndarray, audio_cfg: AudioConfig) -> np.ndarray:
    """(samples,) float audio -> (samples // hop, bins) float32 natural-log magnitude, as
    :func:`pianoforge.audio.spectral.log_magnitude_np` computes it (centred, zero-padded, the preset's
    window) but with numpy's FFT, so the sampler's renders need no torch."""
    a = audio_cfg
    x = np.asarray(audio, dtype=np.float32)
    frames = len(x) // a.hop_length
    pad = a.n_fft // 2 if a.center else 0
    xp = np.pad(x, (pad, pad + a.n_fft))
    idx = np.arange(frames)[:, None] * a.hop_length + np.arange(a.n_fft)[None, :]
    out = np.empty((frames, a.n_fft // 2 + 1), np.float32)
    if a.window == "rect":
        win = np.ones(a.n_fft, np.float32)
    else:  # periodic Hann, as pianoforge.audio.spectral.window
        win = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(a.n_fft) / a.n_fft)).astype(np.float32)
    for s in range(0, frames, 2048):  # bounded temporaries
        spec = np.fft.rfft(xp[idx[s:s + 2048]] * win, axis=-1)
        out[s:s + 2048] = np.log(np.abs(spec) + np.float32(a.log_eps))
    return out
