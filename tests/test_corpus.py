"""The embedded corpus: reserved works never included, the curated music21 list, conversion with its cache,
and the generated exercises."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import pretty_midi
import pytest

from pianoforge.data import corpus, exercises
from pianoforge.data.reserved import RESERVED_WORKS, assert_no_reserved, is_reserved

SHARED_RESERVED = Path(__file__).resolve().parents[2] / "shared" / "reserved-works.txt"


# --- reserved works ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", RESERVED_WORKS)
def test_reserved_paths_are_reserved(path: str) -> None:
    stem = path.rsplit(".", 1)[0]
    for variant in (path, path.upper(), path.replace("/", "\\"), stem, stem + ".xml", stem + ".krn",
                    "./" + path, "/opt/x/music21/corpus/" + path, "m21-" + stem.replace("/", "__")):
        assert is_reserved(variant), variant


@pytest.mark.parametrize("path", ["cpebach/h186.mus", "mozart/k545/movement2.mxl", "mozart/k545/movement3.krn",
                                  "chopin/mazurka06_2.mxl", "other/bwv846.xml", "m21-joplin__maple_leaf_rag.mid"])
def test_same_work_other_file_is_reserved(path: str) -> None:
    assert is_reserved(path)


@pytest.mark.parametrize("path", ["bach/bwv66.6.mxl", "bach/bwv84.6.mxl", "schumann_clara/polonaise_op1n2.mxl",
                                  "mozart/k458/movement1.mxl", "chopin/mazurka06-3.krn", "joplin/other_rag.mxl",
                                  "beethoven/opus18no1/movement1.mxl", "ex-key-sweeps"])
def test_other_works_are_not_reserved(path: str) -> None:
    assert not is_reserved(path)


def test_assert_no_reserved() -> None:
    assert_no_reserved(["bach/bwv66.6.mxl", "ex-scales-major-octaves"])
    with pytest.raises(ValueError, match="maple_leaf_rag"):
        assert_no_reserved(["bach/bwv66.6.mxl", "joplin/maple_leaf_rag.mxl"])


def test_reserved_list_matches_shared_file() -> None:
    if not SHARED_RESERVED.exists():
        pytest.skip(f"{SHARED_RESERVED} not present")
    lines = [ln.strip() for ln in SHARED_RESERVED.read_text().splitlines()]
    assert tuple(ln for ln in lines if ln and not ln.startswith("#")) == RESERVED_WORKS


# --- curated music21 list ------------------------------------------------------------------------------

def _raw_json() -> dict:
    return json.loads(resources.files("pianoforge").joinpath("data", corpus.WORKS_JSON).read_text("utf-8"))


def test_corpus_works_has_no_reserved_work() -> None:
    works = corpus.corpus_works()
    assert works and not any(is_reserved(w.path) for w in works)
    assert_no_reserved(w["path"] for w in _raw_json()["works"])
    assert_no_reserved(w.piece_id for w in works)


def test_corpus_list_total_and_order() -> None:
    data = _raw_json()
    works = corpus.corpus_works()
    total = sum(w.seconds for w in works)
    assert total >= 85 * 60 and abs(total - data["total_seconds"]) < 1.0
    assert len({w.piece_id for w in works}) == len(works)
    assert all(w.kind in corpus.KIND_ORDER and 20 <= w.seconds <= 480 and w.notes >= 20 for w in works)
    demo, rest = works[: corpus.DEMO_SIZE], works[corpus.DEMO_SIZE :]
    assert len({w.kind for w in demo}) >= 4 and all(w.seconds <= 100 for w in demo)
    keys = [(corpus.KIND_ORDER.index(w.kind), w.composer, w.path) for w in rest]
    assert keys == sorted(keys)
    assert len({w.composer for w in works}) >= 8


def test_piece_id() -> None:
    w = corpus.CorpusWork("trecento/PMFC_01-Rex quem metrorum.xml", 30.0, 100, "vocal", "trecento")
    assert w.piece_id == "m21-trecento__PMFC_01-Rex_quem_metrorum"
    assert corpus.CorpusWork("bach/bwv66.6.mxl", 1, 1, "chorale", "bach").piece_id == "m21-bach__bwv66.6"


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIANOFORGE_CACHE", str(tmp_path))
    assert corpus.default_cache_dir() == tmp_path / "corpus-midi"


def test_convert_corpus_two_works_then_cached(tmp_path: Path) -> None:
    done, failed = corpus.convert_corpus(tmp_path, limit=2, progress=False)
    assert failed == [] and len(done) == 2
    works = corpus.corpus_works()[:2]
    for (pid, path), work in zip(done, works, strict=True):
        assert pid == work.piece_id and path == tmp_path / f"{pid}.mid"
        pm = pretty_midi.PrettyMIDI(str(path))
        assert abs(pm.get_end_time() - work.seconds) < 1.0
        assert all(inst.program == 0 for inst in pm.instruments)
    assert (tmp_path / corpus.VERSION_FILE).exists()
    mtimes = [os.stat(p).st_mtime_ns for _, p in done]
    assert corpus.convert_corpus(tmp_path, limit=2, progress=False) == (done, [])
    assert [os.stat(p).st_mtime_ns for _, p in done] == mtimes
    assert not list(tmp_path.glob("*.tmp"))


def test_convert_corpus_parallel_matches_serial(tmp_path: Path) -> None:
    serial, _ = corpus.convert_corpus(tmp_path / "serial", limit=2, progress=False)
    parallel, failed = corpus.convert_corpus(tmp_path / "parallel", limit=2, workers=2, progress=False)
    assert failed == [] and [p for p, _ in parallel] == [p for p, _ in serial]
    assert [m.read_bytes() for _, m in parallel] == [m.read_bytes() for _, m in serial]


def test_cache_rebuilt_when_music21_version_differs(tmp_path: Path) -> None:
    done, _ = corpus.convert_corpus(tmp_path, limit=1, progress=False)
    path = done[0][1]
    (tmp_path / corpus.VERSION_FILE).write_text("music21 0.0\nconverter 0\n")
    stale = tmp_path / "m21-old__work.mid"
    stale.write_bytes(b"stale")
    before = os.stat(path).st_mtime_ns
    assert corpus.convert_corpus(tmp_path, limit=1, progress=False) == (done, [])
    assert os.stat(path).st_mtime_ns != before and not stale.exists()
    assert "music21" in (tmp_path / corpus.VERSION_FILE).read_text()


def test_abc_opus_converted_like_the_scan(tmp_path: Path) -> None:
    """ABC files hold one voice per tune (an Opus): merged into one score, as the scan measured it."""
    work = next(w for w in corpus.corpus_works() if w.path.endswith(".abc"))
    corpus.convert_work(work, tmp_path / "w.mid")
    assert abs(pretty_midi.PrettyMIDI(str(tmp_path / "w.mid")).get_end_time() - work.seconds) < 1.0


def test_badly_formed_repeats_fall_back_to_playing_once() -> None:
    from music21 import bar, note, stream

    part = stream.Part()
    for i in range(4):
        m = stream.Measure(number=i + 1)
        m.append(note.Note(60 + i, quarterLength=4))
        part.append(m)
    ms = list(part.getElementsByClass(stream.Measure))
    ms[0].leftBarline = bar.Repeat(direction="start")
    ms[1].leftBarline = bar.Repeat(direction="start")  # two starts, one end: music21 cannot expand this
    ms[2].rightBarline = bar.Repeat(direction="end")
    score = stream.Score()
    score.insert(0, part)
    data, expanded = corpus.score_to_midi_bytes(score)
    pm = corpus.check_midi_bytes(data)
    assert not expanded and len(pm.instruments[0].notes) == 4 and pm.resolution == corpus.MIDI_PPQ


def test_convert_work_refuses_reserved(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="reserved"):
        corpus.convert_work(corpus.CorpusWork("bach/bwv846.mxl", 1, 1, "keyboard", "bach"), tmp_path / "x.mid")
    assert not (tmp_path / "x.mid").exists()


# --- exercises ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exercise_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return exercises.write_exercises(tmp_path_factory.mktemp("exercises"))


def test_exercises_content(exercise_files: list[tuple[str, Path]]) -> None:
    names = exercises.exercise_specs()
    assert [pid for pid, _ in exercise_files] == [f"ex-{n}" for n in names]
    total, pitches, vels, zero_gap, cc64 = 0.0, set(), set(), False, set()
    for _, path in exercise_files:
        pm = pretty_midi.PrettyMIDI(str(path))
        assert len(pm.instruments) == 1 and pm.instruments[0].program == 0
        inst = pm.instruments[0]
        assert 60 <= pm.get_end_time() <= 150, path.name
        total += pm.get_end_time()
        pitches |= {n.pitch for n in inst.notes}
        vels |= {n.velocity for n in inst.notes}
        cc64 |= {c.value for c in inst.control_changes if c.number == 64}
        by_pitch: dict[int, list[pretty_midi.Note]] = {}
        for n in sorted(inst.notes, key=lambda n: n.start):
            prev = by_pitch.get(n.pitch)
            if prev:
                assert n.start >= prev[-1].end - 1e-6, f"{path.name}: key {n.pitch} struck while sounding"
                zero_gap |= abs(prev[-1].end - n.start) < 1e-6
            by_pitch.setdefault(n.pitch, []).append(n)
    assert 35 * 60 <= total <= 45 * 60
    assert pitches == set(range(21, 109))
    assert min(vels) <= 20 and max(vels) >= 110
    assert zero_gap
    assert {0, 127} <= cc64


def test_every_key_at_several_velocities(exercise_files: list[tuple[str, Path]]) -> None:
    seen: dict[int, set[int]] = {}
    for _, path in exercise_files:
        for n in pretty_midi.PrettyMIDI(str(path)).instruments[0].notes:
            seen.setdefault(n.pitch, set()).add(n.velocity)
    assert all(len(seen.get(p, ())) >= 4 for p in range(21, 109))


def test_exercises_deterministic_and_cached(exercise_files: list[tuple[str, Path]]) -> None:
    _, path = exercise_files[0]
    mtime = os.stat(path).st_mtime_ns
    name = exercises.exercise_specs()[0]
    assert exercises.write_exercises(path.parent, [name]) == [exercise_files[0]]
    assert os.stat(path).st_mtime_ns == mtime
    assert exercises.build_exercise(name) == path.read_bytes()
    with pytest.raises(KeyError):
        exercises.build_exercise("no-such-exercise")
