"""Shared fixtures: tiny MIDI files made with pretty_midi/mido in temporary folders, and small dataset
stores built from them (session-scoped: each is made once per test worker)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from pianoforge.config import Preset, load_preset

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

NoteSpec = tuple[int, float, float, int]  # (pitch, start s, end s, velocity)


def write_midi_file(path: str | Path, notes: Iterable[NoteSpec] = (), *, pedal: Sequence[tuple[float, int]] = (),
                    drums: Iterable[NoteSpec] = (), program: int = 0,
                    extra_tracks: Sequence[Iterable[NoteSpec]] = ()) -> Path:
    """Write a MIDI file with pretty_midi: one piano track (``notes`` + CC64 ``pedal`` events as
    (time, value)), optionally more piano tracks and a drum track."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    tracks = [list(notes), *[list(t) for t in extra_tracks]]
    for i, track in enumerate(tracks):
        inst = pretty_midi.Instrument(program=program, name=f"piano{i}")
        for pitch, start, end, vel in track:
            inst.notes.append(pretty_midi.Note(int(vel), int(pitch), float(start), float(end)))
        if i == 0:
            for t, v in pedal:
                inst.control_changes.append(pretty_midi.ControlChange(64, int(v), float(t)))
        pm.instruments.append(inst)
    drum_notes = list(drums)
    if drum_notes:
        d = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        for pitch, start, end, vel in drum_notes:
            d.notes.append(pretty_midi.Note(int(vel), int(pitch), float(start), float(end)))
        pm.instruments.append(d)
    pm.write(str(p))
    return p


def write_tempo_change_midi(path: str | Path) -> Path:
    """Two quarter notes: C4 at beat 0 (120 bpm -> 0.0-0.5 s), then the tempo halves to 60 bpm and E4
    plays beat 1 (0.5-1.5 s) and G4 beat 2 (1.5-2.5 s). Written with mido so the tempo map is explicit."""
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    tr.append(mido.Message("note_on", note=60, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=480))
    tr.append(mido.MetaMessage("set_tempo", tempo=1000000, time=0))
    tr.append(mido.Message("note_on", note=64, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=64, velocity=0, time=480))
    tr.append(mido.Message("note_on", note=67, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=67, velocity=0, time=480))
    tr.append(mido.MetaMessage("end_of_track", time=0))
    mid.save(str(path))
    return Path(path)


def peak_hz(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest Hann-windowed FFT bin of ``x`` sampled at ``sr``."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def scale(first: int, n: int = 4, step: float = 0.25, vel: int = 80) -> list[NoteSpec]:
    """``n`` short ascending notes starting at pitch ``first``."""
    return [(first + 2 * i, i * step, (i + 1) * step, vel + i) for i in range(n)]


# ----------------------------------------------------------------------------------------- bad inputs

def write_bad_midis(folder: Path) -> dict[str, tuple[Path, str]]:
    """Every kind of bad MIDI input: name -> (path, words the error must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    good = write_midi_file(folder / "_tmp_good.mid", scale(60))
    raw = good.read_bytes()
    good.unlink()
    bad: dict[str, tuple[Path, str]] = {}

    p = folder / "corrupt.mid"
    p.write_bytes(b"MThd" + rng.bytes(300))
    bad["corrupt"] = (p, "corrupt")
    p = folder / "empty.mid"
    p.write_bytes(b"")
    bad["empty"] = (p, "empty")
    bad["noteless"] = (write_midi_file(folder / "noteless.mid", []), "no notes")
    bad["drums"] = (write_midi_file(folder / "drums.mid", [], drums=[(36, 0.0, 0.5, 100), (38, 0.5, 1.0, 100)]),
                    "drum")
    p = folder / "truncated.mid"
    p.write_bytes(raw[: len(raw) - 12])
    bad["truncated"] = (p, "truncated")
    p = folder / "text.mid"
    p.write_text("this is not a MIDI file\n" * 20)
    bad["text"] = (p, "not a MIDI file")
    return bad


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def lan2018() -> Preset:
    return load_preset("lan2018")


@pytest.fixture(scope="session")
def default_preset() -> Preset:
    return load_preset("default")


@pytest.fixture(scope="session")
def tiny_midi_dir(tmp_path_factory) -> Path:
    """A folder of four tiny pieces (about 1 s of notes each; one in a subfolder as ``.midi``)."""
    d = tmp_path_factory.mktemp("tiny-midi")
    write_midi_file(d / "piece_a.mid", scale(60))
    write_midi_file(d / "piece_b.mid", scale(48, n=3, step=0.4), pedal=[(0.1, 127), (1.0, 0)])
    write_midi_file(d / "piece_c.mid", [(69, 0.0, 1.0, 100), (72, 0.5, 1.2, 60)])
    write_midi_file(d / "sub" / "piece_d.midi", scale(55, n=5, step=0.2), extra_tracks=[[(43, 0.0, 1.0, 70)]])
    return d


@pytest.fixture(scope="session")
def midi_store(tiny_midi_dir, lan2018, tmp_path_factory):
    """A complete lan2018 store built in-process from ``tiny_midi_dir``: (store folder, BuildReport)."""
    from pianoforge.data.build import build
    from pianoforge.data.sources import midi_folder

    out = tmp_path_factory.mktemp("midi-store") / "store"
    rep = build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)
    return out, rep


MAESTRO_CSV_COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename",
                       "audio_filename", "duration")


def write_maestro(root: Path, rows: Sequence[dict[str, str]]) -> Path:
    """Write ``maestro-v3.0.0.csv`` with the MAESTRO columns (rows give split, midi_filename,
    audio_filename and optionally the rest)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "maestro-v3.0.0.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MAESTRO_CSV_COLUMNS)
        w.writeheader()
        for i, r in enumerate(rows):
            full = {"canonical_composer": "Test Composer", "canonical_title": f"Piece {i}", "year": "2018",
                    "duration": "2.5"}
            full.update(r)
            w.writerow(full)
    return root


def render_to_wav(midi: Path, wav: Path, sample_rate: int) -> Path:
    """A FluidSynth render of ``midi`` saved as ``wav`` at ``sample_rate``."""
    from pianoforge.audio.io import save_audio
    from pianoforge.audio.render import render_score
    from pianoforge.midi.score import load_score

    wav.parent.mkdir(parents=True, exist_ok=True)
    return save_audio(wav, render_score(load_score(midi), sample_rate), sample_rate)


MAESTRO_PIECES = {  # stem -> (official split, notes)
    "2018/MIDI-Unprocessed_01_R1_2018_wav--1": ("train", scale(60)),
    "2018/MIDI-Unprocessed_02_R1_2018_wav--2": ("train", scale(50, n=3, step=0.3)),
    "2018/MIDI-Unprocessed_03_R1_2018_wav--3": ("validation", [(69, 0.0, 1.0, 90)]),
    "2018/MIDI-Unprocessed_04_R1_2018_wav--4": ("test", scale(65, n=2, step=0.5)),
}


@pytest.fixture(scope="session")
def maestro_dir(tmp_path_factory) -> Path:
    """A tiny MAESTRO-layout folder: csv + 2018/*.midi + 2018/*.wav (FluidSynth renders at 16 kHz)."""
    root = tmp_path_factory.mktemp("maestro")
    rows = []
    for stem, (split, notes) in MAESTRO_PIECES.items():
        midi = write_midi_file(root / f"{stem}.midi", notes)
        render_to_wav(midi, root / f"{stem}.wav", 16000)
        rows.append({"split": split, "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav"})
    return write_maestro(root, rows)


# ------------------------------------------------------------------------------------------------ CLI

def cli_command() -> list[str]:
    """The installed console script next to the interpreter, else ``python -m pianoforge.cli``."""
    script = Path(sys.executable).with_name("pianoforge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pianoforge.cli"]


def run_in_process(capsys, *args) -> tuple[int, str, str]:
    """``pianoforge ARGS`` in this process: (exit code, stdout, stderr)."""
    from pianoforge import cli

    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PIANOFORGE_SOUNDFONT", None)
    return subprocess.run([*cli_command(), *(str(a) for a in args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
