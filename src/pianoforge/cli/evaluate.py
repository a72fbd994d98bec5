"""``pianoforge judge``, ``eval`` (perform and gan) and ``experiment``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pianoforge import cliargs
from pianoforge.cli.common import add_strike_rule_args, fatal
from pianoforge.names import INFERENCE_PHASES


def add_judge(sub: argparse._SubParsersAction) -> None:
    jg = sub.add_parser("judge", help="transcribe audio with basic-pitch and score it against MIDI",
                        description="For each MIDI_DIR/<stem>.mid with an AUDIO_DIR/<stem>.wav: transcribe the "
                                    "audio (basic-pitch) and print note precision/recall/F1 (mir_eval).")
    jg.add_argument("--audio", type=Path, required=True, help="folder of <stem>.wav files")
    jg.add_argument("--midi", type=Path, required=True, help="folder of <stem>.mid reference scores")
    jg.add_argument("--out", type=Path, help="also write every score as JSON here")
    jg.add_argument("-f", "--force", action="store_true", help="overwrite an existing --out file")
    jg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    jg.set_defaults(func=cmd_judge)


def add_eval(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate a perform (default) or GAN checkpoint on a dataset split",
                        description="perform: render every piece of a split, compare with the stored reference "
                                    "(spectral metrics, LMS MSE, basic-pitch judge, oracle phase rows), write a "
                                    "report. gan (`pianoforge eval gan ...`): generated vs real held-out clips "
                                    "(Fréchet distance in a fixed log-mel feature space, diversity, NDB, musical "
                                    "statistics of transcriptions), write a report.")
    ev.add_argument("target", nargs="?", choices=["perform", "gan"], default="perform",
                    help="what the checkpoint holds (default perform)")
    ev.add_argument("--checkpoint", required=True, help="perform or GAN checkpoint (.safetensors)")
    ev.add_argument("--data", type=Path, required=True, help="dataset store built with the checkpoint's preset")
    ev.add_argument("--split", default="test", help="split to evaluate (default test)")
    ev.add_argument("--out", type=Path, required=True, help="report folder (metrics.json, pieces.csv, report.md)")
    ev.add_argument("--limit", type=int, help="only the first N pieces of the split")
    ev.add_argument("--phase", choices=INFERENCE_PHASES,
                    help="phase reconstruction (default: the checkpoint's)")
    ev.add_argument("--iterations", type=int, help="Griffin-Lim iterations (default: the checkpoint's)")
    ev.add_argument("--no-judge", action="store_true", help="skip the basic-pitch transcription scores")
    ev.add_argument("-n", "--n", type=int, default=64, help="gan: generated clips, and real clips at most (default 64)")
    ev.add_argument("--seed", type=int, default=0, help="gan: seed of the first generated clip (default 0)")
    ev.add_argument("--denoise", action="store_true", help="gan: noise-reduce the generated clips")
    add_strike_rule_args(ev)
    ev.add_argument("--threads", type=cliargs.positive_int, help="torch CPU threads (default: torch's choice)")
    ev.add_argument("-f", "--force", action="store_true", help="overwrite an earlier report in --out")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_eval)


def add_experiment(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("experiment", help="run one of the papers' experiments (loss, batch, layers, cell, "
                                           "duration, compare, gan)",
                        description="Train the variants of experiment NAME with the same seed and budget on a "
                                    "subset of the embedded corpus; write NAME.csv, NAME.png (validation LMS vs "
                                    "epochs and wall time) and NAME.md under OUT/NAME/. gan: DCGAN vs SpecGAN vs "
                                    "StyleGAN vs FrameGAN vs NoteGAN on one geometry (--geometry; whole corpus unless --limit-works), each "
                                    "evaluated with `eval gan`; gan.csv and gan.md. See docs/experiments.md.")
    ex.add_argument("name", metavar="NAME", help="loss | batch | layers | cell | duration | compare | gan")
    ex.add_argument("--out", type=Path, default=Path("runs/experiments"),
                    help="output folder; results go to OUT/NAME/ (default runs/experiments)")
    ex.add_argument("--data-root", type=Path, help="where the experiment stores are built once and shared "
                                                   "(default data/experiments)")
    ex.add_argument("--budget-minutes", type=float, default=10.0,
                    help="training wall time per variant in minutes (default 10)")
    ex.add_argument("--max-epochs", type=int, default=300, help="epochs per variant at most (default 300)")
    ex.add_argument("--limit-works", type=int,
                    help="embedded-corpus works in the experiment data, plus a quarter as many exercises "
                         "(default 16; gan: the whole corpus)")
    ex.add_argument("--seed", type=int, default=0, help="random seed of every variant (default 0)")
    ex.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a preset value in every variant, e.g. --set model.rnn_units=64 (repeatable)")
    ex.add_argument("--geometry", choices=["cpu", "fine"], default="cpu",
                    help="gan: the image geometry, gan-cpu (128 x 256) or gan-fine (256 x 256, the shipped "
                         "generator's); results go to OUT/gan/ or OUT/gan-fine/ (default cpu)")
    ex.add_argument("--data", type=Path, help="use this lan2018-geometry store (gan: a store of --geometry) instead of "
                                              "building the corpus subset")
    ex.add_argument("-n", "--n", type=int, default=64, help="gan: generated and real clips per evaluation (default 64)")
    ex.add_argument("--models", help="gan: comma-separated subset to train and tabulate, e.g. framegan,dcgan "
                                     "(default all: dcgan,specgan,stylegan,framegan,notegan; finished runs are reused)")
    ex.add_argument("--default-data", type=Path,
                    help="compare: use this default-geometry store instead of building the corpus subset")
    ex.add_argument("--workers", type=int, default=1, help="dataset build processes (default 1)")
    ex.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ex.add_argument("--no-judge", action="store_true", help="compare: skip the basic-pitch note scores")
    ex.add_argument("--eval-limit", type=int, help="compare: evaluate only the first N test pieces")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ex.set_defaults(func=cmd_experiment)


def cmd_judge(a: argparse.Namespace) -> int:
    from pianoforge.evaluation.judge import judge_folders
    from pianoforge.fsutil import check_output, write_text_atomic

    out = check_output(a.out, force=a.force) if a.out else None
    rep = judge_folders(a.audio, a.midi, progress=not a.quiet)
    if rep["pieces"]:
        print(f"{'piece':<32} {'onset P':>8} {'onset R':>8} {'onset F1':>9} {'on+off F1':>10} {'notes ref/est':>14}")
    for r in rep["pieces"]:
        print(f"{r['stem'][:32]:<32} {r['onset_precision']:8.3f} {r['onset_recall']:8.3f} {r['onset_f1']:9.3f} "
              f"{r['onoff_f1']:10.3f} {r['n_ref']:>7d}/{r['n_est']:<6d}")
    for s in rep["skipped"]:
        print(f"skipped {s['stem']}: {s['reason']}")
    if not rep["pieces"]:
        fatal(f"{a.midi}: none of the {len(rep['skipped'])} MIDI file(s) could be judged against {a.audio}")
    m = rep["mean"]
    print(f"mean onset note-F1: {m['onset_f1']:.3f} over {rep['n_pieces']} pieces (on+off F1 {m['onoff_f1']:.3f}; "
          f"{len(rep['skipped'])} skipped)")
    if out is not None:
        write_text_atomic(out, json.dumps(rep, indent=1) + "\n")
        print(f"{out}: written")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    import torch

    from pianoforge.evaluation.evaluate import evaluate_checkpoint

    _check_report_folder(a.out, a.force)
    if a.target == "gan":
        return cmd_eval_gan(a)
    if a.limit is not None and a.limit < 1:
        fatal(f"--limit must be at least 1, got {a.limit}")
    if a.iterations is not None and a.iterations < 0:
        fatal(f"--iterations must be >= 0, got {a.iterations}")
    if a.threads:
        torch.set_num_threads(a.threads)
    res = evaluate_checkpoint(a.checkpoint, a.data, a.split, a.out, limit=a.limit, phase=a.phase,
                              iterations=a.iterations, judge=not a.no_judge, progress=not a.quiet)
    t = res["timing"]
    print(f"{a.out}: {res['n_pieces']} pieces of split {res['split']} ({t['audio_s'] / 60:.1f} min) in "
          f"{t['total_s']:.1f} s; model renders at {t['model_realtime_factor']:.1f}x real time")
    print(f"  {'system':<18} {'onset F1':>8} {'LSD dB':>7} {'SC':>6} {'LMS MSE':>8}")
    for name, m in res["systems"].items():
        f1 = f"{m['onset_f1']:8.3f}" if "onset_f1" in m else f"{'-':>8}"
        print(f"  {name:<18} {f1} {m['lsd_db']:7.2f} {m['sc']:6.3f} {m['lms_mse']:8.4f}")
    if res["skipped"]:
        print(f"  skipped {len(res['skipped'])}: " + "; ".join(s["reason"] for s in res["skipped"]))
    print(f"  report {Path(a.out) / 'report.md'}")
    return 0


def _check_report_folder(out: Path, force: bool) -> None:
    """An eval report folder: made now if missing (read-only, a file in the way: one line), and an earlier
    report in it is only replaced with --force."""
    from pianoforge.fsutil import check_folder

    check_folder(out, create=True)
    for name in ("metrics.json", "report.md"):
        if (out / name).exists() and not force:
            fatal(f"{out}: already holds a report ({name}); use --force to overwrite, or another --out")


def cmd_eval_gan(a: argparse.Namespace) -> int:
    import torch

    from pianoforge.evaluation.gan_metrics import SETS, evaluate_gan
    from pianoforge.improvise import PHASES

    if a.n < 2:
        fatal(f"-n must be at least 2, got {a.n}")
    if a.phase is not None and a.phase not in PHASES:
        fatal(f"--phase must be one of {', '.join(PHASES)} for a GAN")
    if a.iterations is not None and a.iterations < 0:
        fatal(f"--iterations must be >= 0, got {a.iterations}")
    if a.threads:
        torch.set_num_threads(a.threads)
    res = evaluate_gan(a.checkpoint, a.data, a.out, split=a.split, n=a.n, seed=a.seed, judge=not a.no_judge,
                       denoise=a.denoise, phase=a.phase, iterations=a.iterations,
                       strike_threshold=a.strike_threshold, strike_floor=a.strike_floor)
    print(f"{a.out}: {res['n_generated']} generated vs {res['n_real']} real clips of split {res['split']} "
          f"in {res['wall_s']:.1f} s")
    print(f"  {'set':<20} {'FD':>8} {'diversity':>9} {'NDB/K':>6} {'tonal dB':>8} {'notes/s':>8} {'polyph':>7} "
          f"{'PC entropy':>10}")
    for name in SETS:
        r = res["sets"][name]
        f = {k: (f"{r[k]:.3g}" if isinstance(r.get(k), float) and r[k] == r[k] else "-")
             for k in ("fd", "diversity_ratio", "ndb_ndb_k", "tonality_db", "note_density", "polyphony",
                       "pitch_class_entropy")}
        print(f"  {name:<20} {f['fd']:>8} {f['diversity_ratio']:>9} {f['ndb_ndb_k']:>6} {f['tonality_db']:>8} "
              f"{f['note_density']:>8} "
              f"{f['polyphony']:>7} {f['pitch_class_entropy']:>10}")
    print(f"  report {Path(a.out) / 'report.md'}")
    return 0


def cmd_experiment(a: argparse.Namespace) -> int:
    from pianoforge.evaluation.experiments import Budget, get_experiment, run_experiment

    if a.name != "gan":
        get_experiment(a.name)  # unknown name: one-line error, exit 2
    if a.budget_minutes <= 0:
        fatal(f"--budget-minutes must be positive, got {a.budget_minutes}")
    limit_works = a.limit_works if a.limit_works is not None else (None if a.name == "gan" else 16)
    for flag, v, lo in (("--max-epochs", a.max_epochs, 1), ("--limit-works", limit_works, 3)):
        if v is not None and v < lo:
            fatal(f"{flag} must be at least {lo}, got {v}")
    budget = Budget(minutes=a.budget_minutes, max_epochs=a.max_epochs, limit_works=limit_works, seed=a.seed,
                    overrides=tuple(a.set), workers=a.workers, threads=a.threads, judge=not a.no_judge,
                    eval_limit=a.eval_limit, progress=not a.quiet)
    t0 = time.perf_counter()
    if a.name == "gan":
        from pianoforge.evaluation.gan_experiment import GAN_MODELS, run_gan_experiment

        models = tuple(m.strip() for m in a.models.split(",") if m.strip()) if a.models else GAN_MODELS
        bad = [m for m in models if m not in GAN_MODELS]
        if bad or not models:
            fatal(f"--models: unknown GAN model(s) {', '.join(bad) or '(none)'}; choose from {', '.join(GAN_MODELS)}")
        path = run_gan_experiment(a.out, a.data_root or Path("data/experiments"), budget, store=a.data, n_clips=a.n,
                                  models=models, geometry=a.geometry)
        print(f"experiment gan done in {(time.perf_counter() - t0) / 60:.1f} min: {path}, {path.with_suffix('.md')}")
        return 0
    stores = {k: v for k, v in (("lan2018", a.data), ("default", a.default_data)) if v is not None}
    path = run_experiment(a.name, a.out, a.data_root or Path("data/experiments"), budget, stores=stores)
    print(f"experiment {a.name} done in {(time.perf_counter() - t0) / 60:.1f} min: {path}, "
          f"{path.with_suffix('.png')}, {path.with_suffix('.md')}")
    return 0
