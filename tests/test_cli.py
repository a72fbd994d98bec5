from __future__ import annotations

import argparse
import json
import math
import os
import re

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli, scale, write_bad_midis, write_midi_file
from pianoforge import __version__, cli
from pianoforge.config import preset_names
from pianoforge.data.store import FeatureStore


def one_line_error(proc, *words: str) -> str:
    """The command failed with exactly one stderr line ``error: ...`` holding ``words``."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every (sub)command path of the parser, e.g. ("data", "build")."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out += subcommands(sub, (*prefix, name))
    return out


ALL_COMMANDS = subcommands(cli.build_parser())


def test_top_level_help_lists_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    top = {c[0] for c in ALL_COMMANDS}
    assert {"data", "reference", "presets", "demo"} <= top
    for name in top:
        assert re.search(rf"^\s+{name}\s", proc.stdout, re.M), name
    assert ("data", "build") in ALL_COMMANDS and ("data", "info") in ALL_COMMANDS


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"pianoforge {__version__}"


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_subcommand_help(command):
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pianoforge " + " ".join(command))
    assert proc.stderr == ""


def test_no_command_is_a_usage_error():
    proc = run_cli()
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_presets_command():
    proc = run_cli("presets")
    assert proc.returncode == 0, proc.stderr
    presets, gan = proc.stdout.split("\n\n")
    lines = presets.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == preset_names()
    assert gan.startswith("GAN models") and "notegan" in gan  # the model presets too (presets/gan/*.yaml)
    lan = next(ln for ln in lines if ln.startswith("lan2018"))
    assert "8000 Hz" in lan and "176 ch" in lan


# ------------------------------------------------------------------------------------------ reference

def test_reference_round_trip(tmp_path):
    mid = write_midi_file(tmp_path / "in.mid", [(69, 0.0, 1.0, 100), (72, 0.5, 1.25, 80)])
    out = tmp_path / "out.wav"
    proc = run_cli("reference", mid, "-o", out, "--sample-rate", "8000")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\(\d+x real time\)", proc.stdout), proc.stdout
    assert "2 notes" in proc.stdout and "8000 Hz" in proc.stdout
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (8000, 1)
    assert info.frames == math.ceil((1.25 + 1.5) * 8000)
    x, _ = sf.read(str(out), dtype="float32")
    assert np.max(np.abs(x)) > 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "out.wav"]

    # refuses to overwrite without --force, and leaves the file alone
    before = out.read_bytes()
    proc = run_cli("reference", mid, "-o", out, "--sample-rate", "8000", "--release", "0.5")
    one_line_error(proc, out, "already exists", "--force")
    assert proc.returncode == 2
    assert out.read_bytes() == before
    proc = run_cli("reference", mid, "-o", out, "--sample-rate", "8000", "--release", "0.5", "--force")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).frames == math.ceil((1.25 + 0.5) * 8000)


def test_reference_default_rate_is_16k(tmp_path):
    mid = write_midi_file(tmp_path / "in.mid", [(60, 0.0, 0.25, 100)])
    out = tmp_path / "out.flac"
    proc = run_cli("reference", mid, "-o", out, "--release", "0.25")
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.format == "FLAC"
    assert info.frames == 8000


@pytest.mark.parametrize("kind", ["corrupt", "empty", "noteless", "drums", "truncated", "text"])
def test_reference_bad_midi_one_line_error(tmp_path, kind):
    path, words = write_bad_midis(tmp_path / "in")[kind]
    out = tmp_path / "out.wav"
    proc = run_cli("reference", path, "-o", out)
    line = one_line_error(proc, path)
    assert words.lower() in line.lower()
    assert proc.returncode == 2
    assert not out.exists()
    assert proc.stdout == ""


def test_reference_other_errors(tmp_path):
    mid = write_midi_file(tmp_path / "in.mid", scale(60))
    missing = tmp_path / "missing.mid"
    one_line_error(run_cli("reference", missing, "-o", tmp_path / "a.wav"), missing, "not found")
    one_line_error(run_cli("reference", mid, "-o", tmp_path / "no" / "dir" / "a.wav"), "does not exist")
    sf2 = tmp_path / "nope.sf2"
    one_line_error(run_cli("reference", mid, "-o", tmp_path / "a.wav", "--soundfont", sf2), sf2, "soundfont")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid"]


# -------------------------------------------------------------------------------------------- data

def test_data_build_then_info(tiny_midi_dir, midi_store, tmp_path):
    out = tmp_path / "store"
    args = ("data", "build", "--source", "midi", "--input", tiny_midi_dir, "--out", out, "--preset", "lan2018",
            "--workers", "2", "-q")
    proc = run_cli(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 pieces" in proc.stdout and "(4 built, 0 reused)" in proc.stdout and "lan2018" in proc.stdout
    for sp in ("train", "validation", "test"):
        assert re.search(rf"^\s+{sp}\s+\d+ pieces?", proc.stdout, re.M), proc.stdout
    # two worker processes build exactly what the in-process build made
    st, ref = FeatureStore(out), FeatureStore(midi_store[0])
    assert [p["piece_id"] for p in st.pieces()] == [p["piece_id"] for p in ref.pieces()]
    assert [p["split"] for p in st.pieces()] == [p["split"] for p in ref.pieces()]
    for p in ref.pieces():
        for name in ("score", "spec", "audio"):
            np.testing.assert_array_equal(getattr(st.arrays(p["piece_id"]), name),
                                          getattr(ref.arrays(p["piece_id"]), name))
    assert st.manifest["source"] == {"kind": "midi", "input": str(tiny_midi_dir), "limit": None}

    proc = run_cli("data", "info", out)
    assert proc.returncode == 0, proc.stderr
    assert "pianoforge-dataset v1" in proc.stdout and "preset lan2018" in proc.stdout
    assert "8000 Hz" in proc.stdout and "201 bins" in proc.stdout and "176 channels" in proc.stdout
    assert "skipped 0" in proc.stdout

    proc = run_cli("data", "info", out, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format_version"] == 1
    assert sum(s["pieces"] for s in info["splits"].values()) == 4
    assert info["fingerprint"] == st.manifest["fingerprint"]

    mtime = (out / "manifest.json").stat().st_mtime_ns
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "up to date (4 pieces)" in proc.stdout
    assert (out / "manifest.json").stat().st_mtime_ns == mtime

    # another preset into the same folder: refused with one line
    proc = run_cli("data", "build", "--source", "midi", "--input", tiny_midi_dir, "--out", out,
                   "--preset", "gan-cpu", "--workers", "1", "-q")
    one_line_error(proc, out, "lan2018")
    assert proc.returncode == 2


def test_data_build_limit_and_overrides(tiny_midi_dir, tmp_path):
    out = tmp_path / "store"
    proc = run_cli("data", "build", "--source", "midi", "--input", tiny_midi_dir, "--out", out, "--preset",
                   "lan2018", "--set", "audio.sample_rate=4000", "--set", "render.release_seconds=0.5",
                   "--limit", "1", "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    st = FeatureStore(out)
    assert st.preset.audio.sample_rate == 4000 and st.preset.audio.frame_rate == 10
    assert [p["piece_id"] for p in st.pieces()] == ["piece_a"]
    assert st.pieces()[0]["n_frames"] == 15  # (1.0 s of notes + 0.5 s release) * 10 fps
    assert st.arrays("piece_a").audio.shape == (15 * 400,)


def test_data_build_skips_and_lists_bad_files(tmp_path):
    src = tmp_path / "midi"
    bad = write_bad_midis(src)
    write_midi_file(src / "good.mid", scale(60))
    write_midi_file(src / "bwv846.mid", scale(60))
    out = tmp_path / "store"
    proc = run_cli("data", "build", "--source", "midi", "--input", src, "--out", out, "--preset", "lan2018",
                   "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "store: 1 piece," in proc.stdout  # not "1 pieces"
    assert f"skipped {len(bad) + 1}:" in proc.stdout
    for path, _ in bad.values():
        assert str(path) in proc.stdout
    assert re.search(r"bwv846: .*reserved", proc.stdout)
    proc = run_cli("data", "info", out)
    assert f"skipped {len(bad) + 1}" in proc.stdout


def test_data_build_impossible_output(tiny_midi_dir, tmp_path):
    f = tmp_path / "regular-file"
    f.write_text("x")
    proc = run_cli("data", "build", "--source", "midi", "--input", tiny_midi_dir, "--out", f / "store",
                   "--preset", "lan2018", "--workers", "1", "-q")
    one_line_error(proc, f / "store", "a parent is a file, not a folder")
    assert proc.returncode == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_data_build_read_only_output(tiny_midi_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli("data", "build", "--source", "midi", "--input", tiny_midi_dir, "--out", ro / "store",
                       "--preset", "lan2018", "--workers", "1", "-q")
        one_line_error(proc, "not writable")
        assert proc.returncode == 2
    finally:
        ro.chmod(0o700)


class InProcess:
    """``cli.main`` in this process (no interpreter start-up): the result of a failing command."""

    def __init__(self, capsys, *args) -> None:
        capsys.readouterr()
        with pytest.raises(SystemExit) as ei:
            cli.main([str(a) for a in args])
        out = capsys.readouterr()
        self.returncode, self.stdout, self.stderr = ei.value.code, out.out, out.err


def test_data_build_input_errors(tmp_path, capsys):
    out = tmp_path / "store"
    one_line_error(InProcess(capsys, "data", "build", "--source", "midi", "--out", out, "-q"), "--input")
    proc = InProcess(capsys, "data", "build", "--source", "midi", "--input", tmp_path / "nope", "--out", out, "-q")
    one_line_error(proc, tmp_path / "nope", "not found")
    assert proc.returncode == 2
    proc = InProcess(capsys, "data", "build", "--source", "maestro", "--input", tmp_path, "--out", out, "-q")
    one_line_error(proc, "MAESTRO")
    proc = InProcess(capsys, "data", "build", "--source", "midi", "--input", tmp_path, "--out", out,
                     "--preset", "nope")
    one_line_error(proc, "nope", "unknown preset")
    proc = InProcess(capsys, "data", "build", "--source", "midi", "--input", tmp_path, "--out", out,
                     "--set", "audio.bogus=1")
    one_line_error(proc, "bogus")
    assert not out.exists()


def test_data_info_errors(midi_store, tmp_path, capsys):
    import shutil

    one_line_error(InProcess(capsys, "data", "info", tmp_path), tmp_path, "manifest")
    out = shutil.copytree(midi_store[0], tmp_path / "store")
    m = json.loads((out / "manifest.json").read_text())
    m["status"] = "building"
    (out / "manifest.json").write_text(json.dumps(m))
    one_line_error(run_cli("data", "info", out), out, "not complete")  # also once as a real process
    m["status"], m["format_version"] = "complete", 7
    (out / "manifest.json").write_text(json.dumps(m))
    one_line_error(InProcess(capsys, "data", "info", out), "unsupported", "version 7")


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.misc, "cmd_presets", interrupted)  # looked up when main builds the parser
    with pytest.raises(SystemExit) as ei:
        cli.main(["presets"])
    assert ei.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: interrupted; rerun the same command to resume"]


def test_phase_names_are_defined_once_and_the_parser_imports_nothing_heavy():
    import subprocess
    import sys

    from pianoforge import config, names, phase
    from pianoforge.models.gan import config as gan_config

    assert config.PHASE_METHODS is names.PHASE_METHODS is phase.PHASE_METHODS
    assert config.INFERENCE_PHASES == (*names.PHASE_METHODS, "direct") and gan_config.GAN_PHASES is names.PHASE_METHODS
    assert config.preset_names() == names.preset_names() and "default" in names.preset_names()
    parser = cli.build_parser()
    for path in (("render",), ("eval",), ("generate",)):
        sub = parser._subparsers._group_actions[0].choices[path[0]]
        choices = next(a.choices for a in sub._actions if "--phase" in a.option_strings)
        assert tuple(choices) == (names.GAN_PHASES if path == ("generate",) else names.INFERENCE_PHASES)
    code = ("import sys; from pianoforge.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numba', 'numpy', 'yaml', 'pianoforge.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
