"""Write tests/resources/perform-default-etude.npz: what the shipped default sounds like on the bundled etude.

``python scripts/make_golden.py`` (rerun it, and commit the file, only when the shipped sound is meant to
change). ``tests/test_golden.py`` renders the same score with the same checkpoint and compares:

- ``band_db``: (bands, blocks) mean level in dB of 16 log-spaced frequency bands over 0.5 s blocks of the
  rendered audio's |STFT| (20 log10(|X| + 1e-5), the preset's STFT);
- ``rms``: the waveform's RMS; ``samples``: its length; ``excerpt``: the first 0.25 s of audio (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "resources" / "perform-default-etude.npz"


def summary(audio: np.ndarray, sample_rate: int, audio_cfg) -> dict[str, np.ndarray]:
    """Summary statistics of a render (see the module docstring)."""
    import torch

    from pianoforge.audio.spectral import stft

    mag = stft(torch.from_numpy(np.asarray(audio, dtype=np.float32)), audio_cfg).abs().numpy()  # (bins, frames)
    db = 20.0 * np.log10(mag + 1e-5)
    edges = np.unique(np.round(np.geomspace(2, db.shape[0], 17)).astype(int))
    block = max(1, int(round(0.5 * audio_cfg.frame_rate)))
    n_blocks = db.shape[1] // block
    bands = np.stack([db[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    band_db = bands[:, : n_blocks * block].reshape(len(bands), n_blocks, block).mean(-1)
    return {"band_db": band_db.astype(np.float32), "rms": np.float32(np.sqrt(np.mean(audio.astype(np.float64) ** 2))),
            "samples": np.int64(len(audio)), "excerpt": np.asarray(audio[: sample_rate // 4], dtype=np.float32)}


def render_golden(engine: str = "auto") -> tuple[dict[str, np.ndarray], str]:
    """Render the packaged etude with the shipped default, one thread, on ``engine`` (auto: numpy for the
    shipped default). Returns (summary, checkpoint sha)."""
    import hashlib

    import torch

    from pianoforge.demo import example_score
    from pianoforge.inference import PerformRenderer, shipped_checkpoint

    torch.set_num_threads(1)
    ckpt = shipped_checkpoint()
    r = PerformRenderer.from_checkpoint(ckpt, engine=engine)
    res = r.render_midi(example_score())
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    return summary(res.audio, res.sample_rate, r.preset.audio), sha


def main() -> None:
    s, sha = render_golden()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, checkpoint_sha256=np.array(sha), **s)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {s['band_db'].shape[1]} blocks, rms {float(s['rms']):.4f}")


if __name__ == "__main__":
    main()
