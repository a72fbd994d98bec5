"""The perform model's ``model`` section (:class:`PerformModelConfig`), without torch: the numpy runtime of the
notes head (:mod:`pianoforge.models.notes_numpy`) reads it too, and a render with it never imports torch.
:mod:`pianoforge.models.perform` re-exports everything here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pianoforge.config import N_KEYS, section_from_dict

OUTPUTS = ("logmag", "logmag_el", "complex", "time")
HEADS = ("dense", "notes", "sampler")


@dataclass(frozen=True)
class PerformModelConfig:
    """Architecture: [dense stack] -> [residual convs] -> [recurrent core] -> dense output head."""

    in_channels: int
    output: str = "logmag"
    dense_layers: int = 0  # time-distributed dense layers before the core (the paper's final model: 4)
    dense_units: int = 256
    conv_layers: int = 0  # residual convolutions over time (dilations 1, 2, 4, ...)
    conv_channels: int = 256
    conv_kernel: int = 5
    rnn: str = "gru"  # "gru", "lstm" or "none"
    rnn_layers: int = 1
    rnn_units: int = 128
    bidirectional: bool = True
    post_dense_layers: int = 0  # dense layers between the core and the output head
    dropout: float = 0.0
    el_phon: float = 60.0  # loudness level of the ISO 226 contour used by ``logmag_el``
    # head "notes" (models/note_synth.py): learned per-key templates mixed by per-note excitations; the
    # layers above then form an optional residual trunk (note_residual) instead of the whole network
    head: str = "dense"
    note_rank: int = 8  # power templates per key
    note_hidden: int = 64  # width of the excitation MLP (shared by all keys)
    note_embed: int = 16  # learned key embedding fed to the MLP
    note_release_cutoff: float = 1.5  # seconds into its release after which a note is silent (FluidR3: < 1.25 s)
    note_residual: bool = False  # add a per-bin log-magnitude correction from the trunk
    note_table: bool = False  # add a learned per-key spectrum at every strike age (72 anchors, 3.3 M weights)
    note_channels: int = -1  # first note-state channel of the input (set from the score config)
    velocity_channels: int = -1  # first velocity channel of the input (-1: none; set from the score config)
    note_subframe: bool = False  # the note-state ages are sub-frame (set from score.subframe)
    # head "sampler" (models/sampler.py): no network layers; learned per-key waveforms placed at each strike,
    # scaled by learned velocity curves and cut by a learned release envelope (output: time); its settings are
    # the nested section model.sampler (pianoforge.models.sampler.SamplerConfig)
    sampler: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown model output {self.output!r} (one of {', '.join(OUTPUTS)})")
        if self.head not in HEADS:
            raise ValueError(f"unknown model head {self.head!r} (one of {', '.join(HEADS)})")
        if self.head == "notes":
            if self.output != "logmag":
                raise ValueError("model.head notes needs model.output logmag")
            if self.note_channels < 0 or self.note_channels + 3 * N_KEYS > self.in_channels:
                raise ValueError("model.head notes needs the score's note-state channels (score.note_state: true)")
            if self.note_rank < 1 or self.note_hidden < 1 or self.note_embed < 1 or self.note_release_cutoff <= 0:
                raise ValueError("model.note_rank, note_hidden, note_embed and note_release_cutoff must be > 0")
        if self.head == "sampler":
            from pianoforge.models.sampler import SamplerConfig

            if self.output != "time":
                raise ValueError("model.head sampler needs model.output time (it writes the waveform)")
            SamplerConfig.from_dict(self.sampler)
        elif self.sampler is not None:
            raise ValueError("model.sampler applies to model.head sampler only")
        if self.rnn not in ("gru", "lstm", "none"):
            raise ValueError(f"unknown rnn {self.rnn!r} (gru, lstm or none)")

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str | None = None) -> PerformModelConfig:
        """The ``model`` section, checked key by key (unknown keys, wrong types and bad values: ConfigError)."""
        return section_from_dict(cls, d, "model", origin)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sampler_config(self):
        """The nested ``model.sampler`` section as a :class:`pianoforge.models.sampler.SamplerConfig`."""
        from pianoforge.models.sampler import SamplerConfig

        return SamplerConfig.from_dict(self.sampler)
