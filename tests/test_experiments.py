"""The papers' experiments (``pianoforge experiment NAME``): variant definitions, one microscopic end-to-end
run through the CLI (CSV + PNG + summary, one row per variant x epoch, reuse of finished runs), and the
one-line error for an unknown name. Tiny data: a lan2018 store of four short pretty_midi pieces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import run_cli, write_midi_file
from pianoforge.config import load_preset
from pianoforge.errors import ConfigError
from pianoforge.evaluation import experiments as ex
from pianoforge.losses import check_losses
from pianoforge.models.perform import build_perform_model

TINY = ("model.rnn_units=8", "train.batch_size=2")


@pytest.fixture(scope="module")
def exp_store(tmp_path_factory):
    """lan2018-geometry store of four ~6 s pieces (2 train, 1 validation, 1 test by the seeded split)."""
    from pianoforge.data.build import build
    from pianoforge.data.sources import midi_folder

    root = tmp_path_factory.mktemp("experiments")
    rng = np.random.default_rng(3)
    for i in range(4):
        notes, t = [], 0.0
        while t < 6.0:
            d = float(rng.choice([0.25, 0.5]))
            notes.append((int(rng.integers(48, 84)), t, t + d, int(rng.integers(50, 110))))
            t += d
        write_midi_file(root / "midi" / f"e{i}.mid", notes)
    build(midi_folder(root / "midi"), root / "store", load_preset("lan2018"), workers=1, progress=False)
    return root / "store"


# ------------------------------------------------------------------------------------ variant lists

EXPECTED = {
    "loss": ["time_mse", "lms", "mrstft"],
    "batch": ["batch8", "batch32", "batch128"],
    "layers": ["1-layer", "2-layer", "3-layer", "4-layer", "5-layer"],
    "cell": ["gru", "lstm"],
    "duration": ["1s", "2s", "4s", "8s"],
    "compare": ["lan2018-baseline", "lan2018", "default"],
}


def test_every_experiment_has_its_variants():
    assert ex.experiment_names() == list(EXPECTED)
    for name, want in EXPECTED.items():
        assert [v.name for v in ex.variants(name)] == want, name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_variant_presets_are_what_the_experiment_varies(name):
    budget = ex.Budget()
    presets = {v.name: ex.variant_preset(v, budget) for v in ex.variants(name)}
    for v in ex.variants(name):
        p = presets[v.name]
        assert int(p.train["early_stop_patience"]) >= 10**6  # the budget decides, not early stopping
        model = build_perform_model(p.model, p.audio, p.score.n_channels)
        check_losses({k: float(w) for k, w in p.train["losses"].items()}, model.cfg.output)  # trainable as is
    if name == "loss":
        assert {k: (p.model["output"], list(p.train["losses"])) for k, p in presets.items()} == {
            "time_mse": ("time", ["time_mse"]), "lms": ("logmag", ["lms"]), "mrstft": ("time", ["mrstft"])}
    elif name == "batch":
        assert [p.train["batch_size"] for p in presets.values()] == [8, 32, 128]
    elif name == "layers":
        assert [p.model["rnn_layers"] for p in presets.values()] == [1, 2, 3, 4, 5]
    elif name == "cell":
        assert [p.model["rnn"] for p in presets.values()] == ["gru", "lstm"]
    elif name == "duration":
        assert [p.data.example_frames(p.audio) for p in presets.values()] == [20, 40, 80, 160]
    else:
        assert [p.name for p in presets.values()] == ["lan2018-baseline", "lan2018", "default"]
        assert [v.geometry for v in ex.variants(name)] == ["lan2018", "lan2018", "default"]
    if name != "compare":  # one architecture family on one store: only the studied value changes
        bases = {v.preset for v in ex.variants(name)}
        assert bases == {"lan2018-baseline"}
        audio = {p.audio for p in presets.values()}
        assert len(audio) == 1


def test_unknown_experiment_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        ex.variants("nope")


def test_global_overrides_come_before_the_variants_own():
    b = ex.Budget(overrides=("train.batch_size=4", "model.rnn_units=8"))
    p = {v.name: ex.variant_preset(v, b) for v in ex.variants("batch")}
    assert p["batch32"].train["batch_size"] == 32 and p["batch32"].model["rnn_units"] == 8


def test_common_level_and_reach():
    recs = [{"variant": "a", "params": 1, "batch_size": 8, "summary": {"epochs": 3},
             "curve": [{"epoch": 1, "elapsed_s": 10, "val/lms": 1.0}, {"epoch": 2, "elapsed_s": 20, "val/lms": 0.5},
                       {"epoch": 3, "elapsed_s": 30, "val/lms": 0.4}]},
            {"variant": "b", "params": 1, "batch_size": 8, "summary": {"epochs": 2},
             "curve": [{"epoch": 1, "elapsed_s": 5, "val/lms": 0.9}, {"epoch": 2, "elapsed_s": 9, "val/lms": 0.6}]}]
    rows, level = ex.summarize(recs)
    assert level == 0.6  # the worst of the bests
    assert (rows[0]["reach_epoch"], rows[0]["reach_s"]) == (2, 20.0)
    assert (rows[1]["reach_epoch"], rows[1]["reach_s"]) == (2, 9.0)
    assert rows[0]["best_val_lms"] == 0.4 and rows[1]["final_val_lms"] == 0.6
    assert ex.reach(recs[0]["curve"], 0.1) is None


def test_duration_changes_training_examples_not_validation_windows(exp_store):
    from pianoforge.data.store import FeatureStore
    from pianoforge.training.perform import PerformTask

    v = {x.name: x for x in ex.variants("duration")}["1s"]
    task = PerformTask(FeatureStore(exp_store), ex.variant_preset(v, ex.Budget(overrides=TINY)), torch.device("cpu"))
    assert task.train_dataset.t == 20 and task.val_dataset.t == 80
    assert task.train_dataset[0]["audio"].shape == (20 * 400,)


# -------------------------------------------------------------------------------------------- CLI

def test_cell_experiment_end_to_end(exp_store, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ["experiment", "cell", "--out", out, "--data", exp_store, "--max-epochs", "1", "--budget-minutes", "5",
            "-q", *sum((["--set", s] for s in TINY), [])]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # run_cli passes the environment on
    proc = run_cli(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = out / "cell"
    with (d / "cell.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ex.CURVE_COLUMNS
    assert [(r["variant"], r["epoch"]) for r in rows] == [("gru", "1"), ("lstm", "1")]
    assert all(float(r["val_lms"]) > 0 and float(r["elapsed_s"]) > 0 for r in rows)
    assert (d / "cell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (d / "cell.md").read_text()
    assert "| gru |" in md and "| lstm |" in md and "GRU cells beat LSTM" in md
    summ = json.loads((d / "cell_summary.json").read_text())
    assert [r["variant"] for r in summ["variants"]] == ["gru", "lstm"] and not summ["failed"]
    for v in ("gru", "lstm"):
        assert (d / "runs" / v / "best.safetensors").exists()
        assert json.loads((d / "runs" / v / "run_config.json").read_text())["preset"]["model"]["rnn"] == v
    assert "cell.csv" in proc.stdout

    again = run_cli(*args, timeout=120)  # finished identical runs are reused, not retrained
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("reused") == 2


def test_unknown_experiment_exits_2_with_one_line(tmp_path):
    proc = run_cli("experiment", "bogus", "--out", tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown experiment 'bogus'"), proc.stderr
    assert "loss" in lines[0] and "compare" in lines[0]
    assert not (tmp_path / "bogus").exists()
