"""The test-only chord-dynamics exercises: content, forced test split, nothing shared with training
exercises, and the seeded split of every other corpus piece unchanged by their arrival."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import pretty_midi
import pytest

from pianoforge.config import load_preset
from pianoforge.data import exercises
from pianoforge.data.build import assign_splits
from pianoforge.data.sources import PieceSpec, exercise_pieces

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = [n for n in exercises.exercise_specs() if exercises.exercise_split(n) == "test"]


def _midi(name: str) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(exercises.build_exercise(name)))


def _chords(name: str) -> dict[float, list[pretty_midi.Note]]:
    by: dict[float, list[pretty_midi.Note]] = defaultdict(list)
    for n in _midi(name).instruments[0].notes:
        by[round(n.start, 3)].append(n)
    return by


def test_two_test_only_exercises_of_kind_chord_dynamics():
    assert TEST_ONLY == ["test-chord-dynamics", "test-chord-dynamics-pedal"]
    assert all(exercises.exercise_kind(n) == exercises.CHORD_DYNAMICS for n in TEST_ONLY)
    train = [n for n in exercises.exercise_specs() if n not in TEST_ONLY]
    assert len(train) == 24 and all(exercises.exercise_kind(n) is None for n in train)


@pytest.mark.parametrize("name", TEST_ONLY)
def test_chord_dynamics_content(name):
    pm = _midi(name)
    notes = pm.instruments[0].notes
    vels = [n.velocity for n in notes]
    durs = [n.end - n.start for n in notes]
    assert 60 <= pm.get_end_time() <= 150
    assert min(vels) == 16 and max(vels) == 126  # velocity sweeps over the whole 16..126 range
    assert min(durs) <= 0.13 and max(durs) >= 1.45  # staccato .. 1.5 s
    chords = _chords(name)
    assert len(chords) >= 100
    for group in chords.values():  # two-hand block chords: 5-6 notes spanning more than an octave
        pitches = sorted(n.pitch for n in group)
        assert len(pitches) >= 5 and pitches[-1] - pitches[0] > 12, pitches
        assert len({n.velocity for n in group}) == 1
    cc = [c.value for c in pm.instruments[0].control_changes if c.number == 64]
    assert (set(cc) == {0, 127}) if name.endswith("-pedal") else not cc


def test_test_exercises_share_no_chord_with_training_exercises():
    train_chords = set()
    for name in exercises.exercise_specs():
        if name not in TEST_ONLY:
            train_chords |= {tuple(sorted(n.pitch for n in g)) for g in _chords(name).values() if len(g) >= 3}
    for name in TEST_ONLY:
        test_chords = {tuple(sorted(n.pitch for n in g)) for g in _chords(name).values()}
        assert not test_chords & train_chords, name
    assert exercises.build_exercise(TEST_ONLY[0]) != exercises.build_exercise("chords-block")


def test_exercise_pieces_force_their_splits(tmp_path):
    specs = exercise_pieces(tmp_path)
    by_id = {s.piece_id: s for s in specs}
    assert [s.piece_id for s in specs] == [f"ex-{n}" for n in exercises.exercise_specs()]
    for name in TEST_ONLY:
        s = by_id[f"ex-{name}"]
        assert s.split == "test" and s.provenance["kind"] == exercises.CHORD_DYNAMICS and s.midi.is_file()
    assert all(s.split == "train" and "kind" not in s.provenance for s in specs if s.piece_id[3:] not in TEST_ONLY)


def _music21_specs() -> list[PieceSpec]:
    from pianoforge.data.corpus import corpus_works

    return [PieceSpec(w.piece_id, Path(f"{w.piece_id}.mid"), provenance={"source": "music21"}) for w in corpus_works()]


def test_test_only_exercises_leave_every_other_split_unchanged(tmp_path):
    data = load_preset("default").data
    music21 = _music21_specs()
    ex = exercise_pieces(tmp_path)
    before = assign_splits(music21 + [s for s in ex if s.split == "train"], data.split_seed, data.split_fractions)
    after = assign_splits(music21 + ex, data.split_seed, data.split_fractions)
    assert {pid: after[pid] for pid in before} == before
    assert {after[f"ex-{n}"] for n in TEST_ONLY} == {"test"}
    assert sum(v == "test" for k, v in before.items() if k.startswith("m21-")) == 7


@pytest.mark.parametrize("store", ["notesynth", "default", "lan2018"])
def test_existing_store_splits_are_reproduced(store, tmp_path):
    """A store built before the test-only exercises existed: the same seeded assignment today."""
    path = ROOT / "data" / store / "manifest.json"
    if not path.exists():
        pytest.skip(f"no local store data/{store}")
    m = json.loads(path.read_text())
    seed, fractions = m["preset"]["data"]["split_seed"], tuple(m["preset"]["data"]["split_fractions"])
    old = {p["piece_id"]: p["split"] for p in m["pieces"]}
    specs = [PieceSpec(pid, Path(f"{pid}.mid")) for pid in old if pid.startswith("m21-")]
    specs += [s for s in exercise_pieces(tmp_path) if s.piece_id in old or s.split == "test"]
    new = assign_splits(specs, seed, fractions)
    assert {pid: new[pid] for pid in old} == old
