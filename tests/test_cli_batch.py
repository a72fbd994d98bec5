"""Batch ``render`` / ``reference`` (issue 16 part 3) and ``data build --limit N`` building exactly N pieces.

Real tiny MIDI files, the shipped checkpoint, real FluidSynth, the console script in a new process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import cli_command, run_cli, scale, write_midi_file
from pianoforge.fsutil import TMP_MARK

pytestmark = pytest.mark.skipif(not any(Path(p, "fluidsynth").exists() for p in os.environ["PATH"].split(":")),
                                reason="needs the fluidsynth program")


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TMP_MARK in p.name]


@pytest.fixture()
def inputs(tmp_path) -> Path:
    """scores/{a.mid, op.10.mid, sub/c.MIDI, sub/deep/d.mid, notes.txt (not MIDI), bad.mid (corrupt)}."""
    d = tmp_path / "scores"
    write_midi_file(d / "a.mid", scale(60))
    write_midi_file(d / "op.10.mid", scale(64, 3))
    write_midi_file(d / "sub" / "c.MIDI", scale(55, 2))
    write_midi_file(d / "sub" / "deep" / "d.mid", scale(70, 2))
    (d / "notes.txt").write_text("not a score\n")
    (d / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    return d


def _err_lines(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]


def test_render_batch_mirrors_inputs_skips_bad_and_matches_a_single_render(inputs, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("render", inputs, "-o", out, "--recursive", "--threads", "1", "-q", timeout=300)
    assert proc.returncode == 2, proc.stderr  # one input failed
    assert _tree(out) == ["a.wav", "op.10.wav", "sub/c.wav", "sub/deep/d.wav"]  # structure kept, op.10 kept whole
    errs = _err_lines(proc)
    assert len(errs) == 1 and "bad.mid" in errs[0], proc.stderr
    assert "out: 4 of 5 inputs rendered" in proc.stdout and "1 failed, 0 skipped" in proc.stdout, proc.stdout
    single = tmp_path / "single.wav"
    one = run_cli("render", inputs / "a.mid", "-o", single, "--threads", "1", timeout=300)
    assert one.returncode == 0, one.stderr  # the single-file command is unchanged
    y_batch, sr = sf.read(out / "a.wav")
    y_single, sr1 = sf.read(single)
    assert sr == sr1 == 16000 and len(y_batch) == len(y_single) > sr  # about 1 s of notes + release
    np.testing.assert_array_equal(y_batch, y_single)
    assert not _temps(tmp_path)


def test_existing_outputs_are_skipped_without_force_and_replaced_with_it(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.wav").write_bytes(b"old")
    proc = run_cli("render", inputs / "a.mid", inputs / "op.10.mid", "-o", out, "--threads", "1", "-q", timeout=300)
    assert proc.returncode == 0, proc.stderr  # a skipped output is not a failure
    assert (out / "a.wav").read_bytes() == b"old"
    assert sf.info(str(out / "op.10.wav")).duration > 0.5
    assert "1 output already exist, skipped (use --force to overwrite): a.wav" in proc.stdout, proc.stdout
    assert "1 of 2 inputs rendered" in proc.stdout and "0 failed, 1 skipped" in proc.stdout
    proc = run_cli("render", inputs / "a.mid", inputs / "op.10.mid", "-o", out, "--force", "-q", "--threads", "1",
                   "--format", "flac", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "a.wav").read_bytes() == b"old" and sf.info(str(out / "a.flac")).format == "FLAC"


def test_globs_lists_and_a_trailing_slash_make_a_batch(inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    lst = tmp_path / "list.txt"
    lst.write_text(f"# scores\n{inputs / 'a.mid'}\n\n{inputs / 'sub'}\n")
    proc = run_cli("reference", f"@{lst}", f"{inputs}/**/d*.mid", "-o", out, "-q", timeout=300)
    assert proc.returncode == 0, proc.stderr
    # the list's folder entry maps below itself (c.wav), the glob below its fixed part (sub/deep/d.wav);
    # d.mid found twice (the list's folder has no --recursive, so only once here) is rendered once
    assert _tree(out) == ["a.wav", "c.wav", "sub/deep/d.wav"], proc.stdout
    # a single file into "DIR/": a batch of one
    proc = run_cli("reference", inputs / "a.mid", "-o", f"{tmp_path / 'one'}/", "-q")
    assert proc.returncode == 0, proc.stderr
    assert _tree(tmp_path / "one") == ["a.wav"]
    # the same as a single reference call of that file
    proc = run_cli("reference", inputs / "a.mid", "-o", tmp_path / "single.wav")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(sf.read(tmp_path / "one" / "a.wav")[0], sf.read(tmp_path / "single.wav")[0])


def test_bad_batches_are_one_line_before_any_work(inputs, tmp_path):
    out = tmp_path / "out"
    write_midi_file(tmp_path / "other" / "a.mid", scale(62))
    proc = run_cli("reference", inputs / "a.mid", tmp_path / "other" / "a.mid", "-o", out)
    assert proc.returncode == 2 and len(_err_lines(proc)) == 1, proc.stderr
    assert "would be written from both" in proc.stderr and not _tree(out)
    proc = run_cli("render", inputs / "a.mid", inputs / "op.10.mid", "-o", out, "--figure", tmp_path / "f.png")
    assert proc.returncode == 2 and "--figure" in proc.stderr and not _tree(out)
    (tmp_path / "file").write_text("x")
    proc = run_cli("reference", inputs, "-o", tmp_path / "file")
    assert proc.returncode == 2 and _err_lines(proc), proc.stderr
    # a folder without MIDI, a pattern that matches nothing, a missing list: each a failed input, one line each
    (tmp_path / "empty").mkdir()
    proc = run_cli("reference", tmp_path / "empty", f"{tmp_path}/*.nomatch", f"@{tmp_path / 'nolist.txt'}",
                   inputs / "a.mid", "-o", out, "-q")
    assert proc.returncode == 2
    errs = _err_lines(proc)
    assert len(errs) == 3 and "--recursive" in errs[0] and "matches no" in errs[1] and "cannot read" in errs[2], errs
    assert _tree(out) == ["a.wav"]  # the good input was still rendered
    # the single-file command keeps its rules: an existing folder as -o is refused, as before
    proc = run_cli("render", inputs / "a.mid", "-o", out, "--force")
    assert proc.returncode == 2 and "folder" in proc.stderr


N_LONG = 12  # enough files that a second Ctrl-C, 3 s after the first, still lands mid-batch


def test_ctrl_c_keeps_finished_files_and_no_temporaries_then_a_rerun_finishes(tmp_path):
    src = tmp_path / "long"
    for i in range(N_LONG):  # 400 s each: seconds of work after the first file appears, even at ~1000x real time
        write_midi_file(src / f"p{i}.mid", [(48 + (k * 5 + i) % 36, k * 0.25, k * 0.25 + 0.6, 70) for k in range(1600)])
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the child gets SIGINT's default action, as a command run from an interactive shell does: a test run from a
    # background job (`make test &`) would otherwise hand it an ignored SIGINT, which Python keeps ignoring
    proc = subprocess.Popen([*cli_command(), "render", str(src), "-o", str(out), "--threads", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out / "p0.wav").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # into the next file's render
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        # a user presses Ctrl-C again, and so does this test (see docs/reliability.md for the ignored-SIGINT
        # case this once was)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "finished ones are kept" in stdout, (stdout, stderr)
    done = _tree(out)
    assert 1 <= len(done) < N_LONG, done  # interrupted mid-batch
    assert not _temps(out), _temps(out)  # no temporary, no float32 scratch file
    kept = {name: sf.read(out / name)[0] for name in done}
    again = run_cli("render", src, "-o", out, "--threads", "1", "-q", timeout=300)
    assert again.returncode == 0, again.stderr
    assert _tree(out) == sorted(f"p{i}.wav" for i in range(N_LONG)) and not _temps(out)
    n_full = sf.info(str(out / f"p{N_LONG - 1}.wav")).frames  # every piece has the same length: the kept files are whole
    assert n_full > 400 * 16000 and all(len(y) == n_full for y in kept.values())
    assert all(np.array_equal(sf.read(out / name)[0], y) for name, y in kept.items())  # and were not redone
    assert f"{len(done)} output{'' if len(done) == 1 else 's'} already exist" in again.stdout, again.stdout


def test_data_build_limit_builds_exactly_n_pieces(tmp_path):
    from pianoforge.data.sources import collect, corpus_limit

    assert [corpus_limit(n) for n in (1, 4, 5, 9, 10)] == [(1, 0), (4, 0), (4, 1), (8, 1), (8, 2)]
    cache = tmp_path / "cache"
    specs, failures = collect("corpus", None, workers=1, cache_dir=cache, progress=False, pieces=5)
    assert failures == [] and len(specs) == 5
    assert [s.provenance["source"] for s in specs].count("exercise") == 1
    works, _ = collect("corpus", None, limit=4, workers=1, cache_dir=cache, progress=False)  # experiments' meaning
    assert [s.piece_id for s in works] == [s.piece_id for s in specs]  # unchanged: 4 works + 1 exercise
    out = tmp_path / "store"
    proc = run_cli("data", "build", "--source", "corpus", "--cache-dir", cache, "--limit", "2", "--out", out,
                   "--preset", "lan2018", "--workers", "1", "-q", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{out}: 2 pieces" in proc.stdout, proc.stdout
    from pianoforge.data.store import FeatureStore

    assert sorted(p["piece_id"] for p in FeatureStore(out).pieces()) == sorted(s.piece_id for s in specs[:2])
