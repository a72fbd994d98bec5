"""Evaluation: the basic-pitch judge on real FluidSynth renders, spectral metrics, `pianoforge judge`,
and `evaluate_checkpoint` / `pianoforge eval` on a tiny store with an untrained checkpoint."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from conftest import run_cli, write_midi_file
from pianoforge import cli
from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import Normalizer
from pianoforge.config import AudioConfig
from pianoforge.midi.score import Note, Score, make_score

needs_judge = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("basic_pitch", "onnxruntime", "mir_eval")),
    reason="basic-pitch, onnxruntime and mir_eval are needed for the judge")

SR = 16000
# six well-separated notes (0.5 s apart, 0.35 s long) over two octaves
SEPARATED = [(60, 0.0), (64, 0.5), (67, 1.0), (72, 1.5), (55, 2.0), (69, 2.5)]


def separated_score(transpose: int = 0) -> Score:
    return make_score([Note(p + transpose, t, t + 0.35, 90) for p, t in SEPARATED])


@pytest.fixture(scope="module")
def render() -> tuple[Score, np.ndarray]:
    score = separated_score()
    return score, render_score(score, SR)


@pytest.fixture(scope="module")
def transcribed(render) -> list[Note]:
    from pianoforge.evaluation.judge import transcribe

    return transcribe(render[1], SR)


# -------------------------------------------------------------------------------------------- judge

@needs_judge
def test_judge_scores_a_render_against_its_own_score_high(render):
    from pianoforge.evaluation.judge import METRIC_KEYS, judge_audio

    score, audio = render
    res = judge_audio(audio, SR, score)
    assert set(METRIC_KEYS) <= set(res)
    assert res["onset_f1"] > 0.6, res
    assert res["n_ref"] == len(SEPARATED)
    assert res["audio_s"] == pytest.approx(len(audio) / SR)


@needs_judge
def test_judge_scores_a_render_against_another_score_low(transcribed):
    from pianoforge.evaluation.judge import score_notes

    tritone = separated_score(transpose=6)
    assert score_notes(tritone, transcribed)["onset_f1"] < 0.3
    assert score_notes(separated_score(), transcribed)["onset_f1"] > 0.6


@needs_judge
def test_transcription_is_sorted_piano_notes(transcribed):
    assert transcribed, "basic-pitch found no notes in a clean render"
    assert all(21 <= n.pitch <= 108 and n.end > n.start and 1 <= n.velocity <= 127 for n in transcribed)
    assert [(n.start, n.pitch) for n in transcribed] == sorted((n.start, n.pitch) for n in transcribed)


@needs_judge
def test_note_creation_steps_split_the_transcription(render, transcribed):
    from pianoforge.errors import AudioError
    from pianoforge.evaluation.judge import network_outputs, notes_from_outputs

    out = network_outputs(render[1], SR)
    assert out["note"].shape[1] == 88 and out["onset"].shape == out["note"].shape
    assert notes_from_outputs(out) == transcribed  # the judge is these two steps
    onsets_only = notes_from_outputs(out, melodia_trick=False)
    # without the melodia trick only onset-started notes remain: a subset of the judge's notes
    assert {(n.start, n.pitch) for n in onsets_only} <= {(n.start, n.pitch) for n in transcribed}
    assert onsets_only
    with pytest.raises(AudioError):
        network_outputs(np.full(SR, np.nan, np.float32), SR)


@needs_judge
def test_score_notes_of_a_score_against_itself_is_perfect():
    from pianoforge.evaluation.judge import score_notes

    score = separated_score()
    res = score_notes(score, score.notes)
    for k in ("onset_precision", "onset_recall", "onset_f1", "onoff_precision", "onoff_recall", "onoff_f1"):
        assert res[k] == 1.0, k
    assert res["n_ref"] == res["n_est"] == len(SEPARATED)


@needs_judge
def test_empty_estimates_score_zero_without_crashing(render):
    from pianoforge.evaluation.judge import judge_audio, score_notes, transcribe

    score = render[0]
    res = score_notes(score, [])
    assert res["onset_f1"] == 0.0 and res["onoff_f1"] == 0.0 and res["n_est"] == 0
    assert score_notes([], list(score.notes))["onset_f1"] == 0.0
    assert transcribe(np.zeros(0, dtype=np.float32), SR) == []
    silent = judge_audio(np.zeros(SR, dtype=np.float32), SR, score)
    assert silent["onset_f1"] == 0.0


@needs_judge
def test_transcribe_rejects_bad_audio():
    from pianoforge.errors import AudioError
    from pianoforge.evaluation.judge import transcribe

    with pytest.raises(AudioError, match="NaN"):
        transcribe(np.full(1000, np.nan, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="mono"):
        transcribe(np.zeros((2, 1000), dtype=np.float32), SR)


# ------------------------------------------------------------------------------------------ metrics

def test_metrics_are_zero_for_identical_audio(render):
    from pianoforge.evaluation.metrics import AUDIO_METRICS, audio_metrics

    audio = render[1]
    m = audio_metrics(audio, audio.copy(), AudioConfig())
    assert set(m) == set(AUDIO_METRICS)
    assert m["lsd_db"] == pytest.approx(0.0, abs=1e-9)
    assert m["sc"] == pytest.approx(0.0, abs=1e-6)
    assert m["mse"] == 0.0
    assert m["mrstft"] == pytest.approx(0.0, abs=1e-6)


def test_metrics_grow_for_degraded_copies(render):
    from pianoforge.evaluation.metrics import audio_metrics

    audio = render[1]
    cfg = AudioConfig()
    sos = scipy.signal.butter(8, 1000, "low", fs=SR, output="sos")
    lowpassed = scipy.signal.sosfilt(sos, audio).astype(np.float32)
    noisy = audio + 0.01 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
    base = audio_metrics(audio, audio, cfg)
    for degraded in (lowpassed, noisy):
        m = audio_metrics(degraded, audio, cfg)
        assert m["lsd_db"] > base["lsd_db"] + 1.0, m
        assert m["sc"] > 0.01 and m["mse"] > 0 and m["mrstft"] > 0.01, m


def test_metrics_trim_to_the_shorter_signal(render):
    from pianoforge.evaluation.metrics import audio_metrics

    audio = render[1]
    m = audio_metrics(audio[:-1000], audio, AudioConfig())
    assert m["lsd_db"] == pytest.approx(0.0, abs=1e-9) and m["mse"] == 0.0


def test_lms_mse_is_the_mean_squared_z_score_difference():
    from pianoforge.evaluation.metrics import lms_mse

    rng = np.random.default_rng(1)
    bins = 5
    norm = Normalizer(rng.normal(size=bins), np.array([0.5, 1.0, 2.0, 1.0, 0.25]))
    ref = rng.normal(size=(40, bins))
    assert lms_mse(ref, ref, norm) == 0.0
    pred = ref + 0.1 * norm.std  # every z-score off by 0.1
    assert lms_mse(pred, ref, norm) == pytest.approx(0.01)
    assert lms_mse(pred[:30], ref, norm) == pytest.approx(0.01)  # trimmed to the shorter
    with pytest.raises(ValueError, match="bins"):
        lms_mse(ref[:, :3], ref, norm)


# -------------------------------------------------------------------------------------- judge CLI

@pytest.fixture(scope="module")
def pair_folders(tmp_path_factory, render) -> tuple[Path, Path]:
    """audio/ with 2 renders, midi/ with their 2 scores + 1 MIDI without audio + 1 pair with unreadable audio."""
    from pianoforge.audio.io import save_audio
    from pianoforge.midi.score import write_midi

    root = tmp_path_factory.mktemp("judge")
    audio_dir, midi_dir = root / "audio", root / "midi"
    audio_dir.mkdir()
    midi_dir.mkdir()
    score, audio = render
    write_midi(score, midi_dir / "one.mid")
    save_audio(audio_dir / "one.wav", audio, SR)
    two = separated_score(transpose=-5)
    write_midi(two, midi_dir / "two.mid")
    save_audio(audio_dir / "two.wav", render_score(two, SR), SR)
    write_midi_file(midi_dir / "lonely.mid", [(60, 0.0, 0.5, 80)])
    write_midi_file(midi_dir / "broken.mid", [(60, 0.0, 0.5, 80)])
    (audio_dir / "broken.wav").write_bytes(b"RIFF" + bytes(100))  # unreadable audio
    return audio_dir, midi_dir


@needs_judge
def test_judge_cli_scores_pairs_and_lists_unmatched(pair_folders, tmp_path, capsys):
    audio_dir, midi_dir = pair_folders
    out = tmp_path / "judge.json"
    assert cli.main(["judge", "--audio", str(audio_dir), "--midi", str(midi_dir), "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "mean onset note-F1:" in text
    assert "skipped lonely" in text and "skipped broken" in text
    rep = json.loads(out.read_text())
    assert [p["stem"] for p in rep["pieces"]] == ["one", "two"]
    assert sorted(s["stem"] for s in rep["skipped"]) == ["broken", "lonely"]
    assert "broken.wav" in next(s["reason"] for s in rep["skipped"] if s["stem"] == "broken")
    assert rep["mean"]["onset_f1"] > 0.6
    assert not list(tmp_path.glob(".judge.json.*"))  # no temporary file left behind


def test_judge_cli_missing_folder_is_a_one_line_error(pair_folders, tmp_path):
    _, midi_dir = pair_folders
    proc = run_cli("judge", "--audio", tmp_path / "nope", "--midi", midi_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0], proc.stderr


def test_judge_cli_without_pairs_is_a_one_line_error(pair_folders, tmp_path):
    _, midi_dir = pair_folders
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        cli.main(["judge", "--audio", str(tmp_path / "empty"), "--midi", str(midi_dir)])
    assert e.value.code == 2


# ------------------------------------------------------------------------------------------ eval

def _split_with_pieces(store_dir: Path) -> str:
    from pianoforge.data.store import FeatureStore

    st = FeatureStore(store_dir)
    return next(s for s in ("test", "validation", "train") if st.pieces(s))


@pytest.fixture(scope="module")
def untrained(midi_store, tmp_path_factory) -> Path:
    """An untrained lan2018 perform checkpoint with the store's normalization (tests may use training)."""
    import torch

    from pianoforge.data.store import FeatureStore
    from pianoforge.models.perform import build_perform_model
    from pianoforge.training.perform import export_perform

    store = FeatureStore(midi_store[0])
    preset = store.preset
    torch.manual_seed(0)
    model = build_perform_model(preset.model, preset.audio, preset.score.n_channels, store.normalizer)
    return export_perform(model, preset, tmp_path_factory.mktemp("ckpt") / "untrained.safetensors")


@needs_judge
def test_evaluate_checkpoint_writes_metrics_pieces_and_report(midi_store, untrained, tmp_path):
    from pianoforge.evaluation.evaluate import CSV_COLUMNS, SYSTEMS, evaluate_checkpoint

    split = _split_with_pieces(midi_store[0])
    out = tmp_path / "report"
    res = evaluate_checkpoint(untrained, midi_store[0], split, out, limit=1, progress=False)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert {"checkpoint", "data", "split", "n_pieces", "systems", "config", "timing", "skipped"} <= set(saved)
    assert saved["n_pieces"] == 1 and saved["split"] == split
    assert list(saved["systems"]) == list(SYSTEMS)
    for m in saved["systems"].values():
        assert {"mse", "sc", "lsd_db", "mrstft", "lms_mse", "lms_mse_audio", "onset_f1", "onoff_f1"} <= set(m)
    sysm = saved["systems"]
    assert sysm["reference"]["lsd_db"] == pytest.approx(0.0, abs=1e-9)
    assert sysm["reference"]["lms_mse_audio"] == pytest.approx(0.0, abs=1e-9)
    assert sysm["reference"]["lms_mse"] < 1e-3  # float16 storage only
    assert sysm["reference"]["onset_f1"] > sysm["model"]["onset_f1"]
    assert sysm["model"]["lms_mse"] > 0.1  # untrained
    assert {"phase", "iterations", "oracle_phase", "preset", "judge"} <= set(saved["config"])
    assert {"total_s", "model_render_s", "model_realtime_factor", "judge_s"} <= set(saved["timing"])
    with (out / "pieces.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(SYSTEMS) and {r["system"] for r in rows} == set(SYSTEMS)
    assert tuple(rows[0]) == CSV_COLUMNS
    report = (out / "report.md").read_text()
    assert "reference (FluidSynth)" in report and "oracle-zero-phase" in report
    for png in ("figure4.png", "onset_f1.png"):
        assert (out / png).stat().st_size > 1000
        assert png in report
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_eval_cli_without_judge(midi_store, untrained, tmp_path, capsys):
    split = _split_with_pieces(midi_store[0])
    out = tmp_path / "r"
    assert cli.main(["eval", "--checkpoint", str(untrained), "--data", str(midi_store[0]), "--split", split,
                     "--out", str(out), "--limit", "1", "--no-judge", "-q"]) == 0
    text = capsys.readouterr().out
    assert "report" in text and "oracle-zero-phase" in text
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["judge"] is None
    assert "onset_f1" not in saved["systems"]["model"]
    assert not (out / "onset_f1.png").exists()


def test_eval_rejects_a_store_of_another_geometry(midi_store, tmp_path):
    from pianoforge.config import load_preset
    from pianoforge.data.store import FeatureStore
    from pianoforge.errors import StoreError
    from pianoforge.evaluation.evaluate import evaluate_checkpoint
    from pianoforge.models.perform import build_perform_model
    from pianoforge.training.perform import export_perform

    preset = load_preset("default")
    model = build_perform_model(preset.model, preset.audio, preset.score.n_channels)
    ckpt = export_perform(model, preset, tmp_path / "default.safetensors")
    split = _split_with_pieces(midi_store[0])
    with pytest.raises(StoreError, match="--preset default"):
        evaluate_checkpoint(ckpt, midi_store[0], split, tmp_path / "r", progress=False)
    assert FeatureStore(midi_store[0]).preset.name == "lan2018"


def test_eval_rejects_an_empty_split(midi_store, untrained, tmp_path):
    from pianoforge.errors import StoreError
    from pianoforge.evaluation.evaluate import evaluate_checkpoint

    with pytest.raises(StoreError, match="holds no pieces"):
        evaluate_checkpoint(untrained, midi_store[0], "nonexistent", tmp_path / "r", progress=False)


def test_eval_rejects_direct_phase_for_a_magnitude_model(midi_store, untrained, tmp_path):
    from pianoforge.errors import PianoforgeError
    from pianoforge.evaluation.evaluate import evaluate_checkpoint

    split = _split_with_pieces(midi_store[0])
    with pytest.raises(PianoforgeError, match="direct"):
        evaluate_checkpoint(untrained, midi_store[0], split, tmp_path / "r", phase="direct", progress=False)
    assert not (tmp_path / "r").exists()
