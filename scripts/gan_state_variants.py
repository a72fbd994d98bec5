"""Which generator of a NoteGAN/FrameGAN training state plays best: the EMA, the live one, or the EMA with its
batch-norm statistics measured for its own weights (issue 19, "What drives the swing?").

``python scripts/gan_state_variants.py SOURCE --data STORE [-n 64] [--split validation] [--bn-batches 16]``

SOURCE: a run folder (its latest state), a ``checkpoints/step-N`` / ``epoch-N`` folder, or an EMA export
(``RUN/epochs/epoch-N.safetensors``: then only ``ema`` and ``ema-bn``). The engine's EMA copies
the live generator's batch-norm buffers (running mean and variance) onto EMA weights that lag behind it, so the
exported generator normalizes with statistics of other weights. This writes three exports beside the state's run
(``RUN/state-variants/<state or export>/{ema,live,ema-bn,live-bn}.safetensors``, with the run's ``best.safetensors`` metadata) and
evaluates each with ``eval gan`` on ``--split`` (validation by default: never tune on the test split):

- ``ema``: ``module.generator_ema`` as saved (what ``best`` / ``epochs/`` exports hold);
- ``live``: ``module.generator``, the weights the optimizer moves;
- ``ema-bn``: the EMA weights with every batch norm's running statistics re-estimated over ``--bn-batches``
  batches of 32 latents (``recalibrate_batch_norm``: cumulative average, in train mode), as training now does;
- ``live-bn``: the same for the live generator."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", type=Path, metavar="SOURCE")
    ap.add_argument("--data", type=Path, required=True, help="the run's store (e.g. data/gan-fine)")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--bn-batches", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from pianoforge.checkpoint import load_checkpoint, read_train_state, save_checkpoint, train_state_folder
    from pianoforge.evaluation.gan_metrics import evaluate_gan
    from pianoforge.improvise import GanGenerator

    if a.state.suffix == ".safetensors":  # an EMA export: its weights and metadata
        run = a.state.parent.parent
        out = run / "state-variants" / a.state.stem
        out.mkdir(parents=True, exist_ok=True)
        template, meta = load_checkpoint(a.state, kind="gan")
        paths = {"ema": save_checkpoint(out / "ema.safetensors", template, "gan", meta["config"])}
        where = str(a.state)
    else:
        folder = train_state_folder(a.state)
        run = folder.parent.parent
        tensors, state = read_train_state(folder)
        template, meta = load_checkpoint(run / "best.safetensors", kind="gan")
        out = run / "state-variants" / folder.name
        out.mkdir(parents=True, exist_ok=True)

        def part(prefix: str) -> dict[str, torch.Tensor]:
            t = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            if set(t) != set(template):
                raise SystemExit(f"{folder}: {prefix}* does not match the export's tensors")
            return t

        paths = {"ema": save_checkpoint(out / "ema.safetensors", part("module.generator_ema."), "gan", meta["config"]),
                 "live": save_checkpoint(out / "live.safetensors", part("module.generator."), "gan", meta["config"])}
        where = f"{folder} (epoch {state['epoch']}, step {state['step']})"
    from pianoforge.models.gan import recalibrate_batch_norm

    for name in [k for k in ("ema", "live") if k in paths]:
        g = GanGenerator.from_checkpoint(paths[name])
        zs = [torch.stack([g.latent(10_000 + 32 * b + i) for i in range(32)]) for b in range(a.bn_batches)]
        n_norms = recalibrate_batch_norm(g.model, zs)
        paths[f"{name}-bn"] = save_checkpoint(out / f"{name}-bn.safetensors",
                                              {k: v.detach() for k, v in g.model.state_dict().items()}, "gan",
                                              meta["config"])
    print(f"{where}: {n_norms} batch norms", flush=True)
    # the collapse monitor's diversity (training/gan_epoch.py): 32 samples from its fixed latents against 32
    # fixed real training images, the same draws as the run's monitor_log.csv
    import numpy as np

    from pianoforge import adversarial as adv
    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.models.gan import generate_images, sample_latent

    train = GanImages(FeatureStore(a.data), "train")
    idx = np.sort(np.random.default_rng(1234).choice(len(train), min(32, len(train)), replace=False))
    real = torch.stack([train[int(i)] for i in idx])
    rows = {}
    for name, path in paths.items():
        gm = GanGenerator.from_checkpoint(path).model
        zs = sample_latent(32, gm.cfg.latent_dim, gm.cfg.latent, generator=torch.Generator().manual_seed(1234))
        with torch.no_grad():
            imgs = generate_images(gm.eval(), zs, noise_mode="const").float().clamp(-1, 1)
        print(f"{name:7s} monitor diversity {adv.diversity_ratio(imgs, real):.2f}", flush=True)
    for name, path in paths.items():
        rep = out / f"eval-{a.split}-s{a.seed}-{name}"
        if not (rep / "metrics.json").is_file():
            evaluate_gan(path, a.data, rep, split=a.split, n=a.n, seed=a.seed, listen=0)
        sets = json.loads((rep / "metrics.json").read_text())["sets"]
        gen, real = sets["generated"], sets["real"]
        rows[name] = {k: gen[k] for k in ("fd", "note_density", "polyphony", "pitch_class_entropy", "tonality_db",
                                          "diversity_ratio")}
        print(f"{name:7s} FD {gen['fd']:6.1f}  notes/s {gen['note_density']:5.2f}  polyphony {gen['polyphony']:4.2f}  "
              f"PC entropy {gen['pitch_class_entropy']:4.2f}  tonality {gen['tonality_db']:5.1f} dB  diversity "
              f"{gen['diversity_ratio']:.2f}  (real {real['note_density']:.2f} / {real['polyphony']:.2f} / "
              f"{real['pitch_class_entropy']:.2f})", flush=True)
    (out / f"variants-{a.split}-s{a.seed}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
