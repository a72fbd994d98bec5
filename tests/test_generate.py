"""Bounded generation (issue 16 part 5): ``generate_to_folder`` works in batches and writes as it goes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pianoforge import improvise
from pianoforge.improvise import GanGenerator, generate_to_folder


def _wavs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: sf.read(p, dtype="int16")[0] for p in sorted(folder.glob("*.wav"))}


def test_batches_write_the_same_clips_as_one_batch(tmp_path):
    one = generate_to_folder(tmp_path / "one", 5, seed=11, batch=16, iterations=2)
    many = generate_to_folder(tmp_path / "many", 5, seed=11, batch=2, iterations=2, progress=True)
    a, b = _wavs(tmp_path / "one"), _wavs(tmp_path / "many")
    assert sorted(a) == [f"clip-seed{s}.wav" for s in range(11, 16)] == sorted(b)
    assert [p.name for p in many["wavs"]] == [p.name for p in one["wavs"]]
    for name in a:  # seed i -> clip i whatever the batch size
        assert np.array_equal(a[name], b[name]), name
    assert len(list((tmp_path / "many").glob("*.png"))) == 5
    clip = GanGenerator.from_checkpoint().generate(1, seed=13, iterations=2)[0]  # the in-memory API agrees
    assert len(clip) == len(a["clip-seed13.wav"])


def test_interpolation_in_batches_streams_the_whole_sequence(tmp_path):
    generate_to_folder(tmp_path / "one", 4, seed=2, interpolate=True, batch=8, iterations=1)
    generate_to_folder(tmp_path / "many", 4, seed=2, interpolate=True, batch=3, iterations=1)
    a, b = _wavs(tmp_path / "one"), _wavs(tmp_path / "many")
    assert sorted(a) == sorted(b) and "interp-2-3.wav" in a and len(a) == 5
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    steps = np.concatenate([a[f"interp-2-3-{i:03d}.wav"] for i in range(4)])
    assert len(a["interp-2-3.wav"]) == len(steps)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_mid_way_keeps_the_finished_clips_and_no_temporaries(tmp_path, monkeypatch, error):
    real, calls = improvise.spectrogram_png, []

    def png(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 4:  # the 4th clip's figure, in the second batch
            raise error("boom")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(improvise.outputs, "spectrogram_png", png)  # where generate_to_folder looks it up
    out = tmp_path / "gen"
    with pytest.raises(error):
        generate_to_folder(out, 6, seed=0, batch=3, iterations=1)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["clip-seed0.png", "clip-seed0.wav", "clip-seed1.png", "clip-seed1.wav", "clip-seed2.png",
                     "clip-seed2.wav", "clip-seed3.wav"], names  # clip 3's WAV was written before its figure failed
