"""Run the page: bind the socket ourselves (so ``--port 0`` can print the port it got), warn when the address
is reachable from other machines, serve with uvicorn, and delete every job's files on the way out."""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass

import uvicorn

from pianoforge.errors import PianoforgeError
from pianoforge.web.app import AppSettings, create_app
from pianoforge.web.uploads import check_runs_folder


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    checkpoints: tuple[str, ...] = ()
    runs: str | None = None
    max_upload_bytes: int = 5_000_000
    max_seconds: float = 600.0
    workers: int = 1
    threads: int | None = None
    keep_seconds: float = 3600.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; PianoforgeError (one line) when the address cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise PianoforgeError(None, f"--host {host}: not an address of this machine ({e.strerror})") from e
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise PianoforgeError(None, f"cannot listen on {host}:{port} ({e.strerror or e}); "
                                    f"try another --port (0: any free one)") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(s: ServeSettings) -> int:
    """``pianoforge serve``: blocks until Ctrl-C (exit 0) or SIGTERM, then removes every job's files."""
    check_runs_folder(s.runs, s.checkpoints)
    if s.threads:
        import torch

        torch.set_num_threads(s.threads)
    loopback = is_loopback(s.host)
    sock = bind(s.host, s.port)
    port = sock.getsockname()[1]
    hosts = ("127.0.0.1", "localhost", "[::1]", s.host) if loopback else ("*",)
    app = create_app(AppSettings(s.checkpoints, s.runs, s.max_upload_bytes, s.max_seconds, s.workers,
                                 s.keep_seconds, hosts))
    shown = f"[{s.host}]" if ":" in s.host else s.host
    if not loopback:
        print(f"warning: serving on {s.host}, reachable from other machines: anyone who can reach it can upload "
              f"files and use this machine's CPU, and the page has no login. Use --host 127.0.0.1 to keep it "
              f"local.", file=sys.stderr, flush=True)
    print(f"pianoforge serve: http://{shown}:{port}/  (Ctrl-C stops it; results are kept "
          f"{s.keep_seconds / 60:g} min, all removed at exit: {app.state.jobs.root})", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:  # uvicorn shuts the app down (the lifespan removes every job's files), then re-raises the signal
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a server is stopped: not an error
    finally:
        app.state.jobs.close()  # also when the lifespan never ran (idempotent)
        sock.close()
    print("pianoforge serve: stopped; results removed", flush=True)
    return 0
