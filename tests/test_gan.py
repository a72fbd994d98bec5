"""Improvise (PianoGAN): presets, models, losses, training task, inverse chain, generation, metrics, CLI.

Everything runs on a tiny ``gan-cpu``-geometry store (4 pieces of ~3 s, 1.024 s examples, images of
128 x 64 = bins without Nyquist x frames) with tiny models, on one thread.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli_command, write_midi_file
from pianoforge import adversarial as adv
from pianoforge.checkpoint import CheckpointError, load_checkpoint, load_train_state, save_checkpoint
from pianoforge.config import load_preset
from pianoforge.errors import ConfigError
from pianoforge.models.gan import (
    ARCHS,
    GanModelConfig,
    SpectrogramAugment,
    build_critic,
    build_generator,
    generate_images,
    load_gan_preset,
    sample_latent,
)

torch.set_num_threads(1)

GEOM = ["data.example_seconds=1.024", "data.stride_seconds=0.256", "data.resize=[128, 64]"]
TINY_COMMON = ["model.channels=4", "model.max_channels=16", "train.diversity_samples=8", "train.grid_samples=4",
               "train.gl_iterations=4"]
TINY_ARCH = {"dcgan": [], "specgan": [], "framegan": ["model.channels=8"],
             "notegan": ["model.channels=8", "model.notes.frames=16", "model.notes.rank=2", "model.notes.holds=[4, 16]"],
             "stylegan": ["model.w_dim=16", "model.mapping_layers=2", "train.r1_every=2", "train.ada_kimg=0.05"]}


def tiny(arch: str) -> list[str]:
    return GEOM + TINY_COMMON + TINY_ARCH[arch]


@pytest.fixture(scope="module")
def gan_store(tmp_path_factory) -> Path:
    """A gan-cpu store (GEOM overrides) of 4 random 3 s pieces rendered with FluidSynth."""
    from pianoforge.data.build import build
    from pianoforge.data.sources import midi_folder

    root = tmp_path_factory.mktemp("gan")
    rng = np.random.default_rng(0)
    for i in range(4):
        notes, t = [], 0.0
        while t < 3.0:
            d = float(rng.choice([0.25, 0.5]))
            notes.append((int(rng.integers(48, 84)), t, t + d, int(rng.integers(50, 110))))
            t += d
        write_midi_file(root / "midi" / f"p{i}.mid", notes)
    build(midi_folder(root / "midi"), root / "store", load_preset("gan-cpu", GEOM), workers=1, progress=False)
    return root / "store"


def _train(store: Path, out: Path, arch: str, **settings) -> dict:
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    s = LoopSettings(batch_size=4, progress=False, log_every_steps=1, **settings)
    return train_gan(store, load_gan_preset(arch, tiny(arch)), out, s)


@pytest.fixture(scope="module")
def runs(gan_store, tmp_path_factory) -> dict[str, Path]:
    """One epoch of each model from its real preset (tiny overrides)."""
    root = tmp_path_factory.mktemp("gan-runs")
    out = {}
    for arch in ARCHS:
        summary = _train(gan_store, root / arch, arch, max_epochs=1)
        assert summary["epochs"] == 1 and summary["steps"] > 0
        out[arch] = root / arch
    return out


# --------------------------------------------------------------------------------------------- presets

def test_presets_compose_model_and_geometry():
    p = load_gan_preset("specgan")
    assert p.name == "specgan-cpu" and p.model["arch"] == "specgan" and p.train["n_critic"] == 5
    geo = load_preset("gan-cpu")
    assert (p.audio, p.data) == (geo.audio, geo.data) and p.data.resize == (128, 256)
    p10 = load_gan_preset("dcgan-10s")
    assert p10.audio.sample_rate == 5500 and p10.data.resize == (256, 256) and p10.model["norm"] == "batch"
    assert load_gan_preset("stylegan-20s", ["model.channels=4"]).model["channels"] == 4
    from pianoforge.training.gan import image_geometry

    assert image_geometry(p) == ((128, 256), (129, 256))
    for bad in ("wavegan", "specgan-7s"):
        with pytest.raises(ConfigError):
            load_gan_preset(bad)
    with pytest.raises(ConfigError, match="divisible"):
        image_geometry(load_gan_preset("specgan", ["data.resize=[100, 256]"]))


# ---------------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("arch", ARCHS)
def test_model_shapes_at_every_geometry(arch):
    cfg = GanModelConfig.from_dict(load_gan_preset(arch).model)
    small = GanModelConfig.from_dict({**cfg.to_dict(), "channels": 2, "max_channels": 8, "w_dim": 8})
    for size, c in (((128, 256), cfg), ((256, 256), small), ((512, 512), small), ((32, 64), small)):
        g, d = build_generator(c, size), build_critic(c, size)
        z = sample_latent(2, c.latent_dim, c.latent)
        with torch.no_grad():
            x = generate_images(g, z)
            assert x.shape == (2, 1, *size)
            assert d(x).shape == (2,)
    with pytest.raises(ConfigError, match="divisible"):
        build_generator(cfg, (129, 250) if arch in ("framegan", "notegan") else (129, 256))
    if arch in ("framegan", "notegan"):  # 1-D over time: any number of bins
        assert build_generator(small, (129, 64))(sample_latent(2, c.latent_dim, c.latent)).shape == (2, 1, 129, 64)


def test_modulated_conv_equals_per_sample_demodulated_weights():
    from pianoforge.models.gan.stylegan import ModulatedConv

    torch.manual_seed(0)
    m = ModulatedConv(5, 7, 3, 8)
    x, w = torch.randn(3, 5, 6, 10), torch.randn(3, 8)
    s = m.affine(w)
    wt = m.weight[None] * m.scale * s[:, None, :, None, None]
    wt = wt * torch.rsqrt(wt.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    ref = torch.stack([torch.nn.functional.conv2d(x[i:i + 1], wt[i], padding=1)[0] for i in range(3)])
    torch.testing.assert_close(m(x, w), ref, atol=1e-5, rtol=1e-5)


def test_stylegan_const_noise_is_deterministic():
    cfg = GanModelConfig.from_dict({**load_gan_preset("stylegan").model, "channels": 2, "max_channels": 8})
    g = build_generator(cfg, (32, 64)).eval()
    z = torch.randn(2, cfg.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(generate_images(g, z, "const"), generate_images(g, z, "const"))


def test_latent_is_uniform_minus_one_to_one_for_specgan(gan_store):
    from pianoforge.data.store import FeatureStore
    from pianoforge.training.gan import GanTask

    task = GanTask(FeatureStore(gan_store), load_gan_preset("specgan", tiny("specgan")), torch.device("cpu"))
    z = task._z(4000)
    assert task.cfg.latent == "uniform" and z.shape == (4000, 100)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    assert abs(float(z.mean())) < 0.01 and abs(float(z.var()) - 1 / 3) < 0.01  # U[-1, 1]: mean 0, var 1/3
    n = sample_latent(4000, 8, "normal", generator=torch.Generator().manual_seed(0))
    assert float(n.min()) < -1.5


# ---------------------------------------------------------------------------------------------- losses

def test_gradient_penalty_is_per_sample_and_matches_a_hand_computation():
    torch.manual_seed(0)
    w = torch.randn(1, 1, 3, 4)

    def critic(x):  # D(x) = sum(w * x**2): grad_i = 2 w x_i, a different norm per sample
        return (w * x**2).flatten(1).sum(1)

    real, fake, eps = torch.randn(3, 1, 3, 4), torch.randn(3, 1, 3, 4), torch.tensor([0.2, 0.5, 0.9])
    x = adv.interpolates(real, fake, eps)
    gp, norms = adv.gradient_penalty(critic(x), x)
    xh = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    hand_norms = (2 * w * xh).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, hand_norms)
    torch.testing.assert_close(gp, ((hand_norms - 1) ** 2).mean())
    whole_batch = ((2 * w * xh).norm() - 1) ** 2  # the original code's mistake
    assert not torch.isclose(gp, whole_batch)
    gp.backward()  # the penalty keeps its graph (create_graph) for the critic update
    lin = torch.nn.Linear(12, 1)
    x2 = adv.interpolates(real.flatten(1), fake.flatten(1))
    _, n2 = adv.gradient_penalty(lin(x2).squeeze(1), x2)
    torch.testing.assert_close(n2, lin.weight.norm().expand(3))


def test_bce_labels_are_smoothed_and_flipped():
    g = torch.Generator().manual_seed(0)
    t = adv.bce_targets(10000, True, 0.1, 0.0, generator=g)
    assert float(t.min()) >= 0.9 and float(t.max()) <= 1.0
    f = adv.bce_targets(10000, False, 0.1, 0.0, generator=g)
    assert float(f.min()) >= 0.0 and float(f.max()) <= 0.1
    flipped = adv.bce_targets(10000, True, 0.0, 0.25, generator=g)
    assert abs(float((flipped == 0).float().mean()) - 0.25) < 0.02


def test_hinge_loss_and_spectral_norm_framegan_critic():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1] -> 0.5
    assert float(adv.hinge_critic_loss(real, fake)) == pytest.approx(0.75)
    assert float(adv.hinge_generator_loss(fake)) == pytest.approx(1.0)
    cfg = GanModelConfig.from_dict({**load_gan_preset("framegan").model, "channels": 16, "patch_channels": 4})
    d = build_critic(cfg, (32, 64)).train()
    assert d.patch is not None
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration
            d(torch.randn(4, 1, 32, 64))
    for m in d.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_augmentation_is_identity_at_p0_and_never_permutes_frequencies():
    aug = SpectrogramAugment(gain=0.0)
    rows = torch.linspace(-0.9, 0.9, 16)[:, None].expand(16, 32)
    x = (rows[None, None] + 0 * torch.arange(32.0)).repeat(64, 1, 1, 1).requires_grad_(True)
    assert torch.equal(aug(x), x)
    aug.p.fill_(0.99)
    y = aug(x)
    assert not torch.equal(y, x)
    same_row = torch.isclose(y, rows[None, None].expand_as(y)) | (y == 0)  # a row keeps its value or is masked
    assert bool(same_row.all())
    y.sum().backward()  # differentiable: generator gradients pass through
    assert x.grad is not None
    for _ in range(4):
        aug.update(torch.ones(8), batch=8)  # D(real) > 0 always: overfitting -> p rises
    assert float(aug.p) > 0.99 - 1e-9
    aug.p.fill_(0.5)
    for _ in range(4):
        aug.update(-torch.ones(8), batch=8)
    assert float(aug.p) < 0.5


# -------------------------------------------------------------------------------------------- training

@pytest.mark.parametrize("arch", ARCHS)
def test_one_epoch_of_each_model_writes_a_complete_run(runs, arch):
    run = runs[arch]
    for f in ("run_config.json", "train_log.csv", "monitor_log.csv", "gan_curves.png", "best.safetensors",
              "last.safetensors", "summary.json", "checkpoints/LATEST", "samples/epoch-0001.png",
              "samples/epoch-0001-0.wav", "samples/epoch-0001-1.wav"):
        assert (run / f).exists(), f
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    assert {"d_loss", "g_loss", "gp", "d_real", "d_fake"} <= set(rows[0])
    assert all(math.isfinite(float(r["d_loss"])) for r in rows)
    if arch == "specgan":
        assert float(rows[0]["gp"]) > 0 and "w_dist" in rows[0]
    if arch == "stylegan":
        assert "ada_p" in rows[0]
    mon = list(csv.DictReader((run / "monitor_log.csv").open()))
    diversity = float(mon[0]["diversity"])  # generated / real mean pairwise distance: 0 is a total collapse
    # a NoteGAN one tiny epoch old may strike no note yet: its clips are the floor, all alike (diversity 0)
    assert len(mon) == 1 and math.isfinite(diversity) and (diversity > 0 or arch == "notegan")
    tensors, meta = load_checkpoint(run / "best.safetensors", kind="gan")
    assert meta["config"]["model"]["arch"] == arch and meta["config"]["grid"] == [129, 64]
    assert not any("critic" in k or "augment" in k for k in tensors)  # generator-only export
    state, _ = load_train_state(run / "checkpoints")
    ema = {k[len("module.generator_ema."):]: v for k, v in state.items() if k.startswith("module.generator_ema.")}
    assert set(ema) == set(tensors)


def test_recalibrated_batch_norm_holds_the_statistics_of_the_models_own_activations():
    from pianoforge.models.gan import recalibrate_batch_norm

    cfg = load_gan_preset("framegan", tiny("framegan")).model
    g = build_generator(GanModelConfig.from_dict(cfg), (128, 64)).eval()
    norms = [m for m in g.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(float(m.running_var.mean()) == 1.0 for m in norms)  # fresh: no statistics yet
    seen: list[torch.Tensor] = []
    hook = norms[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    batches = [torch.randn(8, g.cfg.latent_dim, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    assert recalibrate_batch_norm(g, batches) == len(norms)
    hook.remove()
    x = torch.cat(seen).transpose(0, 1).reshape(seen[0].shape[1], -1)  # (C, all batches' samples x frames)
    torch.testing.assert_close(norms[0].running_mean, x.mean(1), atol=1e-5, rtol=1e-5)
    assert not g.training and all(m.momentum == 0.1 for m in norms)  # mode and momentum restored
    assert recalibrate_batch_norm(build_generator(GanModelConfig.from_dict(
        load_gan_preset("stylegan", tiny("stylegan")).model), (128, 64)), batches) == 0  # no batch norm: nothing run


@pytest.mark.parametrize("arch", ["framegan", "notegan"])
def test_an_exported_generator_normalizes_with_its_own_statistics(runs, gan_store, tmp_path, arch):
    """The export's batch-norm buffers are those its own weights give on the task's fixed latents, not the
    live generator's (which the EMA copies every step); with train.ema_bn_batches=0 they are the live ones."""
    from pianoforge.models.gan import recalibrate_batch_norm, sample_latent
    from pianoforge.training.gan import gan_train_config

    def own_statistics_kept(export: Path, n: int) -> bool:
        tensors, meta = load_checkpoint(export, kind="gan")
        g = build_generator(GanModelConfig.from_dict(meta["config"]["model"]), tuple(meta["config"]["image_size"]))
        g.load_state_dict(tensors)
        bs = int(gan_train_config(load_gan_preset(arch, tiny(arch))).batch_size)
        gen = torch.Generator().manual_seed(20011)
        recalibrate_batch_norm(g.eval(), [sample_latent(bs, g.cfg.latent_dim, g.cfg.latent, generator=gen)
                                          for _ in range(n)])
        after = g.state_dict()
        return all(torch.allclose(after[k], tensors[k], atol=1e-5) for k in tensors if "running" in k)

    assert own_statistics_kept(runs[arch] / "best.safetensors", 16)
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    train_gan(gan_store, load_gan_preset(arch, [*tiny(arch), "train.ema_bn_batches=0"]), tmp_path / "off",
              LoopSettings(batch_size=4, progress=False, max_epochs=1))
    assert not own_statistics_kept(tmp_path / "off" / "best.safetensors", 16)


@pytest.mark.parametrize("arch", ["specgan", "stylegan"])
def test_resume_is_exact(gan_store, tmp_path, arch):
    """3 steps, stop, rerun to 6 == 6 straight: every module, EMA, ADA and optimizer tensor identical."""
    _train(gan_store, tmp_path / "straight", arch, max_steps=6, max_epochs=50, ckpt_every_steps=3)
    _train(gan_store, tmp_path / "split", arch, max_steps=3, max_epochs=50, ckpt_every_steps=3)
    _train(gan_store, tmp_path / "split", arch, max_steps=6, max_epochs=50, ckpt_every_steps=3)
    a, sa = load_train_state(tmp_path / "straight" / "checkpoints")
    b, sb = load_train_state(tmp_path / "split" / "checkpoints")
    assert sa["step"] == sb["step"] == 6
    assert set(a) == set(b)
    for k in a:
        if k != "rng.torch":
            assert torch.equal(a[k], b[k]), k


def test_learning_rates_decay_linearly_after_the_set_step_and_resume_exactly(gan_store, tmp_path):
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    preset = load_gan_preset("stylegan", [*tiny("stylegan"), "train.lr_decay_after=2", "train.lr_decay_steps=2"])
    for name, stops in (("straight", (6,)), ("split", (4, 6))):
        for n in stops:
            train_gan(gan_store, preset, tmp_path / name, LoopSettings(batch_size=4, progress=False,
                      log_every_steps=1, max_steps=n, max_epochs=50, ckpt_every_steps=2))
    rows = list(csv.DictReader((tmp_path / "straight" / "train_log.csv").open()))
    assert [float(r["lr_factor"]) for r in rows] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]  # engine steps 0..5
    a, sa = load_train_state(tmp_path / "straight" / "checkpoints")
    b, sb = load_train_state(tmp_path / "split" / "checkpoints")
    assert sa["step"] == sb["step"] == 6
    for k in a:
        if k != "rng.torch":
            assert torch.equal(a[k], b[k]), k


def test_a_run_branched_from_an_epoch_state_continues_it_exactly_or_with_a_new_schedule(gan_store, tmp_path):
    """--keep-epoch-states keeps every epoch's state; --from-state starts a new run there. With the same preset
    the branch ends bit-identical to the straight run; with a decay added, its rates fall from the branch step."""
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    def train(out, sets=(), **kw):
        s = LoopSettings(batch_size=4, progress=False, log_every_steps=1, max_epochs=3, **kw)
        return train_gan(gan_store, load_gan_preset("stylegan", [*tiny("stylegan"), *sets]), out, s)

    train(tmp_path / "straight", keep_epoch_states=True)
    ckpt = tmp_path / "straight" / "checkpoints"
    assert [d.name for d in sorted(ckpt.glob("epoch-*"))] == ["epoch-0001", "epoch-0002", "epoch-0003"]
    _, s1 = load_train_state(ckpt)  # the run's end
    per_epoch = json.loads((ckpt / "epoch-0001" / "state.json").read_text())["step"]
    assert s1["step"] == 3 * per_epoch and per_epoch >= 2

    train(tmp_path / "branch", from_state=str(ckpt / "epoch-0001"))
    cfg = json.loads((tmp_path / "branch" / "run_config.json").read_text())
    assert cfg["branched_from"]["epoch"] == 1 and cfg["branched_from"]["step"] == per_epoch
    a, _ = load_train_state(ckpt)
    b, sb = load_train_state(tmp_path / "branch" / "checkpoints")
    assert sb["step"] == s1["step"] and sb["epoch"] == 3
    for k in a:
        if k != "rng.torch":
            assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader((tmp_path / "branch" / "train_log.csv").open()))
    assert int(float(rows[0]["step"])) > per_epoch - 1  # the branch logs only its own steps

    decay = (f"train.lr_decay_after={per_epoch}", f"train.lr_decay_steps={per_epoch}")
    train(tmp_path / "decay", decay, from_state=str(tmp_path / "straight" / "checkpoints" / "epoch-0001"))
    rows = list(csv.DictReader((tmp_path / "decay" / "train_log.csv").open()))
    factors = [float(r["lr_factor"]) for r in rows]
    assert factors[0] == 1.0 and factors[-1] == 0.0 and factors == sorted(factors, reverse=True)
    c, _ = load_train_state(tmp_path / "decay" / "checkpoints")
    gen = [k for k in a if k.startswith("module.generator.")]
    assert gen and any(not torch.equal(a[k], c[k]) for k in gen)  # the decayed branch ends elsewhere


def test_from_state_is_checked_before_the_run_starts(gan_store, tmp_path):
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    def train(out, arch="stylegan", sets=(), **kw):
        s = LoopSettings(batch_size=4, progress=False, max_epochs=kw.pop("max_epochs", 2), **kw)
        return train_gan(gan_store, load_gan_preset(arch, [*tiny(arch), *sets]), out, s)

    train(tmp_path / "src", max_epochs=1)
    with pytest.raises(CheckpointError, match="not a run folder or a training state"):
        train(tmp_path / "a", from_state=str(tmp_path))
    with pytest.raises(ConfigError, match="nothing left to train"):
        train(tmp_path / "b", from_state=str(tmp_path / "src"), max_epochs=1)
    with pytest.raises(ConfigError, match="another model section"):
        train(tmp_path / "c", sets=("model.latent_dim=64",), from_state=str(tmp_path / "src"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_framegan_trains_under_ddp_with_two_cpu_processes(gan_store, tmp_path):
    """Spectral norm, batch norm, ADA and the hinge loss all run wrapped in DDP (gloo, 2 processes)."""
    run = tmp_path / "ddp"
    sets = [a for s in tiny("framegan") for a in ("--set", s)]
    r = subprocess.run([*cli_command(), "train", "gan", "--data", str(gan_store), "--preset", "framegan", *sets,
                        "--out", str(run), "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
                        "--max-steps", "3", "--batch-size", "2", "--max-epochs", "5"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    tensors, meta = load_checkpoint(run / "best.safetensors", kind="gan")
    assert meta["config"]["model"]["arch"] == "framegan" and tensors


def test_harmonic_head_places_partials_and_uses_the_dataset_image_map():
    """Templates start as harmonic stacks at the right rows; the head's image is Normalizer.to_unit(log(m + eps))."""
    from torch.nn import functional as F

    from pianoforge.audio.spectral import Normalizer
    from pianoforge.models.gan import DataContext
    from pianoforge.models.gan.experimental import HarmonicHead
    from pianoforge.training.gan import image_geometry

    p = load_gan_preset("framegan-fine")
    size, grid = image_geometry(p)
    assert (size, grid) == ((256, 256), (257, 256))
    rng = np.random.default_rng(0)
    norm = Normalizer(rng.normal(-4, 1, 257), rng.uniform(0.5, 2, 257))
    ctx = DataContext.from_normalizer(norm, p.audio, p.render, size, grid)
    mean, std, hz = ctx.mean, ctx.std, ctx.row_hz
    assert hz[1] == 8000 / 512 and np.array_equal(mean, norm.mean[:256]) and np.array_equal(std, norm.std[:256])
    head = HarmonicHead(8, 256, per_key=2, n_free=3, voices=2)
    head.init_from_data(mean, std, hz, 1e-5)
    assert head.k == 88 * 2 + 3
    t = head.templates().detach()
    a4 = (69 - 21) * 2  # brighter template of A4, 440 Hz: partials near rows 28.2, 56.4, 84.6
    assert int(t[a4].argmax()) == 28 and t[a4, 56] > 0.3 and t[a4, 42] < 0.01
    assert t[a4 + 1, 84] < t[a4, 84]  # the second template of a key is darker
    assert torch.all(t[-3:] == t[-1, 0])  # free templates start flat
    x = torch.randn(2, 8, 16, requires_grad=True)
    img = head(x)
    logits = head.act(x)  # (B, 2 * (1 + K), W): voice 0's logits, then voice 1's
    a = sum(F.softplus(lv[:, :1]) * torch.softmax(lv[:, 1:], dim=1) for lv in logits.split(head.k + 1, dim=1))
    assert torch.allclose(a, head.activations(x))
    mag = torch.einsum("bkw,kh->bhw", a, head.templates()) * head.gain() + head.floor()[:, None]
    want = Normalizer(mean, std).to_unit(torch.log(mag + 1e-5)).float()
    assert img.shape == (2, 1, 256, 16)
    torch.testing.assert_close(img[:, 0], want, rtol=1e-4, atol=1e-5)
    img.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="head"):
        GanModelConfig.from_dict({"arch": "framegan", "head": "mel"})
    with pytest.raises(ConfigError, match="voices"):
        GanModelConfig.from_dict({"arch": "framegan", "harmonic": {"voices": 0}})


def test_framegan_harmonic_head_trains_exports_and_generates(gan_store, tmp_path):
    """One epoch with the harmonic head: the export carries the training statistics and generates offline."""
    from pianoforge.data.store import FeatureStore
    from pianoforge.improvise import GanGenerator
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    preset = load_gan_preset("framegan", [*tiny("framegan"), "model.harmonic.templates_per_key=1",
                                          "model.harmonic.free_templates=2"])
    summary = train_gan(gan_store, preset, tmp_path / "run",
                        LoopSettings(batch_size=4, progress=False, log_every_steps=1, max_epochs=1))
    assert summary["steps"] > 0
    tensors, meta = load_checkpoint(tmp_path / "run" / "best.safetensors", kind="gan")
    assert meta["config"]["model"]["harmonic"]["templates_per_key"] == 1 and tensors["head.log_t"].shape == (90, 128)
    np.testing.assert_allclose(tensors["head.mean"].numpy(), FeatureStore(gan_store).normalizer.mean[:128], rtol=1e-6)
    g = GanGenerator.from_checkpoint(tmp_path / "run" / "best.safetensors")
    a, b = g.generate(2, seed=1), g.generate(2, seed=1)
    assert all(np.array_equal(x, y) and np.all(np.isfinite(x)) for x, y in zip(a, b, strict=True))


def test_note_dictionary_measures_the_soundfont_piano_and_factorizes_it():
    """Each key's measured note peaks at its own pitch and decays; the rank-4 NMF keeps it within a few dB."""
    from pianoforge.audio.notes import factorize_notes, reconstruct, render_note_dictionary

    p = load_preset("gan-cpu")  # 8 kHz, n_fft 256: 31.25 Hz bins
    mag = render_note_dictionary(p.audio, p.render, 24)
    assert mag.shape == (88, 129, 24) and np.all(np.isfinite(mag)) and mag.min() >= 0
    for midi in (57, 69, 81):  # A3, A4, A5: 220, 440, 880 Hz
        k, f0_bin = midi - 21, 440.0 * 2 ** ((midi - 69) / 12) / 31.25
        spec = mag[k, :, 2:8].mean(1)
        assert abs(int(spec.argmax()) - f0_bin) <= 1.0, (midi, int(spec.argmax()), f0_bin)
        assert mag[k, :, 2].sum() > 1.5 * mag[k, :, 20].sum() > 0  # it decays ...
        assert mag[k, :, 23].sum() < 1e-3 * mag[k, :, 2].sum()  # ... and fades out at the end
    spectra, env = factorize_notes(mag, rank=4)
    assert spectra.shape == (88, 4, 129) and env.shape == (88, 4, 24)
    assert spectra.min() >= 0 and env.min() >= 0 and np.allclose(env.max(2), 1.0, atol=1e-5)
    rec, k = reconstruct(spectra, env), 69 - 21
    loud = mag[k] > mag[k].max() * 1e-2  # within 40 dB of the note's peak
    err_db = np.abs(20 * np.log10((rec[k][loud] + 1e-9) / mag[k][loud]))
    assert np.median(err_db) < 3.0, np.median(err_db)


def test_note_head_strikes_measured_notes_and_uses_the_dataset_image_map():
    """NoteHead: sparse strikes (one per key per 5 frames), magnitude = strikes convolved with the notes,
    image = Normalizer.to_unit(log(m + eps)); keys never struck still get a gradient."""
    from pianoforge.audio.notes import reconstruct
    from pianoforge.audio.spectral import Normalizer
    from pianoforge.models.gan.notegan import NoteHead

    rng = np.random.default_rng(0)
    h, k_frames, rank = 12, 6, 2
    spectra = rng.uniform(0, 1, (88, rank, h)).astype(np.float32)
    env = rng.uniform(0, 1, (88, rank, k_frames)).astype(np.float32)
    mean, std = rng.normal(-4, 1, h), rng.uniform(0.5, 2, h)
    head = NoteHead(8, h, k_frames, rank)
    head.init_from_data(mean, std, 1e-5, spectra, env)
    with torch.no_grad():
        head.log_gain.copy_(torch.as_tensor(rng.normal(0, 0.01, 88), dtype=torch.float32))
    x = torch.randn(2, 8, 20, requires_grad=True)
    a = head.onsets(x).detach()
    assert a.min() >= 0 and 0 < (a > 0).float().mean() < 0.5
    q = torch.relu(head.act(x)).detach()
    rise = torch.relu(q - torch.cat([torch.zeros_like(q[..., :1]), q[..., :-1]], -1))
    assert torch.all((a == 0) | (a == rise))  # a strike is the rise of the note's level
    for b, key in zip(*np.nonzero((a > 0).any(2).numpy()), strict=True):  # no key struck twice within 5 frames
        t = np.nonzero(a[b, key].numpy())[0]
        assert np.all(np.diff(t) >= 3)
    notes = reconstruct(spectra, env)  # (88, H, K)
    gain = np.exp(50 * head.log_gain.detach().numpy())
    want = np.zeros((2, h, 20))
    for b, key, t in zip(*np.nonzero(a.numpy()), strict=True):
        n = min(k_frames, 20 - t)
        want[b, :, t:t + n] += gain[key] * float(a[b, key, t]) * notes[key, :, :n]
    torch.testing.assert_close(head.magnitude(a).double(), torch.as_tensor(want), rtol=1e-4, atol=1e-5)
    img = head(x)
    mag = torch.as_tensor(want, dtype=torch.float32) + head.floor().detach()[:, None]
    torch.testing.assert_close(img[:, 0], Normalizer(mean, std).to_unit(torch.log(mag + 1e-5)).float(),
                               rtol=1e-4, atol=1e-5)
    img.mean().backward()
    silent = (a == 0).all(2).all(0)  # keys struck nowhere in the batch
    assert silent.any() and head.act.weight.grad[silent].abs().sum() > 0
    flat = torch.zeros(1, 8, 20)
    with torch.no_grad():
        head.act.weight.zero_(), head.act.bias.fill_(1.0)
    assert torch.equal(head.onsets(flat)[0, :, 1:], torch.zeros(head.n, 19))  # a held level: struck once
    assert torch.allclose(head.onsets(flat)[0, :, 0], torch.ones(head.n))
    with pytest.raises(ValueError, match="spectra"):
        head.init_from_data(mean, std, 1e-5, spectra[:, :1], env)
    capped = NoteHead(8, h, k_frames, rank, max_strikes=3)
    capped.load_state_dict(head.state_dict())
    with torch.no_grad():
        head.act.weight.normal_(generator=torch.Generator().manual_seed(1)), head.act.bias.fill_(0.5)
        capped.act.load_state_dict(head.act.state_dict())  # most notes rise somewhere
        free, few = head.onsets(x), capped.onsets(x)
    assert (free > 0).sum(1).max() > 3 and (few > 0).sum(1).max() <= 3  # strikes per frame
    assert torch.all((few == 0) | (few == free))  # the kept strikes are the unlimited head's
    soft = NoteHead(8, h, k_frames, rank, max_level=0.5)
    soft.load_state_dict(head.state_dict())
    one = torch.zeros(1, head.n, 20)
    one[0, 3, 2] = 100.0  # one very hard strike: capped at half a dictionary note
    g3 = float(torch.exp(50 * head.log_gain[3].detach()))
    torch.testing.assert_close(soft.magnitude(one), head.magnitude(one) * 0.5 * math.tanh(200 * g3) / (100 * g3))
    gated = NoteHead(8, h, k_frames, rank, min_level=0.5)  # soft strikes play almost nothing, loud ones as they are
    gated.load_state_dict(head.state_dict())
    with torch.no_grad():
        gated.log_gain.zero_(), head.log_gain.zero_()
    hits = torch.tensor([0.1, 0.25, 0.5, 1.0, 2.0]).view(1, 1, 5).expand(1, head.n, 5)
    ratio = gated.levels(hits)[0, 0] / head.levels(hits)[0, 0]
    torch.testing.assert_close(ratio, torch.sigmoid(4 * (hits[0, 0] - 0.5) / 0.5))
    assert ratio[0] < 0.05 and ratio[2] == 0.5 and ratio[-1] > 0.97
    hard = NoteHead(8, h, k_frames, rank, min_level=0.5, hard_gate=True)  # under 0.5: silent; above: as struck
    hard.load_state_dict(gated.state_dict())
    x5 = hits.clone().requires_grad_(True)
    played = hard.levels(x5)
    assert torch.equal(played[0, 0].detach(), torch.tensor([0.0, 0.0, 0.5, 1.0, 2.0]))
    played.sum().backward()  # the soft gate's gradient: a silent strike still learns to be louder
    xs = hits.clone().requires_grad_(True)
    gated.levels(xs).sum().backward()
    torch.testing.assert_close(x5.grad, xs.grad)
    assert float(x5.grad[0, 0, 1]) > 0
    # the velocity head: fires where the hard gate plays, at min_level..max_level from its own conv
    vh = NoteHead(8, h, k_frames, rank, max_level=2.0, min_level=0.5, velocity_head=True)
    assert set(vh.state_dict()) - set(head.state_dict()) == {"vel.weight", "vel.bias"}  # old exports still load
    vh.load_state_dict({**vh.state_dict(), **gated.state_dict()})
    v = torch.zeros(1, head.n, 5, requires_grad=True)
    lv = vh.levels(hits.clone().requires_grad_(True), v)
    torch.testing.assert_close(lv[0, 0].detach(), torch.tensor([0.0, 0.0, 1.25, 1.25, 1.25]))  # sig(0) = 1/2
    lv.sum().backward()
    assert torch.equal(v.grad[0, 0, :2], torch.zeros(2)) and bool((v.grad[0, 0, 2:] > 0).all())
    xv = torch.randn(2, 8, 20, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        vh.act.bias.fill_(0.5)
        played = vh.strike_levels(xv)
    assert bool(((played == 0) | ((played >= 0.5) & (played <= 2.0))).all()) and (played > 0).any()
    torch.testing.assert_close(vh(xv), vh.to_image(vh.magnitude(played, played) + vh.floor()[:, None]))
    with pytest.raises(ValueError, match="velocity"):
        vh.magnitude(hits)  # levels need the velocity pre-activation
    from pianoforge.models.gan.config import NoteHeadConfig

    with pytest.raises(ConfigError, match="min_level"):
        NoteHeadConfig(min_level=-1.0)
    with pytest.raises(ConfigError, match="hard_gate"):
        NoteHeadConfig(hard_gate=True)
    with pytest.raises(ConfigError, match="velocity_head"):
        NoteHeadConfig(velocity_head=True, min_level=0.5)  # max_level 0: no range to play in


def test_row_moment_loss_is_the_validation_moment_distance_with_a_gradient():
    g = torch.Generator().manual_seed(0)
    fake = (torch.rand(6, 1, 8, 10, generator=g) * 2 - 1).requires_grad_(True)
    real = torch.rand(6, 1, 8, 10, generator=g) * 0.5
    loss = adv.row_moment_loss(fake, real)
    assert abs(float(loss.detach()) - adv.spectral_moment_distance(fake, real)) < 1e-6
    assert adv.spectral_moment_distance(real, real) == 0.0
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    silent = torch.full_like(real, -1.0).requires_grad_(True)  # a silent generator is pulled up
    adv.row_moment_loss(silent, real).backward()
    assert torch.all(silent.grad <= 0) and silent.grad.sum() < 0


def test_notegan_trains_exports_and_generates(gan_store, tmp_path):
    """One epoch with the note head: the export carries the measured notes and generates offline;
    a geometry that resizes the STFT grid is refused before a run directory is made."""
    from pianoforge.improvise import GanGenerator
    from pianoforge.training.gan import image_geometry, train_gan
    from pianoforge.training.loop import LoopSettings

    preset = load_gan_preset("notegan", tiny("notegan"))
    summary = train_gan(gan_store, preset, tmp_path / "run",
                        LoopSettings(batch_size=4, progress=False, log_every_steps=1, max_epochs=1))
    assert summary["steps"] > 0
    tensors, meta = load_checkpoint(tmp_path / "run" / "best.safetensors", kind="gan")
    assert meta["config"]["model"]["arch"] == "notegan" and meta["config"]["model"]["notes"]["holds"] == [4, 16]
    assert tensors["head.spectra"].shape == (176, 2, 128) and tensors["head.envelopes"].shape == (176, 2, 16)
    level = (tensors["head.spectra"].sum(2, keepdim=True) * tensors["head.envelopes"]).sum((1, 2))  # (176,)
    assert level[:88].sum() > 0 and level[:88].sum() < level[88:].sum()  # held 4 frames < held 16 frames
    with pytest.raises(ConfigError, match="holds"):
        GanModelConfig.from_dict({"arch": "notegan", "notes": {"frames": 16, "holds": [32]}})
    g = GanGenerator.from_checkpoint(tmp_path / "run" / "best.safetensors")
    a, b = g.generate(2, seed=1), g.generate(2, seed=1)
    assert all(np.array_equal(x, y) and np.all(np.isfinite(x)) for x, y in zip(a, b, strict=True))
    with pytest.raises(ConfigError, match="STFT grid"):
        image_geometry(load_gan_preset("notegan-10s"))


def test_note_critic_sees_the_stored_strikes_and_trains_with_the_note_head(gan_store, tmp_path):
    """train.note_critic_weight: the real clips' strike rolls come from the stored score (velocity / 127 at
    onset frames), the generator's from its struck notes; a run logs both strike counts; it needs the note
    head."""
    import csv

    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.midi.encoding import ONSET, VELOCITY
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    store = FeatureStore(gan_store)
    ds = GanImages(store, "train")
    roll = ds.roll(0)
    pi, start = (int(v) for v in ds.index[0])
    score = np.asarray(store.arrays(ds.pieces[pi]["piece_id"]).score, dtype=np.float32)[start:start + ds.t]
    assert roll.shape == (88, ds.t) and roll.max() > 0
    np.testing.assert_allclose(roll[:, : len(score)].numpy(), (score[:, ONSET] * score[:, VELOCITY]).T, atol=1e-6)
    notes = [*tiny("framegan"), "model.head=notes", "model.note_frames=16", "model.note_rank=2",
             "model.note_holds=[4, 16]", "train.note_critic_weight=1.0"]
    summary = train_gan(gan_store, load_gan_preset("framegan", notes), tmp_path / "run",
                        LoopSettings(batch_size=4, progress=False, log_every_steps=1, max_epochs=1))
    assert summary["steps"] > 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "train_log.csv")))
    assert all(float(r["strikes_real"]) > 0 for r in rows) and "strikes_fake" in rows[0] and "dn_loss" in rows[0]
    with pytest.raises(ConfigError, match="note_critic_weight"):
        train_gan(gan_store, load_gan_preset("framegan", [*tiny("framegan"), "train.note_critic_weight=1.0"]),
                  tmp_path / "run2", LoopSettings(batch_size=4, progress=False, max_epochs=1))


def test_training_refuses_a_store_of_another_geometry(gan_store, tmp_path):
    from pianoforge.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "gan", "--data", str(gan_store), "--preset", "specgan-10s", "--out", str(tmp_path / "x")])
    assert e.value.code == 2


def test_collapse_and_divergence_detectors():
    from pianoforge.training.gan import DEFAULT_TRAIN
    from pianoforge.training.gan_monitor import EpochStats, divergence_warnings

    real = torch.rand(8, 1, 16, 32) * 2 - 1
    same = real[:1].expand(8, -1, -1, -1)
    msg = adv.collapse_warning(same, real)
    assert msg is not None and "COLLAPSE" in msg and "\n" not in msg
    assert adv.collapse_warning(torch.rand(8, 1, 16, 32) * 2 - 1, real) is None
    assert "NaN" in adv.collapse_warning(torch.full((8, 1, 16, 32), float("nan")), real)
    st = EpochStats()
    st.add({"d_loss": float("nan"), "g_loss": 1.0})
    assert any("DIVERGED" in w for w in divergence_warnings("specgan", st, DEFAULT_TRAIN))
    st = EpochStats()
    st.add({"d_loss": 1e-4, "g_loss": 30.0})
    w = divergence_warnings("dcgan", st, DEFAULT_TRAIN)
    assert any("DISCRIMINATOR WINS" in x for x in w) and any("G loss" in x for x in w)
    st = EpochStats()
    st.add({"d_loss": -5000.0, "w_dist": 5000.0, "gp": 0.5})
    assert any("Wasserstein" in x for x in divergence_warnings("specgan", st, DEFAULT_TRAIN))
    st = EpochStats()
    st.add({"d_loss": 0.6, "g_loss": 0.8})
    assert divergence_warnings("dcgan", st, DEFAULT_TRAIN) == []


# ------------------------------------------------------------------------------- inverse chain, generate

def test_inverse_chain_round_trips_a_real_spectrogram(gan_store):
    from pianoforge.data.dataset import resize_image
    from pianoforge.data.gan_images import GanImages, image_to_logmag, logmag_to_image
    from pianoforge.data.store import FeatureStore

    st = FeatureStore(gan_store)
    ds = GanImages(st, "train")
    norm = st.normalizer
    lm = torch.stack([ds.logmag(i) for i in range(0, len(ds), 3)])  # (n, 129, 64)
    img = torch.stack([ds[i] for i in range(0, len(ds), 3)])
    assert img.shape[1:] == (1, 128, 64) and float(img.abs().max()) <= 1.0
    back = image_to_logmag(img[:, 0], norm, (129, 64))
    kept = norm.normalize(lm).abs() < 3  # unclipped values
    kept[:, -1] = False  # the Nyquist bin is dropped and comes back at its training mean
    assert float((back - lm)[kept].abs().max()) < 1e-4
    torch.testing.assert_close(back[:, -1], torch.as_tensor(norm.mean[-1]).float().expand(len(lm), 64))
    # a resized time axis is a smooth interpolation: small mean error, and smaller than a bilinear
    # resize of the frequency axis too (what a plain 129 -> 128 resize would cost)
    half = image_to_logmag(logmag_to_image(lm, norm, (128, 32)), norm, (129, 64))
    both = norm.from_unit(resize_image(resize_image(norm.to_unit(lm), (128, 32)), (129, 64)))
    e_half, e_both = (half - lm)[kept].abs().mean(), (both - lm)[kept].abs().mean()
    assert float(e_half) < 0.5 and float(e_half) < float(e_both)


def test_exported_generator_loads_and_generates_reproducibly(runs, tmp_path):
    from pianoforge.improvise import GanGenerator

    for arch in ("specgan", "stylegan"):
        g = GanGenerator.from_checkpoint(runs[arch] / "best.safetensors")
        assert g.sample_rate == 8000 and g.grid == (129, 64) and g.size == (128, 64)
        a, b = g.generate(2, seed=3), g.generate(2, seed=3)
        assert len(a) == 2 and a[0].shape == (64 * 128,) and a[0].dtype == np.float32
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert np.array_equal(g.generate(1, seed=4)[0], a[1])  # clip k depends on its seed only
        assert not np.array_equal(a[0], a[1])
        zs = g.interpolation_latents(3, 4, 5)
        torch.testing.assert_close(zs[0], g.latent(3))
        torch.testing.assert_close(zs[-1], g.latent(4), atol=1e-5, rtol=1e-5)
        assert len(g.interpolate(3, 4, 3)) == 3
        d = g.generate(1, seed=3, denoise=True)[0]
        assert d.shape == a[0].shape and np.all(np.isfinite(d))
    p = save_checkpoint(tmp_path / "perform.safetensors", {"w": torch.zeros(1)}, "perform", {})
    with pytest.raises(CheckpointError, match="expected 'gan'"):
        GanGenerator.from_checkpoint(p)


def test_noise_profile_comes_from_the_quietest_frames():
    from pianoforge.improvise import noise_profile

    x = np.concatenate([np.full(1000, 0.5), np.full(200, 0.001), np.full(800, 0.5)]).astype(np.float32)
    prof = noise_profile(x, 50, quantile=0.05)
    assert len(prof) == 4 * 50 and float(np.abs(prof).max()) < 0.01


def test_generate_cli_round_trip(runs, tmp_path):
    from pianoforge.cli import main

    ckpt = runs["specgan"] / "best.safetensors"
    out = tmp_path / "gen"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([*cli_command(), "generate", "--checkpoint", str(ckpt), "-n", "2", "-o", str(out),
                        "--seed", "7"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip-seed7.png", "clip-seed7.wav", "clip-seed8.png",
                                                      "clip-seed8.wav"]
    import soundfile as sf

    y, sr = sf.read(out / "clip-seed7.wav")
    assert sr == 8000 and len(y) == 64 * 128
    with pytest.raises(SystemExit) as e:  # no silent overwrite
        main(["generate", "--checkpoint", str(ckpt), "-n", "2", "-o", str(out), "--seed", "7"])
    assert e.value.code == 2
    assert main(["generate", "--checkpoint", str(ckpt), "-n", "3", "-o", str(out), "--seed", "7", "--interpolate",
                 "-f"]) == 0
    assert len(list(out.glob("interp-7-8-*.wav"))) == 3 and (out / "interp-7-8.wav").exists()
    with pytest.raises(SystemExit) as e:
        main(["generate", "--checkpoint", str(ckpt), "-n", "0", "-o", str(out)])
    assert e.value.code == 2


# --------------------------------------------------------------------------------------------- metrics

def test_frechet_distance_and_diversity():
    from pianoforge.evaluation.gan_metrics import frechet_distance, mean_pairwise_feature_distance, ndb

    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6))
    assert frechet_distance(a, a) < 1e-6
    b = rng.normal(size=(200, 6))
    c = rng.normal(size=(200, 6)) * 2 + 1
    assert frechet_distance(a, b) < 0.5 < frechet_distance(a, c)
    # closed form for diagonal Gaussians: |mu|^2 + sum (s_a - s_b)^2
    x = np.diag([1.0, 2.0])
    assert abs(frechet_distance(rng.normal(size=(20000, 2)) @ x, rng.normal(size=(20000, 2)) @ (2 * x) + 3)
               - (2 * 9 + 1 + 4)) < 0.5
    assert mean_pairwise_feature_distance(np.repeat(a[:1], 10, 0), a) == 0.0
    assert ndb(a, b)["ndb_k"] <= 0.2 and ndb(a, rng.normal(size=(200, 6)) * 3 + 2)["ndb_k"] >= 0.5


def test_clip_features_and_note_statistics():
    from pianoforge.evaluation.gan_metrics import FEATURE_DIM, clip_features, feature_matrix, note_statistics
    from pianoforge.midi.score import Note

    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    f = clip_features(tone, 8000)
    assert f.shape == (FEATURE_DIM,) and np.all(np.isfinite(f))
    assert np.array_equal(f, clip_features(tone, 8000))
    assert feature_matrix([tone, tone * 0.1], 8000).shape == (2, FEATURE_DIM)
    notes = [Note(60, 0.0, 1.0, 80), Note(64, 0.0, 1.0, 80), Note(67, 1.0, 2.0, 80), Note(72, 1.5, 2.0, 80)]
    s = note_statistics(notes, 4.0)
    assert s["note_density"] == 1.0 and s["pitch_range"] == 12 and s["silent"] == 0
    assert abs(s["polyphony"] - 1.75) < 0.02  # 2 notes for 1.5 s, 1 for 0.5 s... over sounding frames
    assert abs(s["pitch_class_entropy"] - 1.5) < 1e-9  # C twice, E, G: -(.5 log .5 + 2 .25 log .25)
    assert note_statistics([], 4.0)["silent"] == 1.0


def test_tonality_separates_noise_from_harmonic_tones_and_ignores_tilt():
    from pianoforge.evaluation.gan_metrics import tonality_db

    sr = 8000
    t = np.arange(2 * sr) / sr
    rng = np.random.default_rng(0)
    noise = 0.1 * rng.standard_normal(2 * sr)
    tilted = np.cumsum(noise) * 0.01  # brown noise: steep spectral tilt, still noise
    harm = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 8)) * np.exp(-t)
    n, b, h = (tonality_db(x.astype(np.float32), sr) for x in (noise, tilted, harm))
    assert -3.5 < n < -1.0 and -4.0 < b < -1.0  # white noise ~ -2 dB; the tilt does not make it tonal
    assert h < -10.0
    clicked = harm.copy()
    clicked[sr] += 50.0  # one click far louder than the music must not leave only itself to be measured
    assert tonality_db(clicked.astype(np.float32), sr) < -8.0


def test_eval_gan_cli(runs, gan_store, tmp_path):
    from pianoforge.cli import build_parser, main

    assert build_parser().parse_args(["eval", "--checkpoint", "c", "--data", "d", "--out", "o"]).target == "perform"
    out = tmp_path / "ev"
    assert main(["eval", "gan", "--checkpoint", str(runs["specgan"] / "best.safetensors"), "--data", str(gan_store),
                 "--out", str(out), "-n", "4", "--no-judge"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["sets"]) == {"generated", "real-resynthesized", "real"}
    fd = {k: m["sets"][k]["fd"] for k in ("generated", "real-resynthesized")}
    assert math.isfinite(fd["generated"]) and fd["generated"] > fd["real-resynthesized"] >= 0, fd  # 1 epoch: far off
    assert m["n_real"] == 4
    for f in ("report.md", "generated.png", "real.png", "audio/generated-00.wav", "audio/real-00.wav"):
        assert (out / f).exists(), f


def test_gan_experiment_trains_evaluates_and_tabulates_every_model(gan_store, tmp_path):
    from pianoforge.evaluation.experiments import Budget
    from pianoforge.evaluation.gan_experiment import GAN_MODELS, run_gan_experiment

    budget = Budget(minutes=None, max_epochs=1, overrides=(*GEOM, *TINY_COMMON, "train.batch_size=4"), judge=False,
                    progress=False)
    logs: list[str] = []
    path = run_gan_experiment(tmp_path, tmp_path / "data", budget, store=gan_store, n_clips=4, log=logs.append)
    import csv

    rows = {r["row"]: r for r in csv.DictReader(path.open())}
    assert set(rows) == {*GAN_MODELS, "real-resynthesized", "real"}
    for m in GAN_MODELS:
        fd = float(rows[m]["fd"])  # csv text: "nan" for a failed measurement
        assert int(rows[m]["epochs"]) == 1 and math.isfinite(fd) and fd > 0 and int(rows[m]["params_g"]) > 0
        assert (tmp_path / "gan" / "grids" / f"{m}.png").exists()
    md = (tmp_path / "gan" / "gan.md").read_text()
    assert "Lowest FD: **" in md and "SpecGAN > DCGAN" in md
    # a rerun with the same budget reuses the finished runs
    logs.clear()
    run_gan_experiment(tmp_path, tmp_path / "data", budget, store=gan_store, n_clips=4, log=logs.append)
    assert sum("reused" in line for line in logs) == len(GAN_MODELS), logs


def test_gan_experiment_rejects_unknown_models(tmp_path, capsys):
    from pianoforge.cli import main

    with pytest.raises(SystemExit) as e:
        main(["experiment", "gan", "--models", "dcgan,wavegan", "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wavegan" in err[0] and "framegan" in err[0]
    assert not (tmp_path / "gan").exists()


def test_roll_moment_loss_is_zero_at_the_datas_statistics_and_pulls_towards_them():
    import torch

    from pianoforge.adversarial import roll_moment_loss

    g = torch.Generator().manual_seed(0)
    real = (torch.rand(8, 88, 32, generator=g) > 0.97).float() * 0.9
    assert float(roll_moment_loss(real.clone(), real)) < 1e-12
    sparse = (real * 0.2).requires_grad_(True)  # the same score struck too softly: too few strikes
    loss = roll_moment_loss(sparse, real)
    loss.backward()
    assert float(loss.detach()) > 0.1 and float(sparse.grad[real > 0].mean()) < 0  # descent raises the strikes
    shifted = torch.roll(real, 24, 1)  # the same strikes two octaves away: the per-key term sees it
    assert float(roll_moment_loss(shifted, real)) > 0.1


def test_roll_level_loss_makes_soft_strikes_louder_or_gone():
    """g/levels: zero at the data's level bands; strikes too soft for a real note (the real scores have none under
    0.5) cost, and descent raises them; an empty roll gives a finite loss and gradient (0 at level 0)."""
    import torch

    from pianoforge.adversarial import roll_level_loss, strike_level_counts

    g = torch.Generator().manual_seed(0)
    real = (torch.rand(8, 88, 32, generator=g) > 0.97).float() * (0.6 + torch.rand(8, 88, 32, generator=g))
    assert float(roll_level_loss(real.clone(), real)) < 1e-12
    counts = strike_level_counts(real).mean(0)  # (bands,): strikes per clip in 0.05-0.5, 0.5-1, 1-2, > 2
    n = float((real > 0).sum() / 8)
    assert counts.shape == (4,) and abs(float(counts.sum()) - n) < 1e-3 * n and float(counts[0]) < 0.05 * n
    soft = (real * 0.3).requires_grad_(True)  # the same score, struck at velocity 15-40: the same soft count
    loss = roll_level_loss(soft, real)
    loss.backward()
    assert float(loss.detach()) > 0.5 and float(soft.grad[real > 0].mean()) < 0
    louder = (real * 0.9).requires_grad_(False)
    assert float(roll_level_loss(louder, real)) < float(loss.detach())
    empty = torch.zeros(2, 88, 32, requires_grad=True)
    roll_level_loss(empty, real).backward()
    assert torch.isfinite(empty.grad).all()


def test_roll_interval_loss_hears_clusters_against_triads():
    """g/intervals: interval-class shares of strikes sounding together (transposition-free); a C major triad is a
    minor third, a major third and a fourth; clusters of semitones against triads cost, and descent lowers them."""
    import torch

    from pianoforge.adversarial import interval_class_shares, roll_interval_loss

    triad = torch.zeros(2, 88, 12)
    for t, root in ((1, 39), (6, 44)):  # C4 and F4 major triads (key 0 = A0, C4 = key 39), 5 frames apart
        triad[:, [root, root + 4, root + 7], t] = 1.0
    torch.testing.assert_close(interval_class_shares(triad), torch.tensor([0, 0, 1, 1, 1, 0]) / 3.0)
    shifted = torch.roll(triad, 5, 1)  # transposed: the same harmony
    assert float(roll_interval_loss(shifted, triad)) < 1e-10
    cluster = torch.zeros(2, 88, 12)
    cluster[:, [40, 41, 42], 1] = 1.0
    cluster.requires_grad_(True)
    loss = roll_interval_loss(cluster, triad)
    loss.backward()
    assert float(loss.detach()) > 0.5 and float(cluster.grad[:, 41, 1].mean()) > 0  # descent softens the middle


def test_roll_moment_term_trains_notegan_and_logs_strikes(gan_store, tmp_path):
    """train.roll_moment_weight, train.roll_level_weight: NoteGAN's g/roll and g/levels terms read the stored
    strike rolls without a note critic and log their values and both strike counts; each needs arch notegan."""
    import csv

    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    notes = [*tiny("framegan"), "model.head=notes", "model.note_frames=16", "model.note_rank=2",
             "model.note_holds=[4, 16]", "train.roll_moment_weight=2.0", "train.roll_level_weight=1.0",
             "train.roll_interval_weight=1.0",
             "train.r1_gamma=1.0",
             "train.moment_weight=5.0", "train.keep_epoch_exports=true"]
    summary = train_gan(gan_store, load_gan_preset("framegan", notes), tmp_path / "run",
                        LoopSettings(batch_size=4, progress=False, log_every_steps=1, max_epochs=1))
    assert summary["steps"] > 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "train_log.csv")))
    assert all(float(r["strikes_real"]) > 0 and float(r["g_roll"]) >= 0 for r in rows) and "dn_loss" not in rows[0]
    assert all(float(r["g_levels"]) >= 0 and float(r["g_intervals"]) >= 0 for r in rows)
    # the validation batches carry the strike rolls: val/roll_dist is logged; best stays by the moment distance
    val = list(csv.DictReader(open(tmp_path / "run" / "val_log.csv")))
    assert summary["monitor"] == "val/moment_dist" and len(val) == 1
    v = {k: float(x) for k, x in val[0].items() if k.startswith("val/")}
    assert v["val/roll_dist"] > 0 and v["val/moment_dist"] > 0 and v["val/level_dist"] > 0 and v["val/interval_dist"] >= 0
    assert (tmp_path / "run" / "epochs" / "epoch-0001.safetensors").is_file()
    for key in ("roll_moment_weight", "roll_level_weight", "roll_interval_weight"):
        with pytest.raises(ConfigError, match=key):
            train_gan(gan_store, load_gan_preset("framegan", [*tiny("framegan"), f"train.{key}=1.0"]),
                      tmp_path / "run2", LoopSettings(batch_size=4, progress=False, max_epochs=1))
        assert not (tmp_path / "run2").exists()


def test_gan_experiment_geometry_is_checked_against_the_store(gan_store, tmp_path):
    """experiment gan --geometry fine trains the gan-fine presets, so a gan-cpu store is refused before any
    training (one line naming the store), and an unknown geometry is a ValueError / argparse exit 2."""
    from pianoforge.errors import StoreError
    from pianoforge.evaluation.experiments import Budget
    from pianoforge.evaluation.gan_experiment import run_gan_experiment

    budget = Budget(minutes=None, max_epochs=1, overrides=(*GEOM, *TINY_COMMON), judge=False, progress=False)
    with pytest.raises(StoreError) as e:
        run_gan_experiment(tmp_path, tmp_path / "data", budget, store=gan_store, n_clips=4, geometry="fine")
    assert "geometry" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "gan-fine" / "runs").exists()
    with pytest.raises(ValueError, match="geometry"):
        run_gan_experiment(tmp_path, tmp_path / "data", budget, store=gan_store, geometry="20s")
    from pianoforge.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["experiment", "gan", "--geometry", "20s", "--out", str(tmp_path)])
    assert ex.value.code == 2
