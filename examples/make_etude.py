"""Write src/pianoforge/examples/etude.mid (package data: `pianoforge demo` plays it from any folder): a short original study (melody over broken chords, dynamics, sustain pedal,
a re-struck key). Deterministic; rerun to regenerate. Not from any corpus, so it is never reserved."""

from pathlib import Path

import pretty_midi

BPM = 96.0
Q = 60.0 / BPM  # seconds per quarter note


def main(out: Path = Path(__file__).resolve().parents[1] / "src" / "pianoforge" / "examples" / "etude.mid") -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    piano = pretty_midi.Instrument(program=0, name="piano")
    chords = [(48, 55, 64), (45, 52, 60), (41, 48, 57), (43, 50, 59)] * 2  # C Am F G, twice
    melody = [76, 74, 72, 74, 76, 76, 76, None, 74, 74, 74, None, 76, 79, 79, None,
              76, 74, 72, 74, 76, 76, 76, 76, 74, 74, 76, 74, 72, None, None, None]
    t = 0.0
    for bar, chord in enumerate(chords):
        vel = 45 + 10 * bar  # crescendo over the study
        piano.control_changes.append(pretty_midi.ControlChange(64, 127, t + 0.02))
        for i in range(8):  # broken chord in eighths
            p = chord[[0, 1, 2, 1][i % 4]]
            s = t + i * Q / 2
            piano.notes.append(pretty_midi.Note(vel - 10, p, s, s + Q / 2 * 0.9))
        piano.control_changes.append(pretty_midi.ControlChange(64, 0, t + 4 * Q - 0.05))
        for j in range(4):
            m = melody[(bar * 4 + j) % len(melody)]
            if m is not None:
                piano.notes.append(pretty_midi.Note(min(vel + 20, 120), m, t + j * Q, t + (j + 1) * Q))
        t += 4 * Q
    piano.notes.append(pretty_midi.Note(70, 36, t, t + 3 * Q))  # final low C and chord
    for p in (60, 64, 67, 72):
        piano.notes.append(pretty_midi.Note(80, p, t, t + 3 * Q))
    pm.instruments.append(piano)
    pm.write(str(out))
    print(f"wrote {out} ({pm.get_end_time():.1f} s, {len(piano.notes)} notes)")


if __name__ == "__main__":
    main()
