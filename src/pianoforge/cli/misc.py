"""``pianoforge presets`` and ``pianoforge demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pianoforge import cliargs


def add_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the shipped presets and their geometry")
    p.set_defaults(func=cmd_presets)


def add_demo(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("demo", help="the main job on the embedded default (what `make demo` runs)")
    m.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    m.add_argument("--workers", type=cliargs.positive_int, default=2,
                   help="worker processes for the dataset build (default 2)")
    m.add_argument("--limit", type=cliargs.positive_int, default=8, help="music21 works in the demo dataset (default 8)")
    m.add_argument("-f", "--force", action="store_true", help="write into an --out folder that already holds files")
    m.set_defaults(func=cmd_demo)


def cmd_presets(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset, preset_names
    from pianoforge.models.gan.config import (
        ARCH_SUMMARY,
        GEOMETRIES,
        GanModelConfig,
        gan_model_names,
        load_gan_preset,
    )

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
        arch = GanModelConfig.from_dict(load_gan_preset(n).model, f"preset {n}").arch
        print(f"{n:<{w}} {arch:<9} {ARCH_SUMMARY.get(arch, '')}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from pianoforge.demo import run_demo

    run_demo(Path(a.out), workers=a.workers, limit=a.limit, force=a.force)
    return 0
