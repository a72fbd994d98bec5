"""``pianoforge render`` (a perform checkpoint) and ``pianoforge reference`` (FluidSynth): MIDI in, audio out."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from pianoforge import cliargs
from pianoforge.cli import batch
from pianoforge.cli.common import ALLOW_LONG_HELP, AUDIO_OUT_HELP, fatal
from pianoforge.names import ENGINES, INFERENCE_PHASES

INPUTS_HELP = ("input MIDI file; or several, folders (their .mid/.midi files), quoted globs ('dir/**/*.mid'), "
               "@LIST or LIST.txt files naming one path a line: a batch, written into the folder -o")
OUTPUT_HELP = (AUDIO_OUT_HELP + "; a batch (or -o ending in /): an output folder (made if missing), "
               "the outputs named after the inputs, folder structure kept")
BATCH_EPILOG = ("A batch renders every input in one process; an existing output is skipped without --force; "
                "a bad input prints one line and the others go on; exit status 2 when any failed. "
                "Ctrl-C keeps the finished files; rerun the same command to render the rest.")


def add_reference(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("reference", help="render a MIDI file with FluidSynth (the reference renderer)",
                       description="MIDI -> WAV with the FluidSynth CLI, one file or a batch.", epilog=BATCH_EPILOG)
    r.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUTS_HELP)
    r.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    r.add_argument("--sample-rate", type=cliargs.positive_int, default=16000,
                   help="output sample rate in Hz (default 16000)")
    r.add_argument("--soundfont", help="soundfont (.sf2/.sf3); default: FluidR3_GM or another found on the system")
    r.add_argument("--program", type=cliargs.int_in(0, 127),
                   help="play every note as this General MIDI program, 0-127 (default: each track's own "
                        "program, as the file asks; drum tracks are not rendered)")
    r.add_argument("--tracks", type=cliargs.int_list(0, None), metavar="I,J",
                   help="render only these tracks (pretty_midi instrument order, from 0)")
    r.add_argument("--programs", type=cliargs.int_list(0, 127), metavar="P,Q",
                   help="render only the tracks that play these General MIDI programs")
    r.add_argument("--gain", type=cliargs.nonneg_float, default=0.5, help="FluidSynth master gain (default 0.5)")
    r.add_argument("--reverb", action="store_true", help="enable FluidSynth reverb (default: dry)")
    r.add_argument("--release", type=cliargs.nonneg_float, default=1.5,
                   help="seconds kept after the last note-off (default 1.5)")
    r.add_argument("--allow-long", action="store_true", help=ALLOW_LONG_HELP)
    r.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    batch.add_batch_flags(r)
    r.set_defaults(func=cmd_reference)


def add_render(sub: argparse._SubParsersAction) -> None:
    rr = sub.add_parser("render", help="render a MIDI file with a neural perform model",
                        description="MIDI -> WAV with a perform checkpoint (default: the shipped default model), "
                                    "one file or a batch (the model loaded once).", epilog=BATCH_EPILOG)
    rr.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUTS_HELP)
    rr.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    rr.add_argument("--checkpoint", help="perform checkpoint (.safetensors); default: the shipped default model")
    rr.add_argument("--phase", choices=INFERENCE_PHASES,
                    help="phase reconstruction (default: the checkpoint's; direct for complex/time models)")
    rr.add_argument("--iterations", type=cliargs.nonneg_int, help="Griffin-Lim iterations (default: the checkpoint's)")
    rr.add_argument("--sample-rate", type=cliargs.positive_int,
                    help="resample the output to this rate in Hz (default: the model's)")
    rr.add_argument("--figure", help="also write the paper's Figure 4 (roll, predicted, reference) as this .png")
    rr.add_argument("--engine", choices=ENGINES, default="auto",
                    help="inference engine: auto (default: numpy for a notes-head checkpoint without a residual "
                         "trunk, such as the shipped default, which starts without importing torch; else torch), "
                         "numpy (refuses other checkpoints) or torch (forces PyTorch)")
    rr.add_argument("--threads", type=cliargs.positive_int,
                    help="torch CPU threads (default: torch's choice; the numpy engine runs on one thread)")
    rr.add_argument("--allow-long", action="store_true", help=ALLOW_LONG_HELP)
    rr.add_argument("-f", "--force", action="store_true", help="overwrite existing output files (WAV, figure)")
    batch.add_batch_flags(rr)
    rr.set_defaults(func=cmd_render)


def cmd_reference(a: argparse.Namespace) -> int:
    if batch.is_batch(a.inputs, a.output):
        return batch.reference_batch(a, reference_file)
    a.input = Path(a.inputs[0])
    return reference_file(a)


def reference_file(a: argparse.Namespace) -> int:
    """One input ``a.input`` to one output ``a.output``."""
    from dataclasses import replace

    from pianoforge.audio.io import check_audio_output, save_audio
    from pianoforge.audio.render import render_file_programs
    from pianoforge.budget import check_render, reference_plan
    from pianoforge.config import RenderConfig
    from pianoforge.midi.score import load_score

    out = check_audio_output(a.output, a.force)  # format, folder, special file, --force: before any work
    score = load_score(a.input, a.tracks, a.programs)
    cfg = replace(RenderConfig(), gain=a.gain, reverb=a.reverb, soundfont=a.soundfont, release_seconds=a.release)
    plan = reference_plan(score.end_time + a.release, a.sample_rate)
    check_render(a.input, plan, out.parent, a.allow_long)
    print(f"{a.input}: rendering {plan.describe()}", flush=True)
    t0 = time.perf_counter()
    x, score, played = render_file_programs(a.input, a.sample_rate, cfg, a.tracks, a.programs, a.program)
    how = "every note as --program" if a.program is not None else "as the file's tracks ask"
    drums = f"; {score.dropped_drum_notes} drum note(s) not rendered" if score.dropped_drum_notes else ""
    print(f"{a.input}: {score.merged_tracks} track(s), GM program(s) {', '.join(map(str, played))} "
          f"({how}){drums}", flush=True)
    save_audio(out, x, a.sample_rate)
    dt = time.perf_counter() - t0
    dur = len(x) / a.sample_rate
    print(f"{out}: {dur:.2f} s at {a.sample_rate} Hz, {len(score.notes)} notes, rendered in {dt:.2f} s "
          f"({dur / max(dt, 1e-9):.0f}x real time)")
    return 0


def cmd_render(a: argparse.Namespace) -> int:
    if batch.is_batch(a.inputs, a.output):
        return batch.render_batch(a)
    a.input = Path(a.inputs[0])
    return render_file(a)


def render_file(a: argparse.Namespace) -> int:
    """One input ``a.input`` to one output ``a.output`` (and ``a.figure``)."""
    from pianoforge.audio.io import check_audio_output
    from pianoforge.budget import FIGURE_BYTES, check_disk, check_render, perform_plan
    from pianoforge.fsutil import atomic_output, check_output, final_names
    from pianoforge.inference import PerformRenderer, figure4
    from pianoforge.midi.score import load_score

    out = check_audio_output(a.output, a.force)  # every output checked before any work
    fig = check_output(a.figure, force=a.force, suffixes=(".png",), what="figure") if a.figure else None
    from pianoforge.native import reuse_freed_memory

    reuse_freed_memory()  # the streamed blocks reuse freed memory, not fresh zero-filled pages
    t_load = time.perf_counter()
    r = PerformRenderer.from_checkpoint(a.checkpoint, engine=a.engine)
    t_load = time.perf_counter() - t_load
    if a.threads and r.engine == "torch":
        import torch

        torch.set_num_threads(a.threads)
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
          f"({res.realtime_factor:.1f}x real time; {r.engine} engine, model load {t_load:.2f} s; phase "
          f"{a.phase or r.phase}, {r.iterations if a.iterations is None else a.iterations} iterations)")
    if fig:
        print(f"{fig}: piano roll, predicted and FluidSynth reference spectrograms")
    return 0
