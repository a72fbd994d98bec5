"""GAN model configuration, image layout, and the composition of GAN presets.

A GAN preset name is ``MODEL[-GEOMETRY]``: ``specgan-cpu`` is the data geometry preset ``gan-cpu``
(``presets/gan-cpu.yaml``: audio, data, ``data.resize``) plus the model preset ``specgan``
(``presets/gan/specgan.yaml``: ``model``, ``train``, ``inference``). Without a suffix the geometry is
``cpu``. Models: :data:`ARCHS`; geometries: ``cpu`` (128 x 256), ``fine`` (256 x 256, n_fft 512), ``10s`` (256 x 256), ``20s`` (512 x 512).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pianoforge.config import (
    GAN_PHASES,
    Preset,
    apply_overrides,
    load_preset,
    preset_names,
    section_from_dict,
)
from pianoforge.errors import ConfigError

ARCHS: tuple[str, ...] = ("dcgan", "specgan", "stylegan", "framegan", "notegan")
"""Model presets in ``presets/gan/``."""
ARCH_SUMMARY: dict[str, str] = {
    "dcgan": "the paper's DCGAN baseline (BCE, batch norm)",
    "specgan": "SpecGAN, WGAN-GP (the paper's best)",
    "stylegan": "StyleGAN2-style generator + ADA",
    "framegan": "ours: frequency bins as channels, 1-D convolutions over time",
    "notegan": "ours, shipped (gan-default): a FrameGAN trunk striking measured soundfont notes",
}
"""One line per model for ``pianoforge presets``."""
FRAME_ARCHS = ("framegan", "notegan")
"""1-D over time (frequency bins as channels): only the image width halves (models/gan/frame.py)."""
GEOMETRIES: tuple[str, ...] = ("cpu", "fine", "10s", "20s")
"""Data geometries: ``gan-<geometry>`` presets."""
DEFAULT_GEOMETRY = "cpu"


@dataclass(frozen=True)
class NoteHeadConfig:
    """``model.notes``: NoteGAN's head (models/gan/notegan.py) and its measured note dictionary."""

    frames: int = 96  # length of each key's measured note, in frames (1.5 s at 62.5 fps)
    holds: tuple[int, ...] = ()  # frames each note is held before release, one dictionary per hold; () = frames
    rank: int = 4  # NMF components per note (spectra x envelopes)
    velocity: int = 80  # MIDI velocity of the rendered dictionary notes
    max_strikes: int = 0  # most notes struck in one frame (0: no limit)
    max_level: float = 0.0  # soft cap on gain x strike, in dictionary notes (0: none)
    min_level: float = 0.0  # soft gate: a strike much softer than this many dictionary notes plays nothing (0: none)
    hard_gate: bool = False  # with min_level: a strike under min_level plays nothing at all (the soft gate's gradient)
    velocity_head: bool = False  # fire as hard_gate, play at min_level..max_level from a second conv (how loud)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds", tuple(int(h) for h in self.holds))
        if self.frames < 2 or self.rank < 1 or not 1 <= self.velocity <= 127:
            raise ConfigError(None, "model.notes.frames must be >= 2, model.notes.rank >= 1, "
                                    "model.notes.velocity in 1..127")
        if any(not 1 <= h <= self.frames for h in self.holds):
            raise ConfigError(None, f"model.notes.holds must lie in 1..frames, got {list(self.holds)}")
        if self.max_strikes < 0 or self.max_level < 0 or self.min_level < 0:
            raise ConfigError(None, f"model.notes.max_strikes, max_level and min_level must be >= 0, got "
                                    f"{self.max_strikes}, {self.max_level} and {self.min_level}")
        if self.hard_gate and not self.min_level > 0:
            raise ConfigError(None, "model.notes.hard_gate needs model.notes.min_level > 0")
        if self.velocity_head and not 0 < self.min_level < self.max_level:
            raise ConfigError(None, "model.notes.velocity_head needs 0 < model.notes.min_level < max_level")


@dataclass(frozen=True)
class HarmonicHeadConfig:
    """``model.harmonic``: FrameGAN's experimental harmonic head (models/gan/experimental.py)."""

    templates_per_key: int = 2  # learned templates per piano key
    free_templates: int = 16  # templates not tied to a key
    voices: int = 1  # softmax groups over the templates, summed (notes per frame)

    def __post_init__(self) -> None:
        if self.templates_per_key < 1 or self.free_templates < 0 or self.voices < 1:
            raise ConfigError(None, "model.harmonic.templates_per_key and voices must be >= 1, "
                                    "free_templates >= 0")


HEADS: dict[str, type] = {"notes": NoteHeadConfig, "harmonic": HarmonicHeadConfig}
"""Nested head sections of ``model``: which arch each belongs to is checked by GanModelConfig."""
_HEAD_ARCH = {"notes": "notegan", "harmonic": "framegan"}
LEGACY_NOTE_KEYS = {"note_frames": "frames", "note_holds": "holds", "note_rank": "rank",
                    "note_velocity": "velocity", "note_max_strikes": "max_strikes", "note_max_level": "max_level"}
LEGACY_HARMONIC_KEYS = ("templates_per_key", "free_templates", "voices")


def upgrade_model_dict(d: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` section in the flat layout of presets and checkpoints before 2026-12-02 (``arch: framegan``
    + ``head: direct | harmonic | notes`` + ``note_*`` / harmonic keys) in the nested one (``arch: notegan``
    + ``notes: {...}``; ``harmonic: {...}``); a nested section is returned as it is. The keys of a head
    that is not used are dropped when they hold their default (old checkpoints carry them all) and refused
    otherwise."""
    legacy = [k for k in ("head", *LEGACY_NOTE_KEYS, *LEGACY_HARMONIC_KEYS) if k in d]
    if not legacy:
        return dict(d)
    if any(k in d for k in HEADS):
        raise ConfigError(None, f"model mixes the old flat head keys ({', '.join(legacy)}) with the nested "
                                f"head sections ({', '.join(k for k in HEADS if k in d)}); use the nested ones")
    out = dict(d)
    head = out.pop("head", "direct")
    sections = {"notes": {new: out.pop(old) for old, new in LEGACY_NOTE_KEYS.items() if old in out},
                "harmonic": {k: out.pop(k) for k in LEGACY_HARMONIC_KEYS if k in out}}
    if head not in ("direct", "harmonic", "notes"):
        raise ConfigError(None, f"model.head must be direct, harmonic or notes, got {head!r}")
    if head != "direct":
        if out.get("arch", "framegan") != "framegan":
            raise ConfigError(None, f"model.head={head} belongs to framegan, not {out.get('arch')}")
        out["arch"] = _HEAD_ARCH[head]
        out[head] = sections.pop(head)
    for name, keys in sections.items():
        defaults = dataclasses.asdict(HEADS[name]())
        changed = [k for k, v in keys.items() if defaults[k] != (tuple(v) if isinstance(v, list) else v)]
        if changed:
            old = {v: k for k, v in LEGACY_NOTE_KEYS.items()} if name == "notes" else {}
            raise ConfigError(None, f"model.{', model.'.join(old.get(k, k) for k in changed)} only apply to "
                                    f"{'model.head=notes (arch notegan)' if name == 'notes' else 'model.head=harmonic'}")
    return out


@dataclass(frozen=True)
class GanModelConfig:
    """Generator and critic hyperparameters (the ``model`` section of a GAN preset).

    Conv models (``dcgan``, ``specgan``): ``n_layers`` stride-2 5x5 (de)convolutions between a
    ``base = (H, W) / 2**n_layers`` grid and the image; the layer next to the image has ``channels``
    channels, each layer nearer the base twice as many, capped at ``max_channels``. ``stylegan`` uses the
    same channel rule per resolution. ``framegan`` and ``notegan``: ``channels`` is the constant width of
    their 1-D convolutions over time (frequency bins are the input / output channels), ``n_layers``
    (default 4) the number of time doublings. Heads are nested sections: ``notes`` (notegan, required;
    :class:`NoteHeadConfig`) and ``harmonic`` (framegan, experimental; :class:`HarmonicHeadConfig`).
    """

    arch: str = "specgan"
    latent_dim: int = 100
    latent: str = "uniform"  # "uniform": U[-1, 1]^d (SpecGAN); "normal": N(0, 1)^d
    channels: int = 32
    max_channels: int = 256
    n_layers: int | None = None  # None: log2(min(H, W)) - 2, so the base grid's short side is 4
    kernel: int = 5  # conv models and framegan / notegan
    norm: str = "none"  # conv models: "batch" (DCGAN) or "none" (SpecGAN, WGAN-GP)
    w_dim: int = 128  # stylegan: intermediate latent size
    mapping_layers: int = 4  # stylegan: MLP depth z -> w
    mapping_lr_mul: float = 0.01  # stylegan: equalized learning-rate multiplier of the mapping MLP
    mbstd_group: int = 4  # stylegan and frame critics: minibatch-stddev group size
    patch_channels: int = 0  # frame critics: width of the experimental 2-D patch branch (0: none)
    notes: NoteHeadConfig | None = None  # notegan: its head (set to the defaults when absent)
    harmonic: HarmonicHeadConfig | None = None  # framegan: the experimental harmonic head (None: direct)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(None, f"unknown GAN arch {self.arch!r} (one of {', '.join(ARCHS)})")
        if self.latent not in ("uniform", "normal"):
            raise ConfigError(None, f"model.latent must be uniform or normal, got {self.latent!r}")
        if self.norm not in ("batch", "none"):
            raise ConfigError(None, f"model.norm must be batch or none, got {self.norm!r}")
        if min(self.latent_dim, self.channels, self.max_channels, self.kernel, self.w_dim) < 1:
            raise ConfigError(None, "GAN model sizes must be positive")
        if self.arch == "notegan" and self.notes is None:
            object.__setattr__(self, "notes", NoteHeadConfig())
        for name, arch in _HEAD_ARCH.items():
            if getattr(self, name) is not None and self.arch != arch:
                raise ConfigError(None, f"model.{name} belongs to arch {arch}, not {self.arch}")
        if self.patch_channels < 0:
            raise ConfigError(None, f"model.patch_channels must be >= 0, got {self.patch_channels}")
        if self.n_layers is not None and self.n_layers < 1:
            raise ConfigError(None, f"model.n_layers must be >= 1, got {self.n_layers}")

    def to_dict(self) -> dict[str, Any]:
        """The nested layout; a head section that is not used is left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if not (k in HEADS and v is None)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str | None = None) -> GanModelConfig:
        """The ``model`` section, checked key by key (unknown keys, wrong types: ConfigError naming the key);
        the old flat layout is upgraded first (:func:`upgrade_model_dict`)."""
        try:
            d = upgrade_model_dict(dict(d or {}))
        except ConfigError as e:
            raise ConfigError(origin, e.problem) from e
        heads = {k: section_from_dict(c, d.pop(k), f"model.{k}", origin) if d.get(k) is not None else d.pop(k, None)
                 for k, c in HEADS.items()}
        return section_from_dict(cls, d, "model", origin, **heads)

    def layout(self, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
        """(n_layers, base grid (h0, w0)) for an image of ``size = (H, W)``; ConfigError if it does not divide."""
        h, w = int(size[0]), int(size[1])
        if self.arch in FRAME_ARCHS:  # 1-D over time: only W halves (models/gan/frame.py)
            n = self.n_layers if self.n_layers is not None else 4
            if n < 1 or w % 2**n:
                raise ConfigError(None, f"FrameGAN image width {w} must be divisible by 2**n_layers = {2**max(n, 0)}")
            return n, (h, w >> n)
        n = self.n_layers if self.n_layers is not None else int(math.log2(max(min(h, w), 1))) - 2
        if n < 1 or h % 2**n or w % 2**n:
            raise ConfigError(None, f"GAN image size {h} x {w} must be divisible by 2**n_layers = {2**max(n, 0)} "
                                    f"with n_layers >= 1 (set data.resize, e.g. [128, 256])")
        return n, (h >> n, w >> n)

    def stage_channels(self, n: int) -> list[int]:
        """Channels at each resolution from the base (index 0) to the last hidden layer (index n - 1)."""
        return [min(self.max_channels, self.channels * 2 ** (n - 1 - i)) for i in range(n)]

    def resolution_channels(self, n: int) -> list[int]:
        """StyleGAN channels at the n + 1 resolutions from the base (index 0) to the image (index n)."""
        return [min(self.max_channels, self.channels * 2 ** (n - i)) for i in range(n + 1)]


@dataclass(frozen=True)
class GanInferenceConfig:
    """The ``inference`` section of a GAN preset: how generated magnitudes become audio."""

    phase: str = "pghi+gl"  # PGHI-initialized Griffin-Lim (docs/improvise.md)
    iterations: int = 32  # Griffin-Lim iterations
    strike_threshold: float = 0.0  # notegan: a strike plays from this level (dictionary notes); 0: the trained gate
    strike_floor: float = 0.0  # notegan, with strike_threshold: the softest level a strike plays at

    def __post_init__(self) -> None:
        if self.phase not in GAN_PHASES:
            raise ConfigError(None, f"inference.phase must be one of {', '.join(GAN_PHASES)}, got {self.phase!r}")
        if self.iterations < 0:
            raise ConfigError(None, f"inference.iterations must be >= 0, got {self.iterations}")
        check_strike_rule(self.strike_threshold, self.strike_floor, "inference.")

    @classmethod
    def from_preset(cls, preset: Preset) -> GanInferenceConfig:
        return section_from_dict(cls, preset.inference, "inference", f"preset {preset.name}")


def check_strike_rule(threshold: float, floor: float, prefix: str = "", origin: str | Path | None = None) -> None:
    """ConfigError (naming ``origin``, e.g. the checkpoint) unless ``threshold`` and ``floor`` are finite, >= 0, and
    ``floor`` > 0 only with a threshold."""
    t, f = float(threshold), float(floor)
    if not (math.isfinite(t) and math.isfinite(f)) or t < 0 or f < 0:
        raise ConfigError(origin, f"{prefix}strike_threshold and {prefix}strike_floor must be finite and >= 0, "
                                  f"got {threshold} and {floor}")
    if f > 0 and t == 0:
        raise ConfigError(origin, f"{prefix}strike_floor needs {prefix}strike_threshold > 0 (0: the trained gate)")


def gan_checkpoint_config(preset: Preset, model: GanModelConfig, normalizer: Any, size: tuple[int, int],
                          grid: tuple[int, int], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON config of a ``kind="gan"`` checkpoint (everything :meth:`GanGenerator.from_checkpoint` needs)."""
    return {"preset": preset.to_dict(), "model": model.to_dict(), "image_size": [int(size[0]), int(size[1])],
            "grid": [int(grid[0]), int(grid[1])], "normalizer": normalizer.to_dict(), **(extra or {})}


# ------------------------------------------------------------------------------------------- presets

def gan_model_names() -> list[str]:
    files = resources.files("pianoforge") / "presets" / "gan"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def split_gan_preset_name(name: str) -> tuple[str, str]:
    """``"specgan-10s"`` -> ``("specgan", "gan-10s")``; ``"dcgan"`` -> ``("dcgan", "gan-cpu")``."""
    model, _, geom = name.partition("-")
    geom = geom or DEFAULT_GEOMETRY
    if model not in gan_model_names():
        raise ConfigError(name, f"unknown GAN preset; use MODEL[-GEOMETRY] with MODEL in "
                                f"{', '.join(gan_model_names())} and GEOMETRY in {', '.join(GEOMETRIES)}")
    if f"gan-{geom}" not in preset_names():
        raise ConfigError(name, f"unknown GAN geometry {geom!r} (one of {', '.join(GEOMETRIES)})")
    return model, f"gan-{geom}"


def load_gan_preset(name_or_path: str, overrides: list[str] | None = None) -> Preset:
    """Compose a GAN preset: geometry ``gan-<geometry>`` + model ``presets/gan/<model>.yaml``, then overrides.

    A path to a YAML/JSON file is read as a complete preset (as :func:`pianoforge.config.load_preset`).
    The result must have an ``arch`` in its model section.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        p = load_preset(name_or_path, overrides)
    else:
        model, geometry = split_gan_preset_name(name_or_path)
        d = yaml.safe_load((resources.files("pianoforge") / "presets" / f"{geometry}.yaml").read_text())
        m = yaml.safe_load((resources.files("pianoforge") / "presets" / "gan" / f"{model}.yaml").read_text())
        d["name"] = f"{model}-{geometry[4:]}"
        d["description"] = f"{str(m.get('description', '')).strip()} Geometry: {str(d.get('description', '')).strip()}"
        for section in ("model", "train", "inference"):
            d[section] = dict(m.get(section) or {})
        apply_overrides(d, overrides or [], f"preset {name_or_path}")
        p = Preset.from_dict(d, f"preset {name_or_path}")
    if p.model.get("arch") not in ARCHS:
        raise ConfigError(name_or_path, f"not a GAN preset (model.arch must be one of {', '.join(ARCHS)})")
    # old presets (framegan + head: notes) stay as they are written; GanModelConfig reads them nested
    GanModelConfig.from_dict(p.model, f"preset {p.name}")  # validated at load: a bad --set fails here
    GanInferenceConfig.from_preset(p)
    return p
