"""The Starlette app: the static page and a small JSON API over :mod:`pianoforge.web.tasks`.

``GET /`` the page; ``GET /api/options`` checkpoints (by id), phases, rates, examples, limits;
``POST /api/perform?name=&checkpoint=&phase=&rate=`` (body: the MIDI file's bytes) or ``?example=NAME``;
``POST /api/perform/{job}/judge``; ``POST /api/improvise`` (JSON); ``GET /api/jobs/{job}`` state and
progress; ``GET /api/jobs/{job}/files/{name}`` a file the job published. Bad input is refused before any
job is queued, with the CLI's one-line message (``error: NAME: problem``) and HTTP 400 (413 for an upload
over the size limit, 503 when the queue is full); a request never takes the server down.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pianoforge.cliargs import SEED_MAX
from pianoforge.errors import PianoforgeError
from pianoforge.web import tasks, uploads
from pianoforge.web.jobs import Busy, JobManager

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("pianoforge") / "web" / "static"))
OUTPUT_RATES = (16000, 22050, 44100, 48000)
JSON_LIMIT = 10_000
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                               "object-src 'none'; frame-ancestors 'none'"}


@dataclass(frozen=True)
class AppSettings:
    checkpoints: tuple[str, ...] = ()
    runs: str | None = None
    max_upload_bytes: int = 5_000_000
    max_seconds: float = 600.0
    workers: int = 1
    keep_seconds: float = 3600.0
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")


def _error(e: Exception, status: int = 400) -> JSONResponse:
    if isinstance(e, uploads.UploadTooLarge):
        status = 413
    elif isinstance(e, Busy):
        status = 503
    return JSONResponse({"error": f"error: {e}"}, status_code=status, headers=SECURITY_HEADERS)


async def _body(request: Request, limit: int, name: str) -> bytes:
    """The request body, refused (UploadTooLarge) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        uploads.check_size(int(declared), limit, name)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        uploads.check_size(len(data), limit, name)
    return bytes(data)


class Api:
    def __init__(self, settings: AppSettings, manager: JobManager) -> None:
        self.s, self.jobs, self.models = settings, manager, tasks.ModelCache()

    def entry(self, checkpoint_id: str | None, kind: str) -> uploads.CheckpointEntry:
        entries = [e for e in uploads.catalogue(self.s.checkpoints, self.s.runs) if e.kind == kind]
        if not entries:
            raise PianoforgeError(None, f"no {kind} checkpoint available")
        if not checkpoint_id:
            return entries[0]
        for e in entries:
            if e.id == checkpoint_id:
                return e
        raise PianoforgeError(None, f"unknown {kind} checkpoint id {checkpoint_id[:40]!r} (reload the page)")

    async def options(self, request: Request) -> JSONResponse:
        from pianoforge.improvise import PHASES as GAN_PHASES
        from pianoforge.inference import PHASES

        cat = await run_in_threadpool(uploads.catalogue, self.s.checkpoints, self.s.runs)
        return JSONResponse({"checkpoints": [e.to_json() for e in cat], "phases": list(PHASES),
                             "gan_phases": list(GAN_PHASES), "rates": list(OUTPUT_RATES),
                             "examples": list(uploads.examples()), "max_upload_bytes": self.s.max_upload_bytes,
                             "max_seconds": self.s.max_seconds, "max_clips": tasks.MAX_CLIPS})

    def _perform_request(self, data: bytes, name: str, q: dict[str, str]) -> tasks.PerformRequest:
        score = uploads.parse_midi(data, name)  # first: nothing else happens to an upload that is not MIDI
        entry = self.entry(q.get("checkpoint"), "perform")
        rate = q.get("rate") or None
        if rate is not None and (not rate.isdigit() or int(rate) not in OUTPUT_RATES):
            raise ValueError(f"output sample rate must be one of {', '.join(map(str, OUTPUT_RATES))}, got {rate[:20]!r}")
        req = tasks.PerformRequest(score, name, entry.path, entry.label, q.get("phase") or None,
                                   int(rate) if rate else None)
        tasks.check_perform(self.models.renderer(entry.path), req, self.s.max_seconds, self.jobs.root)
        return req

    async def perform(self, request: Request) -> Response:
        q = dict(request.query_params)
        try:
            example = q.get("example")
            if example:
                path = uploads.examples().get(example)
                if path is None:
                    raise PianoforgeError(None, f"no bundled example {example[:40]!r}")
                name, data = path.name, path.read_bytes()
            else:
                name = uploads.display_name(q.get("name"))
                data = await _body(request, self.s.max_upload_bytes, name)
            req = await run_in_threadpool(self._perform_request, data, name, q)
            job = self.jobs.submit("perform", tasks.perform, self.models, req)
        except (PianoforgeError, ValueError) as e:
            return _error(e)
        return JSONResponse(job.to_json(self.jobs.queue_position(job)), status_code=202)

    async def judge(self, request: Request) -> Response:
        source = self.jobs.get(request.path_params["job"])
        if source is None or source.kind != "perform":
            return _error(PianoforgeError(None, "no such render (it may have expired); render again"), 404)
        try:
            job = self.jobs.submit("judge", tasks.judge, source)
        except PianoforgeError as e:
            return _error(e)
        return JSONResponse(job.to_json(self.jobs.queue_position(job)), status_code=202)

    async def improvise(self, request: Request) -> Response:
        try:
            body = json.loads(await _body(request, JSON_LIMIT, "request") or b"{}")
            req = self._improvise_request(body if isinstance(body, dict) else {})
            job = self.jobs.submit("improvise", tasks.improvise, self.models, req)
        except json.JSONDecodeError:
            return _error(ValueError("the request is not JSON"))
        except (PianoforgeError, ValueError) as e:
            return _error(e)
        return JSONResponse(job.to_json(self.jobs.queue_position(job)), status_code=202)

    def _improvise_request(self, body: dict[str, Any]) -> tasks.ImproviseRequest:
        def integer(key: str, default: int, lo: int, hi: int) -> int:
            v = body.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{key} must be an integer in {lo}..{hi}, got {str(v)[:30]!r}")
            return v

        interpolate = bool(body.get("interpolate", False))
        n = integer("n", 4, 2 if interpolate else 1, tasks.MAX_CLIPS)
        seed = integer("seed", 0, 0, SEED_MAX - n + 1)
        seed_b = integer("seed_b", seed + 1, 0, SEED_MAX)
        entry = self.entry(body.get("checkpoint") if isinstance(body.get("checkpoint"), str) else None, "gan")
        return tasks.ImproviseRequest(entry.path, entry.label, n, seed, interpolate, seed_b)

    async def job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            return _error(PianoforgeError(None, "no such job (it may have expired)"), 404)
        return JSONResponse(job.to_json(self.jobs.queue_position(job)), headers={"Cache-Control": "no-store"})

    async def file(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        path = job.files.get(request.path_params["name"]) if job else None
        if path is None or not path.is_file():
            return _error(PianoforgeError(None, "no such file (it may have expired)"), 404)
        media = "audio/wav" if path.suffix == ".wav" else "image/png"
        return FileResponse(path, media_type=media, filename=request.path_params["name"],
                            content_disposition_type="inline", headers=SECURITY_HEADERS)

    async def index(self, request: Request) -> Response:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers=SECURITY_HEADERS)


def create_app(settings: AppSettings, manager: JobManager | None = None) -> Starlette:
    """The ASGI app; its job manager (and every job's files) goes away when the app shuts down."""
    jobs = manager or JobManager(settings.workers, settings.keep_seconds)
    api = Api(settings, jobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        jobs.close()

    routes = [Route("/", api.index), Route("/api/options", api.options),
              Route("/api/perform", api.perform, methods=["POST"]),
              Route("/api/perform/{job}/judge", api.judge, methods=["POST"]),
              Route("/api/improvise", api.improvise, methods=["POST"]),
              Route("/api/jobs/{job}", api.job), Route("/api/jobs/{job}/files/{name}", api.file),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))])
    app.state.jobs = jobs
    return app
