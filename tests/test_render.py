from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SOUNDFONT
from pianoforge.audio import render as R
from pianoforge.audio.render import find_soundfont, render_score
from pianoforge.config import RenderConfig
from pianoforge.errors import RenderError
from pianoforge.midi.score import Note, make_score

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")

SR = 8000


def spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr), mag


@pytest.fixture(scope="module")
def a4_render():
    score = make_score([Note(69, 0.0, 1.0, 100)])
    return score, render_score(score, SR)


def test_render_is_non_silent_with_default_length(a4_render):
    score, x = a4_render
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) == math.ceil((score.end_time + RenderConfig().release_seconds) * SR) == 20000
    assert np.all(np.isfinite(x))
    peak = float(np.max(np.abs(x)))
    assert 1e-3 < peak <= 1.0
    rms_note = float(np.sqrt(np.mean(x[: SR // 2] ** 2)))
    assert rms_note > 1e-3


def test_a4_spectral_peak_at_440(a4_render):
    _, x = a4_render
    f, mag = spectrum(x[:SR], SR)
    assert f[np.argmax(mag)] == pytest.approx(440.0, abs=3.0)


def test_low_note_partials():
    """A1 (55 Hz): the strongest low-frequency peak is a harmonic of 55 Hz and the fundamental is present."""
    x = render_score(make_score([Note(33, 0.0, 1.0, 110)]), SR)
    f, mag = spectrum(x[:SR], SR)
    low = f < 400
    top = f[low][np.argmax(mag[low])]
    harmonic = round(top / 55.0)
    assert harmonic >= 1
    assert top == pytest.approx(55.0 * harmonic, abs=3.0)
    fund = mag[(f > 52) & (f < 58)].max()
    between = mag[(f > 70) & (f < 95)].max()  # between the 1st and 2nd harmonic
    assert fund > 5 * between


def test_render_is_deterministic(a4_render):
    score, x = a4_render
    assert np.array_equal(render_score(score, SR), x)


def test_render_given_length_and_onset_time():
    score = make_score([Note(60, 0.5, 0.8, 100), Note(64, 0.5, 0.8, 100)])
    x = render_score(score, 16000, n_samples=12345)
    assert x.shape == (12345,)
    assert np.max(np.abs(x[: int(0.49 * 16000)])) < 1e-4  # silent before the onset at 0.5 s
    first = int(np.flatnonzero(np.abs(x) > 1e-4)[0])
    assert abs(first / 16000 - 0.5) < 0.02
    short = render_score(score, 16000, n_samples=100)
    assert short.shape == (100,)
    longer = render_score(score, 16000, n_samples=16000 * 5)
    assert longer.shape == (80000,) and np.all(longer[-1000:] == 0)


def test_release_seconds_sets_default_length():
    score = make_score([Note(60, 0.0, 0.5, 90)], pedal=[(0.2, 0.9)])
    assert score.end_time == 0.9  # the pedal-up counts
    x = render_score(score, SR, RenderConfig(release_seconds=0.25))
    assert len(x) == math.ceil((0.9 + 0.25) * SR)


def test_gain_scales_output():
    score = make_score([Note(69, 0.0, 0.5, 100)])
    quiet = render_score(score, SR, RenderConfig(gain=0.2))
    loud = render_score(score, SR, RenderConfig(gain=0.4))
    ratio = float(np.max(np.abs(loud)) / np.max(np.abs(quiet)))
    assert ratio == pytest.approx(2.0, rel=0.05)


def test_find_soundfont_explicit_missing(tmp_path):
    missing = tmp_path / "nope.sf2"
    with pytest.raises(RenderError, match="soundfont not found") as ei:
        find_soundfont(missing)
    assert str(missing) in str(ei.value)
    with pytest.raises(RenderError) as ei:
        render_score(make_score([Note(60, 0, 0.5, 80)]), SR, RenderConfig(soundfont=str(missing)))
    assert str(missing) in str(ei.value)


def test_find_soundfont_env(tmp_path, monkeypatch):
    missing = tmp_path / "env.sf2"
    monkeypatch.setenv(R.SOUNDFONT_ENV, str(missing))
    with pytest.raises(RenderError, match="PIANOFORGE_SOUNDFONT") as ei:
        find_soundfont()
    assert str(missing) in str(ei.value)
    if SOUNDFONT.is_file():
        monkeypatch.setenv(R.SOUNDFONT_ENV, str(SOUNDFONT))
        assert find_soundfont() == SOUNDFONT
        assert find_soundfont(SOUNDFONT) == SOUNDFONT  # explicit wins


def test_find_soundfont_system_or_bundled(monkeypatch):
    monkeypatch.delenv(R.SOUNDFONT_ENV, raising=False)
    sf2 = find_soundfont()
    assert sf2.is_file()
    if SOUNDFONT.is_file():
        assert sf2 == SOUNDFONT


def test_no_soundfont_anywhere(monkeypatch, tmp_path):
    import pretty_midi

    monkeypatch.delenv(R.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(R, "SOUNDFONT_CANDIDATES", (str(tmp_path / "none.sf2"),))
    monkeypatch.setattr(pretty_midi, "__file__", str(tmp_path / "pretty_midi" / "__init__.py"))
    with pytest.raises(RenderError, match="no General MIDI soundfont") as ei:
        find_soundfont()
    assert "apt-get install" in str(ei.value)


def test_missing_fluidsynth_binary(monkeypatch):
    monkeypatch.setattr(R.shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match="fluidsynth"):
        render_score(make_score([Note(60, 0, 0.5, 80)]), SR)


def test_broken_soundfont_is_a_render_error(tmp_path):
    """FluidSynth exits 0 on a file that is not a soundfont and falls back to its default one; the
    renderer must not hand back a render made with another instrument."""
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF" + b"\0" * 64)
    score = make_score([Note(60, 0, 0.5, 80)], source=str(tmp_path / "x.mid"))
    with pytest.raises(RenderError, match="soundfont") as ei:
        render_score(score, SR, RenderConfig(soundfont=str(bad)))
    assert str(bad) in str(ei.value)
    assert "\n" not in str(ei.value)


def test_render_leaves_no_temp_files(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    render_score(make_score([Note(60, 0, 0.2, 80)]), SR, RenderConfig(release_seconds=0.1))
    assert list(Path(tmp_path).iterdir()) == []


def test_render_below_fluidsynth_minimum_rate():
    """FluidSynth refuses rates below 8 kHz; the gan-10s preset's 5.5 kHz is rendered higher and resampled."""
    score = make_score([Note(69, 0.5, 1.5, 100)])
    for sr in (5500, 4000):
        x = render_score(score, sr)
        assert x.shape == (math.ceil((1.5 + 1.5) * sr),)
        f, mag = spectrum(x[sr // 2: sr // 2 + sr], sr)
        assert f[np.argmax(mag)] == pytest.approx(440.0, abs=3.0)
        first = int(np.flatnonzero(np.abs(x) > 1e-3)[0])
        assert abs(first / sr - 0.5) < 0.03
        assert np.max(np.abs(x[: int(0.45 * sr)])) < 1e-3
