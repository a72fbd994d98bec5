"""The checkpoints shipped inside the package: small enough, loadable offline, and they play the score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import peak_hz, run_cli, scale, write_midi_file

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "pianoforge" / "weights"
MAX_BYTES = 20 * 1024 * 1024


def test_every_shipped_file_is_under_20_mb():
    files = list(WEIGHTS.glob("*"))
    assert any(f.name == "perform-default.safetensors" for f in files), files
    for f in files:
        assert f.stat().st_size < MAX_BYTES, f"{f.name}: {f.stat().st_size} bytes"


@pytest.mark.parametrize("name", ["perform-default.safetensors", "perform-lan2018.safetensors"])
def test_shipped_perform_model_plays_a4_at_440_hz(name, tmp_path):
    from pianoforge.inference import PerformRenderer, shipped_checkpoint

    midi = write_midi_file(tmp_path / "a4.mid", [(69, 0.0, 1.5, 100)])
    r = PerformRenderer.from_checkpoint(shipped_checkpoint(name))
    res = r.render_midi(midi, tmp_path / "a4.wav")
    y, sr = sf.read(tmp_path / "a4.wav")
    assert sr == r.sample_rate and np.sqrt(np.mean(y ** 2)) > 1e-3, "silent render"
    seg = y[int(0.1 * sr): int(1.2 * sr)]
    f0 = peak_hz(seg, sr)
    assert abs(12 * np.log2(f0 / 440.0)) < 0.5, f"{name}: peak at {f0:.1f} Hz"
    assert res.seconds >= 1.5


def test_shipped_default_plays_the_right_notes(tmp_path):
    """The independent judge (basic-pitch) hears the notes of a melody the model never saw."""
    from pianoforge.evaluation.judge import judge_audio
    from pianoforge.inference import PerformRenderer
    from pianoforge.midi.score import load_score

    phrase2 = [(p, s + 3.4, e + 3.4, v) for p, s, e, v in scale(67, 6, step=0.5, vel=70)]  # starts at 3.4 s
    notes = scale(60, 8, step=0.4, vel=90) + phrase2
    midi = write_midi_file(tmp_path / "melody.mid", notes)
    res = PerformRenderer.from_checkpoint().render_midi(midi)
    scores = judge_audio(res.audio, res.sample_rate, load_score(midi))
    assert scores["onset_f1"] >= 0.6, scores


def test_render_cli_defaults_to_the_shipped_model(tmp_path):
    midi = write_midi_file(tmp_path / "c.mid", [(60, 0.0, 0.8, 90), (64, 0.5, 1.2, 90)])
    r = run_cli("render", midi, "-o", tmp_path / "c.wav", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "real time" in r.stdout and (tmp_path / "c.wav").stat().st_size > 1000


def test_shipped_gan_generator_is_the_default_and_reproducible():
    from pianoforge.improvise import GanGenerator

    g = GanGenerator.from_checkpoint()
    a = g.generate_clips(2, seed=3)
    b = g.generate_clips(2, seed=3)
    assert len(a.audio) == 2
    for x, y in zip(a.audio, b.audio, strict=True):
        assert x.shape == y.shape and np.array_equal(x, y)
        assert abs(len(x) / g.sample_rate - g.seconds) < 0.05 and np.sqrt(np.mean(x ** 2)) > 1e-4
