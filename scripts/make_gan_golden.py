"""Write tests/resources/gan-default-seeds.npz: what the shipped GAN generator makes for fixed seeds.

``python scripts/make_gan_golden.py`` (rerun it, and commit the file, only when the shipped generator is meant
to change). ``tests/test_gan_golden.py`` generates the same seeds with the same checkpoint and compares:

- ``row_mean``, ``row_std``: (seeds, H) mean and std over frames of each image row (generator output in
  [-1, 1], before the inverse chain), seeds :data:`SEEDS`;
- ``image_excerpt``: (H, 32) the first 32 frames of seed 0's image (float32);
- ``rms``: (seeds,) RMS of each clip's audio (PGHI + Griffin-Lim, the checkpoint's phase settings);
- ``excerpt``: the first 0.25 s of seed 0's audio (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "resources" / "gan-default-seeds.npz"
SEEDS = (0, 1, 2, 3)
EXCERPT_FRAMES = 32


def generate_golden() -> tuple[dict[str, np.ndarray], str]:
    """Generate :data:`SEEDS` with the shipped GAN generator on one thread. Returns (summary, checkpoint sha)."""
    import hashlib

    import torch

    from pianoforge.improvise import GanGenerator, shipped_checkpoint

    torch.set_num_threads(1)
    ckpt = shipped_checkpoint()
    g = GanGenerator.from_checkpoint(ckpt)
    clips = g.generate_clips(len(SEEDS), seed=SEEDS[0])
    imgs = clips.images[:, 0].numpy().astype(np.float64)  # (seeds, H, W)
    audio = clips.audio
    s = {"row_mean": imgs.mean(-1).astype(np.float32), "row_std": imgs.std(-1).astype(np.float32),
         "image_excerpt": clips.images[0, 0, :, :EXCERPT_FRAMES].numpy().astype(np.float32),
         "rms": np.array([np.sqrt(np.mean(y.astype(np.float64) ** 2)) for y in audio], dtype=np.float32),
         "excerpt": np.asarray(audio[0][: g.sample_rate // 4], dtype=np.float32),
         "seeds": np.array(SEEDS, dtype=np.int64)}
    return s, hashlib.sha256(ckpt.read_bytes()).hexdigest()


def main() -> None:
    s, sha = generate_golden()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, checkpoint_sha256=np.array(sha), **s)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): seeds {list(s['seeds'])}, rms {np.round(s['rms'], 4).tolist()}")


if __name__ == "__main__":
    main()
