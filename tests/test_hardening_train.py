"""Hardening, part B (issue 15): typed config sections, parse-time ranges of the training flags, training
faults (non-finite loss, no validation split, finished runs, another store, failed starts, failed
experiment variants), dependencies that match the imports, and one step from each shipped preset.

Real tiny lan2018 stores built with the project's builder: four 8 s pieces (2 train, 1 validation,
1 test; 4 training examples) and two pieces (no validation split); tiny networks, a few steps, one thread.
Commands run in-process through ``cli.main`` (exit status from SystemExit, output from capsys).
"""

from __future__ import annotations

import ast
import json
import math
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_midi_file
from pianoforge import cli
from pianoforge.config import InferenceConfig, Preset, load_preset
from pianoforge.errors import ConfigError, TrainingError
from pianoforge.models.gan import load_gan_preset
from pianoforge.models.gan.config import GanInferenceConfig
from pianoforge.training.config import (
    LoopSettings,
    check_perform_preset,
    gan_train_config,
    loop_settings,
    perform_train_config,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.dense_units=16", "--set", "model.rnn_units=8"]  # lan2018 geometry, tiny network


def _pieces(folder: Path, n: int, seconds: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        notes, t = [], 0.0
        while t < seconds:
            d = float(rng.choice([0.25, 0.5]))
            notes.append((int(rng.integers(48, 84)), t, t + d, int(rng.integers(50, 110))))
            t += d
        write_midi_file(folder / f"p{i}.mid", notes)
    return folder


def _store(root: Path, name: str, preset: Preset, n: int, seconds: float) -> Path:
    from pianoforge.data.build import build
    from pianoforge.data.sources import midi_folder

    build(midi_folder(_pieces(root / f"{name}-midi", n, seconds)), root / name, preset, workers=1, progress=False)
    return root / name


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """``s4``: 4 pieces (train/validation/test); ``s2``: 2 pieces (train only); ``nan``: ``s4`` copied with
    every training spectrogram set to NaN (same pieces, so runs of ``s4`` resume on it)."""
    root = tmp_path_factory.mktemp("hardening")
    lan = load_preset("lan2018")
    s4, s2 = _store(root, "s4", lan, 4, 8.0), _store(root, "s2", lan, 2, 8.0)
    nan = root / "nan"
    shutil.copytree(s4, nan)
    for p in json.loads((nan / "manifest.json").read_text())["pieces"]:
        if p["split"] == "train":
            f = nan / "pieces" / p["piece_id"] / "spec.npy"
            a = np.load(f)
            a[:] = np.nan
            np.save(f, a)
    return {"s4": s4, "s2": s2, "nan": nan}


def run(capsys, *args) -> tuple[int, str, str]:
    """``pianoforge ARGS`` in-process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err: str, *words: str) -> str:
    """The last stderr line is ``error: ...`` (argparse prints its usage before it) holding ``words``."""
    last = err.strip().splitlines()[-1]
    assert last.startswith(("error: ", "pianoforge ")) and "error" in last, err
    for w in words:
        assert str(w) in last, (w, last)
    return last


def train(capsys, store: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run(capsys, "train", "perform", "--data", store, "--preset", "lan2018", "--out", out, "--batch-size", "2",
               "-q", *TINY, *extra)


# ------------------------------------------------------------------------------------ typed config sections

@pytest.mark.parametrize("load, words", [
    (lambda: load_preset("default", ["audio.sample_rate=abc"]), ["audio.sample_rate must be an integer", "'abc'"]),
    (lambda: load_preset("default", ["data.resize=[1, 2, 3]"]), ["data.resize must be"]),
    (lambda: load_preset("default", ["score.bogus=1"]), ["unknown key(s) in score: bogus"]),
    (lambda: load_preset("default", ["model=3"]), ["model must be a mapping"]),
    (lambda: InferenceConfig.from_preset(load_preset("default", ["inference.iterations=-1"])),
     ["inference.iterations must be >= 0"]),
    (lambda: InferenceConfig.from_preset(load_preset("default", ["inference.chunk_seconds=abc"])),
     ["inference.chunk_seconds must be a number"]),
    (lambda: InferenceConfig.from_preset(load_preset("default", ["inference.phase=magic"])), ["inference.phase"]),
    (lambda: perform_train_config(load_preset("default", ["train.lr=-1"])), ["train.lr must be > 0"]),
    (lambda: perform_train_config(load_preset("default", ["train.batch_size=abc"])), ["train.batch_size"]),
    (lambda: perform_train_config(load_preset("default", ["train.bogus=1"])), ["unknown key(s) in train: bogus"]),
    (lambda: perform_train_config(load_preset("default", ["train.losses={foo: 1.0}"])), ["train.losses", "foo"]),
    (lambda: perform_train_config(load_preset("default", ["train.losses={lms: abc}"])), ["train.losses"]),
    (lambda: perform_train_config(load_preset("default", ["train.lr_plateau_factor=2"])), ["lr_plateau_factor"]),
    (lambda: check_perform_preset(load_preset("lan2018", ["model.dropout=abc"])), ["model.dropout must be a number"]),
    (lambda: check_perform_preset(load_preset("lan2018", ["model.bogus=3"])), ["unknown key(s) in model: bogus"]),
    (lambda: check_perform_preset(load_preset("lan2018", ["model.rnn=transformer"])), ["transformer"]),
    (lambda: check_perform_preset(load_preset("lan2018", ["train.losses={mrstft: 1.0}"])), ["mrstft", "waveform"]),
    (lambda: load_gan_preset("specgan", ["model.bogus=3"]), ["unknown key(s) in model: bogus"]),
    (lambda: load_gan_preset("specgan", ["model.dropout=abc"]), ["unknown key(s) in model: dropout"]),
    (lambda: load_gan_preset("specgan", ["model.channels=abc"]), ["model.channels must be an integer"]),
    (lambda: load_gan_preset("notegan", ["inference.phase=direct"]), ["inference.phase"]),
    (lambda: gan_train_config(load_gan_preset("dcgan", ["train.n_critic=0"])), ["train.n_critic must be"]),
    (lambda: gan_train_config(load_gan_preset("dcgan", ["train.betas=[2, 3]"])), ["train.betas"]),
    (lambda: gan_train_config(load_gan_preset("dcgan", ["train.bogus=1"])), ["unknown key(s) in train: bogus"]),
])
def test_bad_config_values_are_one_line_errors_naming_the_key(load, words):
    with pytest.raises(ConfigError) as e:
        load()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("preset "), msg
    for w in words:
        assert w in msg, (w, msg)


def test_good_values_load_typed_and_stored_presets_keep_their_fingerprint():
    p = load_preset("lan2018", ["train.lr=1e-3", "data.resize=[64, 32]", "data.example_seconds=4"])
    assert perform_train_config(p).lr == 0.001  # YAML reads 1e-3 as a string: a numeric string is a number
    assert p.data.resize == (64, 32) and isinstance(p.data.example_seconds, int)  # an int stays an int
    for name in ("lan2018", "default", "gan-cpu"):
        q = load_preset(name)
        assert Preset.from_dict(json.loads(json.dumps(q.to_dict()))).data_fingerprint() == q.data_fingerprint()


def test_unknown_perform_train_keys_pass_only_when_declared_in_default_train(monkeypatch):
    from pianoforge.training import perform

    with pytest.raises(ConfigError, match="new_scale"):
        perform_train_config(load_preset("default", ["train.new_scale=2.0"]))
    monkeypatch.setitem(perform.DEFAULT_TRAIN, "new_scale", 1.0)
    assert perform_train_config(load_preset("default", ["train.new_scale=2"])).extra["new_scale"] == 2
    with pytest.raises(ConfigError, match="train.new_scale must be a number"):
        perform_train_config(load_preset("default", ["train.new_scale=abc"]))


def test_renderer_fallbacks_are_the_default_presets():
    from pianoforge.inference import PerformRenderer
    from pianoforge.models.perform import build_perform_model

    assert InferenceConfig() == InferenceConfig.from_preset(load_preset("default"))
    assert GanInferenceConfig() == GanInferenceConfig.from_preset(load_gan_preset("notegan"))
    bare = Preset.from_dict({**load_preset("lan2018").to_dict(), "inference": {}})
    model = build_perform_model({"rnn_units": 4, "dense_layers": 0}, bare.audio, bare.score.n_channels)
    r = PerformRenderer(model, bare)
    assert (r.phase, r.iterations, r.chunk_seconds, r.overlap_seconds) == ("pghi+gl", 4, 4.0, 1.0)


def test_loop_settings_are_derived_from_the_train_section():
    s = loop_settings(perform_train_config(load_preset("default")))
    assert (s.batch_size, s.max_epochs, s.early_stop_patience, s.lr_plateau_patience) == (16, 200, 20, 3)
    s = loop_settings(perform_train_config(load_preset("default")), batch_size=2, max_epochs=None, max_steps=5)
    assert (s.batch_size, s.max_epochs, s.max_steps) == (2, 200, 5)
    g = loop_settings(gan_train_config(load_gan_preset("notegan")))
    assert (g.batch_size, g.max_epochs, g.early_stop_patience) == (32, 400, 1_000_000)
    for bad in ({"batch_size": 0}, {"max_steps": 0}, {"ckpt_every_steps": 0}, {"num_workers": -1}, {"devices": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            LoopSettings(**bad)


# ---------------------------------------------------------------------------------- flags at parse time

BAD_FLAGS = [("--lr", "-1"), ("--lr", "0"), ("--lr", "nan"), ("--ckpt-every", "0"), ("--loader-workers", "-1"),
             ("--devices", "0"), ("--batch-size", "0"), ("--batch-size", "-4"), ("--max-epochs", "0"),
             ("--max-steps", "0"), ("--max-steps", "-1"), ("--max-minutes", "0"), ("--num-nodes", "0"),
             ("--node-rank", "-1"), ("--lr-plateau", "0"), ("--master-port", "70000"), ("--seed", "-1")]


@pytest.mark.parametrize("task", ["perform", "gan"])
@pytest.mark.parametrize("flag, value", BAD_FLAGS)
def test_numeric_training_flags_are_checked_at_parse_time(capsys, tmp_path, task, flag, value):
    code, _, err = run(capsys, "train", task, "--data", tmp_path, "--out", tmp_path / "run", flag, value)
    assert code == 2
    error_line(err, f"argument {flag}", repr(value))
    assert not (tmp_path / "run").exists()


def test_data_build_limit_zero_is_refused_at_parse_time(capsys, tmp_path):
    code, _, err = run(capsys, "data", "build", "--out", tmp_path / "s", "--limit", "0")
    assert code == 2
    error_line(err, "argument --limit", "'0'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("task", ["perform", "gan"])
def test_accelerator_cuda_without_a_gpu_is_one_line(capsys, stores, tmp_path, task):
    code, _, err = run(capsys, "train", task, "--data", stores["s4"], "--out", tmp_path / "run", "--accelerator", "cuda")
    assert code == 2 and len(err.strip().splitlines()) == 1
    error_line(err, "--accelerator cuda", "no CUDA GPU")
    assert not (tmp_path / "run").exists()
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        from pianoforge.training.launch import launch

        launch(None, LoopSettings(accelerator="cuda"), tmp_path / "run")


@pytest.mark.parametrize("task, override, words", [
    ("perform", "model.bogus=3", ["unknown key(s) in model: bogus"]),
    ("perform", "model.dropout=abc", ["model.dropout must be a number", "'abc'"]),
    ("gan", "model.bogus=3", ["unknown key(s) in model: bogus"]),
    ("gan", "model.dropout=abc", ["unknown key(s) in model: dropout"]),
    ("gan", "model.channels=abc", ["model.channels must be an integer"]),
    ("perform", "train.weight_decay=-1", ["train.weight_decay must be >= 0"]),
])
def test_bad_set_overrides_fail_before_the_run_folder_is_touched(capsys, stores, tmp_path, task, override, words):
    code, _, err = run(capsys, "train", task, "--data", stores["s4"], "--out", tmp_path / "run", "--set", override)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    error_line(err, *words)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ training faults

def test_a_batch_larger_than_the_training_set_is_an_error_and_the_corrected_command_then_runs(capsys, stores,
                                                                                                tmp_path):
    """The failed start leaves run_config.json but no saved state: not a run yet, so a corrected command with
    another preset value (--lr) starts there instead of failing with "another preset"."""
    out = tmp_path / "run"
    code, _, err = train(capsys, stores["s4"], out, "--batch-size", "100000", "--max-steps", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    error_line(err, str(stores["s4"]), "4 training examples", "--batch-size 4 or less")
    assert (out / "run_config.json").exists() and not (out / "checkpoints").exists()
    code, outp, err = train(capsys, stores["s4"], out, "--max-steps", "1", "--lr", "0.005")
    assert code == 0, err
    assert "starting the run afresh" in outp
    assert json.loads((out / "run_config.json").read_text())["preset"]["train"]["lr"] == 0.005


def test_nan_data_stops_with_a_nonzero_exit_and_writes_no_checkpoint(capsys, stores, tmp_path):
    out = tmp_path / "run"
    code, _, err = train(capsys, stores["nan"], out, "--max-steps", "3")
    assert code == 2 and len(err.strip().splitlines()) == 1
    error_line(err, str(out), "non-finite training loss at step 1", "no state was saved")
    assert not (out / "best.safetensors").exists() and not (out / "checkpoints" / "LATEST").exists()
    assert not (out / "summary.json").exists()


def test_a_loss_that_turns_non_finite_keeps_the_last_finite_state(capsys, stores, tmp_path):
    """Steps 1-3 on good data (checkpoint every step; epoch 1 = steps 1-2 exports best.safetensors), then the
    same pieces with NaN spectrograms: step 4 stops the run, the checkpoints and best stay finite."""
    from pianoforge.checkpoint import load_checkpoint, load_train_state

    out = tmp_path / "run"
    assert train(capsys, stores["s4"], out, "--max-steps", "3", "--ckpt-every", "1")[0] == 0
    best_before = (out / "best.safetensors").read_bytes()
    code, _, err = train(capsys, stores["nan"], out, "--max-steps", "6", "--ckpt-every", "1")
    assert code == 2
    error_line(err, "non-finite training loss at step 4", "checkpoints/step-00000003")
    assert (out / "checkpoints" / "LATEST").read_text().strip() == "step-00000003"
    tensors, state = load_train_state(out / "checkpoints")
    assert state["step"] == 3 and all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())
    assert (out / "best.safetensors").read_bytes() == best_before
    weights, _ = load_checkpoint(out / "best.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())


class _DivergingTask:
    """A finite loss whose update makes the weights non-finite at step 2 (the loss check cannot see it)."""

    monitor = "val/loss"

    def __init__(self, device):
        self.net = torch.nn.Linear(2, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        self.train_dataset = self.val_dataset = torch.zeros(4, 2)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def wrap(self, fn):
        pass

    def train_step(self, batch, step):
        if step == 1:
            with torch.no_grad():
                self.net.weight.fill_(math.inf)
        return {"loss": 1.0}

    def val_step(self, batch):
        return {"val/loss": 1.0}

    def export(self, path):
        raise AssertionError("must not export non-finite weights")


def test_non_finite_weights_are_never_saved(tmp_path):
    from pianoforge.training.loop import Trainer

    t = Trainer(_DivergingTask, LoopSettings(batch_size=2, ckpt_every_steps=1, progress=False), tmp_path, 0, 1,
                torch.device("cpu"))
    with pytest.raises(TrainingError, match=r"net.weight became non-finite by step 2.*checkpoints/step-00000001"):
        t.fit()
    assert (tmp_path / "checkpoints" / "LATEST").read_text().strip() == "step-00000001"


def test_a_store_without_validation_is_refused_unless_no_validation(capsys, stores, tmp_path):
    out = tmp_path / "run"
    code, _, err = train(capsys, stores["s2"], out, "--max-epochs", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1
    error_line(err, str(stores["s2"]), "no validation examples", "--no-validation")
    code, outp, err = train(capsys, stores["s2"], out, "--max-epochs", "2", "--no-validation")
    assert code == 0, err
    assert "no validation (--no-validation)" in outp and "best train/loss=" in outp
    summary = json.loads((out / "summary.json").read_text())
    assert summary["monitor"] == "train/loss" and summary["best"] is not None and math.isfinite(summary["best"])
    assert "train/loss" in (out / "val_log.csv").read_text().splitlines()[0]


def test_rerunning_a_finished_run_is_a_no_op(capsys, stores, tmp_path):
    from pianoforge.checkpoint import load_train_state

    out = tmp_path / "run"
    assert train(capsys, stores["s4"], out, "--max-steps", "2")[0] == 0
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, outp, err = train(capsys, stores["s4"], out, "--max-steps", "2")
    assert code == 0, err
    assert "already finished (reached max_steps=2)" in outp
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files  # not one byte written
    assert train(capsys, stores["s4"], out, "--max-steps", "3")[0] == 0  # a larger limit continues it
    assert load_train_state(out / "checkpoints")[1]["step"] == 3


def test_resuming_with_another_store_is_refused_naming_both(capsys, stores, tmp_path):
    out = tmp_path / "run"
    assert train(capsys, stores["s4"], out, "--max-steps", "1")[0] == 0
    code, _, err = train(capsys, stores["s2"], out, "--max-steps", "2", "--no-validation")
    assert code == 2 and len(err.strip().splitlines()) == 1
    error_line(err, str(out), str(stores["s4"].resolve()), str(stores["s2"].resolve()))


def test_resuming_with_another_preset_names_what_differs(capsys, stores, tmp_path):
    out = tmp_path / "run"
    assert train(capsys, stores["s4"], out, "--max-steps", "1")[0] == 0
    code, _, err = train(capsys, stores["s4"], out, "--max-steps", "2", "--lr", "0.5")
    assert code == 2
    error_line(err, "another preset", "train.lr")


def test_experiment_exits_nonzero_and_names_the_failed_variant(capsys, stores, tmp_path, monkeypatch):
    from pianoforge.evaluation import experiments as ex

    base = ex.EXPERIMENTS["cell"]
    two = ex.Experiment("cell", base.title, base.claim,
                        (ex.Variant("fits", "lan2018-baseline"),
                         ex.Variant("too-big", "lan2018-baseline", ("train.batch_size=1000",))))
    monkeypatch.setitem(ex.EXPERIMENTS, "cell", two)
    code, _, err = run(capsys, "experiment", "cell", "--data", stores["s4"], "--out", tmp_path, "--max-epochs", "1",
                       "--budget-minutes", "1", "-q", "--set", "train.batch_size=2", "--set", "model.rnn_units=8")
    assert code == 2
    error_line(err, "1 of 2 variants failed", "too-big", "1000")
    assert (tmp_path / "cell" / "cell.csv").exists()  # the variant that ran is still reported
    assert json.loads((tmp_path / "cell" / "cell_summary.json").read_text())["failed"].keys() == {"too-big"}


# ------------------------------------------------------------------------------- shipped presets, one step

@pytest.mark.parametrize("name", ["default", "lan2018", "notegan"])
def test_one_training_step_from_each_shipped_preset_as_shipped(capsys, tmp_path, name):
    """The preset exactly as shipped (model, train and inference sections untouched: whatever ``default`` is
    today); only the run's flags are small: one step, one batch holding the tiny store's training set."""
    gan = name == "notegan"
    preset = load_gan_preset(name) if gan else load_preset(name)
    geometry = load_preset("gan-cpu") if gan else preset
    store = _store(tmp_path, "store", geometry, 3, 5.0)  # one piece each for train, validation, test
    n = json.loads((store / "manifest.json").read_text())["splits"]["train"]["examples"]
    out = tmp_path / "run"
    code, outp, err = run(capsys, "train", "gan" if gan else "perform", "--data", store, "--preset", name,
                          "--out", out, "--max-steps", "1", "--batch-size", n, "-q")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["epochs"] == 1
    assert json.loads((out / "run_config.json").read_text())["preset"] == json.loads(json.dumps(preset.to_dict()))
    from pianoforge.checkpoint import load_checkpoint

    weights, meta = load_checkpoint(out / "best.safetensors", kind="gan" if gan else "perform")
    assert weights and all(bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point())


# ------------------------------------------------------------------------------------------- dependencies

IMPORT_TO_DIST = {"yaml": "pyyaml", "sklearn": "scikit-learn", "basic_pitch": "basic-pitch"}
OPTIONAL_IN_CORE = {"noisereduce": "eval"}  # `generate --denoise`: imported lazily, its message names the extra


def _third_party_imports(files) -> set[str]:
    names = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {IMPORT_TO_DIST.get(n, n) for n in names - set(sys.stdlib_module_names) - {"pianoforge", "__future__"}}


def _names(reqs) -> set[str]:
    import re

    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in reqs}


def test_declared_dependencies_are_the_imported_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    pkg = ROOT / "src" / "pianoforge"
    evaluation = {p for p in pkg.rglob("*.py") if "evaluation" in p.relative_to(pkg).parts}
    norm = lambda s: {n.lower().replace("_", "-") for n in s}  # noqa: E731
    web = {p for p in pkg.rglob("*.py") if "web" in p.relative_to(pkg).parts}  # `pianoforge serve`: the web extra
    core_imports = norm(_third_party_imports(set(pkg.rglob("*.py")) - evaluation - web)) - set(OPTIONAL_IN_CORE)
    assert core == core_imports
    eval_extra = _names(extras["eval"])
    for name, extra in OPTIONAL_IN_CORE.items():
        assert name in _names(extras[extra])
    assert norm(_third_party_imports(evaluation)) <= core | eval_extra | {"basic-pitch"}  # Makefile: --no-deps
    assert norm(_third_party_imports(web)) <= core | _names(extras["web"])
    assert _names(extras["web"]) <= norm(_third_party_imports(web))  # nothing declared for serve goes unused
    declared = core | {n for reqs in extras.values() for n in _names(reqs)}
    assert not declared & {"lightning", "auraloss"} and "numba" in core and "scikit-learn" in eval_extra
    assert '"torch==2.13.0"' in (ROOT / "Makefile").read_text()


def test_data_build_and_piece_do_not_import_each_other_in_a_cycle():
    piece = (ROOT / "src" / "pianoforge" / "data" / "piece.py").read_text()
    mods = {n.module for n in ast.walk(ast.parse(piece)) if isinstance(n, ast.ImportFrom)}
    assert "pianoforge.data.build" not in mods
    assert "ruff check src tests bench" in (ROOT / "Makefile").read_text() and "make lint" in (ROOT / ".ci" / "run").read_text()


def test_a_worker_error_under_ddp_is_still_one_line(capsys, stores, tmp_path):
    """Two spawned CPU processes on NaN data: the worker's TrainingError reaches the user as one line."""
    out = tmp_path / "run"
    code, _, err = train(capsys, stores["nan"], out, "--max-steps", "2", "--batch-size", "1", "--devices", "2",
                         "--accelerator", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    error_line(err, "non-finite training loss at step 1")
    assert not (out / "best.safetensors").exists()
