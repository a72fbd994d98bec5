"""A MAESTRO-layout folder whose audio nobody here rendered for training: another sampled piano.

    python scripts/make_maestro_fixture.py OUT [--pieces 12] [--seconds 20] [--midi-dir DIR] [--bad-inputs]

Every MIDI (seeded random piano pieces, or the files of ``--midi-dir``) is rendered with the TimGM6mb
soundfont that ships inside pretty_midi's wheel, at mixed native rates (44.1, 48, 22.05 and 16 kHz), and
listed in ``OUT/maestro-v3.0.0.csv`` with an official split. Two faults are planted: one recording starts
with 3 s of silence (``misaligned``), and two rows have their audio files swapped (``swapped``).
``--bad-inputs`` adds the issue's bad-input rows: a missing, an unreadable, a silent, a too-short and an
8 kHz recording, and a row pointing outside the folder. ``OUT/expected.json`` lists what a build must
keep and skip. Used by tests/test_recordings.py (small) and docs/recordings.md (the recipe).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

RATES = (44100, 48000, 22050, 16000)
COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration")


def random_piece(path: Path, seed: int, seconds: float) -> Path:
    """A seeded piano piece: chords of 1-3 notes on a grid of 1/8 to 3/4 s, velocities 40-110."""
    import pretty_midi

    r = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    t = 0.0
    while t < seconds:
        step = float(r.choice([0.125, 0.25, 0.25, 0.5, 0.75]))
        for _ in range(int(r.integers(1, 4))):
            inst.notes.append(pretty_midi.Note(int(r.integers(40, 110)), int(r.integers(36, 90)), t,
                                               t + step * float(r.uniform(0.8, 2.0))))
        t += step
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


def timgm6mb() -> str:
    import pretty_midi

    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


def render(midi: Path, wav: Path, rate: int, lead_silence: float = 0.0, seconds: float | None = None) -> None:
    from pianoforge.audio.io import save_audio
    from pianoforge.audio.render import render_score
    from pianoforge.config import RenderConfig
    from pianoforge.midi.score import load_score

    x = render_score(load_score(midi), rate, RenderConfig(soundfont=timgm6mb()))
    if lead_silence:
        x = np.concatenate([np.zeros(int(lead_silence * rate), np.float32), x])
    if seconds is not None:
        x = x[: int(seconds * rate)]
    save_audio(wav, x, rate)


def make_fixture(out: Path, pieces: int = 12, seconds: float = 20.0, midi_dir: Path | None = None,
                 bad_inputs: bool = False, seed: int = 17) -> dict:
    """Write the folder; returns the expected outcome {"kept": [...], "skipped": {piece_id: reason word}}."""
    out.mkdir(parents=True, exist_ok=True)
    midis = sorted(p for p in (midi_dir.rglob("*") if midi_dir else []) if p.suffix.lower() in (".mid", ".midi"))
    rows, kept, skipped = [], [], {}
    n = len(midis[:pieces]) if midi_dir else pieces
    for i in range(n):
        stem = f"2018/piece-{i:02d}"
        midi = out / f"{stem}.midi"
        if midi_dir:
            midi.parent.mkdir(parents=True, exist_ok=True)
            midi.write_bytes(midis[i].read_bytes())
        else:
            random_piece(midi, seed * 1000 + i, seconds)
        lead = 3.0 if i == 1 else 0.0
        render(midi, out / f"{stem}.wav", RATES[i % len(RATES)], lead)
        split = "validation" if i in (3, 7) else "test" if i in (4, 8) else "train"
        rows.append({"split": split, "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav"})
        pid = f"2018__piece-{i:02d}"
        if i == 1:
            skipped[pid] = "late"
        else:
            kept.append(pid)
    a, b = 2, 5  # the swapped pair: each MIDI listed with the other's recording
    rows[a]["audio_filename"], rows[b]["audio_filename"] = rows[b]["audio_filename"], rows[a]["audio_filename"]
    for i in (a, b):
        kept.remove(f"2018__piece-{i:02d}")
        skipped[f"2018__piece-{i:02d}"] = "does not match"
    if bad_inputs:
        rows += _bad_rows(out, seed, min(seconds, 6.0), skipped)
    with (out / "maestro-v3.0.0.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for k, r in enumerate(rows):
            w.writerow({"canonical_composer": "Random", "canonical_title": f"Piece {k}", "year": "2018",
                        "duration": str(seconds), **r})
    expected = {"kept": kept, "skipped": skipped}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return expected


def _bad_rows(out: Path, seed: int, seconds: float, skipped: dict) -> list[dict]:
    from pianoforge.audio.io import save_audio

    rows = []
    for name, why in (("missing", "file not found"), ("unreadable", "unreadable audio"), ("silent", "silent"),
                      ("short", "shorter than its MIDI"), ("lowrate", "below the preset")):
        stem = f"2019/{name}"
        midi = random_piece(out / f"{stem}.midi", seed * 1000 + 500 + len(rows), seconds)
        wav = out / f"{stem}.wav"
        if name == "unreadable":
            wav.write_bytes(b"RIFF0000WAVEfmt this is not audio" * 8)
        elif name == "silent":
            save_audio(wav, np.zeros(int((seconds + 1) * 16000), np.float32), 16000)
        elif name == "short":
            render(midi, wav, 16000, seconds=seconds / 3)
        elif name == "lowrate":
            render(midi, wav, 8000)
        rows.append({"split": "train", "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav"})
        skipped[f"2019__{name}"] = why
    rows.append({"split": "train", "midi_filename": "../outside.midi", "audio_filename": "../outside.wav"})
    skipped["outside"] = "outside the MAESTRO folder"
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write (MAESTRO layout)")
    ap.add_argument("--pieces", type=int, default=12, help="pieces (default 12; at least 6)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each random piece (default 20)")
    ap.add_argument("--midi-dir", type=Path, help="use these MIDI files instead of random pieces")
    ap.add_argument("--bad-inputs", action="store_true", help="add the bad-input rows")
    a = ap.parse_args(argv)
    if a.pieces < 6:
        ap.error("--pieces must be at least 6 (the planted faults use pieces 1, 2 and 5)")
    exp = make_fixture(a.out, a.pieces, a.seconds, a.midi_dir, a.bad_inputs)
    print(f"{a.out}: {len(exp['kept'])} good pairs, {len(exp['skipped'])} planted faults: "
          + ", ".join(f"{k} ({v})" for k, v in exp["skipped"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
