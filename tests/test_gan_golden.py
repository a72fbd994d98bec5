"""The shipped GAN generator (gan-default, a NoteGAN) generates what it generated when the reference was made.

The reference (``tests/resources/gan-default-seeds.npz``) was written by ``scripts/make_gan_golden.py`` from
the code before NoteGAN became its own model (models/gan/notegan.py); a refactoring of the model code, the
config or the checkpoint loader must leave the shipped generator's output unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "resources" / "gan-default-seeds.npz"


def _script():
    spec = importlib.util.spec_from_file_location("make_gan_golden", ROOT / "scripts" / "make_gan_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def generated():
    return _script().generate_golden()


def test_reference_is_for_the_shipped_checkpoint():
    from pianoforge.improvise import shipped_checkpoint

    ref = np.load(REF)
    assert str(ref["checkpoint_sha256"]) == hashlib.sha256(shipped_checkpoint().read_bytes()).hexdigest(), \
        "the shipped gan-default changed: rerun scripts/make_gan_golden.py and commit the reference"


def test_shipped_generator_images_are_unchanged(generated):
    s, _ = generated
    ref = np.load(REF)
    assert s["row_mean"].shape == ref["row_mean"].shape
    # float32 convolutions on another CPU may differ in the last bits; a changed model differs by far more
    np.testing.assert_allclose(s["image_excerpt"], ref["image_excerpt"], atol=2e-4)
    np.testing.assert_allclose(s["row_mean"], ref["row_mean"], atol=2e-4)
    np.testing.assert_allclose(s["row_std"], ref["row_std"], atol=2e-4)


def test_shipped_generator_audio_is_unchanged(generated):
    s, _ = generated
    ref = np.load(REF)
    np.testing.assert_allclose(s["rms"], ref["rms"], rtol=1e-3)
    np.testing.assert_allclose(s["excerpt"], ref["excerpt"], atol=1e-3)
