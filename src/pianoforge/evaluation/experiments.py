"""The papers' experiments at a CPU-friendly scale: ``pianoforge experiment NAME``.

Each experiment trains a few *variants* of a preset with the same fixed seed and the same budget (a wall
time per variant and a maximum number of epochs, whichever comes first; early stopping off), reads every
run's validation curve (``val_log.csv``) and writes, under ``OUT/NAME/``:

- ``NAME.csv``: one row per variant x validated epoch: ``experiment, variant, epoch, step, elapsed_s,
  val_lms, val_loss`` (``val_lms`` is the per-bin normalized LMS MSE on the validation split, computed for
  every variant whatever its training loss or output, so curves are comparable);
- ``NAME.png``: the paper's figure: validation LMS error against epochs (left) and wall time (right);
- ``NAME.md``: per variant: parameters, epochs, steps, wall time, final and best validation LMS, and the
  epoch and time at which it first reached the *common level* (the worst of the variants' best errors,
  a level every variant reached), which is how "converges N x faster" is measured;
- ``runs/<variant>/``: the training run folders (logs, ``best.safetensors``); a finished run with the same
  preset, data and budget is reused, an unfinished one is trained again from scratch (so each variant gets
  its budget uninterrupted);
- ``compare`` only: ``eval/<variant>/`` (:func:`~pianoforge.evaluation.evaluate.evaluate_checkpoint` on the
  test split), ``compare_metrics.csv`` and the metric table in ``compare.md``.

==============  =====================================================================================
experiment      variants (all on ``lan2018-baseline`` = 2 x BiGRU(128), the paper's section-5 default,
                unless said otherwise)
==============  =====================================================================================
``loss``        ``time_mse`` (output ``time``: 400 samples per frame, the paper's time-domain baseline),
                ``lms`` (output ``logmag``), ``mrstft`` (output ``time``, so only the loss differs from
                the time-domain baseline)
``batch``       mini-batch 8, 32, 128 (Figure 3a)
``layers``      1 to 5 bidirectional GRU layers (Figure 3b)
``cell``        GRU vs LSTM (Figure 3c)
``duration``    training examples of 1, 2, 4, 8 s (Figure 3d; validation keeps the store's 4 s windows)
``compare``     presets ``lan2018-baseline``, ``lan2018`` (8 kHz store) and ``default`` (16 kHz store),
                then every metric of ``pianoforge eval`` on the held-out test split
==============  =====================================================================================

Data: the first ``limit_works`` works of the embedded corpus (and their share of the exercises), built
once per geometry under ``data_root`` and shared by all experiments (``lan2018`` geometry; ``compare``
also the ``default`` geometry, from the same pieces and the same split). This module may import training
(experiments train models); inference never does.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pianoforge.config import Preset, load_preset
from pianoforge.errors import ConfigError, PianoforgeError
from pianoforge.fsutil import write_text_atomic

GEOMETRIES = ("lan2018", "default")
"""Dataset geometries (preset names whose audio/score/data sections build a store)."""
NO_EARLY_STOP = 10**9
CURVE_COLUMNS = ("experiment", "variant", "epoch", "step", "elapsed_s", "val_lms", "val_loss")
COMPARE_METRICS = ("lms_mse", "lms_mse_audio", "mse", "sc", "lsd_db", "mrstft", "onset_f1", "onoff_f1")


@dataclass(frozen=True)
class Variant:
    """One training run of an experiment: a base preset, overrides, and the store geometry it trains on."""

    name: str
    preset: str
    overrides: tuple[str, ...] = ()
    geometry: str = "lan2018"
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # what the paper reports, for the summary
    variants: tuple[Variant, ...]


@dataclass
class Budget:
    """What every variant of an experiment gets, and the data it is trained on."""

    minutes: float | None = 10.0  # wall-clock training time per variant (None: epochs only)
    max_epochs: int = 300  # the paper's Figure 3 runs are 300 epochs
    limit_works: int = 16  # embedded-corpus works in the experiment data (plus limit // 4 exercises)
    seed: int = 0
    overrides: tuple[str, ...] = ()  # ``section.key=value`` applied to every variant (before its own)
    workers: int = 1  # dataset build processes
    threads: int | None = None  # torch CPU threads (None: torch's choice / OMP_NUM_THREADS)
    judge: bool = True  # compare: basic-pitch note scores
    eval_limit: int | None = None  # compare: only the first N test pieces
    progress: bool = True

    def describe(self) -> str:
        t = f"{self.minutes:g} min or " if self.minutes is not None else ""
        return f"{t}{self.max_epochs} epochs per variant, seed {self.seed}"


_BASE = "lan2018-baseline"


def _loss_variants() -> tuple[Variant, ...]:
    return (
        Variant("time_mse", _BASE, ("model.output=time", "train.losses={time_mse: 1.0}"),
                note="waveform MSE, output = 400 samples per 50 ms frame"),
        Variant("lms", _BASE, ("train.losses={lms: 1.0}",), note="log-magnitude spectrogram MSE"),
        Variant("mrstft", _BASE, ("model.output=time", "train.losses={mrstft: 1.0}"),
                note="multi-resolution STFT loss on the same time-domain output"),
    )


EXPERIMENTS: dict[str, Experiment] = {
    "loss": Experiment(
        "loss", "Loss study: time-domain MSE vs LMS MSE vs multi-resolution STFT",
        "LMS MSE reached in ~100 epochs what time-domain MSE reached in ~1000 (about 10x faster)",
        _loss_variants()),
    "batch": Experiment(
        "batch", "Figure 3a: mini-batch size", "mini-batch 8 gave the lowest MSE over 300 epochs",
        tuple(Variant(f"batch{b}", _BASE, (f"train.batch_size={b}",)) for b in (8, 32, 128))),
    "layers": Experiment(
        "layers", "Figure 3b: number of RNN layers",
        "5 layers gave the lowest MSE over 300 epochs, barely better than 3 and 4 (by 0.002)",
        tuple(Variant(f"{n}-layer", _BASE, (f"model.rnn_layers={n}",)) for n in (1, 2, 3, 4, 5))),
    "cell": Experiment(
        "cell", "Figure 3c: RNN cell type", "GRU cells beat LSTM cells over 300 epochs",
        tuple(Variant(c, _BASE, (f"model.rnn={c}",)) for c in ("gru", "lstm"))),
    "duration": Experiment(
        "duration", "Figure 3d: example duration",
        "little difference in MSE between durations, some in early training speed",
        tuple(Variant(f"{s:g}s", _BASE, (f"data.example_seconds={s}",)) for s in (1.0, 2.0, 4.0, 8.0))),
    "compare": Experiment(
        "compare", "Presets compared: lan2018-baseline vs lan2018 vs default",
        "the final design (4 dense + 1 BiGRU(200)) improved on the 2 x BiGRU(128) default",
        (Variant("lan2018-baseline", "lan2018-baseline"), Variant("lan2018", "lan2018"),
         Variant("default", "default", geometry="default"))),
}
"""Every experiment, by name."""


def experiment_names() -> list[str]:
    return list(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (a :class:`ConfigError` naming the known ones otherwise)."""
    if name not in EXPERIMENTS:
        raise ConfigError(None, f"unknown experiment {name!r} (one of {', '.join([*EXPERIMENTS, 'gan'])})")
    return EXPERIMENTS[name]


def variants(name: str) -> list[Variant]:
    """The variants of experiment ``name``, in plotting order."""
    return list(get_experiment(name).variants)


def variant_preset(variant: Variant, budget: Budget) -> Preset:
    """The full preset a variant trains with: base, the budget's overrides, the variant's, no early stop."""
    return load_preset(variant.preset, [*budget.overrides, *variant.overrides,
                                        f"train.early_stop_patience={NO_EARLY_STOP}"])


# ---------------------------------------------------------------------------------------------- data

def experiment_data(data_root: str | Path, geometry: str, limit_works: int, workers: int = 1,
                    progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Build (once; later calls are no-ops) the experiment store of ``geometry`` from the first
    ``limit_works`` works of the embedded corpus. Returns the store folder ``data_root/GEOMETRY-worksK``."""
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect

    if geometry not in GEOMETRIES:
        raise ConfigError(None, f"unknown data geometry {geometry!r} (one of {', '.join(GEOMETRIES)})")
    if limit_works < 3:
        raise ConfigError(None, f"--limit-works must be at least 3 (train, validation and test pieces), got {limit_works}")
    out = Path(data_root) / f"{geometry}-works{limit_works}"
    preset = load_preset(geometry)
    t0 = time.perf_counter()
    specs, failures = collect("corpus", None, limit=limit_works, workers=workers, progress=progress)
    rep = build(specs, out, preset, workers=workers, progress=progress, listing_failures=failures,
                source_info={"kind": "corpus", "input": None, "limit": limit_works, "by": "experiments"})
    splits = rep.manifest["splits"]
    what = "up to date" if rep.up_to_date else f"built in {time.perf_counter() - t0:.0f} s"
    log(f"data {out}: {what}; " + ", ".join(f"{sp} {v['pieces']} pieces {v['seconds'] / 60:.1f} min"
                                            for sp, v in splits.items()))
    return out


# ------------------------------------------------------------------------------------------ training

def _run_key(variant: Variant, preset: Preset, budget: Budget, store: Path) -> dict[str, Any]:
    from pianoforge.data.store import FeatureStore

    m = FeatureStore(store).manifest
    return json.loads(json.dumps({
        "variant": variant.name, "preset": preset.to_dict(), "minutes": budget.minutes,
        "max_epochs": budget.max_epochs, "seed": budget.seed, "data_fingerprint": m["fingerprint"],
        "source_digest": m.get("source_digest"), "data": str(Path(store).resolve())}))


def read_val_curve(run_dir: Path) -> list[dict[str, float]]:
    """``val_log.csv`` of a run as floats (``epoch``, ``step``, ``elapsed_s``, ``val/lms``, ``val/loss``...)."""
    path = Path(run_dir) / "val_log.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def train_variant(variant: Variant, store: Path, run_dir: Path, budget: Budget,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one variant with the budget (or reuse a finished identical run). Returns its record:
    ``variant, preset, params, batch_size, summary, curve`` (the validation rows), ``reused``."""
    from pianoforge.models.perform import build_perform_model
    from pianoforge.training.loop import LoopSettings
    from pianoforge.training.perform import train_perform

    preset = variant_preset(variant, budget)
    key = _run_key(variant, preset, budget, store)
    key_path = run_dir / "experiment.json"
    reused = False
    if (run_dir / "summary.json").exists() and key_path.exists() and json.loads(key_path.read_text()) == key:
        reused = True
    else:
        if run_dir.exists():  # another budget or an interrupted run: start again, uninterrupted
            log(f"  {run_dir}: unfinished or made with another budget/preset/data; training again from scratch")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        write_text_atomic(key_path, json.dumps(key, indent=1) + "\n")
        settings = LoopSettings(max_epochs=budget.max_epochs, max_minutes=budget.minutes, seed=budget.seed,
                                batch_size=int(preset.train.get("batch_size", 16)), ckpt_every_steps=10**9,
                                progress=budget.progress, early_stop_patience=NO_EARLY_STOP)
        train_perform(Path(store), preset, run_dir, settings)
    summary = json.loads((run_dir / "summary.json").read_text())
    params = build_perform_model(preset.model, preset.audio, preset.score.n_channels).num_parameters()
    return {"variant": variant.name, "preset": preset, "params": params,
            "batch_size": int(preset.train.get("batch_size", 16)), "summary": summary,
            "curve": read_val_curve(run_dir), "reused": reused, "run_dir": run_dir}


# ------------------------------------------------------------------------------------------- results

def curve_rows(experiment: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant x validated epoch (see :data:`CURVE_COLUMNS`)."""
    rows = []
    for rec in records:
        for r in rec["curve"]:
            rows.append({"experiment": experiment, "variant": rec["variant"], "epoch": int(r["epoch"]),
                         "step": int(r["step"]), "elapsed_s": r["elapsed_s"], "val_lms": r.get("val/lms"),
                         "val_loss": r.get("val/loss")})
    return rows


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)) for k, v in r.items()})
    return buf.getvalue()


def reach(curve: Sequence[Mapping[str, float]], level: float) -> tuple[int, float] | None:
    """(epoch, elapsed seconds) of the first validation with ``val/lms <= level``, or None."""
    for r in curve:
        v = r.get("val/lms")
        if v is not None and v <= level:
            return int(r["epoch"]), float(r["elapsed_s"])
    return None


def summarize(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
    """Per-variant summary rows and the common level (the worst of the variants' best val LMS)."""
    bests = [min(r["val/lms"] for r in rec["curve"] if "val/lms" in r) for rec in records
             if any("val/lms" in r for r in rec["curve"])]
    level = max(bests) if bests else None
    rows = []
    for rec in records:
        c = [r for r in rec["curve"] if "val/lms" in r]
        s = rec["summary"]
        row: dict[str, Any] = {"variant": rec["variant"], "params": rec["params"], "batch_size": rec["batch_size"],
                               "epochs": s.get("epochs"), "steps": s.get("steps"), "wall_s": s.get("elapsed_s"),
                               "stop": s.get("stop_reason"), "final_val_lms": c[-1]["val/lms"] if c else None,
                               "best_val_lms": min(r["val/lms"] for r in c) if c else None,
                               "s_per_epoch": c[-1]["elapsed_s"] / c[-1]["epoch"] if c else None}
        hit = reach(c, level) if level is not None else None
        row["reach_epoch"], row["reach_s"] = hit if hit else (None, None)
        rows.append(row)
    return rows, level


def _f(v: Any, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, int) and not isinstance(v, bool) and spec == ".4g":
        return f"{v:,}"
    return format(v, spec) if isinstance(v, int | float) else str(v)


def _summary_md(exp: Experiment, budget: Budget, rows: Sequence[Mapping[str, Any]], level: float | None,
                data: Mapping[str, Path], data_note: str, notes: Mapping[str, str]) -> str:
    lines = [f"# {exp.title}", "",
             f"Budget: {budget.describe()} (early stopping off); data: "
             + ", ".join(f"`{p}`" for p in data.values()) + f" ({data_note}).",
             *([f"Overrides in every variant: `{' '.join(budget.overrides)}`."] if budget.overrides else []),
             f"The paper: {exp.claim}.", "",
             "Validation LMS = MSE of per-bin normalized log-magnitude on the validation split (all variants). "
             f"Common level L = the worst of the variants' best validation LMS = {_f(level)}.", "",
             "| variant | params | batch | epochs | steps | wall s | s/epoch | final val LMS | best val LMS | "
             "epoch at L | s at L | stop |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {_f(r['params'])} | {r['batch_size']} | {_f(r['epochs'])} | {_f(r['steps'])} | "
                     f"{_f(r['wall_s'], '.0f')} | {_f(r['s_per_epoch'], '.2f')} | {_f(r['final_val_lms'])} | "
                     f"{_f(r['best_val_lms'])} | {_f(r['reach_epoch'])} | {_f(r['reach_s'], '.0f')} | "
                     f"{r['stop'] or '—'} |")
    described = [f"- `{k}`: {v}" for k, v in notes.items() if v]
    if described:
        lines += ["", *described]
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, title: str, records: Sequence[dict[str, Any]]) -> Path:
    """The experiment figure: validation LMS against epochs (left) and wall time (right), log scale."""
    from pianoforge.viz import _plt, save_figure

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for rec in records:
        c = [r for r in rec["curve"] if "val/lms" in r]
        if not c:
            continue
        y = [r["val/lms"] for r in c]
        axes[0].plot([r["epoch"] for r in c], y, "-", marker="." if len(c) < 40 else None, lw=1.3,
                     label=rec["variant"])
        axes[1].plot([r["elapsed_s"] / 60 for r in c], y, "-", marker="." if len(c) < 40 else None, lw=1.3,
                     label=rec["variant"])
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("wall time (min)")
    axes[0].set_ylabel("validation LMS MSE (normalized)")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------- compare

def _compare(exp_dir: Path, records: Sequence[dict[str, Any]], stores: Mapping[str, Path], budget: Budget,
             variant_by_name: Mapping[str, Variant], log: Callable[[str], None]) -> tuple[list[dict[str, Any]], str]:
    """Evaluate every variant's best checkpoint on the test split; (metric rows, markdown table)."""
    from pianoforge.evaluation.evaluate import evaluate_checkpoint

    rows = []
    for rec in records:
        v = variant_by_name[rec["variant"]]
        log(f"[compare] evaluating {v.name} on the test split of {stores[v.geometry]}")
        res = evaluate_checkpoint(rec["run_dir"] / "best.safetensors", stores[v.geometry], "test",
                                  exp_dir / "eval" / v.name, limit=budget.eval_limit, judge=budget.judge,
                                  progress=budget.progress)
        m, ref = res["systems"]["model"], res["systems"].get("reference", {})
        a = rec["preset"].audio
        rows.append({"variant": v.name, "geometry": f"{a.sample_rate // 1000} kHz, hop {a.hop_length}",
                     "params": rec["params"], "epochs": rec["summary"].get("epochs"),
                     "train_s": rec["summary"].get("elapsed_s"),
                     "best_val_lms": min((r["val/lms"] for r in rec["curve"] if "val/lms" in r), default=None),
                     "test_pieces": res["n_pieces"], "phase": res["config"]["phase"],
                     **{k: m.get(k) for k in COMPARE_METRICS},
                     "reference_onset_f1": ref.get("onset_f1"),
                     "realtime_factor": res["timing"]["model_realtime_factor"]})
    cols = ["variant", "geometry", "params", "epochs", "train_s", "best_val_lms", "test_pieces", "phase",
            *COMPARE_METRICS, "reference_onset_f1", "realtime_factor"]
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        md.append("| " + " | ".join(_f(r[c]) if not isinstance(r[c], str) else r[c] for c in cols) + " |")
    write_text_atomic(exp_dir / "compare_metrics.csv", _csv_text(rows, cols))
    note = ("\nTest split, each checkpoint with its own phase reconstruction. `lms_mse` is normalized by each "
            "store's own per-bin statistics and `lsd_db`/`sc`/`mrstft`/`mse` are measured at each geometry's "
            "sample rate, so across geometries only the judge's note scores (`onset_f1`, `onoff_f1`, against "
            "the score) compare like with like; `reference_onset_f1` is the ceiling the transcriber allows.\n")
    return rows, "\n".join(md) + "\n" + note


# ------------------------------------------------------------------------------------------------ run

def run_experiment(name: str, out_dir: str | Path, data_root: str | Path, budget: Budget | None = None,
                   stores: Mapping[str, str | Path] | None = None, log: Callable[[str], None] = print) -> Path:
    """Run experiment ``name`` (see the module docstring) into ``out_dir/name/``; returns ``NAME.csv``.

    ``stores`` maps a geometry (``lan2018``, ``default``) to an existing store to use instead of building
    the corpus subset under ``data_root``. Raises :class:`ConfigError` for an unknown name, and, after writing
    the results of the others, :class:`PianoforgeError` naming the variants that failed.
    """
    import torch

    from pianoforge.data.store import FeatureStore
    from pianoforge.training.perform import check_store

    exp = get_experiment(name)
    budget = budget or Budget()
    if budget.threads:
        torch.set_num_threads(int(budget.threads))
    exp_dir = Path(out_dir) / name
    given = {k: Path(v) for k, v in (stores or {}).items()}
    needed: list[str] = []
    for v in exp.variants:
        if v.geometry not in needed:
            needed.append(v.geometry)
    for g, path in given.items():  # fail early, in one line, on a missing or foreign store
        check_store(FeatureStore(path), load_preset(g))
    exp_dir.mkdir(parents=True, exist_ok=True)
    built = f"the first {budget.limit_works} embedded-corpus works and their exercises"
    if not set(needed) & set(given):
        data_note = built
    elif set(needed) <= set(given):
        data_note = "given store" + ("s" if len(needed) > 1 else "")
    else:
        data_note = "; ".join(f"{g}: {'given store' if g in given else built}" for g in needed)
    data: dict[str, Path] = {}
    for g in needed:
        data[g] = given[g] if g in given else experiment_data(data_root, g, budget.limit_works, budget.workers,
                                                               budget.progress, log)
    log(f"experiment {name}: {exp.title}; {len(exp.variants)} variants, {budget.describe()}")
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for i, v in enumerate(exp.variants, 1):
        log(f"[{name} {i}/{len(exp.variants)}] {v.name}: preset {v.preset} "
            f"{' '.join(v.overrides) or '(as shipped)'} on {data[v.geometry]}")
        try:
            rec = train_variant(v, data[v.geometry], exp_dir / "runs" / v.name, budget, log)
        except (ValueError, PianoforgeError) as e:  # e.g. too few examples for the batch size
            failed[v.name] = str(e).splitlines()[0]
            log(f"[{name} {i}/{len(exp.variants)}] {v.name} FAILED: {failed[v.name]}")
            continue
        s = rec["summary"]
        log(f"[{name} {i}/{len(exp.variants)}] {v.name}: {'reused; ' if rec['reused'] else ''}{s['epochs']} epochs "
            f"in {s['elapsed_s']:.0f} s; best val/loss {s['best']}")
        records.append(rec)
    if not records:
        raise PianoforgeError(exp_dir, f"every variant failed ({'; '.join(f'{k}: {e}' for k, e in failed.items())})")

    csv_path = exp_dir / f"{name}.csv"
    write_text_atomic(csv_path, _csv_text(curve_rows(name, records), CURVE_COLUMNS))
    png = plot_curves(exp_dir / f"{name}.png", f"{exp.title}\n({budget.describe()}; data: {data_note})", records)
    rows, level = summarize(records)
    notes = {v.name: v.note for v in exp.variants}
    notes.update({k: f"FAILED: {e}" for k, e in failed.items()})
    md = _summary_md(exp, budget, rows, level, data, data_note, notes)
    if name == "compare":
        _, table = _compare(exp_dir, records, data, budget, {v.name: v for v in exp.variants}, log)
        md += "\n## Test-split metrics\n\n" + table
    write_text_atomic(exp_dir / f"{name}.md", md)
    write_text_atomic(exp_dir / f"{name}_summary.json", json.dumps(
        {"experiment": name, "budget": asdict(budget), "level": level, "variants": rows, "failed": failed,
         "data": {k: str(p) for k, p in data.items()}, "total_s": round(time.perf_counter() - t0, 1)},
        indent=1, default=str) + "\n")
    log(f"{csv_path}: {sum(len(r['curve']) for r in records)} rows; figure {png}; summary {exp_dir / (name + '.md')}")
    if failed:  # the others' results are written; the command still fails (non-zero exit), naming them
        raise PianoforgeError(exp_dir, f"{len(failed)} of {len(exp.variants)} variants failed "
                                       f"({'; '.join(f'{k}: {e}' for k, e in failed.items())}); results of the "
                                       f"others in {csv_path}")
    return csv_path
