"""The page in a real browser: Debian's headless Chromium, driven by Selenium 4 through /usr/bin/chromedriver
(nothing is downloaded), against `pianoforge serve --port 0` in its own process.

Uploads examples/etude.mid, renders it, waits for the neural <audio> to hold audio, fetches it (in the
page and from here) and checks its duration; uploads a corrupt file and sees the CLI's error line; makes two
GAN clips; saves screenshots to $PIANOFORGE_TEST_ARTIFACTS (default test-artifacts/). When Chromium,
chromedriver or selenium is missing (`make test` installs them) the test is skipped and says which.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import cli_command

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("PIANOFORGE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1200,1500")


def _browser_or_skip() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e .[web]; make test does it)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not chromium or not driver:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p)
        pytest.skip(f"{missing} not installed (apt-get install chromium chromium-driver; make test tries it)")
    return chromium, driver


@pytest.fixture()
def server():
    """`pianoforge serve --port 0` in a subprocess: yields (url, job root); stopped with SIGTERM after."""
    proc = subprocess.Popen([*cli_command(), "serve", "--port", "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    try:
        line = proc.stdout.readline()
        assert line.startswith("pianoforge serve: http://127.0.0.1:"), line
        url = line.split()[2]
        root = Path(line.rsplit("at exit: ", 1)[1].strip().rstrip(")"))
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
    assert not root.exists(), "the server left its job folder behind"


@pytest.fixture()
def browser(tmp_path):
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.set_script_timeout(30)
    yield drv
    drv.quit()


def _wait(drv, js: str, timeout: float, what: str, error_id: str | None = None):
    """Poll ``js`` (a JS expression) until truthy; fail early with the page's error text when one shows."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = drv.execute_script(f"return {js};")
        if v:
            return v
        if error_id and drv.execute_script(f"return !document.getElementById('{error_id}').hidden;"):
            pytest.fail(f"{what}: the page shows {drv.find_element('id', error_id).text!r}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_perform_and_improvise_in_headless_chromium(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from pianoforge.inference import PerformRenderer
    from pianoforge.midi.score import load_score

    url, _ = server
    etude = ROOT / "examples" / "etude.mid"
    if not etude.exists():
        etude = ROOT / "src" / "pianoforge" / "examples" / "etude.mid"
    r = PerformRenderer.from_checkpoint()
    expected_s = r.n_frames(load_score(etude)) * r.preset.audio.hop_length / r.sample_rate
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    drv = browser
    drv.get(url)
    _wait(drv, "document.getElementById('perform-checkpoint').options.length > 0", 20, "the options")
    drv.find_element(By.ID, "midi-file").send_keys(str(etude))
    drv.find_element(By.ID, "render").click()
    _wait(drv, "!document.getElementById('perform-progress').hidden", 10, "the progress bar", "perform-error")
    js_ready = ("(a => a.readyState >= 1 && isFinite(a.duration) && a.duration > 0)"
                "(document.getElementById('neural-audio'))")
    _wait(drv, js_ready, 90, "the neural audio element to hold audio", "perform-error")
    duration = drv.execute_script("return document.getElementById('neural-audio').duration;")
    assert duration == pytest.approx(expected_s, abs=0.01)
    src = drv.execute_script("return document.getElementById('neural-audio').src;")
    n_bytes = drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => done(b.byteLength), e => done(-1));", src)
    got = tmp_path / "neural.wav"
    with urllib.request.urlopen(src, timeout=30) as resp:
        got.write_bytes(resp.read())
    assert n_bytes == got.stat().st_size
    audio, sr = sf.read(str(got), dtype="float32")
    assert len(audio) / sr == pytest.approx(expected_s, abs=1e-3) and np.abs(audio).max() > 0.01
    stats = drv.find_element(By.ID, "perform-stats").text
    assert "etude.mid" in stats and "x real time" in stats, stats
    _wait(drv, "document.getElementById('figure4').naturalWidth > 0", 20, "Figure 4")
    ref_ready = js_ready.replace("neural-audio", "reference-audio")
    _wait(drv, ref_ready, 20, "the reference audio")
    drv.find_element(By.ID, "ab").click()  # one click: neural plays; another: the reference, same moment
    _wait(drv, "!document.getElementById('neural-audio').paused", 10, "the neural player to play")
    drv.find_element(By.ID, "ab").click()
    _wait(drv, "!document.getElementById('reference-audio').paused && document.getElementById('neural-audio').paused",
          10, "the A/B switch to the reference")
    drv.execute_script("document.getElementById('reference-audio').pause(); window.scrollTo(0, 0);")
    assert drv.save_screenshot(str(ARTIFACTS / "serve-perform.png"))

    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd" + np.random.default_rng(7).bytes(300))
    drv.find_element(By.ID, "midi-file").send_keys(str(corrupt))
    drv.find_element(By.ID, "render").click()
    _wait(drv, "!document.getElementById('perform-error').hidden", 20, "the error line")
    error = drv.find_element(By.ID, "perform-error").text
    assert error.startswith("error: corrupt.mid: corrupt or truncated MIDI ("), error
    assert "\n" not in error
    with urllib.request.urlopen(url + "api/options", timeout=10) as resp:  # still serving
        assert resp.status == 200

    drv.find_element(By.ID, "tab-improvise").click()
    n = drv.find_element(By.ID, "gan-n")
    n.clear()
    n.send_keys("2")
    drv.find_element(By.ID, "generate").click()
    clips_ready = ("Array.from(document.querySelectorAll('#clips audio')).filter(a => a.readyState >= 1 && "
                   "a.duration > 0).length === 2 && Array.from(document.querySelectorAll('#clips img'))"
                   ".every(i => i.naturalWidth > 0)")
    _wait(drv, clips_ready, 60, "two GAN clips with spectrograms", "improvise-error")
    assert drv.save_screenshot(str(ARTIFACTS / "serve-improvise.png"))
    drv.set_window_size(400, 900)  # a phone: everything wraps, nothing scrolls sideways
    drv.find_element(By.ID, "tab-perform").click()
    assert drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")
    print(f"screenshots: {ARTIFACTS / 'serve-perform.png'}, {ARTIFACTS / 'serve-improvise.png'}")
