"""Perform: losses, representations, checkpoints, training (exact resume, kill + rerun, DDP), rendering."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_midi_file
from pianoforge.audio.spectral import log_magnitude_of
from pianoforge.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from pianoforge.config import load_preset
from pianoforge.data.build import build
from pianoforge.data.sources import midi_folder
from pianoforge.losses import LOSSES, check_losses, multi_resolution_stft, perform_losses
from pianoforge.models.perform import OUTPUTS, build_perform_model

CLI = [sys.executable, "-m", "pianoforge.cli"]
TINY = ["model.dense_units=32", "model.rnn_units=16"]  # lan2018 geometry, tiny network


def _batch(preset, b=2, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = preset.audio
    audio = 0.1 * torch.randn(b, t * a.hop_length, generator=g)
    spec = log_magnitude_of(audio, a).transpose(1, 2)
    return {"audio": audio, "spec": spec, "score": torch.rand(b, t, preset.score.n_channels, generator=g)}


# ------------------------------------------------------------------------------------------------ losses

@pytest.mark.parametrize("output", OUTPUTS)
def test_each_loss_is_zero_for_a_perfect_prediction_and_grows_with_error(output):
    preset = load_preset("default", ["audio.n_fft=256", "audio.hop_length=64"])
    model = build_perform_model({"output": output, "rnn_units": 8, "dense_layers": 0}, preset.audio,
                                preset.score.n_channels)
    batch = _batch(preset)
    perfect = model.target(batch["spec"], batch["audio"])
    names = [n for n in LOSSES if _supported(n, output)]
    assert names
    for name in names:
        d0 = perform_losses(model, perfect, batch, {name: 1.0})
        d1 = perform_losses(model, perfect + 0.05 * torch.randn_like(perfect), batch, {name: 1.0})
        d2 = perform_losses(model, perfect + 0.5 * torch.randn_like(perfect), batch, {name: 1.0})
        assert float(d0["loss"]) < 1e-6, (name, output, float(d0["loss"]))
        assert float(d0["loss"]) < float(d1["loss"]) < float(d2["loss"]), (name, output)


def _supported(name, output):
    try:
        check_losses({name: 1.0}, output)
        return True
    except ValueError:
        return False


def test_phase_losses_are_refused_for_magnitude_outputs():
    with pytest.raises(ValueError, match="waveform"):
        check_losses({"mrstft": 1.0}, "logmag")
    with pytest.raises(ValueError, match="unknown loss"):
        check_losses({"nope": 1.0}, "logmag")


def test_multi_resolution_stft_zero_on_identity():
    x = torch.randn(2, 4096)
    assert float(multi_resolution_stft(x, x)) < 1e-6
    assert float(multi_resolution_stft(x * 0.5, x)) > 0.1


def test_equal_loudness_representation_applies_its_inverse():
    preset = load_preset("default", ["audio.n_fft=256", "audio.hop_length=64"])
    m = build_perform_model({"output": "logmag_el", "rnn_units": 8}, preset.audio, preset.score.n_channels)
    batch = _batch(preset)
    target = m.target(batch["spec"], batch["audio"])
    back = m.to_logmag(target)
    loud = batch["spec"] > math.log(1e-3)  # well above eps: the weighting is exactly undone
    assert torch.allclose(back[loud], batch["spec"][loud], atol=1e-3)
    g = m.el_gain
    assert g.max() / g.min() > 10  # the ISO 226 weighting really weights (low bass vs ~3 kHz)


# -------------------------------------------------------------------------------------------- checkpoint

def test_checkpoint_round_trip_and_rejections(tmp_path):
    t = {"w": torch.randn(3, 4), "n": torch.tensor([1, 2])}
    p = save_checkpoint(tmp_path / "m.safetensors", t, "perform", {"a": 1})
    tensors, meta = load_checkpoint(p, kind="perform")
    assert torch.equal(tensors["w"], t["w"]) and meta["config"] == {"a": 1}
    with pytest.raises(CheckpointError, match="expected 'gan'"):
        load_checkpoint(p, kind="gan")
    from safetensors.torch import save_file

    save_file(t, str(tmp_path / "v9.safetensors"), metadata={"format": "pianoforge-checkpoint",
                                                           "format_version": "9", "config": "{}"})
    with pytest.raises(CheckpointError, match="unsupported checkpoint format version '9'"):
        read_checkpoint_meta(tmp_path / "v9.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint_meta(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint_meta(tmp_path / "missing.safetensors")


# -------------------------------------------------------------------------------------------- training

@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """lan2018-geometry store of 5 short pieces (4 train-ish, val and test by the seeded split)."""
    root = tmp_path_factory.mktemp("perform")
    rng = np.random.default_rng(0)
    for i in range(6):
        notes = []
        t = 0.0
        while t < 6.0:
            p = int(rng.integers(48, 84))
            d = float(rng.choice([0.25, 0.5, 1.0]))
            notes.append((p, t, t + d, int(rng.integers(40, 120))))
            t += d
        write_midi_file(root / "midi" / f"p{i}.mid", notes)
    preset = load_preset("lan2018")
    build(midi_folder(root / "midi"), root / "store", preset, workers=1, progress=False)
    return root / "store"


def _train(store, out, *extra, check=True, timeout=600):
    cmd = [*CLI, "train", "perform", "--data", str(store), "--preset", "lan2018", "--out", str(out),
           "--batch-size", "4", "-q", *sum((["--set", s] for s in TINY), []), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, env=env)


def test_training_writes_a_complete_run_and_learns(tiny_store, tmp_path):
    run = tmp_path / "run"
    r = _train(tiny_store, run, "--max-epochs", "6", "--lr", "0.01")
    for f in ("run_config.json", "val_log.csv", "loss_curve.png", "best.safetensors", "summary.json",
              "checkpoints/LATEST"):
        assert (run / f).exists(), f
    import csv

    rows = list(csv.DictReader((run / "val_log.csv").open()))
    losses = [float(r["val/loss"]) for r in rows]
    assert len(losses) == 6 and min(losses[1:]) < losses[0], losses
    assert "val/lms" in rows[0]
    assert "best val/loss" in r.stdout
    from pianoforge.inference import PerformRenderer

    rend = PerformRenderer.from_checkpoint(run / "best.safetensors")
    assert rend.preset.name == "lan2018" and rend.model.cfg.rnn_units == 16


def test_resume_is_exact(tiny_store, tmp_path):
    """k steps, stop, resume to n steps == n steps straight (weights identical)."""
    # dropout makes the result depend on the random stream, so a resume that shifts it would show
    rand = ["--set", "model.dropout=0.3"]
    _train(tiny_store, tmp_path / "straight", "--max-steps", "7", "--max-epochs", "50", "--ckpt-every", "3", *rand)
    _train(tiny_store, tmp_path / "split", "--max-steps", "3", "--max-epochs", "50", "--ckpt-every", "3", *rand)  # mid-epoch
    r = _train(tiny_store, tmp_path / "split", "--max-steps", "7", "--max-epochs", "50", "--ckpt-every", "3", *rand)
    assert "resuming" in r.stdout
    a, _ = load_checkpoint(_last_state_as_model(tmp_path / "straight"))
    b, _ = load_checkpoint(_last_state_as_model(tmp_path / "split"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_branch_from_an_epoch_state_takes_its_moments_and_this_presets_rate(tiny_store, tmp_path):
    """--keep-epoch-states, then --from-state with another --lr: Adam's moments and the step carry over, the
    learning rate is the new preset's (not the one stored in the optimizer state)."""
    import json

    from pianoforge.checkpoint import load_train_state, read_train_state

    _train(tiny_store, tmp_path / "src", "--max-epochs", "2", "--keep-epoch-states", "--lr", "0.001")
    epoch1 = tmp_path / "src" / "checkpoints" / "epoch-0001"
    r = _train(tiny_store, tmp_path / "branch", "--max-epochs", "2", "--lr", "0.0005", "--from-state", str(epoch1))
    assert "a new run from the state of" in r.stdout
    _, src = read_train_state(epoch1)
    _, out = load_train_state(tmp_path / "branch" / "checkpoints")
    assert src["optimizers"]["model"]["param_groups"][0]["lr"] == 0.001
    assert out["optimizers"]["model"]["param_groups"][0]["lr"] == 0.0005
    assert out["epoch"] == 2 and out["step"] == 2 * src["step"]
    assert json.loads((tmp_path / "branch" / "run_config.json").read_text())["branched_from"]["epoch"] == 1


def _last_state_as_model(run: Path) -> Path:
    """Model tensors of the newest training state, written as an inference-format file for comparison."""
    from pianoforge.checkpoint import load_train_state

    tensors, state = load_train_state(run / "checkpoints")
    assert state["step"] == 7
    model = {k[len("module.model."):]: v for k, v in tensors.items() if k.startswith("module.model.")}
    return save_checkpoint(run / "last_model.safetensors", model, "perform", {})


def test_kill_mid_epoch_then_rerun_resumes_without_corruption(tiny_store, tmp_path):
    run = tmp_path / "killed"
    cmd = [*CLI, "train", "perform", "--data", str(tiny_store), "--preset", "lan2018", "--out", str(run),
           "--batch-size", "2", "--ckpt-every", "2", "--max-epochs", "1000", "--lr", "0.01", "-q",
           *sum((["--set", s] for s in TINY), [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    latest = run / "checkpoints" / "LATEST"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if latest.exists() and int(latest.read_text().strip().split("-")[1]) >= 12:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint at step >= 12 in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = int(latest.read_text().strip().split("-")[1])
    r = _train(tiny_store, run, "--max-steps", str(killed_at + 10), "--max-epochs", "1000", "--batch-size", "2",
               "--ckpt-every", "2", "--lr", "0.01")
    assert f"step {killed_at}" in r.stdout
    import csv

    rows = list(csv.DictReader((run / "train_log.csv").open()))
    steps = [int(x["step"]) for x in rows]
    assert steps == sorted(set(steps)), "train log has duplicated or unordered steps after resume"
    assert killed_at < steps[-1] <= killed_at + 10  # logged every 10 steps
    losses = [float(x["loss"]) for x in rows]
    assert losses[-1] < losses[0], "loss after resume continues the decreasing curve"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == killed_at + 10


def test_init_from_and_lr_plateau(tiny_store, tmp_path):
    """--init-from starts from a checkpoint's weights; --lr-plateau cuts the rate after bad epochs, and the
    cut rate is what the resumable state holds."""
    from pianoforge.checkpoint import load_train_state

    _train(tiny_store, tmp_path / "a", "--max-steps", "3", "--max-epochs", "50")
    # a learning rate so small that float32 weights cannot move: every epoch after the first is "bad"
    r = _train(tiny_store, tmp_path / "b", "--init-from", str(tmp_path / "a" / "best.safetensors"), "--lr", "1e-30",
               "--lr-plateau", "1", "--max-epochs", "3")
    assert r.stdout.count("learning rate now") == 2, r.stdout
    a, _ = load_checkpoint(tmp_path / "a" / "best.safetensors")
    b, _ = load_checkpoint(tmp_path / "b" / "best.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    _, state = load_train_state(tmp_path / "b" / "checkpoints")
    assert state["optimizers"]["model"]["param_groups"][0]["lr"] == pytest.approx(0.25e-30)
    cfg = json.loads((tmp_path / "b" / "run_config.json").read_text())
    assert cfg["preset"]["train"]["init_from"].endswith("best.safetensors")


def test_ddp_two_processes_on_cpu(tiny_store, tmp_path):
    run = tmp_path / "ddp"
    r = _train(tiny_store, run, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--max-steps", "3",
               "--batch-size", "2", "--max-epochs", "5")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3, r.stdout + r.stderr
    assert (run / "best.safetensors").exists()


def test_training_refuses_mismatched_or_eval_only_stores(tiny_store, tmp_path):
    r = subprocess.run([*CLI, "train", "perform", "--data", str(tiny_store), "--preset", "default",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "--preset default" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- rendering

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    preset = load_preset("default", ["model.conv_channels=32", "model.dense_units=32", "model.rnn_units=16"])
    model = build_perform_model(preset.model, preset.audio, preset.score.n_channels)
    from pianoforge.training.perform import export_perform

    return export_perform(model, preset, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_long_piece_has_no_seams_at_chunk_boundaries(tiny_checkpoint, tmp_path):
    from pianoforge.inference import PerformRenderer
    from pianoforge.midi.score import Note, make_score

    r = PerformRenderer.from_checkpoint(tiny_checkpoint)
    fr = r.preset.audio.frame_rate
    score = make_score([Note(p, 0.0, 30.0, 80) for p in (48, 55, 64)])  # one chord held 30 s: no events
    x = r.encode(score)
    w, o = int(4 * fr), int(1 * fr)
    chunked = r.predict(x, w, o)
    single = r.predict(x, 0)
    assert chunked.shape == single.shape
    to_db = 20 / math.log(10)  # output units are natural-log magnitude (std 1): nepers -> dB
    flux = (chunked[1:] - chunked[:-1]).abs().mean(dim=1).numpy() * to_db
    step = w - o
    boundary = np.zeros(len(flux), bool)
    held = int(29 * fr)  # hand-overs while the chord is held (the release at 30 s is a real event)
    for s in range(step, held - o, step):  # frames where one chunk hands over to the next
        boundary[max(0, s - 1):s + o + 1] = True
    assert boundary.sum() > 3 * o  # several hand-overs
    assert flux[boundary].max() < 0.05  # dB per frame: no step at any hand-over
    assert float((chunked - single)[int(fr):held].abs().max()) * to_db < 0.5  # == single pass within 0.5 dB


def test_render_length_and_alignment_match_the_reference(tiny_checkpoint, tmp_path):
    from pianoforge.audio.render import render_score
    from pianoforge.inference import PerformRenderer
    from pianoforge.midi.score import load_score

    mid = write_midi_file(tmp_path / "a.mid", [(60, 0.5, 1.5, 90), (64, 1.0, 2.0, 90)])
    r = PerformRenderer.from_checkpoint(tiny_checkpoint)
    res = r.render_midi(mid, tmp_path / "a.wav")
    n = r.n_frames(load_score(mid))
    ref = render_score(load_score(mid), r.sample_rate, r.preset.render, n * r.preset.audio.hop_length)
    assert len(res.audio) == len(ref) == n * r.preset.audio.hop_length
    assert abs(res.seconds - (2.0 + r.preset.render.release_seconds)) <= 1 / r.preset.audio.frame_rate
    assert np.all(np.isfinite(res.audio)) and np.max(np.abs(res.audio)) <= 1.0


def test_render_cli_round_trip(tiny_checkpoint, tmp_path):
    mid = write_midi_file(tmp_path / "in.mid", [(60, 0.0, 1.0, 90), (67, 0.5, 1.5, 70)])
    out = tmp_path / "out.wav"
    r = subprocess.run([*CLI, "render", str(mid), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                        "--figure", str(tmp_path / "fig.png"), "--phase", "griffinlim", "--iterations", "2"],
                       capture_output=True, text=True, check=True)
    assert "x real time" in r.stdout and out.exists() and (tmp_path / "fig.png").stat().st_size > 10_000
    again = subprocess.run([*CLI, "render", str(mid), "-o", str(out), "--checkpoint", str(tiny_checkpoint)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
    bad = subprocess.run([*CLI, "render", str(tmp_path / "nope.mid"), "-o", str(tmp_path / "x.wav"),
                          "--checkpoint", str(tiny_checkpoint)], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.mid" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    badck = subprocess.run([*CLI, "render", str(mid), "-o", str(tmp_path / "y.wav"), "--checkpoint",
                            str(mid)], capture_output=True, text=True)
    assert badck.returncode == 2 and "checkpoint" in badck.stderr
    direct = subprocess.run([*CLI, "render", str(mid), "-o", str(tmp_path / "z.wav"), "--checkpoint",
                             str(tiny_checkpoint), "--phase", "direct"], capture_output=True, text=True)
    assert direct.returncode == 2 and "direct" in direct.stderr
