"""The GAN training task (``dcgan``, ``specgan``, ``stylegan``, ``framegan``) on the shared engine (``training/loop.py``).

Manual optimization inside ``train_step``: one engine step = one critic update on one batch of real
images (B, 1, H, W); a generator update follows every ``n_critic``-th step (SpecGAN: 5 critic steps per
generator step, as WGAN-GP), then the generator EMA is updated. Losses:

- ``dcgan``: BCE on logits with soft labels (real ~ U[1 - s, 1], fake ~ U[0, s]; ``label_smoothing``) and
  optional label flipping (``label_flip``); non-saturating generator loss; gradient-norm clipping 1.
- ``specgan``: WGAN-GP, ``E[D(fake)] - E[D(real)] + 10 * mean_i (||grad D(x_i)|| - 1)**2`` at per-sample
  interpolates; generator ``-E[D(G(z))]``.
- ``framegan``: hinge loss (critic ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator
  ``-E[D(G(z))]``) with a spectral-norm critic; optional ADA like stylegan.
- ``stylegan``: logistic (non-saturating) loss, lazy R1 (``r1_gamma``, every ``r1_every`` steps), and ADA:
  every image the critic sees passes through :class:`~pianoforge.models.gan.SpectrogramAugment`, whose
  probability follows the sign of the critic on reals.

Logged every ``log_every_steps`` (train_log.csv): ``d_loss``, ``g_loss`` (latest generator update), ``gp``
(gradient penalty; R1 for stylegan), ``d_real``/``d_fake`` (mean critic scores), ``w_dist`` (specgan),
``grad_norm`` (specgan, mean per-sample gradient norm at the interpolates), ``ada_p`` (with ADA: stylegan,
framegan).
Validation (val_log.csv, when the store has a validation split): ``val/moment_dist``
(:func:`~pianoforge.adversarial.spectral_moment_distance` of EMA samples vs real validation images; the
monitored value, lower is better, picks ``best.safetensors``) and ``val/d_gap`` (mean critic score on
real minus generated). Every epoch end: ``samples/epoch-NNNN.png`` (grid of EMA samples from fixed
latents), ``samples/epoch-NNNN-K.wav`` (Griffin-Lim), diversity + warnings (``monitor_log.csv``, see
``gan_monitor``), ``gan_curves.png`` and ``last.safetensors``. Exports are generator-only (EMA weights).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge import adversarial as adv
from pianoforge.audio.io import save_audio
from pianoforge.audio.notes import factorize_notes, render_note_dictionary
from pianoforge.checkpoint import save_checkpoint
from pianoforge.config import Preset
from pianoforge.data.gan_images import GanImages, GanImagesWithRolls, drops_nyquist
from pianoforge.data.reserved import is_reserved
from pianoforge.data.store import FeatureStore
from pianoforge.errors import ConfigError, StoreError
from pianoforge.improvise import GanGenerator, gan_checkpoint_config, sample_grid
from pianoforge.models.gan import (
    GanModelConfig,
    SpectrogramAugment,
    build_critic,
    build_generator,
    ema_beta,
    ema_update,
    generate_images,
    sample_latent,
)
from pianoforge.models.gan.note_critic import ROLL_VELOCITY, NoteCritic, compress_roll
from pianoforge.training.config import GanTrainConfig, gan_train_config, loop_settings
from pianoforge.training.gan_monitor import EpochStats, append_row, divergence_warnings, gan_curves
from pianoforge.training.loop import LoopSettings, TaskFactory, launch, prepare_run

DEFAULT_TRAIN: dict[str, Any] = dataclasses.asdict(GanTrainConfig())
"""The GAN ``train`` defaults (:class:`~pianoforge.training.config.GanTrainConfig`, which documents them)."""


def gan_model_config(preset: Preset) -> GanModelConfig:
    return GanModelConfig.from_dict(preset.model, f"preset {preset.name}")


def image_geometry(preset: Preset) -> tuple[tuple[int, int], tuple[int, int]]:
    """(image size (H, W), STFT grid (bins, frames)) of a GAN preset; the image size must suit the model."""
    grid = (preset.audio.n_bins, preset.data.example_frames(preset.audio))
    size = tuple(preset.data.resize) if preset.data.resize else grid
    cfg = gan_model_config(preset)
    try:
        cfg.layout(size)
    except ConfigError as e:
        raise ConfigError(f"preset {preset.name}", e.problem) from e
    h, w = int(size[0]), int(size[1])
    if cfg.head == "notes" and (not rows_are_bins(size, grid) or w != grid[1]):
        # the note head adds notes on the STFT grid (FrameGenerator's NoteHead)
        raise ConfigError(f"preset {preset.name}", f"model.head=notes needs an image on the STFT grid ({grid[0]} "
                                                   f"or {grid[0] - 1} bins x {grid[1]} frames), not {h} x {w}")
    return (h, w), grid


def check_gan_store(store: FeatureStore, preset: Preset) -> None:
    """The store must have the preset's geometry (audio, example length, resize) and be fit for training."""
    sp = store.preset
    if (sp.audio, sp.data.example_seconds, sp.data.resize) != (preset.audio, preset.data.example_seconds,
                                                               preset.data.resize):
        geom = "gan-" + preset.name.split("-", 1)[1] if "-" in preset.name else preset.name
        raise StoreError(store.root, f"was built with preset {sp.name!r}, whose geometry (audio, example_seconds, "
                                     f"resize) differs from {preset.name!r}; build one with --preset {geom} "
                                     "and the same --set overrides")
    if store.manifest.get("eval_only"):
        raise StoreError(store.root, "is an evaluation-only store (built with --allow-reserved); never train on it")
    for p in store.pieces():
        work = p.get("provenance", {}).get("work") or p["piece_id"]
        if is_reserved(work) or is_reserved(Path(p.get("midi") or "").name):
            raise StoreError(store.root, f"holds reserved work {work}; it must never be trained on")
    if not store.pieces("train"):
        raise StoreError(store.root, "has no training pieces")


class RngState(nn.Module):
    """The task's own random stream (latents, interpolation weights, label noise, augmentation, StyleGAN
    noise), saved as buffers with the training state. Not torch's global generator: the engine's
    DataLoader draws from that when an epoch's iterator is created, at a different point after a resume."""

    def __init__(self, seed: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("cpu_state", torch.Generator().manual_seed(seed).get_state())
        cuda = torch.zeros(0, dtype=torch.uint8)
        if device.type == "cuda":  # sized at construction, so a resumed state loads into it
            with torch.random.fork_rng(devices=[device.index or 0]):
                torch.cuda.manual_seed(seed)
                cuda = torch.cuda.get_rng_state(device)
        self.register_buffer("cuda_state", cuda)

    @contextlib.contextmanager
    def active(self, device: torch.device) -> Iterator[None]:
        """Inside the block torch's global generator(s) run this stream; outside they are untouched."""
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.set_rng_state(self.cpu_state.cpu())
            if cuda:
                torch.cuda.set_rng_state(self.cuda_state.cpu(), device)
            yield
            self.cpu_state = torch.get_rng_state().to(self.cpu_state.device)
            if cuda:
                self.cuda_state = torch.cuda.get_rng_state(device).to(self.cpu_state.device)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` stop requiring grad inside the block (gradients still flow through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)


def rows_are_bins(size: tuple[int, int], grid: tuple[int, int]) -> bool:
    """Whether the image rows of ``size = (H, W)`` are the STFT bins of ``grid`` (all, or all but Nyquist)."""
    return int(size[0]) == int(grid[0]) or drops_nyquist(size, grid)


def image_row_moments(normalizer, preset: Preset, size: tuple[int, int],
                      grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image row (H,): the dataset mean and std of the log-magnitude and the centre frequency in Hz.

    Rows are STFT bins when ``H`` is ``bins`` or ``bins - 1`` (Nyquist dropped, data/gan_images.py);
    otherwise the bilinear resize (``align_corners=True``) puts row i at bin ``i (bins - 1) / (H - 1)``.
    """
    h, bins = int(size[0]), int(grid[0])
    pos = np.arange(h, dtype=np.float64) if rows_are_bins(size, grid) else np.linspace(0.0, bins - 1.0, h)
    idx = np.arange(bins, dtype=np.float64)
    hz = pos * preset.audio.sample_rate / preset.audio.n_fft
    return np.interp(pos, idx, normalizer.mean), np.interp(pos, idx, normalizer.std), hz


def note_dictionary(preset: Preset, cfg: GanModelConfig, size: tuple[int, int],
                    grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """FrameGAN's note head: the measured piano notes of this geometry as (spectra (N, R, H), envelopes
    (N, R, K)), N = 88 per hold length, rendered with the preset's soundfont (:mod:`pianoforge.audio.notes`),
    rows = image rows.
    :func:`image_geometry` has checked that the image rows are the STFT bins (or all but the Nyquist bin).
    """
    mags = [render_note_dictionary(preset.audio, preset.render, cfg.note_frames, cfg.note_velocity, hold)
            for hold in (cfg.note_holds or (cfg.note_frames,))]
    return factorize_notes(np.concatenate(mags)[:, : int(size[0])], cfg.note_rank)


class GanTask:
    monitor = "val/moment_dist"

    def __init__(self, store: FeatureStore, preset: Preset, device: torch.device) -> None:
        self.store, self.preset, self.device = store, preset, device
        self.tr = tr = gan_train_config(preset)
        self.cfg = gan_model_config(preset)
        self.arch = self.cfg.arch
        self.size, self.grid = image_geometry(preset)
        self.G = build_generator(self.cfg, self.size).to(device)
        if hasattr(self.G, "init_from_data"):  # framegan: harmonic / note heads start from the data
            notes = note_dictionary(preset, self.cfg, self.size, self.grid) if self.cfg.head == "notes" else None
            self.G.init_from_data(*image_row_moments(store.normalizer, preset, self.size, self.grid),
                                  float(preset.audio.log_eps), notes=notes)
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
        self.train_dataset = GanImages(store, "train")
        self.Dn: NoteCritic | None = None
        if tr.note_critic_weight > 0:
            if self.cfg.head != "notes":
                raise ConfigError(f"preset {preset.name}", "train.note_critic_weight needs model.head=notes")
            self.Dn = NoteCritic(self.grid[1]).to(device)
            self.opt_dn = torch.optim.Adam(self.Dn.parameters(), lr=lr_d, betas=betas)
            self.train_dataset = GanImagesWithRolls(self.train_dataset)
        val = GanImages(store, "validation")
        self.val_dataset = val if len(val) else None
        self.stats = EpochStats()
        self.last: dict[str, Any] = {"g_loss": None, "gp": 0.0}
        self.step = 0
        self._val_batch = 0
        self._warned_nan = False
        self._real_bank: torch.Tensor | None = None

    # -- engine interface -------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        mods = {"generator": self.G, "critic": self.D, "generator_ema": self.G_ema, "augment": self.aug,
                "rng": self.rng}
        if self.Dn is not None:
            mods["note_critic"] = self.Dn
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"generator": self.opt_g, "critic": self.opt_d}
        if self.Dn is not None:
            opts["note_critic"] = self.opt_dn
        return opts

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

    def _train_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        self._val_batch = 0
        self.step = step + 1
        tr, arch = self.tr, self.arch
        real, real_roll = batch if isinstance(batch, (list, tuple)) else (batch, None)
        b = real.shape[0]
        m: dict[str, float] = {}
        # ---- critic / discriminator
        with torch.no_grad():
            if self.Dn is not None:
                fake, fake_roll = self.G.forward_with_roll(self._z(b))
            else:
                fake = self.G(self._z(b))
        if self.Dn is not None and real_roll is not None:
            m.update(self._note_critic_step(real_roll, fake_roll))
        r1_now = arch == "stylegan" and tr.r1_gamma > 0 and step % int(tr.r1_every) == 0
        real_in = real.detach().requires_grad_(r1_now)
        d_real = self.net_D(self.aug(real_in))
        d_fake = self.net_D(self.aug(fake))
        if arch == "specgan":
            x_hat = adv.interpolates(real, fake)
            gp, norms = adv.gradient_penalty(self.net_D(x_hat), x_hat)
            d_loss = adv.wgan_critic_loss(d_real, d_fake) + float(tr.gp_weight) * gp
            self.last["gp"] = float(gp.detach())
            m.update(w_dist=float((d_real.mean() - d_fake.mean()).detach()), grad_norm=float(norms.mean().detach()))
        elif arch == "dcgan":
            d_loss = adv.bce_discriminator_loss(d_real, d_fake, float(tr.label_smoothing), float(tr.label_flip))
        elif arch == "framegan":
            d_loss = adv.hinge_critic_loss(d_real, d_fake)
        else:
            d_loss = adv.logistic_critic_loss(d_real, d_fake)
            if r1_now:
                r1 = adv.r1_penalty(d_real, real_in)
                d_loss = d_loss + float(tr.r1_gamma) / 2 * r1 * int(tr.r1_every)
                self.last["gp"] = float(r1.detach())
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self._clip(self.D)
        self.opt_d.step()
        self.aug.update(d_real, b)
        # ---- generator, every n_critic-th step
        if (step + 1) % int(tr.n_critic) == 0:
            with _frozen(self.D):
                gen_roll = None
                if self.Dn is not None:
                    gen, gen_roll = self.G.forward_with_roll(self._z(b))
                else:
                    gen = self.net_G(self._z(b))
                d_gen = self.D(self.aug(gen))
                if arch == "specgan":
                    g_loss = adv.wgan_generator_loss(d_gen)
                elif arch == "dcgan":
                    g_loss = adv.bce_generator_loss(d_gen)
                elif arch == "framegan":
                    g_loss = adv.hinge_generator_loss(d_gen)
                else:
                    g_loss = adv.logistic_generator_loss(d_gen)
                if tr.moment_weight:
                    g_loss = g_loss + float(tr.moment_weight) * adv.row_moment_loss(gen, real)
                if gen_roll is not None:
                    with _frozen(self.Dn):
                        g_notes = adv.hinge_generator_loss(self.Dn(compress_roll(gen_roll)))
                    g_loss = g_loss + float(tr.note_critic_weight) * g_notes
                    self.last["g_notes"] = float(g_notes.detach())
                self.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
            self._clip(self.G)
            self.opt_g.step()
            ema_update(self.G_ema, self.G, ema_beta(float(tr.ema_beta), (step + 1) // int(tr.n_critic)))
            self.last["g_loss"] = float(g_loss.detach())
        g_val = self.last["g_loss"]
        if "g_notes" in self.last:
            m["g_notes"] = self.last["g_notes"]
        m = {"d_loss": float(d_loss.detach()), "g_loss": g_val, "gp": self.last["gp"],
             "d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean()), **m}
        if tr.ada:
            m["ada_p"] = float(self.aug.p)
        if g_val is None:  # no generator update yet (n_critic > 1): not averaged, logged as 0
            m["g_loss"] = 0.0
        self.stats.add({k: v for k, v in m.items() if not (k == "g_loss" and g_val is None)})
        if self.stats.nonfinite and not self._warned_nan:
            self._warned_nan = True
            print(f"WARNING (step {step + 1}): GAN DIVERGED: non-finite {', '.join(self.stats.nonfinite)}; "
                  "training stops here", file=sys.stderr, flush=True)
        return m

    def _note_critic_step(self, real_roll: torch.Tensor, fake_roll: torch.Tensor) -> dict[str, float]:
        """One hinge update of the note critic on the real clips' strike rolls (velocity / 127 at onsets)
        and the generator's (levels in dictionary-note units); returns its metrics and both strike rates
        (strikes per clip above a tenth of a dictionary note)."""
        real_lv = real_roll * (127.0 / ROLL_VELOCITY)
        dn_real = self.Dn(compress_roll(real_lv))
        dn_fake = self.Dn(compress_roll(fake_roll.detach()))
        loss = adv.hinge_critic_loss(dn_real, dn_fake)
        self.opt_dn.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_dn.step()
        b = real_roll.shape[0]
        return {"dn_loss": float(loss.detach()), "dn_real": float(dn_real.detach().mean()),
                "dn_fake": float(dn_fake.detach().mean()),
                "strikes_real": float((real_lv > 0.1).sum()) / b, "strikes_fake": float((fake_roll > 0.1).sum()) / b}

    @torch.no_grad()
    def val_step(self, batch: torch.Tensor) -> dict[str, float]:
        g = torch.Generator(device=batch.device).manual_seed(10007 + self._val_batch)
        self._val_batch += 1
        fake = generate_images(self.G_ema, self._z(batch.shape[0], g), noise_mode="const")
        return {"val/moment_dist": adv.spectral_moment_distance(fake, batch),
                "val/d_gap": float(self.D(batch).mean() - self.D(fake).mean())}

    def inference(self) -> GanGenerator:
        """The EMA generator wrapped for sampling (in eval mode)."""
        return GanGenerator(self.G_ema, self.preset, self.store.normalizer, self.size, self.grid)

    def export(self, path: Path) -> None:
        export_gan(self.G_ema, self.preset, self.cfg, self.store, self.size, self.grid, path)

    # -- epoch end (main process) ---------------------------------------------------------------------
    def real_bank(self) -> torch.Tensor:
        """A fixed set of real training images (n, 1, H, W) to compare diversity against."""
        if self._real_bank is None:
            ds = self.train_dataset
            ds = ds.images if isinstance(ds, GanImagesWithRolls) else ds
            k = min(int(self.tr.diversity_samples), len(ds))
            idx = np.sort(np.random.default_rng(int(self.tr.sample_seed)).choice(len(ds), k, replace=False))
            self._real_bank = torch.stack([ds[int(i)] for i in idx])
        return self._real_bank

    def on_epoch_end(self, run_dir: Path, epoch: int) -> None:
        tr = self.tr
        samples = run_dir / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        gen = self.inference()
        k = max(int(tr.diversity_samples), int(tr.grid_samples), int(tr.audio_samples))
        z = self._z(k, torch.Generator(device=self.device).manual_seed(int(tr.sample_seed)))
        imgs = gen.images(z)
        sample_grid(samples / f"epoch-{epoch:04d}.png", imgs[: int(tr.grid_samples)],
                    title=f"{self.preset.name}, epoch {epoch}, step {self.step} (EMA generator)")
        n_audio = int(tr.audio_samples)
        if n_audio:
            clips = gen.render(z[:n_audio], list(range(n_audio)), iterations=int(tr.gl_iterations))
            for i, y in enumerate(clips.audio):
                save_audio(samples / f"epoch-{epoch:04d}-{i}.wav", y, clips.sample_rate)
        real = self.real_bank()
        gen_div = imgs[: int(tr.diversity_samples)]
        warnings = divergence_warnings(self.arch, self.stats, dataclasses.asdict(tr))
        collapse = adv.collapse_warning(gen_div, real, float(tr.collapse_threshold))
        if collapse and (self.step // int(tr.n_critic) >= int(tr.collapse_warmup_g_steps)
                         or not torch.isfinite(gen_div).all()):
            warnings.insert(0, collapse)
        for w in warnings:
            print(f"WARNING (epoch {epoch}): {w}", file=sys.stderr, flush=True)
        means = self.stats.means()
        row = {"epoch": epoch, "step": self.step, "diversity": round(adv.diversity_ratio(gen_div, real), 5),
               "gen_pairwise_l1": round(adv.mean_pairwise_distance(gen_div), 6),
               "real_pairwise_l1": round(adv.mean_pairwise_distance(real), 6),
               "moment_dist_train": round(adv.spectral_moment_distance(gen_div, real), 6),
               **{f"mean_{k}": round(v, 6) for k, v in means.items()}, "warning": " | ".join(warnings)}
        append_row(run_dir / "monitor_log.csv", row)
        try:
            gan_curves(run_dir, run_dir / "gan_curves.png")
        except Exception as e:  # a plot must never kill a training run
            print(f"warning: GAN curves not drawn ({e})", file=sys.stderr, flush=True)
        self.export(run_dir / "last.safetensors")
        self.stats = EpochStats()


def export_gan(generator: nn.Module, preset: Preset, cfg: GanModelConfig, store: FeatureStore,
               size: tuple[int, int], grid: tuple[int, int], path: Path) -> Path:
    """Write a generator-only inference checkpoint (``kind="gan"``)."""
    extra = {"data": str(store.root), "data_fingerprint": store.manifest["fingerprint"],
             "data_licences": store.manifest.get("licences", [])}
    config = gan_checkpoint_config(preset, cfg, store.normalizer, size, grid, extra)
    return save_checkpoint(path, generator.state_dict(), kind="gan", config=config)


def train_gan(data: Path, preset: Preset, out: Path, settings: LoopSettings | None = None) -> dict[str, Any] | None:
    """Train (or resume: rerun the same command) a GAN on a dataset store. Returns the run summary.

    ``settings``: the engine's (:func:`~pianoforge.training.config.loop_settings` derives them from the preset's
    train section and the command line); None: the preset's alone."""
    store = FeatureStore(data)
    check_gan_store(store, preset)
    tr = gan_train_config(preset)
    image_geometry(preset)
    settings = settings if settings is not None else loop_settings(tr)
    prepare_run(out, "gan", preset, data, store.manifest["fingerprint"], settings)
    return launch(TaskFactory(GanTask, Path(data), preset), settings, out)
