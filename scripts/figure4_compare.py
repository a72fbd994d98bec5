"""Figure 4 of two perform checkpoints on the same passage: piano roll, model A, model B, FluidSynth.

    python scripts/figure4_compare.py OLD.safetensors NEW.safetensors examples/etude.mid fig4.png \
        --start 4 --seconds 8 --labels "perform-default (old)" "notesynth (new)"

Each checkpoint renders the whole MIDI (chunked, as `pianoforge render` does), then the passage
[start, start + seconds) of each predicted log-magnitude is drawn under the piano roll, above the FluidSynth
reference of the same MIDI, on one time axis and one dB scale (viz.score_and_spectrograms). Both checkpoints
must share the audio geometry (sample rate, n_fft, hop). Exit status 2 with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def figure4_compare(ckpt_a: Path, ckpt_b: Path, midi: Path, out: Path, start: float, seconds: float | None,
                    labels: tuple[str, str] | None = None) -> Path:
    """Write the comparison figure to ``out``; returns ``out``. ``seconds`` None: to the end of the piece."""
    from pianoforge.audio.render import render_score
    from pianoforge.audio.spectral import log_magnitude_np
    from pianoforge.errors import PianoforgeError
    from pianoforge.inference import PerformRenderer
    from pianoforge.midi.encoding import piano_roll
    from pianoforge.midi.score import load_score
    from pianoforge.viz import score_and_spectrograms

    ra, rb = PerformRenderer.from_checkpoint(ckpt_a), PerformRenderer.from_checkpoint(ckpt_b)
    a = ra.preset.audio
    if (a.sample_rate, a.n_fft, a.hop_length) != (rb.preset.audio.sample_rate, rb.preset.audio.n_fft,
                                                  rb.preset.audio.hop_length):
        raise PianoforgeError(ckpt_b, f"audio geometry differs from {ckpt_a.name}'s; both panels need one time "
                                      "and frequency grid")
    score = load_score(midi)
    la, lb = ra.render_score(score).logmag, rb.render_score(score).logmag  # (frames, bins) each
    n = min(la.shape[0], lb.shape[0])
    f0 = int(round(start * a.frame_rate))
    f1 = n if seconds is None else min(n, f0 + int(round(seconds * a.frame_rate)))
    if not 0 <= f0 < f1:
        raise PianoforgeError(midi, f"--start {start} s is outside the piece ({n / a.frame_rate:.1f} s)")
    ref = log_magnitude_np(render_score(score, a.sample_rate, ra.preset.render, n * a.hop_length), a)
    roll = piano_roll(ra.encode(score))[:, :n]
    names = labels or (ckpt_a.stem, ckpt_b.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    return score_and_spectrograms(out, roll[:, f0:f1], [(f"predicted: {names[0]}", la[f0:f1]),
                                                        (f"predicted: {names[1]}", lb[f0:f1]),
                                                        ("FluidSynth reference", np.asarray(ref[f0:f1]))],
                                  a, title=f"{midi.name}, {f0 / a.frame_rate:.1f}-{f1 / a.frame_rate:.1f} s",
                                  start_s=f0 / a.frame_rate)


def main(argv: list[str] | None = None) -> int:
    from pianoforge.errors import PianoforgeError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt_a", type=Path, help="first perform checkpoint (e.g. the old default)")
    ap.add_argument("ckpt_b", type=Path, help="second perform checkpoint (e.g. the new model)")
    ap.add_argument("midi", type=Path, help="MIDI file to render")
    ap.add_argument("out", type=Path, help="output PNG")
    ap.add_argument("--start", type=float, default=0.0, help="passage start in seconds (default 0)")
    ap.add_argument("--seconds", type=float, help="passage length in seconds (default: to the end)")
    ap.add_argument("--labels", nargs=2, metavar=("A", "B"), help="panel names (default: the checkpoint stems)")
    a = ap.parse_args(argv)
    if a.start < 0 or (a.seconds is not None and a.seconds <= 0):
        print("error: --start must be >= 0 and --seconds > 0", file=sys.stderr)
        return 2
    try:
        path = figure4_compare(a.ckpt_a, a.ckpt_b, a.midi, a.out, a.start, a.seconds,
                               tuple(a.labels) if a.labels else None)
    except PianoforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
