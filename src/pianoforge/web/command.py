"""The ``pianoforge serve`` subcommand: its flags and the call into :mod:`pianoforge.web.server`.

Only argparse here, so that building the CLI parser never imports the web framework; ``cli.py`` calls
:func:`add_serve_parser` and nothing else.
"""

from __future__ import annotations

import argparse

from pianoforge import cliargs
from pianoforge.errors import PianoforgeError


def add_serve_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve`` to the CLI's subparsers."""
    s = sub.add_parser("serve", help="a local web page: render a score beside FluidSynth, generate clips",
                       description="Serve a web page on this machine: upload a MIDI file (or pick the bundled "
                                   "example), hear the neural render beside the FluidSynth reference at the same "
                                   "loudness, see Figure 4, judge both; generate GAN clips and interpolations. "
                                   "Binds to 127.0.0.1 unless --host says otherwise. Needs the web extra "
                                   "(pip install -e .[web]).")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; anything else is reachable from "
                        "the network and prints a warning)")
    s.add_argument("--port", type=cliargs.int_in(0, 65535), default=8000,
                   help="port (default 8000; 0: a free port, printed at start)")
    s.add_argument("--checkpoint", action="append", default=[], metavar="PATH",
                   help="a perform or GAN checkpoint to offer besides the shipped ones (repeatable)")
    s.add_argument("--runs", default=None, metavar="DIR",
                   help="also offer every best.safetensors under DIR (rescanned when the page loads)")
    s.add_argument("--max-upload-mb", type=cliargs.positive_float, default=5.0, metavar="MB",
                   help="largest MIDI upload in MB (default 5)")
    s.add_argument("--max-seconds", type=cliargs.positive_float, default=600.0, metavar="SECONDS",
                   help="longest score to render, in seconds of audio (default 600)")
    s.add_argument("--workers", type=cliargs.int_in(1, 16), default=1, metavar="N",
                   help="jobs run at once (default 1; more wait in a queue, each user's results are their own)")
    s.add_argument("--threads", type=cliargs.positive_int, default=None, metavar="N",
                   help="torch threads (default: torch's choice)")
    s.add_argument("--keep-minutes", type=cliargs.positive_float, default=60.0, metavar="MINUTES",
                   help="results are deleted this long after they are made (default 60); all at exit")
    s.set_defaults(func=cmd_serve)
    return s


def cmd_serve(a: argparse.Namespace) -> int:
    try:
        from pianoforge.web.server import ServeSettings, serve
    except ImportError as e:
        raise PianoforgeError(None, f"pianoforge serve needs the web extra ({e}); install with "
                                    "`pip install -e .[web]`") from e
    settings = ServeSettings(host=a.host, port=a.port, checkpoints=tuple(a.checkpoint), runs=a.runs,
                             max_upload_bytes=int(a.max_upload_mb * 1e6), max_seconds=a.max_seconds,
                             workers=a.workers, threads=a.threads, keep_seconds=a.keep_minutes * 60.0)
    return serve(settings)
