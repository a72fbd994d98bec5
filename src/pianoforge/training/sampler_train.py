"""``pianoforge train perform`` for a ``model.head: sampler`` preset: the alternating least-squares fit of
:mod:`pianoforge.training.sampler_fit` on a store's train split, its log, checkpoint and summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.models.sampler import NoteSampler
from pianoforge.training.sampler_fit import SamplerFit, load_pieces
from pianoforge.training.sampler_late import SubFundamentalProjection, monotone_late


@dataclass(frozen=True)
class SamplerSettings:
    """What a fit runs, recorded in ``run_config.json``: alternation rounds, CG iterations per round, the
    monotone late part (seconds, 0: off; largest rise per frame), the loss's loudness weight (power, 0: the
    plain squared error; floor, a fraction of a piece's mean power), the waveforms' late part kept free of
    energy under the key's fundamental (seconds, 0: off; the band edge as a fraction of the fundamental)."""

    rounds: int
    iterations: int
    monotone_after: float = 0.0
    monotone_rise: float = 1.0
    weight_power: float = 0.0
    weight_floor: float = 1e-3
    subf0_after: float = 0.0
    subf0_ratio: float = 0.8


def train_sampler(data, preset, out, progress: bool = True) -> dict[str, Any]:
    """``pianoforge train perform`` for a ``model.head: sampler`` preset: fit on the store's train split, log
    each step's train/validation audio error to ``train_log.csv``, write ``best.safetensors`` (float16
    waveforms; the full preset and the store's identity inside) and ``summary.json``.

    A fit is deterministic and takes minutes, so there is no intermediate state: an interrupted run starts
    again from the beginning; a finished one (``summary.json`` with ``status: complete``) is a no-op. A
    non-finite parameter after any step stops the run with :class:`TrainingError` and writes no checkpoint.
    """
    import json
    from pathlib import Path

    from pianoforge.checkpoint import save_checkpoint_numpy
    from pianoforge.errors import ConfigError, TrainingError
    from pianoforge.fsutil import write_text_atomic
    from pianoforge.models.perform_config import PerformModelConfig
    from pianoforge.training.config import perform_train_config
    from pianoforge.training.perform import check_store
    from pianoforge.training.run_folder import prepare_run, write_rows

    out = Path(out)
    store = FeatureStore(data)
    check_store(store, preset)
    tr = perform_train_config(preset)
    rounds, iterations = int(tr.extra["sampler_rounds"]), int(tr.extra["sampler_iterations"])
    mono_after, mono_rise = float(tr.extra["sampler_monotone_after"]), float(tr.extra["sampler_monotone_rise"])
    w_power, w_floor = float(tr.extra["sampler_weight_power"]), float(tr.extra["sampler_weight_floor"])
    sub_after, sub_ratio = float(tr.extra["sampler_subf0_after"]), float(tr.extra["sampler_subf0_ratio"])
    mc = PerformModelConfig.from_dict({**preset.model, "in_channels": preset.score.n_channels})
    if mc.head != "sampler":
        raise TrainingError(None, f"preset {preset.name} has model.head {mc.head}, not sampler")
    table_s = float(mc.sampler_config.seconds)
    if rounds < 1 or iterations < 1 or not (np.isfinite(mono_after) and mono_after >= 0) \
            or not (np.isfinite(mono_rise) and mono_rise >= 1.0) or not (0.0 <= w_power <= 2.0) \
            or not (0.0 < w_floor <= 1.0) or not (np.isfinite(sub_after) and 0.0 <= sub_after < table_s - 0.1) \
            or not (0.0 < sub_ratio <= 1.5):
        raise ConfigError(f"preset {preset.name}", "train.sampler_rounds and sampler_iterations must be >= 1, "
                          "sampler_monotone_after >= 0 (seconds), sampler_monotone_rise >= 1, "
                          "sampler_weight_power in [0, 2], sampler_weight_floor in (0, 1], "
                          "sampler_subf0_after >= 0 and 0.1 s inside the waveform table, "
                          "sampler_subf0_ratio in (0, 1.5]")
    summary_path = out / "summary.json"
    if summary_path.is_file():
        old = json.loads(summary_path.read_text())
        if old.get("status") == "complete" and old.get("preset") == json.loads(json.dumps(preset.to_dict())):
            print(f"[train] {out}: this sampler fit is complete (summary.json); nothing to do", flush=True)
            return {**old, "already_finished": True}
    # a fit keeps no resumable state, so this always writes a fresh run_config.json
    prepare_run(out, "perform", preset, Path(data), store.manifest["fingerprint"],
                SamplerSettings(rounds, iterations, mono_after, mono_rise, w_power, w_floor, sub_after, sub_ratio))
    model = NoteSampler.empty(mc.sampler_config, preset.audio)
    model.cfg = mc
    say = (lambda s: print(f"[train] {s}", flush=True)) if progress else (lambda s: None)
    train = load_pieces(store, "train", model, w_power, w_floor)
    valid = load_pieces(store, "validation", model)
    say(f"sampler fit on {len(train)} training pieces ({sum(len(p.audio) for p in train) / preset.audio.sample_rate / 60:.1f} "
        f"min), {len(valid)} validation pieces; {rounds} rounds of {iterations} CG iterations"
        + (f"; loss weighted by the local power ** -{w_power:g} (floor {w_floor:g})" if w_power else "")
        + (f"; no energy under {sub_ratio:g} x f0 after {sub_after:g} s" if sub_after else ""))
    rows: list[dict[str, Any]] = []

    def check(step: str) -> None:
        bad = [k for k, v in model.params().items() if not np.isfinite(v).all()]
        if bad:
            write_rows(out / "train_log.csv", rows)
            raise TrainingError(out, f"the sampler fit went non-finite at {step} ({bad[0]}); no checkpoint written")

    fit = SamplerFit(model, train)
    project = SubFundamentalProjection(model.lengths["waves"], preset.audio.sample_rate, sub_after, sub_ratio) \
        if sub_after > 0 else None
    t0 = time.perf_counter()

    def record(round_no: int, step: str, what: str) -> None:
        """Check the parameters after a step, log both audio errors (train_log.csv and a line)."""
        check(what)
        row = {"round": round_no, "step": step, "train_error": fit.error(),
               "valid_error": fit.error(valid) if valid else float("nan"), "seconds": time.perf_counter() - t0}
        rows.append(row)
        write_rows(out / "train_log.csv", rows)
        say(f"{what}: train error {row['train_error']:.4f}, validation error {row['valid_error']:.4f} "
            f"({row['seconds']:.0f} s)")

    for r in range(rounds):
        for step, fn in (("waves", lambda: fit.fit_waves(iterations, say, project)), ("velocity", fit.fit_curves),
                         ("release", fit.fit_release)):
            fn()
            record(r + 1, step, f"round {r + 1} {step}")
    if mono_after > 0:
        model.waves = monotone_late(model.waves, preset.audio.sample_rate, mono_after, mono_rise)
        record(rounds, "monotone", f"monotone late part after {mono_after} s (rise {mono_rise})")
    cfg = {"preset": preset.to_dict(), "model": mc.to_dict(), "data": str(store.root),
           "data_fingerprint": store.manifest["fingerprint"], "data_licences": store.manifest.get("licences", [])}
    tensors = {k: np.asarray(v, np.float16 if k in ("waves", "timbre") else np.float32)
               for k, v in model.params().items()}
    save_checkpoint_numpy(out / "best.safetensors", tensors, kind="perform", config=cfg)
    summary = {"status": "complete", "kind": "sampler", "preset": preset.to_dict(), "rounds": rounds, "iterations": iterations,
               "train_error": rows[-1]["train_error"], "valid_error": rows[-1]["valid_error"],
               "seconds": time.perf_counter() - t0, "log": rows}
    write_text_atomic(summary_path, json.dumps(summary, indent=1))
    return summary
