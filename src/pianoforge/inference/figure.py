"""Inference: the paper's Figure 4 of a render (piano roll, predicted and reference spectrograms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pianoforge.inference.renderer import PerformRenderer
from pianoforge.midi.score import Score


def figure4(path: str | Path, renderer: PerformRenderer, score: Score, predicted_logmag: np.ndarray,
            reference_audio: np.ndarray | None = None) -> Path:
    """The paper's Figure 4: piano roll, predicted spectrogram, FluidSynth reference spectrogram."""
    from pianoforge.audio.render import render_score
    from pianoforge.audio.spectral import log_magnitude_np
    from pianoforge.midi.encoding import piano_roll
    from pianoforge.viz import score_and_spectrograms

    a = renderer.preset.audio
    n = predicted_logmag.shape[0]
    if reference_audio is None:
        reference_audio = render_score(score, a.sample_rate, renderer.preset.render, n * a.hop_length)
    ref = log_magnitude_np(reference_audio, a)
    return score_and_spectrograms(path, piano_roll(renderer.encode(score)),
                                  [(f"model ({renderer.model.cfg.head} head)", predicted_logmag), ("FluidSynth reference", ref)], a,
                                  title=Path(score.source).name if score.source else "")
