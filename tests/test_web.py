"""`pianoforge serve`: the app's handlers through Starlette's TestClient (no network), the job manager, and the
server process itself (binding, the warning off loopback, cleanup at exit). The browser test is
tests/test_web_browser.py."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import cli_command, run_cli, scale, write_bad_midis, write_midi_file

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e .[web])")
from starlette.testclient import TestClient  # noqa: E402

from pianoforge.inference import PerformRenderer, shipped_checkpoint  # noqa: E402
from pianoforge.midi.score import load_score  # noqa: E402
from pianoforge.web import tasks, uploads  # noqa: E402
from pianoforge.web.app import AppSettings, create_app  # noqa: E402
from pianoforge.web.jobs import JobManager, sweep_dead_roots  # noqa: E402
from pianoforge.web.server import is_loopback  # noqa: E402

BASE = "http://127.0.0.1"


def client(tmp_path: Path, **kw) -> TestClient:
    settings = AppSettings(**kw)
    jobs = JobManager(settings.workers, settings.keep_seconds, tmp=tmp_path)
    return TestClient(create_app(settings, jobs), base_url=BASE)


def wait(c: TestClient, job: dict, timeout: float = 120) -> dict:
    t0 = time.time()
    while job["state"] in ("queued", "running"):
        assert time.time() - t0 < timeout, job
        time.sleep(0.1)
        job = c.get(f"/api/jobs/{job['id']}").json()
    return job


def shipped_id(c: TestClient, stem: str) -> str:
    """The page's id of the shipped checkpoint ``stem`` (e.g. perform-default-v3)."""
    return next(e["id"] for e in c.get("/api/options").json()["checkpoints"] if e["label"] == f"shipped: {stem}")


def upload(c: TestClient, path: Path, **query) -> tuple[int, dict]:
    r = c.post("/api/perform", params={"name": path.name, **query}, content=path.read_bytes())
    return r.status_code, r.json()


def wav(c: TestClient, url: str, tmp_path: Path) -> tuple[np.ndarray, int]:
    r = c.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    p = tmp_path / f"got-{abs(hash(url))}.wav"
    p.write_bytes(r.content)
    return sf.read(str(p), dtype="float32")


@pytest.fixture(scope="module")
def renderer() -> PerformRenderer:
    return PerformRenderer.from_checkpoint()


def test_good_midi_renders_both_players_of_the_right_length_at_the_same_loudness(tmp_path, renderer):
    mid = write_midi_file(tmp_path / "two.mid", scale(60, 6, 0.3))
    expected = renderer.n_frames(load_score(mid)) * renderer.preset.audio.hop_length  # samples at 16 kHz
    with client(tmp_path) as c:
        # the neural notes head (its phase method chosen); the default sampler writes its own waveform
        code, job = upload(c, mid, rate="22050", phase="pghi", checkpoint=shipped_id(c, "perform-default-v3"))
        assert code == 202, job
        job = wait(c, job)
        assert job["state"] == "done", job
        res = job["result"]
        assert res["sample_rate"] == 22050 and res["phase"] == "pghi" and res["notes"] == 6
        neural, sr = wav(c, res["files"]["neural"], tmp_path)
        ref, sr2 = wav(c, res["files"]["reference"], tmp_path)
        assert sr == sr2 == 22050
        assert abs(len(neural) - expected * 22050 / 16000) <= 2 and len(ref) == len(neural)
        assert res["seconds"] == pytest.approx(len(neural) / sr, abs=1e-3)
        assert res["render_s"] > 0 and res["realtime_factor"] == pytest.approx(res["seconds"] / res["render_s"], rel=0.05)
        rms = [20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for x in (neural, ref)]
        assert abs(rms[0] - rms[1]) < 0.1 and abs(rms[0] - tasks.TARGET_RMS_DB) < 0.5, rms
        png = c.get(res["files"]["figure4"])
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert "two.neural.wav" in png.request.url.path.replace("figure4.png", "neural.wav")
        # the page and its parts
        assert "neural-audio" in c.get("/").text and c.get("/static/app.js").status_code == 200
        opts = c.get("/api/options").json()
        assert opts["examples"] == ["etude.mid"] and "pghi+gl" in opts["phases"]
        assert {e["kind"] for e in opts["checkpoints"]} == {"perform", "gan"}


def test_bad_uploads_get_the_clis_one_line_error_and_the_server_keeps_serving(tmp_path, monkeypatch):
    bad = write_bad_midis(tmp_path / "bad")
    monkeypatch.chdir(tmp_path / "bad")
    with client(tmp_path) as c:
        for _, (path, words) in bad.items():
            try:
                load_score(path.name)
            except Exception as e:
                cli_line = f"error: {e}"
            code, body = upload(c, path)
            assert code == 400 and body["error"] == cli_line, (body, cli_line)
            assert words in body["error"]
        # the same line as the real CLI prints for one of them
        proc = run_cli("reference", "corrupt.mid", "-o", "x.wav", cwd=tmp_path / "bad")
        assert proc.stderr.strip() == upload(c, bad["corrupt"][0])[1]["error"]
        # a user's path never reaches the filesystem: only its last component is shown
        r = c.post("/api/perform", params={"name": "../../etc/passwd"}, content=b"not midi")
        assert r.json()["error"] == "error: passwd: not a MIDI file (no MThd header)"
        code, job = upload(c, write_midi_file(tmp_path / "ok.mid", scale(64, 2)))
        assert code == 202 and wait(c, job)["state"] == "done"


def test_too_large_and_too_long_are_refused_before_any_work(tmp_path):
    mid = write_midi_file(tmp_path / "long.mid", [(60, 0.0, 0.5, 90), (62, 3.0, 3.5, 90)])
    with client(tmp_path, max_upload_bytes=1000, max_seconds=2.0) as c:
        r = c.post("/api/perform", params={"name": "big.mid"}, content=b"MThd" + bytes(5000))
        assert r.status_code == 413 and "larger than this server's limit of 0.001 MB" in r.json()["error"]

        def chunks():  # no Content-Length: refused while streaming
            for _ in range(10):
                yield b"MThd" + bytes(500)

        r = c.post("/api/perform", params={"name": "big.mid"}, content=chunks())
        assert r.status_code == 413, r.text
        code, body = upload(c, mid)
        assert code == 400 and body["error"].startswith("error: long.mid: the render would be 5.0 s long")
        assert "at most 2 s" in body["error"]
        assert not any(c.app.state.jobs.root.iterdir())  # nothing was queued


def test_bad_options_are_one_line_errors(tmp_path):
    mid = write_midi_file(tmp_path / "a.mid", scale(60, 2))
    with client(tmp_path) as c:
        assert "output sample rate must be one of" in upload(c, mid, rate="12345")[1]["error"]
        assert "unknown phase method 'magic'" in upload(c, mid, phase="magic")[1]["error"]
        v3 = shipped_id(c, "perform-default-v3")
        assert "needs a complex or time model" in upload(c, mid, phase="direct", checkpoint=v3)[1]["error"]
        assert "does not apply: this model writes its own waveform" in upload(c, mid, phase="pghi")[1]["error"]
        assert "unknown perform checkpoint id" in upload(c, mid, checkpoint="../x")[1]["error"]
        assert "no bundled example" in c.post("/api/perform", params={"example": "../../etc/passwd"}).json()["error"]
        for body, words in (({"n": 0}, "n must be an integer in 1..16"), ({"n": 99}, "n must be"),
                            ({"n": 1, "interpolate": True}, "n must be an integer in 2..16"),
                            ({"seed": -1}, "seed must be"), ({"seed": "x"}, "seed must be")):
            r = c.post("/api/improvise", json=body)
            assert r.status_code == 400 and words in r.json()["error"], (body, r.json())
        assert c.post("/api/improvise", content=b"{nope").json()["error"] == "error: the request is not JSON"
        for url in ("/api/jobs/nope", "/api/jobs/" + "0" * 32, "/api/jobs/" + "0" * 32 + "/files/neural.wav"):
            assert c.get(url).status_code == 404
        assert c.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding


def test_concurrent_users_get_their_own_results(tmp_path, renderer):
    mids = [write_midi_file(tmp_path / f"u{i}.mid", scale(50 + 7 * i, 3 + 3 * i, 0.25)) for i in range(2)]
    with client(tmp_path, workers=2) as c:
        answers: list = [None, None]

        def go(i: int) -> None:
            answers[i] = upload(c, mids[i])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = [wait(c, a[1]) for a in answers]
        assert jobs[0]["id"] != jobs[1]["id"] and all(j["state"] == "done" for j in jobs)
        urls = [j["result"]["files"]["neural"] for j in jobs]
        assert urls[0] != urls[1]
        for j, mid in zip(jobs, mids, strict=True):
            audio, _ = wav(c, j["result"]["files"]["neural"], tmp_path)
            assert len(audio) == renderer.n_frames(load_score(mid)) * renderer.preset.audio.hop_length
        # one user's file is not reachable under another user's job
        name = urls[0].rsplit("/", 1)[1]
        assert c.get(f"/api/jobs/{jobs[1]['id']}/files/{name}").status_code == 404
        folders = {p.name for p in c.app.state.jobs.root.iterdir()}
        assert folders == {j["id"] for j in jobs}


def test_improvise_clips_and_interpolation(tmp_path):
    from pianoforge.improvise import GanGenerator

    g = GanGenerator.from_checkpoint()
    with client(tmp_path) as c:
        job = wait(c, c.post("/api/improvise", json={"n": 2, "seed": 5}).json())
        assert job["state"] == "done", job
        clips = job["result"]["clips"]
        assert [x["label"] for x in clips] == ["seed 5", "seed 6"]
        y, sr = wav(c, clips[1]["audio"], tmp_path)
        want = g.generate_clips(1, 6).audio[0]
        assert sr == g.sample_rate and len(y) == len(want)
        assert np.corrcoef(y, want)[0, 1] > 0.99  # the CLI's clip (16-bit, peak-safe)
        assert c.get(clips[0]["spectrogram"]).content[:4] == b"\x89PNG"
        job = wait(c, c.post("/api/improvise", json={"n": 3, "seed": 1, "interpolate": True, "seed_b": 9}).json())
        assert job["state"] == "done" and len(job["result"]["clips"]) == 3
        seq, _ = wav(c, job["result"]["sequence"], tmp_path)
        assert len(seq) == 3 * len(want)


def test_judge_button_scores_both_renders(tmp_path):
    pytest.importorskip("basic_pitch", reason="the judge needs basic-pitch (make install)")
    mid = write_midi_file(tmp_path / "j.mid", scale(60, 4, 0.4, vel=100))
    with client(tmp_path) as c:
        job = wait(c, upload(c, mid)[1])
        judged = wait(c, c.post(f"/api/perform/{job['id']}/judge").json())
        assert judged["state"] == "done", judged
        r = judged["result"]
        assert 0 <= r["neural"]["onset_f1"] <= 1 and r["reference"]["onset_f1"] > 0.5, r
        assert c.post("/api/perform/" + "0" * 32 + "/judge").status_code == 404


def test_runs_folder_checkpoints_are_offered_by_id(tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "b").mkdir()
    shutil.copy(shipped_checkpoint(), runs / "a" / "best.safetensors")
    (runs / "b" / "best.safetensors").write_bytes(b"garbage")  # skipped, not fatal
    with client(tmp_path, runs=str(runs)) as c:
        cps = c.get("/api/options").json()["checkpoints"]
        mine = [e for e in cps if e["label"] == "run: a"]
        assert len(mine) == 1 and mine[0]["kind"] == "perform" and "b" not in {e["label"][5:] for e in cps}
        assert str(runs) not in str(cps)  # ids and labels, never paths
        code, job = upload(c, write_midi_file(tmp_path / "r.mid", scale(60, 2)), checkpoint=mine[0]["id"])
        assert code == 202 and wait(c, job)["result"]["checkpoint"] == "run: a"


def test_failures_inside_a_job_and_cleanup(tmp_path, monkeypatch):
    def broken(job, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(tasks, "perform", broken)
    mid = write_midi_file(tmp_path / "a.mid", scale(60, 2))
    with client(tmp_path, keep_seconds=0.5) as c:
        root = c.app.state.jobs.root
        assert root.stat().st_mode & 0o777 == 0o700 and root.parent == tmp_path
        job = wait(c, upload(c, mid)[1])
        assert job["state"] == "error" and job["error"] == "internal error: RuntimeError: boom"
        first = root / job["id"]
        assert first.is_dir()
        time.sleep(0.6)
        assert upload(c, mid)[0] == 202  # a submission sweeps the jobs that finished over keep_seconds ago
        assert not first.exists() and c.get(f"/api/jobs/{job['id']}").status_code == 404
    assert not root.exists()  # all gone at shutdown
    dead = tmp_path / "pianoforge-serve-999999999-abc"
    dead.mkdir()
    assert sweep_dead_roots(tmp_path) == [dead] and not dead.exists()


def test_a_full_queue_is_refused_with_503_and_the_pool_goes_on(tmp_path):
    from pianoforge.web.jobs import Busy

    jobs = JobManager(workers=1, max_waiting=1, tmp=tmp_path)
    gate = threading.Event()
    try:
        running = jobs.submit("t", lambda job: gate.wait(30))
        while running.state != "running":
            time.sleep(0.01)
        waiting = jobs.submit("t", lambda job: None)
        assert jobs.queue_position(waiting) == 1
        with pytest.raises(Busy, match="busy"):
            jobs.submit("t", lambda job: None)
        gate.set()
        while waiting.state != "done":
            time.sleep(0.01)
        assert running.state == "done" and jobs.submit("t", lambda job: None)
    finally:
        gate.set()
        jobs.close()


def test_display_names_and_loopback():
    assert uploads.display_name("C:\\Users\\me\\..\\x<script>.mid") == "x_script_.mid"
    assert uploads.display_name("") == uploads.display_name("...") == "upload.mid"
    assert all(map(is_loopback, ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.2", "example.org")))


def test_serve_process_warns_off_loopback_serves_and_cleans_up_on_ctrl_c():
    proc = subprocess.Popen([*cli_command(), "serve", "--host", "0.0.0.0", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        warning = proc.stderr.readline()
        line = proc.stdout.readline()
        assert warning.startswith("warning: serving on 0.0.0.0, reachable from other machines"), warning
        port = int(line.split("http://0.0.0.0:")[1].split("/")[0])
        root = Path(line.rsplit("at exit: ", 1)[1].strip().rstrip(")"))
        assert root.is_dir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/options", timeout=30) as r:
            assert b"perform-default" in r.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not root.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    bad = run_cli("serve", "--runs", "/nonexistent-runs")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: /nonexistent-runs: --runs must be a folder"
