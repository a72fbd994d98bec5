"""The ``pianoforge`` command line. Thin: parse, call the library, print, exit.

Errors about inputs print one line (``error: PATH: problem``) and exit with status 2. One module per topic,
each with an ``add_<command>(subparsers)`` and its handler: :mod:`.data` (data build/info), :mod:`.perform`
(reference, render and their batch forms, :mod:`.batch`), :mod:`.train`, :mod:`.improvise` (generate),
:mod:`.evaluate` (judge, eval, experiment), :mod:`.misc` (presets, demo). Building the parser imports only
argparse-level modules; every heavy import (torch, numba, music21, matplotlib ...) is inside a handler, so
``pianoforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging

from pianoforge import __version__
from pianoforge.cli import data, evaluate, improvise, misc, perform, train
from pianoforge.cli.common import fatal
from pianoforge.errors import PianoforgeError
from pianoforge.web.command import add_serve_parser  # `serve`: its code lives in pianoforge/web/

__all__ = ["build_parser", "fatal", "main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pianoforge", description="Neural piano audio synthesis toolkit.")
    ap.add_argument("--version", action="version", version=f"pianoforge {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (data.add_data, perform.add_reference, train.add_train, perform.add_render,
                improvise.add_generate, evaluate.add_judge, evaluate.add_eval, evaluate.add_experiment,
                misc.add_presets, misc.add_demo, add_serve_parser):  # the order of `pianoforge --help`
        add(sub)
    return ap


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
