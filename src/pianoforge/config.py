"""Typed configuration: the single source of truth for sample rate, hop, bins and frame rate.

Every derived quantity (frame rate, number of bins, frames per example) is a property computed from the
few numbers stored here; nothing else in the package hard-codes a sample rate or a hop.

A :class:`Preset` bundles the audio, score-encoding, rendering and data configs (plus free-form
``model``/``train`` sections owned by later layers). Presets live as YAML files in
``pianoforge/presets/`` and can be overridden from the command line with ``section.key=value``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pianoforge.errors import ConfigError
from pianoforge.names import GAN_PHASES as GAN_PHASES  # the phase names and preset names are defined in
from pianoforge.names import INFERENCE_PHASES as INFERENCE_PHASES  # pianoforge.names (cheap for the CLI's
from pianoforge.names import PHASE_METHODS as PHASE_METHODS  # parser) and re-exported here
from pianoforge.names import preset_names as preset_names

N_KEYS = 88
"""Piano keys A0..C8."""
LOWEST_PITCH = 21
"""MIDI pitch of A0."""
HIGHEST_PITCH = LOWEST_PITCH + N_KEYS - 1
"""MIDI pitch of C8 (108)."""


def pitch_hz(pitch):
    """Equal-tempered fundamental (Hz, A4 = 440) of a MIDI pitch: a number or a numpy array of them (key k of
    0..87 is pitch ``k + LOWEST_PITCH``)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


@dataclass(frozen=True)
class AudioConfig:
    """Sample rate and STFT geometry. Score frames and spectrogram frames share ``hop_length``.

    ``frame_rate = sample_rate / hop_length`` frames per second; a piece of ``n`` frames has exactly
    ``n * hop_length`` samples (see :func:`pianoforge.audio.spectral.stft`).
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    window: str = "hann"  # "hann" (periodic) or "rect" (the Lan 2018 non-overlapping frames)
    center: bool = True  # frame k centred on sample k*hop (True) or starting there (False)
    log_eps: float = 1e-5  # log-magnitude floor: log(|X| + eps), never -inf on silence

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_fft < self.hop_length:
            raise ConfigError(None, f"bad audio geometry: sr={self.sample_rate} n_fft={self.n_fft} "
                                    f"hop={self.hop_length} (need sr>0, n_fft>=hop>0)")
        if self.window not in ("hann", "rect"):
            raise ConfigError(None, f"unknown window {self.window!r} (hann or rect)")

    @property
    def frame_rate(self) -> float:
        """Frames per second (score and spectrogram)."""
        return self.sample_rate / self.hop_length

    @property
    def n_bins(self) -> int:
        """Frequency bins of the one-sided STFT."""
        return self.n_fft // 2 + 1

    def frames_for_seconds(self, seconds: float) -> int:
        return int(round(seconds * self.frame_rate))


@dataclass(frozen=True)
class ScoreConfig:
    """Frame encoding of a score. Channel layout (not interleaved, unlike the original code):

    ``[0:88]`` struck in this frame, ``[88:176]`` held, then optionally ``88`` velocity channels (the
    note's onset velocity / 127 on every frame it is held), optionally ``2 x 88`` envelope channels (per
    key, ``exp(-seconds since the onset / ENVELOPE_ATTACK_S)`` while held, then ``exp(-seconds since the
    release / ENVELOPE_RELEASE_S)`` until the key is struck again; see
    :func:`pianoforge.midi.encoding.envelopes`), optionally ``3 x 88`` note-state channels (age since the
    key's last strike, age since that note stopped sounding under key *and* pedal, and its velocity / 127;
    see :func:`pianoforge.midi.encoding.note_state`) and ``1`` sustain-pedal channel (always last).
    """

    velocity: bool = True
    pedal: bool = True
    pedal_extend: bool = False  # lengthen notes while the sustain pedal is down before encoding
    envelopes: bool = False  # note-age and release-age envelopes computed over the whole piece
    note_state: bool = False  # per key: age since the last strike, sounding-release age, last velocity
    subframe: bool = False  # note-state ages from the exact strike / release time, not the frame it falls in

    def __post_init__(self) -> None:
        if self.subframe and not self.note_state:
            raise ValueError("score.subframe needs score.note_state: true (it changes the note-state ages)")

    @property
    def n_channels(self) -> int:
        return (2 * N_KEYS + (N_KEYS if self.velocity else 0) + (2 * N_KEYS if self.envelopes else 0)
                + (3 * N_KEYS if self.note_state else 0) + (1 if self.pedal else 0))


ENVELOPE_ATTACK_S = 1.0
"""Time constant (s) of the note-age envelope channels: how a held note's age is shown to the model."""
ENVELOPE_RELEASE_S = 0.5
"""Time constant (s) of the release-age envelope channels (time since the key was released)."""
NOTE_AGE_S = 4.0
"""Time constant (s) of the note-state age channels: ``exp(-seconds since the key's last strike / 4 s)``,
kept through the release until the key is struck again (float16 stores resolve it to about a minute)."""
NOTE_RELEASE_S = 1.0
"""Time constant (s) of the note-state release channels: ``exp(-seconds since the note stopped sounding /
1 s)``, where a note sounds while its key is held or the sustain pedal holds it (FluidSynth's behaviour)."""


@dataclass(frozen=True)
class RenderConfig:
    """Reference rendering with FluidSynth."""

    program: int = 0  # General MIDI program (0 = Acoustic Grand Piano)
    gain: float = 0.5  # FluidSynth master gain; output is float, so nothing clips inside FluidSynth
    reverb: bool = False  # dry by default: the model learns the instrument, not the room
    chorus: bool = False
    release_seconds: float = 1.5  # audio kept after the last note-off / pedal-up (release tail)
    soundfont: str | None = None  # None: search the usual system locations


@dataclass(frozen=True)
class DataConfig:
    """How pieces become examples."""

    example_seconds: float = 4.0  # fixed-length training example
    stride_seconds: float | None = None  # hop between examples; None = example_seconds (no overlap)
    resize: tuple[int, int] | None = None  # GAN image size (bins, frames); None = keep the STFT grid
    split_seed: int = 1234
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    align_tolerance: float = 2.0  # seconds of disagreement allowed between audio and MIDI lengths
    min_seconds: float = 1.0  # shorter pieces are skipped
    # Recordings and instruments (issue 17, docs/recordings.md). Left out of Preset.to_dict() while at their
    # defaults (DATA_KEYS_OMITTED_AT_DEFAULT), so stores and runs made before them keep their fingerprints.
    onset_tolerance: float = 0.025  # s: largest audio-vs-MIDI offset accepted (onset cross-correlation)
    align_search: float = 5.0  # s: offsets searched either way
    align_min_score: float = 0.15  # correlation peak below this: "audio does not match its MIDI"
    align_min_peak_ratio: float = 1.4  # ... or a peak less than this many times its best rival (no clear peak)
    align_shift: bool = False  # shift a recording by its estimated offset instead of rejecting it
    loudness_db: float | None = None  # per-piece gated RMS normalized to this dBFS (recordings differ in gain)
    lowpass_hz: float | None = None  # band-limit every piece alike (stores of mixed native sample rates)
    std_floor: float = 0.5  # per-bin normalization std floored at this fraction of the median bin's std
    tracks: tuple[int, ...] | None = None  # keep only these tracks (pretty_midi instrument order, from 0)
    programs: tuple[int, ...] | None = None  # keep only tracks playing these General MIDI programs

    def __post_init__(self) -> None:
        checks = {"onset_tolerance": self.onset_tolerance >= 0, "align_search": self.align_search > 0,
                  "align_min_score": -1 <= self.align_min_score <= 1,
                  "align_min_peak_ratio": self.align_min_peak_ratio >= 1, "std_floor": 0 <= self.std_floor <= 1,
                  "lowpass_hz": self.lowpass_hz is None or self.lowpass_hz > 0,
                  "loudness_db": self.loudness_db is None or -80 <= self.loudness_db <= 0,
                  "tracks": self.tracks is None or all(t >= 0 for t in self.tracks),
                  "programs": self.programs is None or all(0 <= p <= 127 for p in self.programs)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(None, f"data.{bad[0]} is out of range: {getattr(self, bad[0])!r} "
                                    f"(see DataConfig in config.py)")

    def example_frames(self, audio: AudioConfig) -> int:
        return max(1, audio.frames_for_seconds(self.example_seconds))

    def stride_frames(self, audio: AudioConfig) -> int:
        s = self.example_seconds if self.stride_seconds is None else self.stride_seconds
        return max(1, audio.frames_for_seconds(s))


DATA_KEYS_OMITTED_AT_DEFAULT = ("onset_tolerance", "align_search", "align_min_score", "align_min_peak_ratio",
                                "align_shift",
                                "loudness_db", "lowpass_hz", "std_floor", "tracks", "programs")
"""Data keys added after stores were shipped: a preset's dict names them only when they differ from the default."""


# ------------------------------------------------------------------------------- typed section loader

T = TypeVar("T")


class _Mismatch(Exception):
    """A value that does not fit a field's type; ``expected`` says what would."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _fit(value: Any, tp: Any) -> Any:
    """``value`` converted to the annotation ``tp`` (YAML lists -> tuples; numeric strings such as YAML's
    ``1e-3`` -> floats; an int is a valid float), or :class:`_Mismatch`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for a in options:
            try:
                return _fit(value, a)
            except _Mismatch:
                pass
        names = [_type_name(a) for a in options] + (["null"] if type(None) in args else [])
        raise _Mismatch(" or ".join(names))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch("true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch("an integer")
    if tp is float:
        v = value
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise _Mismatch("a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Mismatch("a number")
        if not math.isfinite(v):
            raise _Mismatch("a finite number")
        return v if isinstance(v, int) else float(v)  # an int stays an int: stored presets hash as before
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch("a string")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(_type_name(tp))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_fit(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch(_type_name(tp))
        return tuple(_fit(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch(_type_name(tp))
        return {k: _fit(v, args[1]) for k, v in value.items()}
    return value  # an annotation this loader does not check


def _type_name(tp: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        n = "any number of" if len(args) == 2 and args[1] is Ellipsis else str(len(args))
        return f"a list of {n} {_type_name(args[0]).replace('an ', '').replace('a ', '')}s"
    if origin is dict:
        return f"a mapping of names to {_type_name(args[1]).replace('an ', '').replace('a ', '')}s"
    return str(tp)


def section_from_dict(cls: type[T], d: Mapping[str, Any] | None, section: str, origin: str | None = None,
                      **fixed: Any) -> T:
    """Build the frozen dataclass ``cls`` from the mapping ``d`` of a preset's ``section``, checked key by key.

    Unknown keys and values of the wrong type are a one-line :class:`ConfigError` naming ``section.key``
    (``model.dropout must be a number, got 'abc'``); so is a ConfigError or ValueError raised by the class's
    own ``__post_init__`` range checks. ``fixed`` are fields set by the caller, not by the preset.
    """
    if d is not None and not isinstance(d, Mapping):
        raise ConfigError(origin, f"{section} must be a mapping, got {d!r}")
    d = dict(d or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(origin, f"unknown key(s) in {section}: {', '.join(unknown)} "
                                  f"(known: {', '.join(n for n in names if n not in fixed)})")
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        try:
            kwargs[key] = _fit(value, hints[key])
        except _Mismatch as e:
            raise ConfigError(origin, f"{section}.{key} must be {e.expected}, got {value!r}") from None
    try:
        return cls(**kwargs, **fixed)
    except ConfigError as e:
        raise ConfigError(origin, e.problem) from e
    except (TypeError, ValueError) as e:
        raise ConfigError(origin, f"bad {section} section: {e}") from e


@dataclass(frozen=True)
class InferenceConfig:
    """The ``inference`` section of a perform preset: how :class:`pianoforge.inference.PerformRenderer`
    renders. The defaults are the ``default`` preset's (a preset without the section renders like it)."""

    phase: str = "pghi+gl"  # see pianoforge.phase
    iterations: int = 4  # Griffin-Lim iterations after PGHI
    chunk_seconds: float = 4.0  # network windows as long as the training examples (0: one pass)
    overlap_seconds: float = 1.0  # cross-faded overlap of consecutive windows

    def __post_init__(self) -> None:
        if self.phase not in INFERENCE_PHASES:
            raise ConfigError(None, f"inference.phase must be one of {', '.join(INFERENCE_PHASES)}, "
                                    f"got {self.phase!r}")
        if self.iterations < 0:
            raise ConfigError(None, f"inference.iterations must be >= 0, got {self.iterations}")
        if self.chunk_seconds < 0 or self.overlap_seconds < 0:
            raise ConfigError(None, "inference.chunk_seconds and inference.overlap_seconds must be >= 0, got "
                                    f"{self.chunk_seconds} and {self.overlap_seconds}")

    @classmethod
    def from_preset(cls, preset: Preset) -> InferenceConfig:
        return section_from_dict(cls, preset.inference, "inference", f"preset {preset.name}")


@dataclass(frozen=True)
class Preset:
    """A named, complete configuration. ``model``, ``train`` and ``inference`` are free-form sections
    validated by the layers that use them (``models``, ``training``, ``inference``)."""

    name: str
    description: str = ""
    audio: AudioConfig = field(default_factory=AudioConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in DATA_KEYS_OMITTED_AT_DEFAULT:  # unchanged fingerprints for stores made before these keys
            if d["data"][key] == getattr(DataConfig, key):
                del d["data"][key]
        return d

    def data_fingerprint(self) -> str:
        """Hash of everything that changes the content of a dataset store (not model/train)."""
        d = self.to_dict()
        key = {k: d[k] for k in ("audio", "score", "render", "data")}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str = "<dict>") -> Preset:
        sections = {"audio": AudioConfig, "score": ScoreConfig, "render": RenderConfig, "data": DataConfig}
        unknown = set(d) - {"name", "description", "model", "train", "inference", *sections}
        if unknown:
            raise ConfigError(origin, f"unknown preset section(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {"name": d.get("name", "custom"), "description": d.get("description", "")}
        for key, klass in sections.items():
            kwargs[key] = section_from_dict(klass, d.get(key), key, origin)
        for key in ("model", "train", "inference"):  # free-form here, typed by the layers that use them
            sub = d.get(key) or {}
            if not isinstance(sub, Mapping):
                raise ConfigError(origin, f"{key} must be a mapping of keys to values, got {sub!r}")
            kwargs[key] = dict(sub)
        return cls(**kwargs)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(d: dict[str, Any], overrides: list[str], origin: str) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a preset dict, in place."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(origin, f"override {ov!r} is not of the form section.key=value")
        dotted, value = ov.split("=", 1)
        parts = dotted.strip().split(".")
        node = d
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(origin, f"override {ov!r}: {p} is not a section")
        node[parts[-1]] = _parse_value(value)
    return d


def load_preset(name_or_path: str, overrides: list[str] | None = None) -> Preset:
    """Load a shipped preset by name, or a YAML/JSON file by path, then apply overrides."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        origin = str(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(origin, f"cannot read preset: {e}") from e
    else:
        if name_or_path not in preset_names():
            raise ConfigError(name_or_path, f"unknown preset (known: {', '.join(preset_names())})")
        origin = f"preset {name_or_path}"
        d = yaml.safe_load((resources.files("pianoforge") / "presets" / f"{name_or_path}.yaml").read_text())
    if not isinstance(d, dict):
        raise ConfigError(origin, "preset is not a mapping")
    apply_overrides(d, overrides or [], origin)
    return Preset.from_dict(d, origin)
