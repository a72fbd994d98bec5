"""The run folder of the training engine: ``run_config.json`` (what a run is, checked on resume) and the
CSV logs + loss-curve PNG (:class:`Logs`).

A folder is a run once it holds a saved training state (``checkpoints/LATEST``). Until then (a command
that failed before its first checkpoint) it may be started again with another preset or store.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pianoforge.errors import ConfigError
from pianoforge.fsutil import write_text_atomic


def has_saved_state(out: Path) -> bool:
    """Whether the run folder holds a resumable training state."""
    return (Path(out) / "checkpoints" / "LATEST").is_file()


def data_identity(data: Path) -> str:
    """What a store holds (its pieces, their splits and lengths), not where it is: a store copied or moved
    elsewhere resumes its runs, another store of the same preset does not."""
    from pianoforge.data.store import FeatureStore

    m = FeatureStore(data).manifest
    pieces = sorted((p["piece_id"], p.get("split"), p.get("n_frames")) for p in m.get("pieces", []))
    return hashlib.sha256(json.dumps([m.get("fingerprint"), pieces]).encode()).hexdigest()[:16]


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def prepare_run(out: Path, kind: str, preset, data: Path, fingerprint: str, settings) -> None:
    """Write ``run_config.json`` for a new run, or check that the run being resumed has the same kind, preset
    and store (a one-line ConfigError naming what differs otherwise)."""
    out = Path(out)
    cfg_path = out / "run_config.json"
    data = Path(data).resolve()
    branch = getattr(settings, "from_state", None)  # LoopSettings.from_state; a sampler fit's settings have none
    run_cfg = json.loads(json.dumps({"kind": kind, "preset": preset.to_dict(), "data": str(data),
                                     "data_fingerprint": fingerprint,
                                     "data_id": data_identity(data)}))  # tuples -> lists, as read back
    if cfg_path.exists() and has_saved_state(out):
        old = json.loads(cfg_path.read_text())
        if old.get("kind", kind) != kind:
            raise ConfigError(out, f"holds a {old.get('kind')} run, not a {kind} run; use a new --out")
        diff = _differences(old.get("preset"), run_cfg["preset"])
        if diff or old.get("data_fingerprint") != fingerprint:
            what = f"another preset (differs in {', '.join(diff[:4])})" if diff else "a store of another geometry"
            raise ConfigError(out, f"holds a run with {what}; rerun it as it was started or use a new --out")
        same_data = old.get("data") == str(data) or old.get("data_id", "") == run_cfg["data_id"]
        if not same_data:
            raise ConfigError(out, f"was trained on store {old.get('data')}, not on --data {data}; resume it with "
                                   "its own store or use a new --out")
        if branch:
            print(f"{out}: resuming its own state; --from-state is only read when a run starts", flush=True)
        return
    if branch:
        run_cfg["branched_from"] = check_branch(Path(branch), run_cfg, settings)
    if cfg_path.exists():
        print(f"{out}: no saved training state yet (an earlier start stopped before its first checkpoint); "
              "starting the run afresh", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cfg_path, json.dumps({**run_cfg, "settings": asdict(settings)}, indent=1))


def check_branch(source: Path, run_cfg: dict[str, Any], settings) -> dict[str, Any]:
    """Check that a new run may start from the training state ``source`` names (``--from-state``): the same
    kind, model section and store geometry as the run that saved it, and something left to train under these
    limits. Returns what ``run_config.json`` records of it. ConfigError / CheckpointError (one line) otherwise.

    The train section may differ: that is the point (e.g. a learning-rate decay from a chosen epoch)."""
    from pianoforge.checkpoint import train_state_folder

    folder = train_state_folder(source)
    try:
        state = json.loads((folder / "state.json").read_text())
        epoch, step = int(state["epoch"]), int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(folder, f"unreadable training state ({' '.join(str(e).split())[:100]})") from e
    src_cfg = folder.parent.parent / "run_config.json"
    if src_cfg.is_file():
        try:
            src = json.loads(src_cfg.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(src_cfg, f"unreadable run config ({' '.join(str(e).split())[:100]})") from e
        if src.get("kind") != run_cfg["kind"]:
            raise ConfigError(source, f"holds a {src.get('kind')} state, not a {run_cfg['kind']} one")
        diff = _differences(src.get("preset", {}).get("model"), run_cfg["preset"].get("model"), "model.")
        if diff:
            raise ConfigError(source, f"was trained with another model section (differs in {', '.join(diff[:4])}); "
                                      "--from-state changes the training, not the model")
        if src.get("data_fingerprint") != run_cfg["data_fingerprint"]:
            raise ConfigError(source, "was trained on a store of another geometry than --data")
    if epoch >= settings.max_epochs or (settings.max_steps is not None and step >= settings.max_steps):
        raise ConfigError(source, f"is at epoch {epoch}, step {step}: nothing left to train under max_epochs="
                                  f"{settings.max_epochs}, max_steps={settings.max_steps}; raise --max-epochs")
    return {"state": str(folder.resolve()), "epoch": epoch, "step": step}


class Logs:
    """CSV logs (train_log.csv every few steps, val_log.csv every epoch) and a loss-curve PNG.

    On resume, rows past the checkpoint's step are dropped so the curve continues without duplicates.
    """

    def __init__(self, run_dir: Path, resume_step: int, resumed: bool) -> None:
        self.run_dir = run_dir
        self.train_path, self.val_path = run_dir / "train_log.csv", run_dir / "val_log.csv"
        for p, key in ((self.train_path, "step"), (self.val_path, "step")):
            if not resumed and p.exists():
                p.unlink()
            elif resumed and p.exists():
                with p.open() as f:
                    rows = list(csv.DictReader(f))
                keep = [r for r in rows if int(float(r[key])) <= resume_step]
                write_rows(p, keep)
        self.tb = None
        try:  # TensorBoard when installed
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception:
            self.tb = None

    def train(self, step: int, epoch: int, elapsed: float, metrics: dict[str, float]) -> None:
        _append(self.train_path, {"step": step, "epoch": epoch, "elapsed_s": round(elapsed, 2),
                                  **{k: round(v, 7) for k, v in metrics.items()}})
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def val(self, row: dict[str, Any]) -> None:
        _append(self.val_path, row)
        if self.tb:
            for k, v in row.items():
                if k not in ("epoch", "step", "elapsed_s"):
                    self.tb.add_scalar(k, v, row["step"])

    def plot(self, monitor: str) -> None:
        from pianoforge.training.plots import loss_curve

        try:
            loss_curve(self.train_path, self.val_path, self.run_dir / "loss_curve.png", monitor)
        except Exception as e:  # a plot must never kill a training run
            print(f"warning: loss curve not drawn ({e})", flush=True)


def _append(path: Path, row: dict[str, Any]) -> None:
    rows = []
    if path.exists():
        with path.open() as f:
            rows = list(csv.DictReader(f))
    if rows and set(row) <= set(rows[0]):
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=list(rows[0])).writerow(row)
        return
    write_rows(path, rows + [row])


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as a CSV file atomically; the header is the union of their keys in first-seen order."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())
