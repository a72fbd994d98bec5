"""Jobs: work that takes longer than a request, run by a small worker pool, each in its own private folder.

A job has an unguessable id (128 random bits), a stage and a fraction for the page's progress bar, and
its files in ``ROOT/<id>/`` under names the server chose. ROOT is made by :func:`tempfile.mkdtemp` (mode
0700) and named after this process, so a server killed with -9 leaves a folder the next server removes.
Finished jobs are deleted ``keep_seconds`` after they end (checked whenever a job is submitted or looked
up), and everything at :meth:`JobManager.close`. A job that fails keeps the one-line message of the
:class:`PianoforgeError` (or ValueError) that stopped it; any other exception is logged with its traceback
and shown as "internal error: ..."; the pool goes on either way.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pianoforge.errors import PianoforgeError

log = logging.getLogger(__name__)

ROOT_PREFIX = "pianoforge-serve-"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class Busy(PianoforgeError):
    """Too many jobs waiting (HTTP 503)."""


@dataclass
class Job:
    id: str
    kind: str
    folder: Path
    created: float = field(default_factory=time.time)
    state: str = "queued"  # queued -> running -> done | error
    stage: str = "waiting for a free worker"
    fraction: float = 0.0
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # public name -> file in ``folder``
    data: dict[str, Any] = field(default_factory=dict)  # in-memory things later jobs need (the score)
    started: float | None = None
    finished: float | None = None

    def progress(self, stage: str, fraction: float | None = None) -> None:
        self.stage = stage
        if fraction is not None:
            self.fraction = min(max(float(fraction), 0.0), 1.0)

    def add_file(self, name: str, path: Path) -> str:
        """Publish ``path`` (inside the job's folder) as ``name``; returns its URL."""
        self.files[name] = path
        return f"/api/jobs/{self.id}/files/{name}"

    def to_json(self, queue_position: int | None = None) -> dict[str, Any]:
        now = time.time()
        return {"id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
                "fraction": round(self.fraction, 4), "queue_position": queue_position,
                "elapsed_s": round((self.finished or now) - (self.started or now), 2),
                "error": self.error, "result": self.result}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_roots(tmp: str | Path | None = None) -> list[Path]:
    """Remove the job roots of servers that are gone (named ``pianoforge-serve-<pid>-*``)."""
    removed = []
    for p in Path(tmp or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        m = re.match(rf"^{ROOT_PREFIX}(\d+)-", p.name)
        if m and p.is_dir() and not p.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class JobManager:
    def __init__(self, workers: int = 1, keep_seconds: float = 3600.0, max_waiting: int = 32,
                 tmp: str | Path | None = None) -> None:
        sweep_dead_roots(tmp)
        self.root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-", dir=tmp))  # mode 0700
        self.keep_seconds, self.max_waiting = keep_seconds, max_waiting
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pianoforge-job")
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def submit(self, kind: str, fn: Callable[..., None], *args: Any) -> Job:
        """Queue ``fn(job, *args)``; it fills ``job.result`` / ``job.files`` and reports ``job.progress``."""
        self.sweep()
        with self.lock:
            if sum(j.state == "queued" for j in self.jobs.values()) >= self.max_waiting:
                raise Busy(None, f"the server is busy ({self.max_waiting} jobs waiting); try again in a minute")
            job_id = secrets.token_hex(16)
            folder = self.root / job_id
            folder.mkdir(mode=0o700)
            job = self.jobs[job_id] = Job(job_id, kind, folder)
        self.pool.submit(self._run, job, fn, args)
        return job

    def _run(self, job: Job, fn: Callable[..., None], args: tuple) -> None:
        job.state, job.started = "running", time.time()
        job.progress("starting", 0.0)
        try:
            fn(job, *args)
        except (PianoforgeError, ValueError) as e:
            job.error = f"error: {e}"
        except Exception as e:  # a bug must not take the server down with it
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error = f"internal error: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
        finally:
            job.finished = time.time()
            job.state = "error" if job.error else "done"
            if not job.error:
                job.progress("done", 1.0)

    def get(self, job_id: str) -> Job | None:
        self.sweep()
        if not JOB_ID.match(job_id):
            return None
        with self.lock:
            return self.jobs.get(job_id)

    def queue_position(self, job: Job) -> int | None:
        if job.state != "queued":
            return None
        with self.lock:
            return sum(j.state == "queued" and j.created <= job.created for j in self.jobs.values())

    def sweep(self) -> None:
        """Delete jobs that finished more than ``keep_seconds`` ago, with their folders."""
        now = time.time()
        with self.lock:
            old = [j for j in self.jobs.values() if j.finished and now - j.finished > self.keep_seconds]
            for j in old:
                del self.jobs[j.id]
        for j in old:
            shutil.rmtree(j.folder, ignore_errors=True)

    def close(self) -> None:
        """Stop taking work, cancel what waits, wait for what runs, delete every job's files."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)
