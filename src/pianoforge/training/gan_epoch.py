"""What a GAN run does at every epoch end, on the main process (:class:`EpochReport`, mixed into
:class:`pianoforge.training.gan.GanTask`): ``samples/epoch-NNNN.png`` and ``-K.wav`` from fixed latents, the
collapse/divergence monitor's row (``monitor_log.csv``, :mod:`pianoforge.training.gan_monitor`),
``gan_curves.png``, ``last.safetensors`` and, with ``train.keep_epoch_exports``, ``epochs/epoch-NNNN.safetensors``.

The task provides ``tr`` (:class:`~pianoforge.training.config.GanTrainConfig`), ``arch``, ``preset``, ``store``,
``grid``, ``device``, ``step``, ``stats`` (:class:`~pianoforge.training.gan_monitor.EpochStats`), ``ema_generator``,
``train_images``, ``_real_bank``, ``_z`` and ``export``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from pianoforge import adversarial as adv
from pianoforge.audio.io import save_audio
from pianoforge.gan_audio import images_to_audio
from pianoforge.models.gan import generate_images
from pianoforge.models.gan.config import GanInferenceConfig
from pianoforge.training.gan_monitor import EpochStats, append_row, divergence_warnings, gan_curves
from pianoforge.viz import sample_grid


class EpochReport:
    """The epoch-end half of the GAN task (see the module docstring for what it needs from the task)."""

    def real_bank(self) -> torch.Tensor:
        """A fixed set of real training images (n, 1, H, W) to compare diversity against."""
        if self._real_bank is None:
            ds = self.train_images
            k = min(int(self.tr.diversity_samples), len(ds))
            idx = np.sort(np.random.default_rng(int(self.tr.sample_seed)).choice(len(ds), k, replace=False))
            self._real_bank = torch.stack([ds[int(i)] for i in idx])
        return self._real_bank

    @torch.no_grad()
    def sample_images(self, z: torch.Tensor) -> torch.Tensor:
        """EMA samples (n, 1, H, W) in [-1, 1] on the CPU (stylegan: its stored 'const' noise)."""
        return generate_images(self.ema_generator(), z, noise_mode="const").float().cpu().clamp(-1.0, 1.0)

    def write_samples(self, samples: Path, epoch: int, imgs: torch.Tensor) -> None:
        """``samples/epoch-NNNN.png`` (grid) and ``epoch-NNNN-K.wav`` (the checkpoint's phase method)."""
        tr = self.tr
        sample_grid(samples / f"epoch-{epoch:04d}.png", imgs[: int(tr.grid_samples)],
                    title=f"{self.preset.name}, epoch {epoch}, step {self.step} (EMA generator)")
        n_audio = int(tr.audio_samples)
        if n_audio:
            phase = GanInferenceConfig.from_preset(self.preset).phase
            clips, _ = images_to_audio(imgs[:n_audio], self.store.normalizer, self.grid, self.preset.audio, phase,
                                       int(tr.gl_iterations), list(range(n_audio)))
            for i, y in enumerate(clips):
                save_audio(samples / f"epoch-{epoch:04d}-{i}.wav", y, self.preset.audio.sample_rate)

    def on_epoch_end(self, run_dir: Path, epoch: int) -> None:
        tr = self.tr
        samples = run_dir / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        k = max(int(tr.diversity_samples), int(tr.grid_samples), int(tr.audio_samples))
        imgs = self.sample_images(self._z(k, torch.Generator(device=self.device).manual_seed(int(tr.sample_seed))))
        self.write_samples(samples, epoch, imgs)
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
        if tr.keep_epoch_exports:  # every epoch's EMA generator, to study a run's swing afterwards
            (run_dir / "epochs").mkdir(exist_ok=True)
            self.export(run_dir / "epochs" / f"epoch-{epoch:04d}.safetensors")
        self.stats = EpochStats()
