"""The one atomic-write helper (pianoforge.fsutil): special files refused, umask permissions, stale temporaries
of killed writers removed, output checks before any work."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from pianoforge.audio.io import save_audio
from pianoforge.checkpoint import save_checkpoint, save_train_state
from pianoforge.errors import OutputError
from pianoforge.fsutil import TMP_MARK, atomic_output, check_folder, check_output, write_text_atomic


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_files_and_folders_get_umask_permissions(tmp_path, umask022):
    """mkstemp/mkdtemp/safetensors make 0600/0700; outputs must be 0644/0755 like any other file."""
    ck = save_checkpoint(tmp_path / "best.safetensors", {"w": torch.zeros(3)}, "perform", {})
    assert mode(ck) == 0o644
    step = save_train_state(tmp_path / "checkpoints", 5, {"w": torch.zeros(3)}, {"step": 5})
    assert mode(step) == 0o755
    assert mode(step / "tensors.safetensors") == 0o644 and mode(step / "state.json") == 0o644
    assert mode(tmp_path / "checkpoints" / "LATEST") == 0o644
    with atomic_output(tmp_path / "piece", folder=True) as d:
        np.save(d / "a.npy", np.zeros(2))
    assert mode(tmp_path / "piece") == 0o755 and mode(tmp_path / "piece" / "a.npy") == 0o644
    assert mode(write_text_atomic(tmp_path / "r.md", "x")) == 0o644
    assert mode(save_audio(tmp_path / "a.wav", np.zeros(100, np.float32), 8000)) == 0o644


def test_piece_folders_of_a_store_are_0755(midi_store, umask022):
    pieces = midi_store[0] / "pieces"
    dirs = [d for d in pieces.iterdir() if d.is_dir()]
    assert dirs
    # the session store may have been built under another umask: rebuild one piece folder the way build does
    from pianoforge.data.piece import _write_piece

    _write_piece(pieces, "perm_probe", {"score": np.zeros(2)}, {"x": 1})
    try:
        assert mode(pieces / "perm_probe") == 0o755
        assert mode(pieces / "perm_probe" / "score.npy") == 0o644
    finally:
        import shutil

        shutil.rmtree(pieces / "perm_probe")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_special_file_is_never_replaced(tmp_path, kind):
    p = tmp_path / "out.wav"
    os.mkfifo(p) if kind == "fifo" else p.mkdir()
    before = os.stat(p).st_mode
    for call in (lambda: save_audio(p, np.zeros(10, np.float32), 8000), lambda: write_text_atomic(p, "x"),
                 lambda: check_output(p, force=True)):
        with pytest.raises(OutputError, match="refusing to replace it") as ei:
            call()
        assert str(p) in str(ei.value)
    assert os.stat(p).st_mode == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.wav"]  # no temporary left


def make_null_device(folder):
    """A private copy of /dev/null (char device 1:3) in ``folder`` (root only), so that a regression replaces
    the copy, not the system's device."""
    dev = folder / "null.wav"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    return dev


def test_device_node_is_never_replaced(tmp_path):
    """As root, `-o /dev/full --force` used to os.replace the device with a regular file."""
    dev = make_null_device(tmp_path)
    with pytest.raises(OutputError, match="is a character device, not a regular file"):
        save_audio(dev, np.zeros(10, np.float32), 8000)
    with pytest.raises(OutputError, match="character device"):
        check_output(dev, force=True, suffixes=(".wav",))
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert os.listdir(tmp_path) == ["null.wav"]


def test_stale_temporary_of_a_dead_writer_is_removed(tmp_path):
    """kill -9 in the middle of a write leaves a temporary; the next write into that folder removes it,
    and leaves alone the temporaries of live processes."""
    code = textwrap.dedent(f"""
        import os, signal
        from pianoforge.fsutil import atomic_output
        with atomic_output({str(tmp_path / 'a.wav')!r}) as tmp:
            tmp.write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    stale = [n for n in os.listdir(tmp_path) if TMP_MARK in n]
    assert len(stale) == 1 and stale[0].startswith(".a.wav" + TMP_MARK)
    live = tmp_path / f".b.wav{TMP_MARK}{os.getppid()}-xyz.wav"  # a live process (our parent)
    live.write_bytes(b"")
    save_audio(tmp_path / "c.wav", np.zeros(10, np.float32), 8000)
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "c.wav"])


def test_check_output(tmp_path):
    with pytest.raises(OutputError, match=r"unsupported audio format \(extension '\.mp3'\); supported: \.wav"):
        check_output(tmp_path / "x.mp3", suffixes=(".wav", ".flac"), what="audio")
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "missing" / "x.wav")
    (tmp_path / "x.wav").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists.*--force"):
        check_output(tmp_path / "x.wav")
    assert check_output(tmp_path / "x.wav", force=True) == tmp_path / "x.wav"
    assert (tmp_path / "x.wav").read_bytes() == b"old"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="a parent is a file"):
        check_folder(tmp_path / "file" / "sub")
    assert sorted(os.listdir(tmp_path)) == ["file", "x.wav"]  # the write probes leave nothing
