"""``pianoforge generate``: clips from noise with a GAN generator."""

from __future__ import annotations

import argparse

from pianoforge import cliargs
from pianoforge.cli.common import _n, add_strike_rule_args, fatal
from pianoforge.names import GAN_MAX_SECONDS, GAN_PHASES


def add_generate(sub: argparse._SubParsersAction) -> None:
    gn = sub.add_parser("generate", help="generate piano clips from noise with a GAN generator",
                        description="N clips (WAV + spectrogram PNG) from seeds S..S+N-1, or with --interpolate an "
                                    "N-step latent interpolation from seed S to seed S+1 (or --seed-b). Seeded and "
                                    "reproducible. Default generator: the shipped one. --seconds makes clips "
                                    "longer than the generator's window (framegan, notegan): the windows' latents "
                                    "tile in time (crossfaded) and the generator runs over the whole clip: no seam at the joins.")
    gn.add_argument("--checkpoint", help="GAN generator (.safetensors); default: the shipped gan-default")
    gn.add_argument("-n", "--n", type=cliargs.positive_int, default=4, help="clips, or interpolation steps (default 4)")
    gn.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    gn.add_argument("--seed", type=cliargs.seed_int, default=0,
                    help=f"seed of the first clip, 0..{cliargs.SEED_MAX} (default 0)")
    gn.add_argument("--seconds", type=cliargs.float_in(0.0, GAN_MAX_SECONDS, lo_open=True), metavar="S",
                    help=f"clip length in seconds, > 0 and <= {GAN_MAX_SECONDS:g} (default: the generator's window, "
                         "4.096 s for the shipped one); longer clips stream (memory does not grow with S) and need "
                         "a generator that tiles in time (framegan, notegan); not with --interpolate or --denoise")
    gn.add_argument("--interpolate", action="store_true", help="interpolate between the latents of two seeds")
    gn.add_argument("--seed-b", type=cliargs.seed_int, help="--interpolate: the end seed (default: --seed + 1)")
    gn.add_argument("--denoise", action="store_true",
                    help="stationary spectral gating (noisereduce) with a noise profile from the quietest frames")
    gn.add_argument("--phase", choices=GAN_PHASES, help="phase reconstruction (default: the checkpoint's)")
    gn.add_argument("--iterations", type=cliargs.nonneg_int, help="Griffin-Lim iterations (default: the checkpoint's)")
    add_strike_rule_args(gn)
    gn.add_argument("--threads", type=cliargs.positive_int, help="torch CPU threads (default: torch's choice)")
    gn.add_argument("--batch", type=cliargs.positive_int, default=16,
                    help="clips generated and written together (default 16): memory grows with it, not with -n")
    gn.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    gn.add_argument("-f", "--force", action="store_true", help="overwrite existing clips (WAV and PNG)")
    gn.set_defaults(func=cmd_generate)


def cmd_generate(a: argparse.Namespace) -> int:
    import torch

    from pianoforge.fsutil import check_folder, check_output
    from pianoforge.improvise import GanGenerator, generate_to_folder, output_names

    if a.n < 1 or (a.interpolate and a.n < 2):
        fatal(f"-n must be at least {2 if a.interpolate else 1}{' (interpolation steps)' if a.interpolate else ''}, "
              f"got {a.n}")
    if a.iterations is not None and a.iterations < 0:
        fatal(f"--iterations must be >= 0, got {a.iterations}")
    if a.seed + a.n - 1 > cliargs.SEED_MAX:
        fatal(f"--seed {a.seed} with -n {a.n}: the seeds go past {cliargs.SEED_MAX}")
    # the checkpoint before any output: a missing file, a perform checkpoint, non-finite weights or a config
    # this pianoforge cannot build is one line naming the file, and nothing is made
    gen = GanGenerator.from_checkpoint(a.checkpoint)
    gen.set_strike_rule(a.strike_threshold, a.strike_floor)  # a rule on a generator without notes: one line
    if a.seconds is not None:  # length, arch, --interpolate / --denoise: one line before any output
        samples = gen.clip_samples(a.seconds)
        if samples != gen.window_samples and (a.interpolate or a.denoise):
            fatal(f"--seconds does not apply to {'--interpolate' if a.interpolate else '--denoise'} "
                  f"(clips of the window, {gen.seconds:g} s, only)")
    out = check_folder(a.output, create=True)  # a read-only filesystem or a file in the way: one line, now
    names = output_names(a.n, a.seed, a.interpolate, a.seed_b)
    for i, name in enumerate(names):  # every WAV and PNG (an interpolation's whole-sequence WAV has no PNG)
        for ext in (".wav",) if a.interpolate and i == len(names) - 1 else (".wav", ".png"):
            check_output(out / f"{name}{ext}", force=a.force)
    if a.threads:
        torch.set_num_threads(a.threads)
    res = generate_to_folder(out, a.n, a.checkpoint, generator=gen, seed=a.seed, interpolate=a.interpolate, seed_b=a.seed_b,
                             denoise=a.denoise, phase=a.phase, iterations=a.iterations, batch=a.batch,
                             progress=not a.quiet, seconds=a.seconds)
    what = (f"a {a.n}-step interpolation from seed {a.seed} to {a.seed + 1 if a.seed_b is None else a.seed_b} "
            f"(+ the whole sequence)" if a.interpolate else f"{_n(a.n, 'clip')}, seeds {a.seed}..{a.seed + a.n - 1}")
    print(f"{out}: {what}, {res['seconds']:g} s each at {res['sample_rate']} Hz, WAV + PNG, "
          f"{'noise-reduced, ' if a.denoise else ''}in {res['wall_s']:.1f} s with {res['checkpoint']}")
    return 0
