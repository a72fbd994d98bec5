from __future__ import annotations

import dataclasses

import pytest

from pianoforge.config import (
    HIGHEST_PITCH,
    LOWEST_PITCH,
    N_KEYS,
    AudioConfig,
    DataConfig,
    Preset,
    ScoreConfig,
    apply_overrides,
    load_preset,
    preset_names,
)
from pianoforge.errors import ConfigError, PianoforgeError

SHIPPED = ("default", "gan-10s", "gan-20s", "gan-cpu", "lan2018")


def test_piano_range():
    assert (LOWEST_PITCH, HIGHEST_PITCH, N_KEYS) == (21, 108, 88)


def test_shipped_presets_are_listed():
    assert set(SHIPPED) <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads(name):
    p = load_preset(name)
    assert p.name == name
    a = p.audio
    assert a.frame_rate == pytest.approx(a.sample_rate / a.hop_length)
    assert a.n_bins == a.n_fft // 2 + 1
    assert p.data.example_frames(a) == round(p.data.example_seconds * a.frame_rate)
    assert sum(p.data.split_fractions) == pytest.approx(1.0)
    # a preset survives a dict round trip unchanged
    assert Preset.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("name,sr,n_fft,hop,bins,fps", [
    ("default", 16000, 1024, 256, 513, 62.5),
    ("lan2018", 8000, 400, 400, 201, 20.0),
    ("gan-cpu", 8000, 256, 128, 129, 62.5),
])
def test_derived_geometry(name, sr, n_fft, hop, bins, fps):
    a = load_preset(name).audio
    assert (a.sample_rate, a.n_fft, a.hop_length) == (sr, n_fft, hop)
    assert a.n_bins == bins
    assert a.frame_rate == pytest.approx(fps)


def test_gan_example_geometry():
    p10 = load_preset("gan-10s")
    assert p10.audio.n_bins == 257
    assert p10.data.example_frames(p10.audio) == 430
    assert p10.data.resize == (256, 256)
    p20 = load_preset("gan-20s")
    assert p20.audio.n_bins == 513
    assert p20.data.example_frames(p20.audio) == 781
    assert p20.data.resize == (512, 512)
    cpu = load_preset("gan-cpu")
    assert (cpu.audio.n_bins, cpu.data.example_frames(cpu.audio)) == (129, 256)


def test_score_channel_counts():
    assert load_preset("lan2018").score.n_channels == 176
    assert load_preset("default").score.n_channels == 441
    assert ScoreConfig(velocity=True, pedal=False).n_channels == 264
    assert ScoreConfig(velocity=False, pedal=True).n_channels == 177


def test_override_sample_rate():
    p = load_preset("default", ["audio.sample_rate=22050"])
    assert p.audio.sample_rate == 22050
    assert isinstance(p.audio.sample_rate, int)
    assert p.audio.frame_rate == pytest.approx(22050 / 256)
    # the shipped preset itself is untouched
    assert load_preset("default").audio.sample_rate == 16000


def test_overrides_parse_yaml_values():
    p = load_preset("default", ["data.resize=[64, 32]", "score.pedal=false", "train.lr=0.001",
                                "description=hello world"])
    assert p.data.resize == (64, 32)
    assert p.score.pedal is False
    assert p.score.n_channels == 264 + 176  # struck, held, velocity + 2 x 88 envelopes
    assert p.train["lr"] == 0.001
    assert p.description == "hello world"


@pytest.mark.parametrize("overrides,words", [
    (["audio.no_such_key=1"], "no_such_key"),
    (["nosection.key=1"], "nosection"),
    (["audio.sample_rate"], "section.key=value"),
    (["audio.n_fft=100"], "n_fft"),  # n_fft < hop
    (["audio.window=kaiser"], "kaiser"),
])
def test_bad_overrides_raise_config_error(overrides, words):
    with pytest.raises(ConfigError, match=words):
        load_preset("default", overrides)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset") as ei:
        load_preset("no-such-preset")
    assert "no-such-preset" in str(ei.value)
    assert isinstance(ei.value, PianoforgeError)
    assert "\n" not in str(ei.value)


def test_preset_from_yaml_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\naudio: {sample_rate: 12000, n_fft: 512, hop_length: 128}\n"
                 "data: {example_seconds: 2.0}\n")
    p = load_preset(str(f), ["data.split_seed=7"])
    assert p.name == "mine"
    assert p.audio.sample_rate == 12000
    assert p.data.example_frames(p.audio) == round(2.0 * 12000 / 128)
    assert p.data.split_seed == 7

    bad = tmp_path / "bad.yaml"
    bad.write_text("audio: {sample_rate: 8000, bogus: 3}\n")
    with pytest.raises(ConfigError, match="bogus") as ei:
        load_preset(str(bad))
    assert str(bad) in str(ei.value)

    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_preset(str(notmap))


def test_data_fingerprint():
    base = load_preset("default")
    fp = base.data_fingerprint()
    assert fp == load_preset("default").data_fingerprint()  # stable
    assert load_preset("default", ["audio.sample_rate=22050"]).data_fingerprint() != fp
    assert load_preset("default", ["score.pedal_extend=true"]).data_fingerprint() != fp
    assert load_preset("default", ["render.gain=0.3"]).data_fingerprint() != fp
    assert load_preset("default", ["data.split_seed=99"]).data_fingerprint() != fp
    # model/train/name/description do not change the dataset
    assert load_preset("default", ["train.lr=0.1", "train.batch_size=3", "model.width=7"]).data_fingerprint() == fp
    assert dataclasses.replace(base, name="other", description="x").data_fingerprint() == fp


def test_audio_geometry_validation():
    with pytest.raises(ConfigError):
        AudioConfig(sample_rate=0)
    with pytest.raises(ConfigError):
        AudioConfig(n_fft=128, hop_length=256)
    a = AudioConfig(sample_rate=8000, n_fft=400, hop_length=400, window="rect", center=False)
    assert a.frames_for_seconds(1.0) == 20


def test_stride_defaults_to_example():
    a = AudioConfig()
    assert DataConfig(example_seconds=4.0).stride_frames(a) == DataConfig(example_seconds=4.0).example_frames(a)
    assert DataConfig(example_seconds=4.0, stride_seconds=2.0).stride_frames(a) == 125


def test_apply_overrides_nested_in_place():
    d = {"audio": {"sample_rate": 8000}}
    out = apply_overrides(d, ["audio.hop_length=200", "model.layers=4"], "test")
    assert out is d
    assert d == {"audio": {"sample_rate": 8000, "hop_length": 200}, "model": {"layers": 4}}
