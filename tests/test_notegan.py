"""NoteGAN as its own model (issue 19, item 3): nested head configs read old flat presets and checkpoints, the
generator protocol replaces type tests in the trainer, the arch -> losses registry, notegan listed everywhere."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import cli_command
from pianoforge.errors import ConfigError
from pianoforge.models.gan import ARCHS, Generator, build_generator, load_gan_preset
from pianoforge.models.gan.config import GanModelConfig, NoteHeadConfig, upgrade_model_dict

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "pianoforge"
# the notegan preset's model section as written before NoteGAN became its own model (2026-12-02)
FLAT_NOTEGAN = {"arch": "framegan", "head": "notes", "note_frames": 96, "note_holds": [12, 96], "note_rank": 4,
                "note_velocity": 80, "note_max_strikes": 8, "latent_dim": 128, "latent": "normal", "channels": 256,
                "n_layers": 4, "kernel": 5, "mbstd_group": 4}


def test_old_flat_layout_reads_as_the_nested_one():
    old = GanModelConfig.from_dict(FLAT_NOTEGAN)
    new = GanModelConfig.from_dict(load_gan_preset("notegan").model)
    assert old == new and old.arch == "notegan"
    assert old.notes == NoteHeadConfig(frames=96, holds=(12, 96), rank=4, velocity=80, max_strikes=8)
    assert GanModelConfig.from_dict(old.to_dict()) == old and "harmonic" not in old.to_dict()
    harmonic = GanModelConfig.from_dict({"arch": "framegan", "head": "harmonic", "voices": 4})
    assert harmonic.arch == "framegan" and harmonic.harmonic.voices == 4 and harmonic.notes is None
    # an old checkpoint carries every flat field, the unused heads' at their defaults
    full = {**FLAT_NOTEGAN, "templates_per_key": 2, "free_templates": 16, "voices": 1, "note_max_level": 0.0}
    assert GanModelConfig.from_dict(full) == old
    assert upgrade_model_dict(load_gan_preset("dcgan").model) == load_gan_preset("dcgan").model


def test_a_checkpoint_with_the_old_flat_config_builds_the_same_notegan(tmp_path):
    """Checkpoints written before 2026-12-02 (the shipped gan-default until 2026-12-07 among them) carry the flat
    model section; the shipped weights with their model section rewritten that way generate the same clips."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from pianoforge.improvise import GanGenerator
    from pianoforge.improvise.generator import shipped_checkpoint
    from pianoforge.models.gan.notegan import NoteGenerator

    src = shipped_checkpoint()
    with safe_open(str(src), "np") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["config"])
    assert cfg["model"]["arch"] == "notegan" and "notes" in cfg["model"]
    from pianoforge.models.gan.config import LEGACY_NOTE_KEYS

    # the flat layout knew only LEGACY_NOTE_KEYS; the gate keys came later (the shipped generator's min_level is
    # not used at inference: its strike rule plays in place of the gate, so the images stay comparable)
    notes = {k: v for k, v in cfg["model"]["notes"].items() if k in LEGACY_NOTE_KEYS.values()}
    flat = {**{k: v for k, v in cfg["model"].items() if k not in ("arch", "notes")}, "arch": "framegan",
            "head": "notes", **{old: notes[new] for old, new in LEGACY_NOTE_KEYS.items() if new in notes},
            "templates_per_key": 2, "free_templates": 16, "voices": 1}
    meta["config"] = json.dumps({**cfg, "model": flat})
    old = tmp_path / "flat.safetensors"
    save_file(load_file(str(src)), str(old), metadata=meta)
    g_old, g_new = GanGenerator.from_checkpoint(old), GanGenerator.from_checkpoint()
    assert g_old.meta["model"]["head"] == "notes"
    assert isinstance(g_old.model, NoteGenerator) and isinstance(g_old.model, Generator)
    z = torch.stack([g_new.latent(3), g_new.latent(4)])
    assert torch.equal(g_old.images(z), g_new.images(z))


def test_old_preset_file_still_loads(tmp_path):
    import yaml

    p = load_gan_preset("notegan-fine")
    d = p.to_dict()
    d["model"] = dict(FLAT_NOTEGAN)
    path = tmp_path / "old-notegan.yaml"
    path.write_text(yaml.safe_dump(d))
    from pianoforge.training.gan import gan_model_config, image_geometry

    old = load_gan_preset(str(path))
    assert gan_model_config(old) == gan_model_config(p) and image_geometry(old) == image_geometry(p)


@pytest.mark.parametrize(("model", "words"), [
    ({**FLAT_NOTEGAN, "notes": {"frames": 16}}, ["mixes", "notes"]),
    ({"arch": "framegan", "note_frames": 16}, ["model.note_frames", "notegan"]),
    ({"arch": "dcgan", "head": "notes"}, ["framegan", "dcgan"]),
    ({"arch": "notegan", "notes": {"frame": 16}}, ["model.notes", "frame"]),
    ({"arch": "notegan", "notes": {"rank": "four"}}, ["model.notes.rank", "integer"]),
    ({"arch": "notegan", "notes": {"velocity": 200}}, ["velocity"]),
    ({"arch": "framegan", "notes": {"frames": 16}}, ["model.notes", "notegan"]),
    ({"arch": "notegan", "harmonic": {}}, ["model.harmonic", "framegan"]),
    ({"arch": "notegan", "notes": [1, 2]}, ["model.notes", "mapping"]),
])
def test_bad_head_sections_are_one_line_config_errors(model, words):
    with pytest.raises(ConfigError) as e:
        GanModelConfig.from_dict(model, "preset x")
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_a_bad_set_fails_when_the_preset_loads():
    with pytest.raises(ConfigError, match="model.notes.bogus|bogus"):
        load_gan_preset("notegan", ["model.notes.bogus=1"])
    assert load_gan_preset("notegan", ["model.notes.frames=128"]).model["notes"]["frames"] == 128


@pytest.mark.parametrize("arch", ARCHS)
def test_every_generator_follows_the_protocol(arch):
    cfg = GanModelConfig.from_dict({**load_gan_preset(arch).model, "channels": 2, "max_channels": 8, "w_dim": 8})
    g = build_generator(cfg, (32, 64))
    assert isinstance(g, Generator) and (g.latent_dim, g.latent) == (cfg.latent_dim, cfg.latent)
    with torch.no_grad():
        assert g.sample(torch.zeros(2, cfg.latent_dim), noise_mode="const").shape == (2, 1, 32, 64)


def test_trainer_asks_the_protocol_not_the_type():
    """No hasattr / isinstance on models, no per-head branches, no inference import in the GAN trainer."""
    for name in ("gan.py", "gan_setup.py"):
        tree = ast.parse((PKG / "training" / name).read_text())
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & {"hasattr", "isinstance"}, name
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert "head" not in attrs, name  # no reaching into a generator's head


def test_losses_registry_returns_namespaced_weighted_dicts():
    from pianoforge import adversarial as adv
    from pianoforge import gan_losses
    from pianoforge.training.config import GanTrainConfig

    assert set(gan_losses.ARCH_LOSSES) == set(ARCHS)
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))
    real, fake = torch.randn(4, 1, 2, 4), torch.randn(4, 1, 2, 4)
    b = gan_losses.CriticBatch(critic, real, fake, real, critic(real), critic(fake))
    w = gan_losses.loss_weights(GanTrainConfig(gp_weight=3.0, moment_weight=2.0))
    d = gan_losses.critic_losses("specgan", b, w)
    assert set(d) == {"d/adv", "d/gp", "d/loss"} and {"w_dist", "grad_norm"} <= set(b.diagnostics)
    torch.testing.assert_close(d["d/adv"], adv.wgan_critic_loss(b.d_real, b.d_fake))
    torch.testing.assert_close(d["d/loss"], d["d/adv"] + 3.0 * d["d/gp"])
    assert set(gan_losses.critic_losses("notegan", b, w)) == {"d/adv", "d/loss"}
    gen = torch.randn(4, 1, 2, 4)
    gb = gan_losses.GeneratorBatch(gen, critic(gen), real)
    g = gan_losses.generator_losses("notegan", gb, w)
    torch.testing.assert_close(g["g/adv"], adv.hinge_generator_loss(gb.d_gen))
    torch.testing.assert_close(g["g/loss"], g["g/adv"] + 2.0 * adv.row_moment_loss(gen, real))
    off = gan_losses.loss_weights(GanTrainConfig(moment_weight=0.0))
    assert set(gan_losses.generator_losses("dcgan", gb, off)) == {"g/adv", "g/loss"}  # weight 0: not computed


@pytest.mark.parametrize("args", [["presets"], ["train", "gan", "--help"], ["experiment", "--help"]])
def test_notegan_is_listed_wherever_models_are(args):
    r = subprocess.run([*cli_command(), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "notegan" in r.stdout.lower(), r.stderr


def test_experiment_gan_trains_notegan():
    from pianoforge.evaluation.gan_experiment import GAN_MODELS
    from pianoforge.models.gan.config import gan_model_names

    assert "notegan" in GAN_MODELS and set(GAN_MODELS) == set(gan_model_names()) == set(ARCHS)
