"""Eval report writing: per-system means, per-subset summaries, ``pieces.csv`` text, ``report.md`` text and
the onset-F1 bar chart. Pure functions of the rows :mod:`pianoforge.evaluation.evaluate` measures.

A *row* is one piece x one system: ``{"piece_id", "system", "subset", <metrics>...}``. A *subset* groups
pieces by where they come from (:func:`subset_of`), so a split that mixes music21 works with the test-only
chord-dynamics exercises still reports each part on its own (the music21 part is the test split the
shipped checkpoints were first scored on).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from pianoforge.data.exercises import CHORD_DYNAMICS  # the subset of the test-only chord exercises
from pianoforge.evaluation.metrics import AUDIO_METRICS

SYSTEMS = ("model", "reference", "model-true-phase", "oracle-phase", "oracle-zero-phase")
"""System names, in report order."""
JUDGE_KEYS = ("onset_precision", "onset_recall", "onset_f1", "onoff_precision", "onoff_recall", "onoff_f1",
              "n_ref", "n_est")
SPECTRAL_KEYS = (*AUDIO_METRICS, "lms_mse", "lms_mse_audio")
CSV_COLUMNS = ("piece_id", "system", "subset", "seconds", "n_notes", *SPECTRAL_KEYS, *JUDGE_KEYS, "synth_s",
               "judge_s")

DECOMPOSITION = (
    "The decomposition rows split the model's distance in two. `oracle-phase` is the *true* magnitude through "
    "the model's phase reconstruction: its distance is the phase error alone (the floor of this phase path). "
    "`model-true-phase` is the model's *predicted* magnitude with the reference audio's own STFT phase "
    "(inverse STFT, frames x hop samples): its distance is the network's magnitude error alone. `model` has "
    "both; it is usually worse than either, since an inconsistent magnitude also makes phase reconstruction "
    "worse.")


def subset_of(meta: dict[str, Any]) -> str:
    """The subset of a piece from its store metadata: ``chord-dynamics`` for exercises of that kind,
    ``music21`` for corpus works, else the provenance source (``exercise``, ``midi``, ``maestro``)."""
    prov = meta.get("provenance") or {}
    if prov.get("kind") == CHORD_DYNAMICS:
        return CHORD_DYNAMICS
    return str(prov.get("source") or "other")


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``pieces.csv``: one line per row, the columns of :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def means(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per system (in :data:`SYSTEMS` order): the mean over its rows of each key every row has, and
    ``pieces``."""
    out: dict[str, dict[str, float]] = {}
    for system in SYSTEMS:
        sel = [r for r in rows if r["system"] == system]
        if not sel:
            continue
        out[system] = {k: float(np.mean([r[k] for r in sel])) for k in keys if all(r.get(k) is not None for r in sel)}
        out[system]["pieces"] = len(sel)
    return out


def f1_ratio(systems: dict[str, dict[str, float]]) -> float | None:
    """Mean onset F1 of ``model`` / mean onset F1 of ``reference`` (None without the judge or a zero ceiling)."""
    m, r = systems.get("model", {}).get("onset_f1"), systems.get("reference", {}).get("onset_f1")
    return None if m is None or not r else m / r


def subsets(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per subset present in ``rows``: ``{"pieces": [ids], "systems": means(...), "onset_f1_ratio"}``."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({r["subset"] for r in rows}):
        sel = [r for r in rows if r["subset"] == name]
        systems = means(sel, keys)
        out[name] = {"pieces": sorted({r["piece_id"] for r in sel}), "systems": systems,
                     "onset_f1_ratio": f1_ratio(systems)}
    return out


def bar_chart(path: Path, rows: list[dict[str, Any]], labels: dict[str, str]) -> Path:
    """Mean onset note-F1 per system (bars) with each piece's value (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pianoforge.viz import save_figure

    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, s in enumerate(systems):
        vals = [r["onset_f1"] for r in rows if r["system"] == s]
        ax.bar(i, float(np.mean(vals)), color="C0" if s == "model" else "0.6", width=0.6)
        ax.scatter(i + np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else [i], vals, color="k", s=8, zorder=3)
        ax.text(i, float(np.mean(vals)) + 0.02, f"{np.mean(vals):.3f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(systems)), [labels[s] for s in systems], rotation=12)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("onset note-F1 (basic-pitch)")
    ax.set_title("judge: onset note-F1 per system (bars: mean; dots: pieces)")
    return save_figure(fig, path)


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _systems_table(systems: dict[str, dict[str, float]], labels: dict[str, str], judged: bool) -> list[str]:
    head = ["system"] + (["onset F1", "on+off F1"] if judged else []) + \
        ["LSD (dB)", "SC", "MR-STFT", "MSE", "LMS MSE", "LMS MSE (audio)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, m in systems.items():
        cells = [labels[s]]
        if judged:
            cells += [_fmt(m.get("onset_f1"), ".3f"), _fmt(m.get("onoff_f1"), ".3f")]
        cells += [_fmt(m.get("lsd_db"), ".2f"), _fmt(m.get("sc"), ".3f"), _fmt(m.get("mrstft"), ".3f"),
                  _fmt(m.get("mse"), ".2e"), _fmt(m.get("lms_mse"), ".4f"), _fmt(m.get("lms_mse_audio"), ".4f")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _subsets_table(subs: dict[str, dict[str, Any]], judged: bool) -> list[str]:
    head = ["subset", "pieces", "model LSD", "model + true phase LSD", "oracle-phase LSD"] + \
        (["model F1", "reference F1", "F1 ratio"] if judged else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, sub in subs.items():
        s = sub["systems"]

        def get(system: str, key: str, s=s) -> float | None:
            return s.get(system, {}).get(key)

        cells = [name, str(len(sub["pieces"])), _fmt(get("model", "lsd_db"), ".2f"),
                 _fmt(get("model-true-phase", "lsd_db"), ".2f"), _fmt(get("oracle-phase", "lsd_db"), ".2f")]
        if judged:
            cells += [_fmt(get("model", "onset_f1"), ".3f"), _fmt(get("reference", "onset_f1"), ".3f"),
                      _fmt(sub["onset_f1_ratio"], ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_md(result: dict[str, Any], labels: dict[str, str], figures: dict[str, str]) -> str:
    """``report.md`` from the ``metrics.json`` content ``result``."""
    cfg = result["config"]
    lines = [f"# Evaluation: `{Path(result['checkpoint']).name}` on `{result['data']}` ({result['split']})", "",
             f"{result['n_pieces']} pieces, {result['timing']['audio_s'] / 60:.1f} min of audio; preset "
             f"{cfg['preset']}, {cfg['audio']['sample_rate']} Hz; phase {cfg['phase']} "
             f"({cfg['iterations']} iterations); oracle phase {cfg['oracle_phase']}.", ""]
    judged = cfg["judge"] is not None
    lines += _systems_table(result["systems"], labels, judged)
    lines += ["", "Means over pieces. Distances are against the reference audio (0 = identical). LMS MSE: "
              "per-bin z-scored log-magnitude MSE (the paper reports 0.0031 / 0.0062) of the system's "
              "spectrogram vs the stored one; \"(audio)\" compares the re-analysed audio actually produced with the "
              "re-analysed reference audio, so it includes what phase reconstruction loses.", "", DECOMPOSITION]
    if judged:
        ratio = result.get("onset_f1_ratio")
        lines += ["", "The judge (basic-pitch, onset tolerance 50 ms) is not perfect: the reference row is the "
                  "ceiling on this material; compare the model with it, not with 1.0"
                  + (f" (onset F1 ratio model / reference: {ratio:.3f})." if ratio is not None else ".")]
    subs = result.get("subsets") or {}
    if len(subs) > 1 or CHORD_DYNAMICS in subs:
        lines += ["", "## Subsets", "", *_subsets_table(subs, judged), "",
                  f"`music21`: the corpus works of the split; `{CHORD_DYNAMICS}`: the test-only block-chord "
                  "velocity-sweep exercises (two hands, velocity 16–126, staccato to 1.5 s, some pedalled)."]
    t = result["timing"]
    lines += ["", f"Timing: {t['total_s']:.1f} s in all; model render {t['model_render_s']:.1f} s "
              f"({t['model_realtime_factor']:.1f}x real time); judge {t['judge_s']:.1f} s"
              + (f" (of which the model-true-phase row {t['true_phase_judge_s']:.1f} s)"
                 if t.get("true_phase_judge_s") else "") + ".", ""]
    if result["skipped"]:
        lines += [f"Skipped {len(result['skipped'])} piece(s):", ""]
        lines += [f"- {s['piece_id']}: {s['reason']}" for s in result["skipped"]] + [""]
    for title, name in figures.items():
        lines += [f"![{title}]({name})", ""]
    return "\n".join(lines)
