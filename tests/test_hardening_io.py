"""Issue 15, part A: outputs, writers and user-facing I/O. Each test is one case of docs/reliability.md.

Bad input gives a one-line ``error: PATH: problem`` and exit 2, before any work; nothing is overwritten without
--force; special files are never replaced. Real files, the real CLI (in this process where the case allows,
``run_cli`` where a hang or the process exit matters).
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, write_midi_file
from conftest import run_in_process as run
from pianoforge.checkpoint import CheckpointError, read_checkpoint_meta, save_checkpoint
from pianoforge.fsutil import TMP_MARK

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "pianoforge" / "weights"
LAN = WEIGHTS / "perform-lan2018.safetensors"  # the small shipped model: fast renders


def one_line(code: int, err: str, *words) -> str:
    """Exit 2 and exactly one stderr line that holds ``words`` (argparse's usage lines excepted)."""
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith(("error:", "pianoforge"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def midi(tmp_path) -> Path:
    return write_midi_file(tmp_path / "in.mid", [(69, 0.0, 0.5, 100), (72, 0.25, 0.75, 80)])


def long_midi(path: Path, hours: float) -> Path:
    """Two notes ``hours`` apart (96 ticks per beat at 10 bpm: under pretty_midi's 1e7-tick sanity limit)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=96, initial_tempo=10)
    inst = pretty_midi.Instrument(0)
    t = hours * 3600
    inst.notes += [pretty_midi.Note(80, 60, 0, 0.5), pretty_midi.Note(80, 64, t, t + 0.5)]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A small tmpfs at ``path`` (a full or a read-only disk); skips the test where mounting is not allowed."""
    path.mkdir()
    opts = f"size={size}" + (",ro" if read_only else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def nan_copy(src: Path, dst: Path) -> Path:
    """``src`` with one tensor set to NaN, otherwise identical (as a diverged training run leaves it)."""
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(src)
    tensors = load_file(str(src))
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    return save_checkpoint(dst, tensors, meta["kind"], meta["config"])


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------- special files

@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_render_and_reference_never_replace_a_special_file(tmp_path, midi, capsys, kind):
    """As root, `-o /dev/full --force` replaced the device with a regular file."""
    out = tmp_path / "out.wav"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "folder":
        out.mkdir()
    else:
        try:
            os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a private /dev/full
        except PermissionError:
            pytest.skip("making a device node needs root")
    before = os.stat(out).st_mode
    for cmd in (["reference", midi], ["render", midi, "--checkpoint", LAN]):
        code, stdout, err = run(capsys, *cmd, "-o", out, "--force")
        one_line(code, err, out, "not a regular file; refusing to replace it")
        assert stdout == ""  # refused before any work
    assert os.stat(out).st_mode == before
    assert files(tmp_path) == ["in.mid", "out.wav"]


# ------------------------------------------------------------------------- output paths, before work

def test_unsupported_extension_is_refused_before_rendering(tmp_path, midi, capsys):
    for cmd in (["reference", midi], ["render", midi, "--checkpoint", LAN]):
        code, stdout, err = run(capsys, *cmd, "-o", tmp_path / "x.mp3")
        one_line(code, err, "x.mp3", "unsupported audio format", ".wav, .flac")
        assert stdout == ""
    assert files(tmp_path) == ["in.mid"]


def test_missing_output_folder_and_figure_folder(tmp_path, midi, capsys):
    code, _, err = run(capsys, "reference", midi, "-o", tmp_path / "nope" / "a.wav")
    one_line(code, err, "does not exist")
    code, stdout, err = run(capsys, "render", midi, "--checkpoint", LAN, "-o", tmp_path / "a.wav",
                            "--figure", tmp_path / "nope" / "f.png")
    one_line(code, err, tmp_path / "nope" / "f.png", "does not exist")
    assert stdout == "" and files(tmp_path) == ["in.mid"]  # the WAV was not written first


def test_figure_onto_an_existing_png_needs_force(tmp_path, midi, capsys):
    (tmp_path / "f.png").write_bytes(b"old figure")
    code, _, err = run(capsys, "render", midi, "--checkpoint", LAN, "-o", tmp_path / "a.wav",
                       "--figure", tmp_path / "f.png")
    one_line(code, err, "f.png", "already exists", "--force")
    assert (tmp_path / "f.png").read_bytes() == b"old figure" and not (tmp_path / "a.wav").exists()
    code, _, err = run(capsys, "render", midi, "--checkpoint", LAN, "-o", tmp_path / "a.wav",
                       "--figure", tmp_path / "f.png", "--force")
    assert code == 0, err
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "a.wav").stat().st_size > 1000
    assert not [n for n in os.listdir(tmp_path) if TMP_MARK in n]


def test_full_disk_is_refused_before_rendering(tmp_path, midi, capsys):
    with tmpfs(tmp_path / "small", "64k") as small:
        for cmd in (["reference", midi], ["render", midi, "--checkpoint", LAN, "--figure", small / "f.png"]):
            code, stdout, err = run(capsys, *cmd, "-o", small / "a.wav")
            one_line(code, err, small, "not enough free disk space")
            assert stdout == ""
        assert files(small) == []


def test_disk_full_while_writing_the_figure_leaves_neither_file(tmp_path, midi, capsys, monkeypatch):
    """The WAV used to be written first and stay when the figure then failed (exit 1). The pre-check can be
    wrong (another writer fills the disk): with it bypassed, a figure onto a full disk leaves no WAV either."""
    import pianoforge.budget as budget

    monkeypatch.setattr(budget, "free_bytes", lambda folder: 1 << 40)
    with tmpfs(tmp_path / "small", "16k") as small:
        code, _, err = run(capsys, "render", midi, "--checkpoint", LAN, "-o", tmp_path / "a.wav",
                           "--figure", small / "f.png")
        line = one_line(code, err, small / "f.png", "No space left on device")  # the output, not its temporary
        assert TMP_MARK not in line
        assert files(small) == []
    assert files(tmp_path) == ["in.mid", "small"]  # the WAV, rendered and written, was not committed alone
    monkeypatch.undo()
    with tmpfs(tmp_path / "small2", "16k") as small:  # and the figure's own disk is checked beforehand
        code, stdout, err = run(capsys, "render", midi, "--checkpoint", LAN, "-o", tmp_path / "a.wav",
                                "--figure", small / "f.png")
        one_line(code, err, small, "not enough free disk space")
        assert stdout == ""


def test_generate_onto_a_read_only_filesystem(tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
        code, stdout, err = run(capsys, "generate", "-n", "1", "-o", ro / "clips")
        one_line(code, err, ro / "clips", "Read-only file system")
        assert stdout == ""


def test_generate_png_beside_a_missing_wav_needs_force(tmp_path, capsys):
    out = tmp_path / "clips"
    out.mkdir()
    (out / "clip-seed0.png").write_bytes(b"mine")
    code, _, err = run(capsys, "generate", "-n", "1", "-o", out)
    one_line(code, err, "clip-seed0.png", "already exists", "--force")
    assert files(out) == ["clip-seed0.png"] and (out / "clip-seed0.png").read_bytes() == b"mine"


def test_judge_and_eval_and_demo_outputs_need_force(tmp_path, capsys):
    (tmp_path / "j.json").write_text("{}")
    code, _, err = run(capsys, "judge", "--audio", tmp_path, "--midi", tmp_path, "--out", tmp_path / "j.json")
    one_line(code, err, "j.json", "already exists", "--force")
    assert (tmp_path / "j.json").read_text() == "{}"
    rep = tmp_path / "report"
    rep.mkdir()
    (rep / "metrics.json").write_text("{}")
    for target in ("perform", "gan"):
        code, _, err = run(capsys, "eval", target, "--checkpoint", LAN, "--data", tmp_path, "--out", rep)
        one_line(code, err, rep, "already holds a report", "--force")
    assert files(rep) == ["metrics.json"]
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "etude.reference.wav").write_bytes(b"earlier demo")
    code, stdout, err = run(capsys, "demo", "--out", demo)
    one_line(code, err, demo, "already holds files", "--force")
    assert stdout == "" and (demo / "etude.reference.wav").read_bytes() == b"earlier demo"


# ------------------------------------------------------------------------------------ numeric flags

@pytest.mark.parametrize("args, words", [
    (["reference", "{midi}", "-o", "{out}", "--sample-rate", "0"], ["--sample-rate", ">= 1"]),
    (["reference", "{midi}", "-o", "{out}", "--sample-rate", "-1"], ["--sample-rate", ">= 1"]),
    (["reference", "{midi}", "-o", "{out}", "--program", "200"], ["--program", "0..127"]),
    (["reference", "{midi}", "-o", "{out}", "--program", "-1"], ["--program", "0..127"]),
    (["render", "{midi}", "-o", "{out}", "--sample-rate", "0"], ["--sample-rate", ">= 1"]),
    (["render", "{midi}", "-o", "{out}", "--threads", "-1"], ["--threads", ">= 1"]),
    (["generate", "-o", "{out}", "--threads", "-1"], ["--threads", ">= 1"]),
    (["generate", "-o", "{out}", "--seed", "1e23"], ["--seed", "must be an integer"]),
    (["generate", "-o", "{out}", "--seed", str(10**23)], ["--seed", "0..9223372036854775807"]),
])
def test_numeric_flags_are_checked_at_parse_time(tmp_path, midi, capsys, args, words):
    out = tmp_path / "o.wav"
    args = [a.format(midi=midi, out=out) for a in args]
    code, stdout, err = run(capsys, *args)
    one_line(code, err, *words)
    assert stdout == "" and not out.exists()


def test_reference_sample_rate_zero_no_longer_hangs(tmp_path, midi):
    """It looped forever doubling a rate of 0; now parse time refuses it, and so does the library."""
    from pianoforge.audio.render import render_score
    from pianoforge.errors import RenderError
    from pianoforge.midi.score import load_score

    proc = run_cli("reference", midi, "-o", tmp_path / "a.wav", "--sample-rate", "0", timeout=60)
    assert proc.returncode == 2 and "--sample-rate" in proc.stderr
    for sr in (0, -1):
        with pytest.raises(RenderError, match="sample rate must be a positive"):
            render_score(load_score(midi), sr)


# ------------------------------------------------------------------------------- non-finite models

def test_nan_gan_checkpoint_is_refused_naming_it(tmp_path, capsys):
    bad = nan_copy(WEIGHTS / "gan-default.safetensors", tmp_path / "nan-gan.safetensors")
    code, stdout, err = run(capsys, "generate", "-n", "1", "--checkpoint", bad, "-o", tmp_path / "clips")
    one_line(code, err, bad, "NaN or infinite")
    assert stdout == "" and not (tmp_path / "clips").exists()  # checked before the output folder is made


def test_nan_perform_checkpoint_is_blamed_not_the_midi(tmp_path, midi, capsys):
    bad = nan_copy(LAN, tmp_path / "nan.safetensors")
    code, _, err = run(capsys, "render", midi, "--checkpoint", bad, "-o", tmp_path / "a.wav")
    line = one_line(code, err, bad, "NaN or infinite")
    assert str(midi) not in line and not (tmp_path / "a.wav").exists()
    from pianoforge.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match="1 of"):
        load_checkpoint(bad)


# ------------------------------------------------------------------------------------ memory budget

def test_hours_long_midi_is_refused_quickly(tmp_path, capsys, monkeypatch):
    """Two notes five hours apart grew past 12 GB; now the duration is stated first and what cannot fit is
    refused. The FluidSynth reference holds the whole piece: 100 h fits no machine. The neural render streams
    in flat memory (~0.5 GB at any length), so it is refused only where even that is not available."""
    mid = long_midi(tmp_path / "long.mid", 100)
    code, stdout, err = run(capsys, "reference", mid, "-o", tmp_path / "a.wav")
    one_line(code, err, mid, "100:00:02", "of memory", "--allow-long")
    assert stdout == ""
    monkeypatch.setenv("PIANOFORGE_MEMORY_LIMIT", "256M")
    code, stdout, err = run(capsys, "render", mid, "--checkpoint", LAN, "-o", tmp_path / "a.wav")
    one_line(code, err, mid, "100:00:02", "of memory", "--allow-long")
    assert stdout == ""
    assert files(tmp_path) == ["long.mid"]


def test_memory_limit_and_allow_long(tmp_path, midi, capsys, monkeypatch):
    five = long_midi(tmp_path / "five.mid", 5)
    monkeypatch.setenv("PIANOFORGE_MEMORY_LIMIT", "300M")  # under the streaming working set
    code, _, err = run(capsys, "render", five, "--checkpoint", WEIGHTS / "perform-default.safetensors",
                       "-o", tmp_path / "a.wav")
    one_line(code, err, "5:00:02", "300.0 MB is available")
    monkeypatch.setenv("PIANOFORGE_MEMORY_LIMIT", "1M")  # a short render that does not fit either ...
    code, _, err = run(capsys, "reference", midi, "-o", tmp_path / "b.wav")
    one_line(code, err, midi, "1.0 MB is available")
    code, stdout, err = run(capsys, "reference", midi, "-o", tmp_path / "b.wav", "--allow-long")  # ... insisted on
    assert code == 0, err
    assert stdout.splitlines()[0].startswith(f"{midi}: rendering 2.2 s of audio")


# ------------------------------------------------------------------------------------ package, API

def test_example_score_ships_inside_the_package(tmp_path):
    from pianoforge.demo import example_score
    from pianoforge.midi.score import load_score

    p = example_score()
    assert p.parent == ROOT / "src" / "pianoforge" / "examples" and len(load_score(p).notes) > 50
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pianoforge"]
    assert "examples/*.mid" in data
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                           "from pianoforge.demo import example_score; print(example_score())"],
                          capture_output=True, text=True, cwd=tmp_path)  # from another folder
    assert proc.returncode == 0 and Path(proc.stdout.strip()) == p, proc.stderr


def test_presets_lists_the_gan_models(capsys):
    from pianoforge.models.gan.config import gan_model_names

    code, stdout, _ = run(capsys, "presets")
    assert code == 0
    gan = stdout.split("GAN models")[1]
    assert [ln.split()[0] for ln in gan.strip().splitlines()[1:]] == gan_model_names()
    assert {"dcgan", "specgan", "stylegan", "framegan", "notegan"} <= set(gan_model_names())


def test_train_gan_help_names_every_model(capsys):
    code, stdout, _ = run(capsys, "train", "--help")
    for m in ("dcgan", "specgan", "stylegan", "framegan", "notegan"):
        assert m in stdout
    code, stdout, _ = run(capsys, "train", "gan", "--help")
    assert "rnn_units" not in stdout  # a perform-only key was the --set example


def test_clips_has_len_and_iteration():
    from pianoforge.improvise import Clips

    audio = [np.zeros(4, np.float32), np.ones(4, np.float32)]
    c = Clips(audio, np.zeros((2, 3, 5)), torch.zeros(2, 1, 5, 3), 8000)
    assert len(c) == 2 and [float(x[0]) for x in c] == [0.0, 1.0]


def test_render_midi_api_takes_pretty_midi_and_no_wav_path(tmp_path):
    import pretty_midi

    from pianoforge.inference import render_midi

    pm = pretty_midi.PrettyMIDI(str(write_midi_file(tmp_path / "a.mid", [(69, 0.0, 0.5, 100)])))
    res = render_midi(pm, checkpoint=LAN)
    assert res.seconds > 0.5 and np.isfinite(res.audio).all() and np.abs(res.audio).max() > 1e-3
    assert files(tmp_path) == ["a.mid"]


def test_a_pickle_is_never_loaded_as_a_checkpoint(tmp_path, midi, capsys):
    """Held before issue 15: checkpoints are safetensors only; a torch pickle is refused, not unpickled."""
    pt = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pt)
    code, _, err = run(capsys, "render", midi, "--checkpoint", pt, "-o", tmp_path / "a.wav")
    one_line(code, err, pt, "not a safetensors checkpoint")
    assert not (tmp_path / "a.wav").exists()
