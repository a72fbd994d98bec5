"""Issue 19: NoteGAN's strike rule, a setting of inference (``inference.strike_threshold`` / ``strike_floor``,
``--strike-threshold`` / ``--strike-floor``): every strike of at least T dictionary notes plays, at F or louder,
instead of the gate the generator was trained with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_in_process as run
from pianoforge.audio.spectral import Normalizer
from pianoforge.checkpoint import load_checkpoint, save_checkpoint
from pianoforge.config import Preset
from pianoforge.errors import ConfigError
from pianoforge.models.gan import GanModelConfig, build_generator, load_gan_preset
from pianoforge.models.gan.config import GanInferenceConfig
from pianoforge.models.gan.notegan import NoteHead

ROOT = Path(__file__).resolve().parents[1]
HITS = torch.tensor([0.1, 0.25, 0.5, 1.0, 2.0])


def head(**kw) -> NoteHead:
    h = NoteHead(8, 16, 6, 2, **kw)
    with torch.no_grad():
        h.log_gain.zero_()  # gain 1: a strike's level is its onset
    return h


def test_the_rule_plays_every_strike_from_the_threshold_at_the_floor_or_louder():
    gated = head(min_level=1.0)
    hits = HITS.view(1, 1, 5).expand(1, gated.n, 5)
    before = gated.levels(hits)[0, 0].detach()
    assert float(before[1]) < 0.02 and float(before[2]) < 0.07  # the trained gate mutes them
    gated.set_strike_rule(0.25, 0.5)
    assert torch.equal(gated.levels(hits)[0, 0], torch.tensor([0.0, 0.5, 0.5, 1.0, 2.0]))
    gated.set_strike_rule(0.3, 0.0)  # a threshold alone: strikes from 0.3 play as struck
    assert torch.equal(gated.levels(hits)[0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0, 2.0]))
    gated.set_strike_rule(0.0, 0.0)  # back to the gate, exactly
    assert torch.equal(gated.levels(hits)[0, 0], before)
    capped = head(max_level=1.5)
    capped.set_strike_rule(0.25, 0.5)  # the cap still holds
    assert float(capped.levels(hits)[0, 0, -1].detach()) == pytest.approx(1.5 * np.tanh(2.0 / 1.5))


def test_the_rule_with_the_velocity_head_fires_at_the_threshold():
    vh = head(min_level=0.5, max_level=2.0, velocity_head=True)
    hits = HITS.view(1, 1, 5).expand(1, vh.n, 5)
    v = torch.zeros(1, vh.n, 5)
    assert torch.equal(vh.levels(hits, v)[0, 0], torch.tensor([0.0, 0.0, 1.25, 1.25, 1.25]))
    vh.set_strike_rule(0.2, 1.5)  # fires from 0.2, plays max(0.5 + 1.5 sig(v), 1.5)
    assert torch.equal(vh.levels(hits, v)[0, 0], torch.tensor([0.0, 1.5, 1.5, 1.5, 1.5]))
    with pytest.raises(ValueError, match="velocity"):
        vh.levels(hits)


@pytest.mark.parametrize(("threshold", "floor", "words"), [
    (0.0, 0.5, "strike_threshold > 0"), (-0.1, 0.0, ">= 0"), (float("nan"), 0.0, "finite"),
    (0.5, float("inf"), "finite"),
])
def test_bad_rules_are_config_errors(threshold, floor, words):
    with pytest.raises(ConfigError, match=words):
        GanInferenceConfig(strike_threshold=threshold, strike_floor=floor)
    with pytest.raises(ConfigError, match=words):
        head().set_strike_rule(threshold, floor)


def _generator(arch: str):
    from pianoforge.improvise import GanGenerator

    preset = load_gan_preset(arch)
    cfg = GanModelConfig.from_dict({**preset.model, "channels": 2, "max_channels": 8, "w_dim": 8})
    model = build_generator(cfg, (32, 64))
    return GanGenerator(model, preset, Normalizer(np.zeros(32), np.ones(32)), (32, 64), (32, 64))


def test_only_a_note_head_takes_a_rule():
    with pytest.raises(ConfigError, match="needs a notegan"):
        _generator("dcgan").set_strike_rule(0.25, 0.5)
    _generator("dcgan").set_strike_rule(0.0, 0.0)  # no rule: fine for any generator
    g = _generator("notegan")
    g.set_strike_rule(0.25, 0.5)
    assert (g.model.head.strike_threshold, g.model.head.strike_floor) == (0.25, 0.5)
    g.set_strike_rule(floor=0.75)  # None keeps the other value
    assert (g.strike_threshold, g.strike_floor) == (0.25, 0.75)


def test_a_checkpoint_carries_its_rule(tmp_path):
    from pianoforge.improvise import GanGenerator, shipped_checkpoint

    g = GanGenerator.from_checkpoint()
    z = torch.stack([g.latent(s) for s in range(3)])
    g.set_strike_rule(0.0, 0.0)  # the gate it was trained with
    plain = g.images(z)
    g.set_strike_rule(0.1, 0.7)
    ruled = g.images(z)
    assert not torch.equal(plain, ruled)
    tensors, meta = load_checkpoint(shipped_checkpoint(), kind="gan")
    config = meta["config"]
    config["preset"]["inference"] = {**(config["preset"].get("inference") or {}),
                                     "strike_threshold": 0.1, "strike_floor": 0.7}
    Preset.from_dict(config["preset"], "test")
    path = save_checkpoint(tmp_path / "ruled.safetensors", tensors, kind="gan", config=config)
    loaded = GanGenerator.from_checkpoint(path)
    assert (loaded.strike_threshold, loaded.strike_floor) == (0.1, 0.7)
    assert torch.equal(loaded.images(z), ruled)
    loaded.set_strike_rule(0.0, 0.0)
    assert torch.equal(loaded.images(z), plain)


def test_generate_refuses_a_floor_without_a_threshold_before_any_output(tmp_path, capsys):
    code, stdout, err = run(capsys, "generate", "-n", "1", "--strike-threshold", "0", "--strike-floor", "0.5",
                            "-o", tmp_path / "clips")
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert code == 2 and stdout == "" and len(lines) == 1 and "strike_threshold" in lines[0], err
    assert "gan-default.safetensors" in lines[0]  # names the checkpoint
    assert not (tmp_path / "clips").exists()
    code, _, err = run(capsys, "generate", "-n", "1", "--strike-threshold", "-1", "-o", tmp_path / "clips")
    assert code == 2 and "--strike-threshold" in err and not (tmp_path / "clips").exists()


def test_ship_checkpoint_writes_a_rule_into_a_gan_checkpoint(tmp_path):
    import importlib.util

    from pianoforge.improvise import GanGenerator, shipped_checkpoint

    spec = importlib.util.spec_from_file_location("ship", ROOT / "scripts" / "ship_checkpoint.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    dst = tmp_path / "ruled.safetensors"
    ship._ship_with_inference(shipped_checkpoint(), dst, ["strike_threshold=0.25", "strike_floor=0.5"], "gan")
    g = GanGenerator.from_checkpoint(dst)
    assert (g.strike_threshold, g.strike_floor, g.model.head.strike_floor) == (0.25, 0.5, 0.5)
    with pytest.raises(ConfigError, match="strike_threshold"):
        ship._ship_with_inference(shipped_checkpoint(), tmp_path / "bad.safetensors", ["strike_threshold=0", "strike_floor=0.5"],
                                  "gan")
    assert not (tmp_path / "bad.safetensors").exists()


def test_training_refuses_a_strike_rule_on_a_generator_without_notes():
    """Exports carry the preset's inference section; a rule only a note head can play is refused before any work."""
    from pianoforge.training.config import gan_train_config
    from pianoforge.training.gan_setup import check_gan_terms, gan_model_config

    rule = ["inference.strike_threshold=0.25", "inference.strike_floor=0.5"]
    for arch in ("framegan", "dcgan"):
        preset = load_gan_preset(arch, rule)
        with pytest.raises(ConfigError, match="inference.strike_threshold needs arch notegan"):
            check_gan_terms(preset, gan_model_config(preset).arch, gan_train_config(preset))
    preset = load_gan_preset("notegan", rule)
    check_gan_terms(preset, gan_model_config(preset).arch, gan_train_config(preset))  # fine
