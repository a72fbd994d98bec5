from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    MAESTRO_PIECES,
    render_to_wav,
    scale,
    write_bad_midis,
    write_maestro,
    write_midi_file,
)
from pianoforge.audio.io import load_audio, save_audio
from pianoforge.audio.spectral import log_magnitude_np
from pianoforge.config import load_preset
from pianoforge.data import piece as piece_mod
from pianoforge.data.build import assign_splits, build, source_digest
from pianoforge.data.sources import PieceSpec, collect, maestro, midi_folder, safe_id
from pianoforge.data.store import FORMAT, FORMAT_VERSION, MANIFEST, FeatureStore, read_manifest
from pianoforge.errors import PianoforgeError, StoreError
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import load_score

TINY_IDS = ["piece_a", "piece_b", "piece_c", "sub__piece_d"]


def manifest_of(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def assert_valid_store(out: Path, preset, ids: list[str]) -> FeatureStore:
    """Open ``out`` and check the documented shapes and dtypes of every piece."""
    st = FeatureStore(out)
    assert [p["piece_id"] for p in st.pieces()] == ids
    a = preset.audio
    for p in st.pieces():
        arr = st.arrays(p["piece_id"])
        n = p["n_frames"]
        for name, shape in (("score", (n, preset.score.n_channels)), ("spec", (n, a.n_bins)),
                            ("audio", (n * a.hop_length,))):
            x = getattr(arr, name)
            assert isinstance(x, np.memmap), name
            assert x.shape == shape, name
            assert x.dtype == np.float16, name
        assert p["seconds"] == pytest.approx(n / a.frame_rate, abs=1e-3)
        assert p["split"] in ("train", "validation", "test")
    return st


def same_arrays(a: Path, b: Path, ids: list[str]) -> None:
    sa, sb = FeatureStore(a), FeatureStore(b)
    for pid in ids:
        for name in ("score", "spec", "audio"):
            np.testing.assert_array_equal(getattr(sa.arrays(pid), name), getattr(sb.arrays(pid), name),
                                          err_msg=f"{pid}/{name}")


# ----------------------------------------------------------------------------------- the midi source

def test_midi_folder_listing(tiny_midi_dir):
    specs = midi_folder(tiny_midi_dir)
    assert [s.piece_id for s in specs] == TINY_IDS
    assert all(s.audio is None and s.split is None for s in specs)
    assert specs[3].provenance == {"source": "midi", "file": "sub/piece_d"}
    assert safe_id("a b/c?d.mid") == "a_b_c_d.mid"
    assert safe_id("...") == "piece"


def test_midi_folder_errors(tmp_path):
    with pytest.raises(PianoforgeError, match="not found"):
        midi_folder(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PianoforgeError, match="no .mid"):
        midi_folder(tmp_path)
    with pytest.raises(PianoforgeError, match="unknown source"):
        collect("youtube", tmp_path)
    with pytest.raises(PianoforgeError, match="--input"):
        collect("midi", None)


def test_midi_store_manifest(midi_store, lan2018):
    out, rep = midi_store
    assert (rep.built, rep.reused, rep.up_to_date, rep.skipped) == (4, 0, False, [])
    m = manifest_of(out)
    assert m == json.loads(json.dumps(rep.manifest))
    assert m["format"] == FORMAT == "pianoforge-dataset"
    assert m["format_version"] == FORMAT_VERSION == 1
    assert m["status"] == "complete"
    assert m["fingerprint"] == lan2018.data_fingerprint()
    assert m["preset"]["name"] == "lan2018"
    assert m["skipped"] == []
    assert [p["piece_id"] for p in m["pieces"]] == TINY_IDS
    assert set(m["splits"]) == {"train", "validation", "test"}
    # 4 free pieces: at least one validation and one test piece
    assert [m["splits"][s]["pieces"] for s in ("train", "validation", "test")] == [2, 1, 1]
    assert m["example_frames"] == 80 and m["stride_frames"] == 80
    norm = m["normalization"]
    assert len(norm["mean"]) == len(norm["std"]) == lan2018.audio.n_bins == 201
    assert all(s > 0 for s in norm["std"])
    train = [p for p in m["pieces"] if p["split"] == "train"]
    assert norm["frames"] == sum(p["n_frames"] for p in train)
    for sp, info in m["splits"].items():
        ps = [p for p in m["pieces"] if p["split"] == sp]
        assert info["frames"] == sum(p["n_frames"] for p in ps)
        assert info["seconds"] == pytest.approx(sum(p["seconds"] for p in ps), abs=1e-3)
        assert info["examples"] == len(FeatureStore(out).examples(sp, 80, 80))
    assert m["arrays"]["score"][1] == 176 and m["arrays"]["spec"][1] == 201


def test_midi_store_contents(midi_store, lan2018, tiny_midi_dir):
    out, _ = midi_store
    st = assert_valid_store(out, lan2018, TINY_IDS)
    assert st.preset == lan2018
    a = lan2018.audio
    for p, spec in zip(st.pieces(), midi_folder(tiny_midi_dir), strict=True):
        score = load_score(spec.midi)
        n = frames_for(score.end_time + lan2018.render.release_seconds, a.frame_rate)
        assert p["n_frames"] == n
        assert p["n_notes"] == len(score.notes)
        arr = st.arrays(p["piece_id"])
        np.testing.assert_array_equal(arr.score, encode(score, lan2018.score, a.frame_rate, n).astype(np.float16))
        audio = np.asarray(arr.audio, dtype=np.float32)
        assert np.max(np.abs(audio)) > 1e-3
        assert p["peak"] == pytest.approx(float(np.max(np.abs(audio))), abs=1e-3)
        # the stored audio is float16, so only the louder bins match a recomputation closely
        spec, ref = np.asarray(arr.spec, np.float32), log_magnitude_np(audio, a)
        loud = ref > -6
        assert loud.mean() > 0.05
        np.testing.assert_allclose(spec[loud], ref[loud], rtol=0.01, atol=0.02)
        assert np.mean(np.abs(spec - ref)) < 0.01
    # normalization = per-bin moments of the train split's spectrogram
    train = np.concatenate([np.asarray(st.arrays(p["piece_id"]).spec, np.float64) for p in st.pieces("train")])
    np.testing.assert_allclose(st.normalizer.mean, train.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st.normalizer.std, np.maximum(train.std(0), 1e-3), rtol=1e-5, atol=1e-6)


def test_split_is_by_piece(midi_store):
    out, _ = midi_store
    st = FeatureStore(out)
    seen = {}
    for sp in ("train", "validation", "test"):
        for p in st.pieces(sp):
            assert p["piece_id"] not in seen, f"{p['piece_id']} in {seen.get(p['piece_id'])} and {sp}"
            seen[p["piece_id"]] = sp
    assert sorted(seen) == sorted(TINY_IDS)
    # each piece folder records the same split as the manifest... and holds exactly its own arrays
    for pid in TINY_IDS:
        assert sorted(x.name for x in (out / "pieces" / pid).iterdir()) == ["audio.npy", "meta.json", "score.npy",
                                                                            "spec.npy"]
    assert not list((out / "pieces").glob(".tmp-*"))


def fake_specs(n: int, forced: dict[int, str] | None = None) -> list[PieceSpec]:
    forced = forced or {}
    return [PieceSpec(f"p{i:02d}", Path(f"/x/p{i}.mid"), split=forced.get(i)) for i in range(n)]


def test_assign_splits_counts_and_determinism():
    specs = fake_specs(10)
    s1 = assign_splits(specs, 1234, (0.8, 0.1, 0.1))
    counts = {k: list(s1.values()).count(k) for k in ("train", "validation", "test")}
    assert counts == {"train": 8, "validation": 1, "test": 1}
    assert set(s1) == {s.piece_id for s in specs}
    assert assign_splits(list(reversed(specs)), 1234, (0.8, 0.1, 0.1)) == s1  # order-independent
    assert assign_splits(specs, 1234, (0.8, 0.1, 0.1)) == s1  # deterministic
    others = [assign_splits(specs, seed, (0.8, 0.1, 0.1)) for seed in range(5)]
    assert any(o != s1 for o in others)  # the seed matters
    assert {k: list(assign_splits(fake_specs(20), 1, (0.6, 0.2, 0.2)).values()).count(k)
            for k in ("train", "validation", "test")} == {"train": 12, "validation": 4, "test": 4}


def test_assign_splits_small_and_forced():
    assert sorted(assign_splits(fake_specs(3), 0, (0.8, 0.1, 0.1)).values()) == ["test", "train", "validation"]
    assert set(assign_splits(fake_specs(2), 0, (0.8, 0.1, 0.1)).values()) == {"train"}
    assert assign_splits(fake_specs(1), 0, (0.8, 0.1, 0.1)) == {"p00": "train"}
    forced = assign_splits(fake_specs(12, {0: "test", 1: "test", 2: "train"}), 5, (0.8, 0.1, 0.1))
    assert forced["p00"] == forced["p01"] == "test" and forced["p02"] == "train"
    free = [forced[f"p{i:02d}"] for i in range(3, 12)]
    assert (free.count("train"), free.count("validation"), free.count("test")) == (7, 1, 1)


def test_source_digest_tracks_files(tmp_path):
    a = write_midi_file(tmp_path / "a.mid", scale(60))
    specs = [PieceSpec("a", a)]
    d1 = source_digest(specs)
    assert source_digest(specs) == d1
    assert source_digest([PieceSpec("a", a, split="test")]) != d1
    write_midi_file(a, scale(62, n=6))
    assert source_digest(specs) != d1


# -------------------------------------------------------------------------------- the maestro source

def test_maestro_listing(maestro_dir):
    specs = maestro(maestro_dir)
    assert len(specs) == 4
    for s, (stem, (split, _)) in zip(specs, MAESTRO_PIECES.items(), strict=True):
        assert s.midi == maestro_dir / f"{stem}.midi"
        assert s.audio == maestro_dir / f"{stem}.wav"
        assert s.split == split
        assert s.piece_id == safe_id(stem.replace("/", "__"))
        assert s.provenance["composer"] == "Test Composer"


def test_maestro_json_metadata(tmp_path):
    cols = {"canonical_composer": {"0": "A", "1": "B"}, "canonical_title": {"0": "x", "1": "y"},
            "split": {"0": "validation", "1": "train"}, "year": {"0": 2004, "1": 2006},
            "midi_filename": {"0": "2004/a.midi", "1": "2006/b.midi"},
            "audio_filename": {"0": "2004/a.wav", "1": "2006/b.wav"}, "duration": {"0": 1.0, "1": 2.0}}
    (tmp_path / "maestro-v2.0.0.json").write_text(json.dumps(cols))
    specs = maestro(tmp_path)
    assert [(s.piece_id, s.split, s.audio) for s in specs] == [("2004__a", "validation", tmp_path / "2004/a.wav"),
                                                               ("2006__b", "train", tmp_path / "2006/b.wav")]


def test_maestro_layout_errors(tmp_path):
    with pytest.raises(PianoforgeError, match="not found"):
        maestro(tmp_path / "nope")
    with pytest.raises(PianoforgeError, match="not a MAESTRO layout"):
        maestro(tmp_path)
    write_maestro(tmp_path, [{"split": "holdout", "midi_filename": "a.midi", "audio_filename": "a.wav"}])
    with pytest.raises(PianoforgeError, match="unknown split 'holdout'"):
        maestro(tmp_path)
    (tmp_path / "maestro-v3.0.0.csv").write_text("split,midi_filename\ntrain,a.midi\n")
    with pytest.raises(PianoforgeError, match="audio_filename"):
        maestro(tmp_path)


def test_maestro_build_respects_official_split(maestro_dir, lan2018, tmp_path):
    out = tmp_path / "store"
    rep = build(maestro(maestro_dir), out, lan2018, workers=1, progress=False,
                source_info={"kind": "maestro", "input": str(maestro_dir)})
    assert (rep.built, rep.skipped) == (4, [])
    ids = [safe_id(stem.replace("/", "__")) for stem in MAESTRO_PIECES]
    st = assert_valid_store(out, lan2018, ids)
    assert [p["split"] for p in st.pieces()] == [split for split, _ in MAESTRO_PIECES.values()]
    assert st.manifest["source"] == {"kind": "maestro", "input": str(maestro_dir)}
    for p, stem in zip(st.pieces(), MAESTRO_PIECES, strict=True):
        # the recorded audio (16 kHz) resampled to the preset's 8 kHz, not a new render
        ref = load_audio(maestro_dir / f"{stem}.wav", 8000)
        n = len(ref) // lan2018.audio.hop_length
        assert p["n_frames"] == n
        np.testing.assert_allclose(np.asarray(st.arrays(p["piece_id"]).audio, np.float32),
                                   ref[: n * lan2018.audio.hop_length], atol=2e-3)
        assert p["audio"] == str(maestro_dir / f"{stem}.wav")
        assert p["provenance"]["source"] == "maestro"
    # the normalization uses the train split only
    train = np.concatenate([np.asarray(st.arrays(p["piece_id"]).spec, np.float64) for p in st.pieces("train")])
    np.testing.assert_allclose(st.normalizer.mean, train.mean(0), rtol=1e-6, atol=1e-6)


def test_maestro_replaced_recording_is_rebuilt(maestro_dir, lan2018, tmp_path):
    """A MAESTRO piece whose audio file changed (same MIDI) is rebuilt on the next run, not reused."""
    root = shutil.copytree(maestro_dir, tmp_path / "maestro")
    out = tmp_path / "store"
    assert build(maestro(root), out, lan2018, workers=1, progress=False).built == 4
    stem = list(MAESTRO_PIECES)[2]
    pid = safe_id(stem.replace("/", "__"))
    before = np.array(FeatureStore(out).arrays(pid).audio)
    x = load_audio(root / f"{stem}.wav")
    save_audio(root / f"{stem}.wav", 0.5 * x, 16000)  # another recording of the same MIDI
    rep = build(maestro(root), out, lan2018, workers=1, progress=False)
    assert (rep.built, rep.reused, rep.up_to_date) == (1, 3, False)
    after = np.asarray(FeatureStore(out).arrays(pid).audio, np.float32)
    np.testing.assert_allclose(after, 0.5 * before.astype(np.float32), atol=2e-3)
    assert build(maestro(root), out, lan2018, workers=1, progress=False).up_to_date


# ------------------------------------------------------------------------------ resume and idempotence

def test_interrupted_build_resumes(tiny_midi_dir, midi_store, lan2018, tmp_path, monkeypatch):
    src = shutil.copytree(tiny_midi_dir, tmp_path / "midi")
    out = tmp_path / "store"
    real = piece_mod.process_piece
    calls = []

    def crash_after_first(*args, **kwargs):
        calls.append(args[0].piece_id)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(piece_mod, "process_piece", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        build(midi_folder(src), out, lan2018, workers=1, progress=False)
    monkeypatch.setattr(piece_mod, "process_piece", real)

    # the half-built store is refused by readers
    assert manifest_of(out)["status"] == "building"
    with pytest.raises(StoreError, match="not complete"):
        FeatureStore(out)
    assert [p.name for p in (out / "pieces").iterdir()] == ["piece_a"]
    stale = out / "pieces" / ".tmp-piece_b-x1"  # what a worker killed mid-write leaves
    stale.mkdir()
    (stale / "score.npy").write_bytes(b"half")

    rep = build(midi_folder(src), out, lan2018, workers=1, progress=False)
    assert (rep.reused, rep.built, rep.up_to_date) == (1, 3, False)
    assert not stale.exists()
    assert not list((out / "pieces").glob(".tmp-*"))
    assert_valid_store(out, lan2018, TINY_IDS)
    same_arrays(out, midi_store[0], TINY_IDS)  # identical to the uninterrupted build
    assert [p["split"] for p in FeatureStore(out).pieces()] == [p["split"] for p in FeatureStore(midi_store[0]).pieces()]

    # a changed source file is rebuilt, the others reused
    write_midi_file(src / "piece_a.mid", scale(40, n=6, step=0.3))
    rep = build(midi_folder(src), out, lan2018, workers=1, progress=False)
    assert (rep.reused, rep.built, rep.up_to_date) == (3, 1, False)
    st = FeatureStore(out)
    assert st.pieces()[0]["n_notes"] == 6
    assert st.arrays("piece_a").score[0, 40 - 21] == 1  # the new first note's onset


def test_lost_manifest_and_piece_resume(midi_store, tiny_midi_dir, lan2018, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    (out / MANIFEST).unlink()
    shutil.rmtree(out / "pieces" / "piece_b")
    rep = build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)
    assert (rep.reused, rep.built) == (3, 1)
    assert_valid_store(out, lan2018, TINY_IDS)
    same_arrays(out, midi_store[0], TINY_IDS)
    old, new = manifest_of(midi_store[0]), manifest_of(out)
    for key in ("pieces", "splits", "normalization", "fingerprint", "source_digest"):
        assert new[key] == old[key], key


def test_corrupt_piece_is_rebuilt(midi_store, tiny_midi_dir, lan2018, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    (out / MANIFEST).unlink()
    (out / "pieces" / "piece_c" / "spec.npy").unlink()
    (out / "pieces" / "piece_a" / "meta.json").write_text("{not json")
    rep = build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)
    assert (rep.reused, rep.built) == (2, 2)
    same_arrays(out, midi_store[0], TINY_IDS)


def test_finished_build_rerun_is_a_no_op(midi_store, tiny_midi_dir, lan2018, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    before = (out / MANIFEST).stat().st_mtime_ns
    text = (out / MANIFEST).read_text()
    pieces_before = {p.name: p.stat().st_mtime_ns for p in (out / "pieces").iterdir()}
    rep = build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)
    assert rep.up_to_date
    assert (rep.built, rep.reused) == (0, 4)
    assert (out / MANIFEST).stat().st_mtime_ns == before
    assert (out / MANIFEST).read_text() == text
    assert {p.name: p.stat().st_mtime_ns for p in (out / "pieces").iterdir()} == pieces_before
    assert sorted(x.name for x in out.iterdir()) == [MANIFEST, "pieces"]  # no stray temporary files


def test_other_preset_into_same_folder_is_refused(midi_store, tiny_midi_dir, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    text = (out / MANIFEST).read_text()
    for preset in (load_preset("gan-cpu"), load_preset("lan2018", ["data.example_seconds=2.0"])):
        with pytest.raises(StoreError, match="lan2018") as ei:
            build(midi_folder(tiny_midi_dir), out, preset, workers=1, progress=False)
        assert str(out) in str(ei.value)
    assert (out / MANIFEST).read_text() == text  # untouched
    # a model/train override does not change the data: same store, up to date
    same = load_preset("lan2018", ["train.lr=0.5"])
    assert build(midi_folder(tiny_midi_dir), out, same, workers=1, progress=False).up_to_date


def test_unknown_format_version(midi_store, tiny_midi_dir, lan2018, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    m = manifest_of(out)
    m["format_version"] = 99
    (out / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(StoreError, match=r"unsupported .*version 99"):
        FeatureStore(out)
    with pytest.raises(StoreError, match=r"unsupported .*version"):
        read_manifest(out)
    with pytest.raises(StoreError, match=r"unsupported .*version"):
        build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)
    m["format_version"], m["format"] = 1, "something-else"
    (out / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(StoreError, match="manifest"):
        FeatureStore(out)
    (out / MANIFEST).write_text("{ truncated")
    with pytest.raises(StoreError, match="unreadable manifest"):
        FeatureStore(out)
    with pytest.raises(StoreError, match="unreadable manifest"):
        build(midi_folder(tiny_midi_dir), out, lan2018, workers=1, progress=False)


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no manifest.json"):
        FeatureStore(tmp_path)


def test_building_manifest_refused(midi_store, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    m = manifest_of(out)
    m["status"] = "building"
    (out / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(StoreError, match="not complete"):
        FeatureStore(out)


def test_missing_piece_arrays(midi_store, tmp_path):
    out = copy_store(midi_store[0], tmp_path / "store")
    (out / "pieces" / "piece_c" / "audio.npy").unlink()
    st = FeatureStore(out)
    st.arrays("piece_a")
    with pytest.raises(StoreError, match="piece_c"):
        st.arrays("piece_c")


def test_output_folder_not_writable(tiny_midi_dir, lan2018, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(PianoforgeError, match="a parent is a file, not a folder") as ei:
        build(midi_folder(tiny_midi_dir), f / "store", lan2018, workers=1, progress=False)
    assert str(f / "store") in str(ei.value)


# ------------------------------------------------------------------------------------------ bad input

def skipped_by_file(m: dict) -> dict[str, str]:
    return {s["file"]: s["error"] for s in m["skipped"]}


def test_bad_midi_files_are_skipped(tmp_path, lan2018):
    src = tmp_path / "midi"
    bad = write_bad_midis(src)
    write_midi_file(src / "good.mid", scale(60))
    write_midi_file(src / "bwv846.mid", scale(60))  # a reserved work
    out = tmp_path / "store"
    rep = build(midi_folder(src), out, lan2018, workers=1, progress=False)
    assert rep.built == 1
    m = manifest_of(out)
    assert [p["piece_id"] for p in m["pieces"]] == ["good"]
    errors = skipped_by_file(m)
    assert len(m["skipped"]) == len(bad) + 1 == len(rep.skipped)
    for path, words in bad.values():
        err = errors[str(path)]
        assert words.lower() in err.lower(), err
        assert str(path) in err
        assert "\n" not in err
    assert "reserved" in errors[str(src / "bwv846.mid")]
    assert {s["piece_id"] for s in m["skipped"]} == {*(p.stem for p, _ in bad.values()), "bwv846"}
    assert_valid_store(out, lan2018, ["good"])


def test_only_bad_files_gives_an_empty_valid_store(tmp_path, lan2018):
    src = tmp_path / "midi"
    bad = write_bad_midis(src)
    out = tmp_path / "store"
    rep = build(midi_folder(src), out, lan2018, workers=1, progress=False)
    assert rep.built == 0 and len(rep.skipped) == len(bad)
    st = FeatureStore(out)
    assert st.pieces() == []
    assert st.examples("train", 80).shape == (0, 2)


def test_allow_reserved_makes_an_eval_only_store(tmp_path, lan2018):
    src = tmp_path / "midi"
    write_midi_file(src / "bwv846.mid", scale(60))
    write_midi_file(src / "other.mid", scale(64))
    out = tmp_path / "store"
    rep = build(midi_folder(src), out, lan2018, workers=1, progress=False, allow_reserved=True)
    assert rep.built == 2 and rep.skipped == []
    m = manifest_of(out)
    assert m["eval_only"] is True
    assert {p["split"] for p in m["pieces"]} == {"test"}


def test_bad_maestro_pieces_are_skipped(maestro_dir, default_preset, tmp_path):
    root = tmp_path / "maestro"
    good_stem = next(iter(MAESTRO_PIECES))
    (root / "2018").mkdir(parents=True)
    for suf in (".midi", ".wav"):
        shutil.copy(maestro_dir / f"{good_stem}{suf}", root / f"{good_stem}{suf}")
    rows = [{"split": "train", "midi_filename": f"{good_stem}.midi", "audio_filename": f"{good_stem}.wav"}]
    expect: dict[str, str] = {}

    def add(stem: str, split: str = "train") -> tuple[Path, Path]:
        rows.append({"split": split, "midi_filename": f"2018/{stem}.midi", "audio_filename": f"2018/{stem}.wav"})
        return root / "2018" / f"{stem}.midi", root / "2018" / f"{stem}.wav"

    midi, wav = add("missing_audio")
    write_midi_file(midi, scale(60))
    expect[str(wav)] = "not found"

    midi, wav = add("text_audio")
    write_midi_file(midi, scale(60))
    wav.write_text("RIFF? no, just text\n" * 50)
    expect[str(wav)] = "unreadable audio"

    midi, wav = add("low_rate")
    write_midi_file(midi, scale(60))
    render_to_wav(midi, wav, 8000)  # below the default preset's 16 kHz
    expect[str(wav)] = "sample rate"

    midi, wav = add("misaligned")
    write_midi_file(midi, scale(48, n=8, step=0.5))  # 4 s of notes
    t = np.arange(int(0.5 * 16000)) / 16000
    save_audio(wav, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)  # 0.5 s of audio
    expect[str(wav)] = "misaligned"

    midi, wav = add("missing_midi", split="test")
    save_audio(wav, 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000), 16000)
    expect[str(midi)] = "not found"

    midi, wav = add("corrupt_midi", split="validation")
    midi.write_bytes(b"MThd" + bytes(range(256)))
    shutil.copy(maestro_dir / f"{good_stem}.wav", wav)
    expect[str(midi)] = "corrupt"

    write_maestro(root, rows)
    out = tmp_path / "store"
    rep = build(maestro(root), out, default_preset, workers=1, progress=False)
    assert rep.built == 1
    m = manifest_of(out)
    assert [p["piece_id"] for p in m["pieces"]] == [safe_id(good_stem.replace("/", "__"))]
    assert len(m["skipped"]) == len(expect)
    for s in m["skipped"]:
        assert "\n" not in s["error"] and s["file"] and s["piece_id"]
    for path, words in expect.items():
        hits = [s["error"] for s in m["skipped"] if s["error"].startswith(f"{path}: ")]
        assert len(hits) == 1, (path, m["skipped"])
        assert words in hits[0], hits[0]
    assert_valid_store(out, default_preset, [m["pieces"][0]["piece_id"]])


# ------------------------------------------------------------------------------------ embedded corpus

@pytest.mark.slow
def test_corpus_source_build(tmp_path, lan2018):
    pytest.importorskip("pianoforge.data.exercises")
    from pianoforge.data import corpus as corpus_mod

    try:
        corpus_mod.corpus_works()
    except (FileNotFoundError, OSError) as e:  # the curated list is not written yet
        pytest.skip(f"embedded corpus list not available: {e}")
    cache = tmp_path / "cache"
    specs, failures = collect("corpus", None, limit=1, workers=1, cache_dir=cache, progress=False)
    assert failures == []
    kinds = [s.provenance["source"] for s in specs]
    assert kinds.count("music21") == 1 and kinds.count("exercise") == 1
    assert all(s.midi.is_file() and s.midi.is_relative_to(cache) for s in specs)
    assert next(s for s in specs if s.provenance["source"] == "exercise").split == "train"
    out = tmp_path / "store"
    rep = build(specs, out, lan2018, workers=1, progress=False, listing_failures=failures,
                source_info={"kind": "corpus", "limit": 1})
    assert rep.built == 2 and rep.skipped == []
    st = assert_valid_store(out, lan2018, [s.piece_id for s in specs])
    assert st.manifest["source"]["kind"] == "corpus"
    assert all(p["split"] == "train" for p in st.pieces())
    # a second listing reuses the cache and the build is a no-op
    specs2, _ = collect("corpus", None, limit=1, workers=1, cache_dir=cache, progress=False)
    assert [s.piece_id for s in specs2] == [s.piece_id for s in specs]
    assert build(specs2, out, lan2018, workers=1, progress=False).up_to_date


def test_gan10s_store_renders_at_5500_hz(tmp_path):
    """The gan-10s preset (5.5 kHz, below FluidSynth's minimum rate) still builds from MIDI."""
    src = tmp_path / "midi"
    write_midi_file(src / "one.mid", scale(60))
    preset = load_preset("gan-10s")
    out = tmp_path / "store"
    rep = build(midi_folder(src), out, preset, workers=1, progress=False)
    assert rep.skipped == [] and rep.built == 1
    st = assert_valid_store(out, preset, ["one"])
    p = st.pieces()[0]
    assert p["n_frames"] == frames_for(1.0 + preset.render.release_seconds, 5500 / 128)
    assert st.arrays("one").spec.shape[1] == 257
    assert np.max(np.abs(np.asarray(st.arrays("one").audio, np.float32))) > 1e-3
