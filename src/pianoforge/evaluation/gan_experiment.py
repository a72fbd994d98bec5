"""``pianoforge experiment gan``: DCGAN vs SpecGAN vs StyleGAN2-style vs FrameGAN vs NoteGAN on one CPU geometry
(``gan-cpu``, the default, or ``gan-fine``: :data:`GAN_GEOMETRIES`), same budget.

The PianoGAN paper concluded SpecGAN > DCGAN by listening. Here each model trains with the same seed and the
same budget (wall time per model and a maximum number of epochs, whichever comes first; early stopping off)
on the same store of that geometry, then :func:`~pianoforge.evaluation.gan_metrics.evaluate_gan` compares its
generator with held-out real clips. Under ``OUT/gan/`` it writes:

- ``runs/<model>/``: the training runs (logs, per-epoch sample grids and WAVs, ``best.safetensors``); a
  finished run with the same preset, data and budget is reused, an unfinished one is trained again;
- ``eval/<model>/``: the evaluation report of each generator (``metrics.json``, ``report.md``, grids, WAVs);
- ``grids/<model>.png``: the generated sample grid of each model (and ``grids/real.png``);
- ``gan.csv``: one row per model (plus the real held-out clips and their Griffin-Lim resynthesis as the
  reference rows) with the Fréchet distance (FD, fixed log-mel statistics), diversity ratio, NDB/K and the
  transcription statistics; ``gan.md``: the same as a table, the budget, and which model won on FD.

The real-clip rows are the ceiling: ``real-resynthesized`` is what a perfect generator would score after the
same Griffin-Lim inversion. This module may import training (it trains models); inference never does.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pianoforge.fsutil import write_text_atomic

GAN_MODELS = ("dcgan", "specgan", "stylegan", "framegan", "notegan")
"""The models ``experiment gan`` trains: the paper's three, FrameGAN and NoteGAN (the shipped one)."""
GAN_COLUMNS = ("row", "epochs", "steps", "train_s", "params_g", "fd", "diversity_ratio", "ndb_ndb_k", "tonality_db",
               "note_density", "polyphony", "pitch_class_entropy")
_SET_KEYS = GAN_COLUMNS[5:]
GAN_GEOMETRIES = ("cpu", "fine")
"""The geometries ``experiment gan`` runs at: both CPU-sized, the only ones NoteGAN takes (its image is the STFT
grid); ``fine`` is the shipped generator's."""


def gan_experiment_data(data_root: str | Path, limit_works: int | None, workers: int = 1, progress: bool = True,
                        log: Callable[[str], None] = print, geometry: str = "cpu") -> Path:
    """Build (once) the ``gan-GEOMETRY`` store of the embedded corpus (its first ``limit_works`` works, or all)."""
    from pianoforge.config import load_preset
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect

    out = Path(data_root) / (f"gan-{geometry}-works{limit_works}" if limit_works else f"gan-{geometry}")
    t0 = time.perf_counter()
    specs, failures = collect("corpus", None, limit=limit_works, workers=workers, progress=progress)
    rep = build(specs, out, load_preset(f"gan-{geometry}"), workers=workers, progress=progress, listing_failures=failures,
                source_info={"kind": "corpus", "input": None, "limit": limit_works, "by": "experiments"})
    log(f"data {out}: {'up to date' if rep.up_to_date else f'built in {time.perf_counter() - t0:.0f} s'}")
    return out


def _train_model(model: str, store: Path, run_dir: Path, budget, log: Callable[[str], None],
                 geometry: str = "cpu") -> dict[str, Any]:
    from pianoforge.data.store import FeatureStore
    from pianoforge.models.gan import load_gan_preset
    from pianoforge.training.gan import train_gan
    from pianoforge.training.loop import LoopSettings

    no_stop = 10**9
    preset = load_gan_preset(f"{model}-{geometry}", [*budget.overrides, f"train.early_stop_patience={no_stop}"])
    key = json.loads(json.dumps({"model": model, "preset": preset.to_dict(), "minutes": budget.minutes,
                                 "max_epochs": budget.max_epochs, "seed": budget.seed,
                                 "data_fingerprint": FeatureStore(store).manifest["fingerprint"]}))
    key_path = run_dir / "experiment.json"
    reused = (run_dir / "summary.json").exists() and key_path.exists() and json.loads(key_path.read_text()) == key
    if not reused:
        if run_dir.exists():
            log(f"  {run_dir}: unfinished or made with another budget/preset/data; training again from scratch")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        write_text_atomic(key_path, json.dumps(key, indent=1) + "\n")
        settings = LoopSettings(max_epochs=budget.max_epochs, max_minutes=budget.minutes, seed=budget.seed,
                                batch_size=int(preset.train.get("batch_size", 16)), ckpt_every_steps=10**9,
                                progress=budget.progress, early_stop_patience=no_stop)
        train_gan(Path(store), preset, run_dir, settings)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"summary": summary, "reused": reused}


def _params(checkpoint: Path) -> int:
    from pianoforge.checkpoint import load_checkpoint

    tensors, _ = load_checkpoint(checkpoint, kind="gan")
    return int(sum(t.numel() for k, t in tensors.items() if t.is_floating_point() and "noise_strength" not in k
                   and not k.endswith(("running_mean", "running_var"))))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:.3g}"
    return "-" if v is None else str(v)


def run_gan_experiment(out_dir: str | Path, data_root: str | Path, budget, store: str | Path | None = None,
                       n_clips: int = 64, log: Callable[[str], None] = print,
                       models: tuple[str, ...] | None = None, geometry: str = "cpu") -> Path:
    """Train the GANs (``models``, default all of :data:`GAN_MODELS`) with ``budget`` (an
    :class:`~pianoforge.evaluation.experiments.Budget`; its ``limit_works`` is ignored when ``store`` is
    given), evaluate each on the test split, write the table. Finished runs with the same budget are reused,
    so two processes can train disjoint ``models`` side by side and a last call with all of them tabulates.
    ``geometry`` (:data:`GAN_GEOMETRIES`): ``cpu`` writes under ``OUT/gan/``, ``fine`` under ``OUT/gan-fine/``.
    Returns the table's ``gan.csv``."""
    import torch

    from pianoforge.data.store import FeatureStore
    from pianoforge.evaluation.gan_metrics import evaluate_gan
    from pianoforge.models.gan import load_gan_preset
    from pianoforge.training.gan import check_gan_store

    if geometry not in GAN_GEOMETRIES:
        raise ValueError(f"unknown GAN experiment geometry {geometry!r} (of {', '.join(GAN_GEOMETRIES)})")
    models = tuple(models or GAN_MODELS)
    bad = [m for m in models if m not in GAN_MODELS]
    if bad:
        raise ValueError(f"unknown GAN model(s) {', '.join(bad)} (of {', '.join(GAN_MODELS)})")
    if budget.threads:
        torch.set_num_threads(int(budget.threads))
    exp_dir = Path(out_dir) / ("gan" if geometry == "cpu" else f"gan-{geometry}")
    if store is not None:
        check_gan_store(FeatureStore(store), load_gan_preset(f"specgan-{geometry}", list(budget.overrides)))
        data = Path(store)
    else:
        data = gan_experiment_data(data_root, budget.limit_works, budget.workers, budget.progress, log, geometry)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / "grids").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    reference: dict[str, dict[str, Any]] = {}
    for i, model in enumerate(models, 1):
        log(f"[gan {i}/{len(models)}] {model}-{geometry} on {data}, {budget.describe()}")
        rec = _train_model(model, data, exp_dir / "runs" / model, budget, log, geometry)
        s = rec["summary"]
        ckpt = exp_dir / "runs" / model / "best.safetensors"
        log(f"[gan {i}/{len(models)}] {model}: {'reused; ' if rec['reused'] else ''}{s['epochs']} epochs, "
            f"{s['steps']} steps in {s['elapsed_s']:.0f} s; evaluating {ckpt}")
        res = evaluate_gan(ckpt, data, exp_dir / "eval" / model, split="test", n=n_clips, seed=budget.seed,
                           judge=budget.judge)
        shutil.copyfile(exp_dir / "eval" / model / "generated.png", exp_dir / "grids" / f"{model}.png")
        gen = res["sets"]["generated"]
        rows.append({"row": model, "epochs": s["epochs"], "steps": s["steps"], "train_s": s["elapsed_s"],
                     "params_g": _params(ckpt), **{k: gen.get(k) for k in _SET_KEYS}})
        reference = res["sets"]
        if not (exp_dir / "grids" / "real.png").exists():
            shutil.copyfile(exp_dir / "eval" / model / "real.png", exp_dir / "grids" / "real.png")
    for name in ("real-resynthesized", "real"):
        rows.append({"row": name, **{k: reference.get(name, {}).get(k) for k in _SET_KEYS}})

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=GAN_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in GAN_COLUMNS})
    csv_path = exp_dir / "gan.csv"
    write_text_atomic(csv_path, buf.getvalue())

    scored = [r for r in rows if r["row"] in GAN_MODELS and r.get("fd") is not None]
    best = min(scored, key=lambda r: r["fd"])["row"] if scored else None
    md = [f"# Experiment gan: DCGAN vs SpecGAN vs StyleGAN2-style vs FrameGAN vs NoteGAN (gan-{geometry} geometry)", "",
          f"Budget: {budget.describe()} per model, trained one after another on the same store ({data}); "
          f"evaluation: {n_clips} generated clips vs up to {n_clips} held-out test clips (Fréchet distance on "
          "fixed log-mel statistics: lower is better; diversity ratio: generated / real mean pairwise distance, "
          "1 is ideal; NDB/K: share of k-means bins with a significantly different occupancy, lower is better; "
          "tonality_db: whitened spectral flatness, white noise ~ -2 dB, lower is more tonal; note statistics from basic-pitch transcriptions).", "",
          "The paper's conclusion: SpecGAN > DCGAN (by listening).", "",
          "| " + " | ".join(GAN_COLUMNS) + " |", "|" + "---|" * len(GAN_COLUMNS)]
    for r in rows:
        md.append("| " + " | ".join(_fmt(r.get(k)) for k in GAN_COLUMNS) + " |")
    md += ["", f"Lowest FD: **{best}**." if best else "No model produced an FD.", "",
           "Sample grids: " + ", ".join(f"[{m}](grids/{m}.png)" for m in models) + ", [real](grids/real.png).",
           ""]
    write_text_atomic(exp_dir / "gan.md", "\n".join(md))
    write_text_atomic(exp_dir / "gan_summary.json", json.dumps(
        {"experiment": "gan", "geometry": geometry, "data": str(data), "rows": rows, "best_fd": best, "n_clips": n_clips,
         "total_s": round(time.perf_counter() - t0, 1)}, indent=1, default=str) + "\n")
    log(f"{csv_path}: {len(rows)} rows; table {exp_dir / 'gan.md'}; best FD: {best}")
    return csv_path
