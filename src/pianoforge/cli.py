"""The ``pianoforge`` command line. Thin: parse, call the library, print, exit.

Errors about inputs print one line (``error: PATH: problem``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

from pianoforge import __version__, cliargs
from pianoforge.errors import PianoforgeError


def fatal(msg: str, code: int = 2) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def _n(count: int, noun: str) -> str:
    """``"1 piece"``, ``"4 pieces"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------------------------- data

def cmd_data_build(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect

    preset = load_preset(a.preset, a.set)
    t0 = time.perf_counter()
    specs, failures = collect(a.source, a.input, a.limit, a.workers, a.cache_dir, progress=not a.quiet)
    rep = build(specs, a.out, preset, workers=a.workers, progress=not a.quiet, listing_failures=failures,
                allow_reserved=a.allow_reserved,
                source_info={"kind": a.source, "input": str(a.input) if a.input else None, "limit": a.limit})
    dt = time.perf_counter() - t0
    m = rep.manifest
    if rep.up_to_date:
        print(f"{a.out}: up to date ({_n(rep.reused, 'piece')}); nothing to do")
        return 0
    secs = sum(p["seconds"] for p in m["pieces"])
    print(f"{a.out}: {_n(len(m['pieces']), 'piece')}, {secs / 60:.1f} min of audio "
          f"({rep.built} built, {rep.reused} reused) in {dt:.1f} s with preset {preset.name}")
    for sp, info in m["splits"].items():
        print(f"  {sp:<10} {info['pieces']:>4} {'piece ' if info['pieces'] == 1 else 'pieces'} "
              f"{info['seconds'] / 60:7.1f} min {info['examples']:>6} examples")
    if rep.skipped:
        print(f"  skipped {len(rep.skipped)}:")
        for s in rep.skipped:
            print(f"    {s['piece_id']}: {s['error']}")
    return 0


def cmd_data_info(a: argparse.Namespace) -> int:
    from pianoforge.data.store import FeatureStore

    st = FeatureStore(a.dir)
    m = st.manifest
    if a.json:
        print(json.dumps({k: m[k] for k in ("format_version", "fingerprint", "splits", "source")}, indent=1))
        return 0
    p = st.preset
    print(f"{a.dir}: {m['format']} v{m['format_version']}, preset {p.name}, created {m['created']}")
    print(f"  audio {p.audio.sample_rate} Hz, n_fft {p.audio.n_fft}, hop {p.audio.hop_length} "
          f"({p.audio.frame_rate:g} frames/s), {p.audio.n_bins} bins; score {p.score.n_channels} channels")
    for sp, info in m["splits"].items():
        print(f"  {sp:<10} {info['pieces']:>4} {'piece ' if info['pieces'] == 1 else 'pieces'} "
              f"{info['seconds'] / 60:7.1f} min {info['examples']:>6} examples")
    print(f"  skipped {len(m['skipped'])}")
    return 0


# ----------------------------------------------------------------------------------------- reference

def cmd_reference(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from pianoforge.audio.io import check_audio_output, save_audio
    from pianoforge.audio.render import render_score
    from pianoforge.budget import check_render, reference_plan
    from pianoforge.config import RenderConfig
    from pianoforge.midi.score import load_score

    out = check_audio_output(a.output, a.force)  # format, folder, special file, --force: before any work
    score = load_score(a.input)
    cfg = replace(RenderConfig(), program=a.program, gain=a.gain, reverb=a.reverb, soundfont=a.soundfont,
                  release_seconds=a.release)
    plan = reference_plan(score.end_time + a.release, a.sample_rate)
    check_render(a.input, plan, out.parent, a.allow_long)
    print(f"{a.input}: rendering {plan.describe()}", flush=True)
    t0 = time.perf_counter()
    x = render_score(score, a.sample_rate, cfg)
    save_audio(out, x, a.sample_rate)
    dt = time.perf_counter() - t0
    dur = len(x) / a.sample_rate
    print(f"{out}: {dur:.2f} s at {a.sample_rate} Hz, {len(score.notes)} notes, rendered in {dt:.2f} s "
          f"({dur / max(dt, 1e-9):.0f}x real time)")
    return 0


def _loop_settings(a: argparse.Namespace, train_cfg):
    """Engine settings: the preset's checked train section (a PerformTrainConfig or GanTrainConfig), then flags."""
    from pianoforge.training.config import loop_settings

    return loop_settings(train_cfg, max_epochs=a.max_epochs, batch_size=a.batch_size, max_minutes=a.max_minutes,
                         max_steps=a.max_steps, num_workers=a.loader_workers, seed=a.seed,
                         ckpt_every_steps=a.ckpt_every, devices=a.devices, num_nodes=a.num_nodes,
                         node_rank=a.node_rank, accelerator=a.accelerator, master_addr=a.master_addr,
                         master_port=a.master_port, progress=not a.quiet, no_validation=a.no_validation)


def _check_accelerator(a: argparse.Namespace) -> None:
    """--accelerator cuda on a machine without a CUDA GPU: one line, before anything is loaded."""
    if a.accelerator == "cuda":
        import torch

        if not torch.cuda.is_available():
            fatal("--accelerator cuda: torch sees no CUDA GPU here; use --accelerator cpu (or auto)")
        if a.devices > torch.cuda.device_count():
            fatal(f"--devices {a.devices}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if a.node_rank >= a.num_nodes:
        fatal(f"--node-rank {a.node_rank} must be below --num-nodes {a.num_nodes}")


def _train_overrides(a: argparse.Namespace) -> list[str]:
    """--set overrides plus those of the shortcut flags (--lr, --lr-plateau), recorded in the run's preset."""
    overrides = list(a.set)
    if a.lr is not None:
        overrides.append(f"train.lr={a.lr}")
    if a.lr_plateau is not None:
        overrides.append(f"train.lr_plateau_patience={a.lr_plateau}")
    return overrides


def cmd_train_perform(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.training.config import check_perform_preset
    from pianoforge.training.perform import train_perform

    _check_accelerator(a)
    overrides = _train_overrides(a)
    if a.init_from is not None:
        overrides.append(f"train.init_from={Path(a.init_from).resolve()}")
    preset = load_preset(a.preset, overrides)
    settings = _loop_settings(a, check_perform_preset(preset))
    if a.strategy == "ddp" and a.devices * a.num_nodes < 2:
        print("note: --strategy ddp with one process runs without DDP", file=sys.stderr)
    summary = train_perform(a.data, preset, a.out, settings)
    if summary and not summary.get("already_finished"):
        best = summary["best"]
        print(f"{a.out}: {summary['stop_reason']}; {summary['epochs']} epochs, {summary['steps']} steps, "
              f"best {summary['monitor']}={best if best is None else round(best, 5)}, {summary['elapsed_s']:.0f} s; "
              f"checkpoint {a.out / 'best.safetensors'}")
    return 0


def cmd_train_gan(a: argparse.Namespace) -> int:
    from pianoforge.models.gan import load_gan_preset
    from pianoforge.training.config import gan_train_config
    from pianoforge.training.gan import train_gan

    _check_accelerator(a)
    preset = load_gan_preset(a.preset, _train_overrides(a))
    settings = _loop_settings(a, gan_train_config(preset))
    if a.strategy == "ddp" and a.devices * a.num_nodes < 2:
        print("note: --strategy ddp with one process runs without DDP", file=sys.stderr)
    summary = train_gan(a.data, preset, a.out, settings)
    if summary and not summary.get("already_finished"):
        print(f"{a.out}: {summary['stop_reason']}; {summary['epochs']} epochs, {summary['steps']} steps, "
              f"{summary['elapsed_s']:.0f} s; generator {a.out / 'best.safetensors'} (best {summary['monitor']}) and "
              f"{a.out / 'last.safetensors'}; samples {a.out / 'samples'}; health {a.out / 'monitor_log.csv'}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    import torch

    from pianoforge.fsutil import check_folder, check_output
    from pianoforge.improvise import PHASES, generate_to_folder, output_names

    if a.n < 1 or (a.interpolate and a.n < 2):
        fatal(f"-n must be at least {2 if a.interpolate else 1}{' (interpolation steps)' if a.interpolate else ''}, "
              f"got {a.n}")
    if a.iterations is not None and a.iterations < 0:
        fatal(f"--iterations must be >= 0, got {a.iterations}")
    if a.phase is not None and a.phase not in PHASES:
        fatal(f"--phase must be one of {', '.join(PHASES)}")
    if a.seed + a.n - 1 > cliargs.SEED_MAX:
        fatal(f"--seed {a.seed} with -n {a.n}: the seeds go past {cliargs.SEED_MAX}")
    out = check_folder(a.output, create=True)  # a read-only filesystem or a file in the way: one line, now
    names = output_names(a.n, a.seed, a.interpolate, a.seed_b)
    for i, name in enumerate(names):  # every WAV and PNG (an interpolation's whole-sequence WAV has no PNG)
        for ext in (".wav",) if a.interpolate and i == len(names) - 1 else (".wav", ".png"):
            check_output(out / f"{name}{ext}", force=a.force)
    if a.threads:
        torch.set_num_threads(a.threads)
    res = generate_to_folder(out, a.n, a.checkpoint, seed=a.seed, interpolate=a.interpolate, seed_b=a.seed_b,
                             denoise=a.denoise, phase=a.phase, iterations=a.iterations)
    what = (f"a {a.n}-step interpolation from seed {a.seed} to {a.seed + 1 if a.seed_b is None else a.seed_b} "
            f"(+ the whole sequence)" if a.interpolate else f"{a.n} clips, seeds {a.seed}..{a.seed + a.n - 1}")
    print(f"{out}: {what}, {res['seconds']:.2f} s each at {res['sample_rate']} Hz, WAV + PNG, "
          f"{'noise-reduced, ' if a.denoise else ''}in {res['wall_s']:.1f} s with {res['checkpoint']}")
    return 0


def cmd_render(a: argparse.Namespace) -> int:
    import torch

    from pianoforge.audio.io import check_audio_output
    from pianoforge.budget import FIGURE_BYTES, check_disk, check_render, perform_plan
    from pianoforge.fsutil import atomic_output, check_output, final_names
    from pianoforge.inference import PerformRenderer, figure4
    from pianoforge.midi.score import load_score

    out = check_audio_output(a.output, a.force)  # every output checked before any work
    fig = check_output(a.figure, force=a.force, suffixes=(".png",), what="figure") if a.figure else None
    if a.threads:
        torch.set_num_threads(a.threads)
    t_load = time.perf_counter()
    r = PerformRenderer.from_checkpoint(a.checkpoint)
    t_load = time.perf_counter() - t_load
    score = load_score(a.input)
    au = r.preset.audio
    plan = perform_plan(r.n_frames(score) / au.frame_rate, au.frame_rate, au.n_bins, au.sample_rate,
                        a.sample_rate or au.sample_rate, figure=fig is not None)
    check_render(a.input, plan, out.parent, a.allow_long)
    if fig is not None:
        check_disk(fig.parent, FIGURE_BYTES)
    print(f"{a.input}: rendering {plan.describe()}", flush=True)
    with contextlib.ExitStack() as outputs:  # the WAV and the figure appear together, or neither does
        temps = outputs.enter_context(final_names({}))  # errors name a.wav, not its temporary
        wav_tmp = outputs.enter_context(atomic_output(out))
        fig_tmp = outputs.enter_context(atomic_output(fig)) if fig else None
        temps.update({wav_tmp: out, **({fig_tmp: fig} if fig else {})})
        try:
            res = r.render_midi(score, wav_tmp, sample_rate=a.sample_rate, phase=a.phase, iterations=a.iterations,
                                keep_arrays=True if fig_tmp is not None else None)  # streams into the file
        except ValueError as e:
            fatal(f"{a.input}: {e}")
        if fig_tmp is not None:
            figure4(fig_tmp, r, score, res.logmag)
    print(f"{out}: {res.seconds:.2f} s at {res.sample_rate} Hz; rendered in {res.wall_s:.2f} s "
          f"({res.realtime_factor:.1f}x real time; model load {t_load:.2f} s; phase "
          f"{a.phase or r.phase}, {r.iterations if a.iterations is None else a.iterations} iterations)")
    if fig:
        print(f"{fig}: piano roll, predicted and FluidSynth reference spectrograms")
    return 0


# ------------------------------------------------------------------------------------ judge / eval

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
                       denoise=a.denoise, phase=a.phase, iterations=a.iterations)
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
                                  models=models)
        print(f"experiment gan done in {(time.perf_counter() - t0) / 60:.1f} min: {path}, {path.with_suffix('.md')}")
        return 0
    stores = {k: v for k, v in (("lan2018", a.data), ("default", a.default_data)) if v is not None}
    path = run_experiment(a.name, a.out, a.data_root or Path("data/experiments"), budget, stores=stores)
    print(f"experiment {a.name} done in {(time.perf_counter() - t0) / 60:.1f} min: {path}, "
          f"{path.with_suffix('.png')}, {path.with_suffix('.md')}")
    return 0


def cmd_presets(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset, preset_names
    from pianoforge.models.gan.config import GEOMETRIES, gan_model_names, load_gan_preset

    names = preset_names()
    w = max(len(n) for n in names + gan_model_names())
    for n in names:
        p = load_preset(n)
        au = p.audio
        print(f"{n:<{w}} {au.sample_rate:>6} Hz n_fft {au.n_fft:<5} hop {au.hop_length:<4} "
              f"{au.frame_rate:6.2f} fps  examples {p.data.example_seconds:g} s  score {p.score.n_channels} ch")
    print(f"\nGAN models (`train gan --preset MODEL[-GEOMETRY]`, GEOMETRY one of {', '.join(GEOMETRIES)}; "
          f"default {GEOMETRIES[0]}):")
    for n in gan_model_names():
        m = load_gan_preset(n).model
        head = f" + {m['head']} head" if m.get("head") else ""
        print(f"{n:<{w}} {m.get('arch')}{head}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from pianoforge.demo import run_demo

    run_demo(Path(a.out), workers=a.workers, limit=a.limit, force=a.force)
    return 0


# ------------------------------------------------------------------------------------------- parser

AUDIO_OUT_HELP = "output audio file: .wav or .flac (16-bit mono)"
ALLOW_LONG_HELP = "render even when the audio would not fit in the memory available (see docs/reliability.md)"

def build_parser() -> argparse.ArgumentParser:
    from pianoforge.config import preset_names

    ap = argparse.ArgumentParser(prog="pianoforge", description="Neural piano audio synthesis toolkit.")
    ap.add_argument("--version", action="version", version=f"pianoforge {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("data", help="build and inspect dataset stores")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    b = dsub.add_parser("build", help="render/featurize a source into a versioned, memory-mapped store",
                        description="Build (or resume) a dataset store. Rerunning a finished build is a no-op.")
    b.add_argument("--source", choices=["corpus", "midi", "maestro"], default="corpus",
                   help="corpus: embedded music21 works + exercises; midi: a folder of MIDI files "
                        "(rendered with FluidSynth); maestro: a MAESTRO-layout folder (default: corpus)")
    b.add_argument("--input", type=Path, help="input folder (required for midi and maestro)")
    b.add_argument("--out", type=Path, required=True, help="output store folder")
    b.add_argument("--preset", default="default", help=f"preset name ({', '.join(preset_names())}) or YAML path")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a preset value, e.g. --set audio.sample_rate=22050 (repeatable)")
    b.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    b.add_argument("--limit", type=cliargs.positive_int, help="use only the first N pieces (corpus: the first N music21 works plus N/4, at least one, "
                        "of the generated exercises: --limit 4 builds 5 pieces)")
    b.add_argument("--cache-dir", type=Path, help="where converted corpus MIDI is cached "
                                                   "(default $PIANOFORGE_CACHE or ~/.cache/pianoforge)")
    b.add_argument("--allow-reserved", action="store_true",
                   help="evaluation-only store: admit reserved works, put every piece in the test split")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_data_build)
    i = dsub.add_parser("info", help="summarize a dataset store")
    i.add_argument("dir", type=Path, help="store folder")
    i.add_argument("--json", action="store_true", help="print machine-readable JSON")
    i.set_defaults(func=cmd_data_info)

    r = sub.add_parser("reference", help="render a MIDI file with FluidSynth (the reference renderer)")
    r.add_argument("input", type=Path, help="input MIDI file")
    r.add_argument("-o", "--output", required=True, help=AUDIO_OUT_HELP)
    r.add_argument("--sample-rate", type=cliargs.positive_int, default=16000,
                   help="output sample rate in Hz (default 16000)")
    r.add_argument("--soundfont", help="soundfont (.sf2/.sf3); default: FluidR3_GM or another found on the system")
    r.add_argument("--program", type=cliargs.int_in(0, 127), default=0,
                   help="General MIDI program, 0-127 (default 0, grand piano)")
    r.add_argument("--gain", type=cliargs.nonneg_float, default=0.5, help="FluidSynth master gain (default 0.5)")
    r.add_argument("--reverb", action="store_true", help="enable FluidSynth reverb (default: dry)")
    r.add_argument("--release", type=cliargs.nonneg_float, default=1.5,
                   help="seconds kept after the last note-off (default 1.5)")
    r.add_argument("--allow-long", action="store_true", help=ALLOW_LONG_HELP)
    r.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    r.set_defaults(func=cmd_reference)

    t = sub.add_parser("train", help="train a model (perform, gan)")
    tsub = t.add_subparsers(dest="train_command", required=True, metavar="TASK")
    tp = tsub.add_parser("perform", help="train a score-to-spectrogram model on a dataset store",
                         description="Train or resume (rerun the same command) a perform model.")
    tp.add_argument("--data", type=Path, required=True, help="dataset store built with `pianoforge data build`")
    tp.add_argument("--preset", default="default", help="preset name (lan2018, lan2018-baseline, default) or YAML")
    tp.add_argument("--out", type=Path, required=True, help="run folder (logs, checkpoints, best.safetensors)")
    tp.add_argument("--init-from", type=Path,
                    help="start from the weights of this perform checkpoint (same model config; fine-tuning). "
                         "Only read when the run starts; a resumed run continues from its own state")
    _add_loop_flags(tp)
    tp.set_defaults(func=cmd_train_perform)
    tg = tsub.add_parser("gan", help="train a spectrogram GAN (dcgan, specgan, stylegan, framegan, notegan) on a "
                                     "dataset store",
                         description="Train or resume (rerun the same command) a GAN. Writes per-epoch sample grids "
                                     "and Griffin-Lim WAVs (samples/), a diversity/divergence log with warnings "
                                     "(monitor_log.csv) and generator-only checkpoints. See docs/improvise.md.")
    tg.add_argument("--data", type=Path, required=True,
                    help="dataset store built with the preset's geometry (e.g. `data build --preset gan-cpu`)")
    tg.add_argument("--preset", default="specgan",
                    help="MODEL[-GEOMETRY]: dcgan, specgan, stylegan, framegan or notegan, and cpu (default), fine, "
                         "10s or 20s, e.g. specgan-10s (notegan: cpu or fine only); or a YAML path "
                         "(default specgan = specgan-cpu)")
    tg.add_argument("--out", type=Path, required=True, help="run folder (logs, samples, checkpoints, best.safetensors)")
    _add_loop_flags(tg)
    tg.set_defaults(func=cmd_train_gan)

    rr = sub.add_parser("render", help="render a MIDI file with a neural perform model",
                        description="MIDI -> WAV with a perform checkpoint (default: the shipped default model).")
    rr.add_argument("input", type=Path, help="input MIDI file")
    rr.add_argument("-o", "--output", required=True, help=AUDIO_OUT_HELP)
    rr.add_argument("--checkpoint", help="perform checkpoint (.safetensors); default: the shipped default model")
    rr.add_argument("--phase", choices=["pghi+gl", "griffinlim", "pghi", "zero", "direct"],
                    help="phase reconstruction (default: the checkpoint's; direct for complex/time models)")
    rr.add_argument("--iterations", type=cliargs.nonneg_int, help="Griffin-Lim iterations (default: the checkpoint's)")
    rr.add_argument("--sample-rate", type=cliargs.positive_int,
                    help="resample the output to this rate in Hz (default: the model's)")
    rr.add_argument("--figure", help="also write the paper's Figure 4 (roll, predicted, reference) as this .png")
    rr.add_argument("--threads", type=cliargs.positive_int, help="torch CPU threads (default: torch's choice)")
    rr.add_argument("--allow-long", action="store_true", help=ALLOW_LONG_HELP)
    rr.add_argument("-f", "--force", action="store_true", help="overwrite existing output files (WAV, figure)")
    rr.set_defaults(func=cmd_render)

    gn = sub.add_parser("generate", help="generate piano clips from noise with a GAN generator",
                        description="N clips (WAV + spectrogram PNG) from seeds S..S+N-1, or with --interpolate an "
                                    "N-step latent interpolation from seed S to seed S+1 (or --seed-b). Seeded and "
                                    "reproducible. Default generator: the shipped one.")
    gn.add_argument("--checkpoint", help="GAN generator (.safetensors); default: the shipped gan-default")
    gn.add_argument("-n", "--n", type=cliargs.positive_int, default=4, help="clips, or interpolation steps (default 4)")
    gn.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    gn.add_argument("--seed", type=cliargs.seed_int, default=0,
                    help=f"seed of the first clip, 0..{cliargs.SEED_MAX} (default 0)")
    gn.add_argument("--interpolate", action="store_true", help="interpolate between the latents of two seeds")
    gn.add_argument("--seed-b", type=cliargs.seed_int, help="--interpolate: the end seed (default: --seed + 1)")
    gn.add_argument("--denoise", action="store_true",
                    help="stationary spectral gating (noisereduce) with a noise profile from the quietest frames")
    gn.add_argument("--phase", help="phase reconstruction: pghi+gl, griffinlim, pghi, zero (default: the checkpoint's)")
    gn.add_argument("--iterations", type=cliargs.nonneg_int, help="Griffin-Lim iterations (default: the checkpoint's)")
    gn.add_argument("--threads", type=cliargs.positive_int, help="torch CPU threads (default: torch's choice)")
    gn.add_argument("-f", "--force", action="store_true", help="overwrite existing clips (WAV and PNG)")
    gn.set_defaults(func=cmd_generate)

    jg = sub.add_parser("judge", help="transcribe audio with basic-pitch and score it against MIDI",
                        description="For each MIDI_DIR/<stem>.mid with an AUDIO_DIR/<stem>.wav: transcribe the "
                                    "audio (basic-pitch) and print note precision/recall/F1 (mir_eval).")
    jg.add_argument("--audio", type=Path, required=True, help="folder of <stem>.wav files")
    jg.add_argument("--midi", type=Path, required=True, help="folder of <stem>.mid reference scores")
    jg.add_argument("--out", type=Path, help="also write every score as JSON here")
    jg.add_argument("-f", "--force", action="store_true", help="overwrite an existing --out file")
    jg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    jg.set_defaults(func=cmd_judge)

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
    ev.add_argument("--phase", choices=["pghi+gl", "griffinlim", "pghi", "zero", "direct"],
                    help="phase reconstruction (default: the checkpoint's)")
    ev.add_argument("--iterations", type=int, help="Griffin-Lim iterations (default: the checkpoint's)")
    ev.add_argument("--no-judge", action="store_true", help="skip the basic-pitch transcription scores")
    ev.add_argument("-n", "--n", type=int, default=64, help="gan: generated clips, and real clips at most (default 64)")
    ev.add_argument("--seed", type=int, default=0, help="gan: seed of the first generated clip (default 0)")
    ev.add_argument("--denoise", action="store_true", help="gan: noise-reduce the generated clips")
    ev.add_argument("--threads", type=cliargs.positive_int, help="torch CPU threads (default: torch's choice)")
    ev.add_argument("-f", "--force", action="store_true", help="overwrite an earlier report in --out")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser("experiment", help="run one of the papers' experiments (loss, batch, layers, cell, "
                                           "duration, compare, gan)",
                        description="Train the variants of experiment NAME with the same seed and budget on a "
                                    "subset of the embedded corpus; write NAME.csv, NAME.png (validation LMS vs "
                                    "epochs and wall time) and NAME.md under OUT/NAME/. gan: DCGAN vs SpecGAN vs "
                                    "StyleGAN vs FrameGAN on the gan-cpu geometry (whole corpus unless --limit-works), each "
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
    ex.add_argument("--data", type=Path, help="use this lan2018-geometry store (gan: gan-cpu store) instead of "
                                              "building the corpus subset")
    ex.add_argument("-n", "--n", type=int, default=64, help="gan: generated and real clips per evaluation (default 64)")
    ex.add_argument("--models", help="gan: comma-separated subset to train and tabulate, e.g. framegan,dcgan "
                                     "(default all: dcgan,specgan,stylegan,framegan; finished runs are reused)")
    ex.add_argument("--default-data", type=Path,
                    help="compare: use this default-geometry store instead of building the corpus subset")
    ex.add_argument("--workers", type=int, default=1, help="dataset build processes (default 1)")
    ex.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ex.add_argument("--no-judge", action="store_true", help="compare: skip the basic-pitch note scores")
    ex.add_argument("--eval-limit", type=int, help="compare: evaluate only the first N test pieces")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ex.set_defaults(func=cmd_experiment)

    p = sub.add_parser("presets", help="list the shipped presets and their geometry")
    p.set_defaults(func=cmd_presets)

    m = sub.add_parser("demo", help="the main job on the embedded default (what `make demo` runs)")
    m.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    m.add_argument("--workers", type=cliargs.positive_int, default=2,
                   help="worker processes for the dataset build (default 2)")
    m.add_argument("--limit", type=cliargs.positive_int, default=8, help="music21 works in the demo dataset (default 8)")
    m.add_argument("-f", "--force", action="store_true", help="write into an --out folder that already holds files")
    m.set_defaults(func=cmd_demo)
    return ap


def _add_loop_flags(tp: argparse.ArgumentParser) -> None:
    pos, nonneg = cliargs.positive_int, cliargs.nonneg_int  # ranges checked at parse time: argparse's exit 2
    tp.add_argument("--max-epochs", type=pos, help="stop after N epochs (default: the preset's train.max_epochs)")
    tp.add_argument("--max-minutes", type=cliargs.positive_float,
                    help="stop after M minutes of training in this invocation (checkpointed; a rerun continues)")
    tp.add_argument("--max-steps", type=pos, help="stop after N optimizer steps")
    tp.add_argument("--batch-size", type=pos, help="examples per batch and process (default: the preset's; at most "
                                                   "the training examples: a larger one is an error, not clamped)")
    tp.add_argument("--lr", type=cliargs.positive_float, help="learning rate (default: the preset's train.lr)")
    tp.add_argument("--no-validation", action="store_true",
                    help="train on a store without a validation split: best.safetensors is then the epoch with the "
                         "lowest mean training loss (otherwise such a store is refused)")
    tp.add_argument("--lr-plateau", type=pos, metavar="N",
                    help="halve the learning rate after N epochs without a better validation loss "
                         "(train.lr_plateau_patience; default: the preset's, else off)")
    tp.add_argument("--seed", type=nonneg, default=0, help="random seed (default 0)")
    tp.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a preset value, e.g. --set train.lr=1e-4 (repeatable; keys: the preset's YAML)")
    tp.add_argument("--ckpt-every", type=pos, default=200, help="save a resumable state every N steps (default 200)")
    tp.add_argument("--loader-workers", type=nonneg, default=0, help="DataLoader worker processes (default 0)")
    tp.add_argument("--devices", type=pos, default=1, help="processes (GPUs) per node for DDP (default 1)")
    tp.add_argument("--num-nodes", type=pos, default=1, help="nodes for multi-node DDP (default 1)")
    tp.add_argument("--node-rank", type=nonneg, default=0, help="this node's rank in multi-node DDP (default 0)")
    tp.add_argument("--strategy", choices=["auto", "ddp"], default="auto",
                    help="ddp: DistributedDataParallel (implied by --devices/--num-nodes > 1)")
    tp.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="auto",
                    help="device kind (default auto: CUDA when available)")
    tp.add_argument("--master-addr", default="127.0.0.1", help="DDP rendezvous address (multi-node)")
    tp.add_argument("--master-port", type=cliargs.int_in(0, 65535), default=0,
                    help="DDP rendezvous port (default 0: a free port)")
    tp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return int(a.func(a) or 0)
    except PianoforgeError as e:
        fatal(str(e))
    except KeyboardInterrupt:
        fatal("interrupted; rerun the same command to resume", 130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
