"""Issue 19, "Bad input": ``generate`` checks -n, --seed, the checkpoint's kind and finiteness before any work
(one line, exit 2, nothing written, not even the output folder); ``eval gan`` warns when there are fewer clips
than features for the FD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from conftest import run_in_process as run
from pianoforge.checkpoint import read_checkpoint_meta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "pianoforge" / "weights"


def error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("-n", "0", ["-n", "0"]), ("-n", "-3", ["-n", "-3"]), ("-n", "two", ["-n", "two"]), ("-n", "1.5", ["-n"]),
    ("--seed", "-1", ["--seed", "-1"]), ("--seed", "x", ["--seed"]), ("--seed", str(2**64), ["--seed"]),
])
def test_generate_refuses_bad_counts_and_seeds(tmp_path, capsys, flag, value, words):
    args = {"-n": "1", "--seed": "0", flag: value}
    code, stdout, err = run(capsys, "generate", "-o", tmp_path / "clips", *[x for kv in args.items() for x in kv])
    line = error_line(err)
    assert code == 2 and stdout == "" and all(w in line for w in words), line
    assert not (tmp_path / "clips").exists()


def test_generate_interpolation_needs_two_steps(tmp_path, capsys):
    code, _, err = run(capsys, "generate", "-n", "1", "--interpolate", "-o", tmp_path / "clips")
    assert code == 2 and "-n must be at least 2" in error_line(err) and not (tmp_path / "clips").exists()


def test_generate_refuses_a_perform_checkpoint_naming_it(tmp_path, capsys):
    perform = WEIGHTS / "perform-lan2018.safetensors"
    code, stdout, err = run(capsys, "generate", "-n", "1", "--checkpoint", perform, "-o", tmp_path / "clips")
    line = error_line(err)
    assert code == 2 and stdout == "" and str(perform) in line and "'perform'" in line and "'gan'" in line
    assert not (tmp_path / "clips").exists()


def test_generate_refuses_non_finite_weights_before_making_the_folder(tmp_path):
    """A subprocess, as a user runs it: one line, exit 2, no output folder."""
    from safetensors.torch import load_file

    src = WEIGHTS / "gan-default.safetensors"
    tensors = load_file(str(src))
    tensors["head.log_gain"] = tensors["head.log_gain"].clone()
    tensors["head.log_gain"][3] = float("inf")
    meta = read_checkpoint_meta(src)
    bad = save_checkpoint(tmp_path / "inf.safetensors", tensors, meta["kind"], meta["config"])
    r = run_cli("generate", "-n", "1", "--checkpoint", bad, "-o", tmp_path / "clips")
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert str(bad) in error_line(r.stderr) and "NaN or infinite" in r.stderr
    assert not (tmp_path / "clips").exists()


def test_generate_refuses_a_gan_checkpoint_this_pianoforge_cannot_build(tmp_path, capsys):
    from safetensors.torch import load_file

    src = WEIGHTS / "gan-default.safetensors"
    meta = read_checkpoint_meta(src)
    config = {**meta["config"], "model": {**meta["config"]["model"], "arch": "wavegan"}}
    bad = save_checkpoint(tmp_path / "odd.safetensors", load_file(str(src)), "gan", config)
    code, _, err = run(capsys, "generate", "-n", "1", "--checkpoint", bad, "-o", tmp_path / "clips")
    line = error_line(err)
    assert code == 2 and str(bad) in line and "wavegan" in line and not (tmp_path / "clips").exists()


def test_fd_warning_below_the_feature_dimension():
    from pianoforge.evaluation.gan_metrics import FEATURE_DIM, fd_sample_warning

    assert fd_sample_warning(FEATURE_DIM, FEATURE_DIM) is None and fd_sample_warning(200, 100) is None
    w = fd_sample_warning(FEATURE_DIM - 1, 500)
    assert w is not None and f"{FEATURE_DIM - 1} generated clips" in w and f"{FEATURE_DIM}-d" in w
    assert "real clips" in fd_sample_warning(500, 10) and "\n" not in w


def test_eval_gan_warns_when_there_are_fewer_clips_than_features(tmp_path, capsys):
    """The warning comes before any clip is generated, goes to stderr and into metrics.json and report.md."""
    import json

    from pianoforge.data.build import build
    from pianoforge.data.sources import collect
    from pianoforge.improvise import GanGenerator, shipped_checkpoint

    g = GanGenerator.from_checkpoint()
    specs, _ = collect("corpus", None, limit=3, workers=1, progress=False)
    store = tmp_path / "store"
    build(specs[:3], store, g.preset, workers=1, progress=False)
    code, stdout, err = run(capsys, "eval", "gan", "--checkpoint", shipped_checkpoint(), "--data", store, "--split", "train", "-n", "4", "--no-judge",
                            "--iterations", "1", "--out", tmp_path / "eval", "-q", "--threads", "1")
    assert code == 0, err
    warning = [ln for ln in err.splitlines() if ln.startswith("warning: FD from 4 ")]
    assert len(warning) == 1 and "66-d" in warning[0], err
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(m["warnings"]) == 1 and "fewer clips than features" in (tmp_path / "eval" / "report.md").read_text()
    assert np.isfinite(m["sets"]["generated"]["fd"])
