"""Golden test: the shipped default's sound on the packaged etude, against tests/resources (stated tolerances).

An intended change of the shipped sound regenerates the file with ``python scripts/make_golden.py``; anything
else that moves these numbers (a change to encoding, the model code, phase reconstruction, the STFT, the
writer's peak handling) fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "resources" / "perform-default-etude.npz"

BAND_DB_TOL = 0.5  # dB: mean level of a band over a 0.5 s block (threads and BLAS order move it ~1e-4 dB)
RMS_REL_TOL = 0.01
EXCERPT_TOL = 1e-3  # absolute, on a full-scale-1.0 waveform


def _module():
    spec = importlib.util.spec_from_file_location("make_golden", ROOT / "scripts" / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rendered():
    """The shipped default (the learned sampler) renders on the numpy engine; it has no torch form (the notes
    head's two engines are compared in tests/test_numpy_engine.py)."""
    return _module().render_golden("auto")


def test_golden_file_belongs_to_the_shipped_checkpoint(rendered):
    ref = np.load(GOLDEN)
    _, sha = rendered
    assert str(ref["checkpoint_sha256"]) == sha, "shipped checkpoint changed: rerun scripts/make_golden.py"


def test_shipped_default_sounds_as_recorded(rendered):
    ref = np.load(GOLDEN)
    s, _ = rendered
    assert int(s["samples"]) == int(ref["samples"])
    assert s["band_db"].shape == ref["band_db"].shape
    worst = float(np.max(np.abs(s["band_db"] - ref["band_db"])))
    assert worst <= BAND_DB_TOL, f"a band moved by {worst:.3f} dB"
    assert abs(float(s["rms"]) / float(ref["rms"]) - 1.0) <= RMS_REL_TOL
    np.testing.assert_allclose(s["excerpt"], ref["excerpt"], atol=EXCERPT_TOL)


def test_golden_comparison_can_fail():
    """The statistics see a 1 dB change of level: the tolerances are not too loose to catch one."""
    from pianoforge.config import load_preset

    mod = _module()
    cfg = load_preset("default").audio
    t = np.arange(2 * cfg.sample_rate) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    quiet, louder = mod.summary(x, cfg.sample_rate, cfg), mod.summary(x * 10 ** (1 / 20), cfg.sample_rate, cfg)
    assert quiet["band_db"].shape[1] == 4
    assert np.max(np.abs(louder["band_db"] - quiet["band_db"])) > BAND_DB_TOL
