"""The GAN training task (``dcgan``, ``specgan``, ``stylegan``, ``framegan``, ``notegan``) on the shared engine
(``training/loop.py``).

Manual optimization inside ``train_step``: one engine step = one critic update on one batch of real
images (B, 1, H, W); a generator update follows every ``n_critic``-th step (SpecGAN: 5 critic steps per
generator step, as WGAN-GP), then the generator EMA is updated. The losses of each arch are named dicts
from :mod:`pianoforge.gan_losses` (``d/adv``, ``d/gp``, ``d/r1``; ``g/adv``, ``g/moments``, NoteGAN's
``g/notes``, ``g/roll``, ``g/levels`` and ``g/intervals``), weighted by the train section:

- ``dcgan``: BCE on logits with soft labels (real ~ U[1 - s, 1], fake ~ U[0, s]; ``label_smoothing``) and
  optional label flipping (``label_flip``); non-saturating generator loss; gradient-norm clipping 1.
- ``specgan``: WGAN-GP, ``E[D(fake)] - E[D(real)] + 10 * mean_i (||grad D(x_i)|| - 1)**2`` at per-sample
  interpolates; generator ``-E[D(G(z))]``.
- ``framegan``, ``notegan``: hinge loss (critic ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator
  ``-E[D(G(z))]``) with a spectral-norm critic; optional ADA like stylegan. NoteGAN optionally adds a note
  critic of its strike roll (``note_critic_weight``), its strike statistics against the stored rolls'
  (``roll_moment_weight``), its strikes per level band and the interval classes it strikes together against
  theirs (``roll_level_weight``, ``roll_interval_weight``; off in the presets) and lazy R1 on the image critic
  (``r1_gamma``; its preset: the note critic, the strike statistics and R1 on).
- ``stylegan``: logistic (non-saturating) loss, lazy R1 (``r1_gamma``, every ``r1_every`` steps), and ADA:
  every image the critic sees passes through :class:`~pianoforge.models.gan.SpectrogramAugment`, whose
  probability follows the sign of the critic on reals.

A fresh generator first takes what it needs from the data (``init_from_data``: NoteGAN renders its note
dictionary). This module never imports inference code (``improvise``): samples go through
:mod:`pianoforge.gan_audio`.

Logged every ``log_every_steps`` (train_log.csv): ``d_loss``, ``g_loss`` (latest generator update), ``gp``
(gradient penalty; R1 for stylegan and notegan, on the steps it runs), ``d_real``/``d_fake`` (mean critic
scores), ``w_dist`` (specgan), ``grad_norm`` (specgan, mean per-sample gradient norm at the interpolates),
``ada_p`` (with ADA: stylegan, framegan, notegan); NoteGAN: ``dn_loss``, ``dn_real``, ``dn_fake``, ``g_notes``
(the note critic), ``g_roll``, ``g_levels``, ``g_intervals`` (strike statistics), ``strikes_real``, ``strikes_fake`` (strikes per
clip).
Validation (val_log.csv, when the store has a validation split): ``val/moment_dist``
(:func:`~pianoforge.adversarial.spectral_moment_distance` of EMA samples vs real validation images; the
monitored value, lower is better, picks ``best.safetensors``) and ``val/d_gap`` (mean critic score on
real minus generated); NoteGAN with a roll term also ``val/roll_dist``, ``val/level_dist`` and
``val/interval_dist`` (its strike statistics against the validation clips'; logged, not monitored).
Every epoch end (:mod:`pianoforge.training.gan_epoch`): ``samples/epoch-NNNN.png`` (grid of EMA samples from
fixed latents), ``samples/epoch-NNNN-K.wav`` (Griffin-Lim), diversity + warnings (``monitor_log.csv``, see
``gan_monitor``), ``gan_curves.png``, ``last.safetensors`` and, with ``train.keep_epoch_exports``,
``epochs/epoch-NNNN.safetensors``. Exports are generator-only (EMA weights).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pianoforge import adversarial as adv
from pianoforge import gan_losses
from pianoforge.config import Preset
from pianoforge.data.gan_images import GanImages, GanImagesWithRolls
from pianoforge.data.store import FeatureStore
from pianoforge.models.gan import (
    SpectrogramAugment,
    build_critic,
    build_generator,
    ema_beta,
    ema_update,
    generate_images,
    recalibrate_batch_norm,
    sample_latent,
)
from pianoforge.models.gan.note_critic import ROLL_VELOCITY, NoteCritic, compress_roll
from pianoforge.training.config import GanTrainConfig, gan_train_config, loop_settings
from pianoforge.training.gan_epoch import EpochReport
from pianoforge.training.gan_monitor import EpochStats
from pianoforge.training.gan_setup import (
    ROLL_TERMS,
    RngState,
    check_gan_store,
    check_gan_terms,
    data_context,
    export_gan,
    frozen,
    gan_model_config,
    image_geometry,
)
from pianoforge.training.loop import LoopSettings, TaskFactory, launch, prepare_run

__all__ = ["DEFAULT_TRAIN", "GanTask", "check_gan_store", "export_gan", "gan_model_config", "image_geometry",
           "train_gan"]

DEFAULT_TRAIN: dict[str, Any] = dataclasses.asdict(GanTrainConfig())
"""The GAN ``train`` defaults (:class:`~pianoforge.training.config.GanTrainConfig`, which documents them)."""


def note_units(roll: torch.Tensor) -> torch.Tensor:
    """A stored strike roll (B, 88, W), velocity / 127 at onsets, in the generator's dictionary-note units."""
    return roll * (127.0 / ROLL_VELOCITY)


def strike_counts(real_roll: torch.Tensor, fake_roll: torch.Tensor) -> dict[str, float]:
    """Strikes per clip (levels above a tenth of a dictionary note) of real and generated rolls (B, 88, W)."""
    b = real_roll.shape[0]
    return {"strikes_real": float((real_roll > 0.1).sum()) / b, "strikes_fake": float((fake_roll > 0.1).sum()) / b}


class GanTask(EpochReport):
    monitor = "val/moment_dist"

    def __init__(self, store: FeatureStore, preset: Preset, device: torch.device) -> None:
        self.store, self.preset, self.device = store, preset, device
        self.tr = tr = gan_train_config(preset)
        self.cfg = gan_model_config(preset)
        self.arch = self.cfg.arch
        self.weights = gan_losses.loss_weights(tr)
        self.size, self.grid = image_geometry(preset)
        self.G = build_generator(self.cfg, self.size).to(device)
        self.G.init_from_data(data_context(store, preset, self.size, self.grid))  # a resume overwrites it
        self.D = build_critic(self.cfg, self.size).to(device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()
        self.aug = SpectrogramAugment(tr.ada_target, tr.ada_interval, tr.ada_kimg,
                                      enabled=bool(tr.ada)).to(device)
        self.rng = RngState(int(torch.randint(2**62, ())), device)  # the engine seeded torch with seed + rank
        self.net_G, self.net_D = self.G, self.D
        betas = tuple(float(b) for b in tr.betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=float(tr.lr), betas=betas)
        lr_d = float(tr.lr_d) if tr.lr_d is not None else float(tr.lr)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=betas)
        self.base_lr = {"generator": float(tr.lr), "critic": lr_d, "note_critic": lr_d}
        self.train_images = GanImages(store, "train")
        self.train_dataset: GanImages | GanImagesWithRolls = self.train_images
        self.Dn: NoteCritic | None = None
        check_gan_terms(preset, self.arch, tr)
        if tr.note_critic_weight > 0:  # NoteGAN's second critic judges the score it plays (its strike roll)
            self.Dn = NoteCritic(self.grid[1]).to(device)
            self.opt_dn = torch.optim.Adam(self.Dn.parameters(), lr=lr_d, betas=betas)
        rolls_terms = any(float(getattr(tr, key)) > 0 for key in ROLL_TERMS)
        self.use_rolls = self.Dn is not None or rolls_terms  # the batches carry the real strike rolls
        # lazy R1 on the image critic: for the arches whose loss entry has it, when its weight is not 0
        self.r1 = "d/r1" in gan_losses.ARCH_LOSSES[self.arch].critic and self.weights["d/r1"] > 0
        if self.use_rolls:
            self.train_dataset = GanImagesWithRolls(self.train_images)
        val = GanImages(store, "validation")
        # NoteGAN with g/roll: validation batches carry the strike rolls (val/roll_dist is logged; best stays
        # picked by val/moment_dist, which chose better epochs than a sum with it: docs/improvise.md)
        self.val_rolls = rolls_terms
        self.val_dataset: GanImages | GanImagesWithRolls | None = None
        if len(val):
            self.val_dataset = GanImagesWithRolls(val) if self.val_rolls else val
        self.stats = EpochStats()
        self.last: dict[str, Any] = {"g_loss": None, "gp": 0.0}
        self.step = 0
        self._val_batch = 0
        self._warned_nan = False
        self._real_bank: torch.Tensor | None = None
        self._ema_bn_step = -1  # the step whose EMA weights the batch-norm statistics were measured for

    # -- engine interface -------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        mods = {"generator": self.G, "critic": self.D, "generator_ema": self.G_ema, "augment": self.aug,
                "rng": self.rng}
        return {**mods, "note_critic": self.Dn} if self.Dn is not None else mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"generator": self.opt_g, "critic": self.opt_d}
        return {**opts, "note_critic": self.opt_dn} if self.Dn is not None else opts

    def wrap(self, fn) -> None:
        self.net_G, self.net_D = fn(self.G), fn(self.D)

    def _z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_latent(n, self.cfg.latent_dim, self.cfg.latent, generator=generator, device=self.device)

    def _clip(self, module: nn.Module) -> None:
        if self.tr.grad_clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), float(self.tr.grad_clip))

    def train_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        with self.rng.active(self.device):
            return self._train_step(batch, step)

    def lr_factor(self, step: int) -> float:
        """The learning rates' multiplier at engine step ``step`` (0-based): 1 for ``lr_decay_after`` steps,
        then linearly to 0 over ``lr_decay_steps`` (0: always 1)."""
        n = int(self.tr.lr_decay_steps)
        return 1.0 if n <= 0 else min(1.0, max(0.0, 1.0 - (step - int(self.tr.lr_decay_after)) / n))

    def _train_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        self._val_batch = 0
        self.step = step + 1
        factor = self.lr_factor(step)  # set every step from the step alone, so a resume continues it exactly
        for name, opt in self.optimizers().items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr[name] * factor
        real, real_roll = (batch[0], note_units(batch[1])) if self.use_rolls else (batch, None)  # GanImagesWithRolls
        d_terms, cb = self._critic_step(real, real_roll, step)
        if (step + 1) % int(self.tr.n_critic) == 0:
            self._generator_step(real, step, real_roll)
        g_val = self.last["g_loss"]
        m = {"d_loss": float(d_terms["d/loss"].detach()), "g_loss": g_val, "gp": self.last["gp"],
             "d_real": float(cb.d_real.detach().mean()), "d_fake": float(cb.d_fake.detach().mean()),
             **cb.diagnostics}
        for key in ("g_notes", "g_roll", "g_levels", "g_intervals", "strikes_real", "strikes_fake"):
            if key in self.last:
                m[key] = self.last[key]
        if self.tr.ada:
            m["ada_p"] = float(self.aug.p)
        if self.tr.lr_decay_steps:
            m["lr_factor"] = factor
        if g_val is None:  # no generator update yet (n_critic > 1): not averaged, logged as 0
            m["g_loss"] = 0.0
        self.stats.add({k: v for k, v in m.items() if not (k == "g_loss" and g_val is None)})
        if self.stats.nonfinite and not self._warned_nan:
            self._warned_nan = True
            print(f"WARNING (step {step + 1}): GAN DIVERGED: non-finite {', '.join(self.stats.nonfinite)}; "
                  "training stops here", file=sys.stderr, flush=True)
        return m

    def _critic_step(self, real: torch.Tensor, real_roll: torch.Tensor | None,
                     step: int) -> tuple[dict[str, torch.Tensor], gan_losses.CriticBatch]:
        """One critic update on a real batch (B, 1, H, W) against as many generated images (and, with the
        note critic, one update of it on the real and generated strike rolls (B, 88, W), dictionary-note
        units)."""
        tr = self.tr
        note_metrics: dict[str, float] = {}
        with torch.no_grad():
            if self.Dn is not None:
                fake, fake_roll = self.G.forward_with_roll(self._z(real.shape[0]))
            else:
                fake = self.G(self._z(real.shape[0]))
        if self.Dn is not None and real_roll is not None:
            note_metrics = self._note_critic_step(real_roll, fake_roll)
        r1_now = self.r1 and step % int(tr.r1_every) == 0
        real_in = real.detach().requires_grad_(r1_now)
        cb = gan_losses.CriticBatch(self.net_D, real, fake, real_in, self.net_D(self.aug(real_in)),
                                    self.net_D(self.aug(fake)), r1_now, float(tr.label_smoothing),
                                    float(tr.label_flip))
        terms = gan_losses.critic_losses(self.arch, cb, self.weights)
        for name in ("d/gp", "d/r1"):
            if name in terms:
                self.last["gp"] = float(terms[name].detach())
        self.opt_d.zero_grad(set_to_none=True)
        terms["d/loss"].backward()
        self._clip(self.D)
        self.opt_d.step()
        self.aug.update(cb.d_real, real.shape[0])
        cb.diagnostics.update(note_metrics)
        return terms, cb

    def _note_critic_step(self, real_roll: torch.Tensor, fake_roll: torch.Tensor) -> dict[str, float]:
        """One hinge update of the note critic on the real clips' strike rolls and the generator's (both in
        dictionary-note units); returns its metrics and both strike rates (:func:`strike_counts`)."""
        dn_real = self.Dn(compress_roll(real_roll))
        dn_fake = self.Dn(compress_roll(fake_roll.detach()))
        loss = adv.hinge_critic_loss(dn_real, dn_fake)
        self.opt_dn.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_dn.step()
        return {"dn_loss": float(loss.detach()), "dn_real": float(dn_real.detach().mean()),
                "dn_fake": float(dn_fake.detach().mean()), **strike_counts(real_roll, fake_roll)}

    def _generator_step(self, real: torch.Tensor, step: int, real_roll: torch.Tensor | None = None
                        ) -> dict[str, torch.Tensor]:
        """One generator update (the critic frozen), then the EMA. ``real_roll`` (B, 88, W): the real clips'
        strike rolls in dictionary-note units, for the g/roll term."""
        with frozen(self.D), frozen(self.Dn) if self.Dn is not None else contextlib.nullcontext():
            extra: dict[str, Any] = {}
            if self.use_rolls:  # g/notes (the note critic) and g/roll (strike statistics) see the strike roll
                gen, roll = self.G.forward_with_roll(self._z(real.shape[0]))
                extra = {"note_critic": self.Dn, "roll": roll}
                if real_roll is not None:
                    extra["real_roll"] = real_roll
                    if self.Dn is None:  # the note critic's step logs these otherwise
                        self.last.update(strike_counts(real_roll, roll.detach()))
            else:
                gen = self.net_G(self._z(real.shape[0]))
            gb = gan_losses.GeneratorBatch(gen, self.D(self.aug(gen)), real, extra)
            terms = gan_losses.generator_losses(self.arch, gb, self.weights)
            self.opt_g.zero_grad(set_to_none=True)
            terms["g/loss"].backward()
        self._clip(self.G)
        self.opt_g.step()
        ema_update(self.G_ema, self.G, ema_beta(float(self.tr.ema_beta), (step + 1) // int(self.tr.n_critic)))
        self.last["g_loss"] = float(terms["g/loss"].detach())
        for name in ("g/notes", "g/roll", "g/levels", "g/intervals"):
            if name in terms:
                self.last[name.replace("/", "_")] = float(terms[name].detach())
        return terms

    @torch.no_grad()
    def val_step(self, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """EMA samples from fixed latents against a validation batch (B, 1, H, W), or (images, strike rolls
        (B, 88, W)) for NoteGAN with a roll term: then also ``val/roll_dist``, ``val/level_dist`` and
        ``val/interval_dist`` (:func:`adv.roll_moment_loss`, :func:`adv.roll_level_loss`,
        :func:`adv.roll_interval_loss` of the EMA generator's strike roll against the batch's)."""
        real, real_roll = batch if self.val_rolls else (batch, None)
        g = torch.Generator(device=real.device).manual_seed(10007 + self._val_batch)
        self._val_batch += 1
        z = self._z(real.shape[0], g)
        G = self.ema_generator()
        if real_roll is not None:
            fake, roll = G.forward_with_roll(z)
        else:
            fake = generate_images(G, z, noise_mode="const")
        out = {"val/moment_dist": adv.spectral_moment_distance(fake, real),
               "val/d_gap": float(self.D(real).mean() - self.D(fake).mean())}
        if real_roll is not None:
            real_roll = note_units(real_roll)
            out["val/roll_dist"] = float(adv.roll_moment_loss(roll, real_roll))
            out["val/level_dist"] = float(adv.roll_level_loss(roll, real_roll))
            out["val/interval_dist"] = float(adv.roll_interval_loss(roll, real_roll))
        return out

    def export(self, path: Path) -> None:
        export_gan(self.ema_generator(), self.preset, self.cfg, self.store, self.size, self.grid, path)

    def ema_generator(self) -> nn.Module:
        """The EMA generator, its batch-norm statistics measured for its own weights (``train.ema_bn_batches``
        batches of fixed latents; once per step: every generator step copies the live ones back)."""
        n = int(self.tr.ema_bn_batches)
        if n and self._ema_bn_step != self.step:
            g = torch.Generator(device=self.device).manual_seed(20011)
            recalibrate_batch_norm(self.G_ema, (self._z(int(self.tr.batch_size), g) for _ in range(n)))
            self._ema_bn_step = self.step
        return self.G_ema.eval()


def train_gan(data: Path, preset: Preset, out: Path, settings: LoopSettings | None = None) -> dict[str, Any] | None:
    """Train (or resume: rerun the same command) a GAN on a dataset store. Returns the run summary.

    ``settings``: the engine's (:func:`~pianoforge.training.config.loop_settings` derives them from the preset's
    train section and the command line); None: the preset's alone."""
    store = FeatureStore(data)
    check_gan_store(store, preset)
    tr = gan_train_config(preset)
    check_gan_terms(preset, gan_model_config(preset).arch, tr)
    image_geometry(preset)
    settings = settings if settings is not None else loop_settings(tr)
    prepare_run(out, "gan", preset, data, store.manifest["fingerprint"], settings)
    return launch(TaskFactory(GanTask, Path(data), preset), settings, out)
