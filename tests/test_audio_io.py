from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from conftest import peak_hz
from pianoforge.audio.io import PEAK_LIMIT, audio_info, load_audio, peak_safe, resample, save_audio
from pianoforge.errors import AudioError, OutputError


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_load_round_trip(tmp_path):
    x = sine(440, 0.5, 16000)
    p = save_audio(tmp_path / "a.wav", x, 16000)
    assert p == tmp_path / "a.wav"
    info = sf.info(str(p))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, len(x))
    assert info.subtype == "PCM_16"
    y = load_audio(p)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1.0 / 32768 + 1e-6)
    assert audio_info(p) == (16000, pytest.approx(0.5))
    assert leftovers(tmp_path) == ["a.wav"]  # no temporary file left


@pytest.mark.parametrize("subtype,atol", [("FLOAT", 1e-7), ("PCM_16", 1.0 / 32768 + 1e-6)])
def test_save_is_peak_safe_and_scales_never_clips(tmp_path, subtype, atol):
    x = sine(300, 0.25, 8000, amp=1.0)
    x[100] = 3.0  # a peak far above full scale
    x[200] = -2.0
    p = save_audio(tmp_path / "loud.wav", x, 8000, subtype=subtype)
    y, sr = sf.read(str(p), dtype="float32")
    assert sr == 8000
    assert y.shape == x.shape
    assert np.max(np.abs(y)) <= 1.0
    assert np.max(np.abs(y)) == pytest.approx(PEAK_LIMIT, abs=1e-4)
    # a scaled copy, not a clipped one: every sample (the former peaks too) keeps its ratio
    np.testing.assert_allclose(y, x * (PEAK_LIMIT / 3.0), atol=atol)
    assert y[200] == pytest.approx(-2.0 * PEAK_LIMIT / 3.0, abs=atol)
    assert leftovers(tmp_path) == ["loud.wav"]


def test_peak_safe_leaves_quiet_signals_alone():
    x = sine(100, 0.1, 8000, amp=0.9)
    assert np.array_equal(peak_safe(x), x)
    assert peak_safe(np.zeros(0, np.float32)).shape == (0,)
    with pytest.raises(ValueError):
        peak_safe(np.array([0.0, np.nan], np.float32))


def test_save_overwrites_atomically(tmp_path):
    p = tmp_path / "a.wav"
    save_audio(p, sine(440, 0.1, 8000), 8000)
    save_audio(p, sine(440, 0.3, 8000), 8000)
    assert sf.info(str(p)).frames == 2400
    assert leftovers(tmp_path) == ["a.wav"]


def test_flac_by_suffix(tmp_path):
    p = save_audio(tmp_path / "a.flac", sine(440, 0.1, 8000), 8000)
    assert sf.info(str(p)).format == "FLAC"


def test_load_resamples_to_requested_rate(tmp_path):
    p = save_audio(tmp_path / "a.wav", sine(1000, 1.0, 16000), 16000)
    y = load_audio(p, 8000)
    assert len(y) == 8000
    assert peak_hz(y, 8000) == pytest.approx(1000, abs=2)
    up = load_audio(p, 22050)
    assert len(up) == 22050
    assert peak_hz(up, 22050) == pytest.approx(1000, abs=2)


def test_load_mixes_stereo_to_mono(tmp_path):
    left, right = sine(440, 0.1, 8000, 0.4), np.zeros(800, np.float32)
    p = tmp_path / "st.wav"
    sf.write(str(p), np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    y = load_audio(p)
    assert y.ndim == 1
    np.testing.assert_allclose(y, left / 2, atol=1e-7)


def test_resample_identity_and_length():
    x = sine(440, 0.5, 8000)
    assert resample(x, 8000, 8000) is x or np.array_equal(resample(x, 8000, 8000), x)
    assert len(resample(x, 8000, 16000)) == 8000


def test_allow_upsample_false_rejects_low_rate(tmp_path):
    p = save_audio(tmp_path / "low.wav", sine(440, 0.2, 8000), 8000)
    with pytest.raises(AudioError, match="sample rate 8000 Hz is below") as ei:
        load_audio(p, 16000, allow_upsample=False)
    assert str(p) in str(ei.value)
    assert len(load_audio(p, 16000)) == 3200  # allowed by default
    assert len(load_audio(p, 4000, allow_upsample=False)) == 800  # downsampling is always fine


def test_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    for fn in (load_audio, audio_info):
        with pytest.raises(AudioError, match="not found") as ei:
            fn(p)
        assert str(p) in str(ei.value)


def test_non_audio_file(tmp_path):
    p = tmp_path / "text.wav"
    p.write_text("definitely not audio\n" * 10)
    for fn in (load_audio, audio_info):
        with pytest.raises(AudioError, match="unreadable audio") as ei:
            fn(p)
        assert str(p) in str(ei.value)
        assert "\n" not in str(ei.value)


def test_empty_files(tmp_path):
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioError) as ei:
        load_audio(zero_bytes)
    assert str(zero_bytes) in str(ei.value)
    no_samples = tmp_path / "nosamples.wav"
    sf.write(str(no_samples), np.zeros(0, np.float32), 8000)
    with pytest.raises(AudioError, match="no samples") as ei:
        load_audio(no_samples)
    assert str(no_samples) in str(ei.value)


def test_nan_audio_rejected(tmp_path):
    p = tmp_path / "nan.wav"
    x = sine(440, 0.1, 8000)
    x[10] = np.nan
    sf.write(str(p), x, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(p)


def test_save_into_missing_folder(tmp_path):
    p = tmp_path / "does" / "not" / "exist" / "a.wav"
    with pytest.raises(OutputError, match="does not exist") as ei:
        save_audio(p, sine(440, 0.1, 8000), 8000)
    assert str(p) in str(ei.value)
    assert not (tmp_path / "does").exists()
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_no_temp_file(tmp_path):
    """An unknown format is refused before writing, naming the supported ones; nothing is left behind."""
    p = tmp_path / "a.notaformat"
    with pytest.raises(OutputError, match=r"unsupported audio format.*\.wav, \.flac") as ei:
        save_audio(p, sine(440, 0.1, 8000), 8000)
    assert str(p) in str(ei.value)
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    p = save_audio(tmp_path / "a.wav", sine(440, 0.1, 8000), 8000)
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(OutputError, match="not writable"):
        save_audio(p, sine(440, 0.5, 8000), 8000)
    assert p.read_bytes() == before
    assert leftovers(tmp_path) == ["a.wav"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_save_into_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable") as ei:
            save_audio(ro / "a.wav", sine(440, 0.1, 8000), 8000)
        assert str(ro / "a.wav") in str(ei.value)
        assert leftovers(ro) == []
    finally:
        ro.chmod(0o700)


def test_unwritable_folder_simulated(tmp_path, monkeypatch):
    """What a read-only folder does to mkstemp (works when the tests run as root, too)."""
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="not writable") as ei:
        save_audio(tmp_path / "a.wav", sine(440, 0.1, 8000), 8000)
    assert str(tmp_path / "a.wav") in str(ei.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("subtype,bits", [("PCM_16", 16), ("PCM_24", 24)])
def test_pcm_files_round_to_the_nearest_step_without_a_dc_offset(tmp_path, subtype, bits):
    """libsndfile alone truncates towards minus infinity: -1e-7 became -1 LSB, a DC offset of half a step
    under every file and a -42 dB 0 Hz component in each silent frame of a render."""
    from pianoforge.audio.stream import write_audio_stream

    rng = np.random.default_rng(0)
    step = 2.0 ** -(bits - 1)
    x = (rng.uniform(-3, 3, 20000) * step).astype(np.float32)  # a few steps around silence
    x[:1000] = -1e-9
    for write in ("save", "stream"):
        p = tmp_path / f"{write}.wav"
        if write == "save":
            save_audio(p, x, 16000, subtype=subtype)
        else:
            write_audio_stream(p, [x[:7000], x[7000:]], 16000, subtype=subtype)
        y, _ = sf.read(p, dtype="float64")
        assert np.max(np.abs(y - x)) <= 0.5 * step + 1e-12
        assert np.all(y[:1000] == 0.0)  # a tiny negative value is silence, not -1 LSB
        assert abs(np.mean(y - x)) < 0.05 * step  # no half-step bias
