from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianoforge.data.dataset import PerformExamples
from pianoforge.data.store import FeatureStore


def fake_store(lengths: list[int]) -> FeatureStore:
    st = FeatureStore.__new__(FeatureStore)
    st.manifest = {"pieces": [{"piece_id": f"p{i}", "n_frames": n, "split": "train"} for i, n in enumerate(lengths)]}
    return st


@pytest.mark.parametrize("n,t,stride,starts", [
    (50, 80, 80, [0]),             # shorter than an example: one padded example
    (80, 80, 80, [0]),
    (100, 80, 80, [0]),            # remainder 20 < 40: dropped
    (130, 80, 80, [0, 50]),        # remainder 50 >= 40: one more example ending at the end
    (200, 80, 40, [0, 40, 80, 120]),
    (210, 80, 40, [0, 40, 80, 120]),
    (250, 80, 40, [0, 40, 80, 120, 160]),
    (250, 80, 60, [0, 60, 120, 170]),
])
def test_examples_index(n, t, stride, starts):
    idx = fake_store([n]).examples("train", t, stride)
    assert idx.dtype == np.int64
    assert idx[:, 1].tolist() == starts
    assert set(idx[:, 0].tolist()) == {0}
    assert all(s + t <= max(n, t) for s in starts)


def test_examples_index_several_pieces():
    idx = fake_store([50, 130]).examples("train", 80)
    assert idx.tolist() == [[0, 0], [1, 0], [1, 50]]
    assert fake_store([]).examples("train", 80).shape == (0, 2)


def test_perform_examples(midi_store, lan2018):
    out, _ = midi_store
    st = FeatureStore(out)
    ds = PerformExamples(st, "train")
    a = lan2018.audio
    t = lan2018.data.example_frames(a)
    assert t == 80
    assert len(ds) == len(st.pieces("train"))  # every tiny piece is shorter than one example
    item = ds[0]
    assert set(item) == {"score", "spec", "audio"}
    assert item["score"].shape == (t, 176) and item["score"].dtype == torch.float32
    assert item["spec"].shape == (t, 201)
    assert item["audio"].shape == (t * a.hop_length,)
    p = st.pieces("train")[0]
    n = p["n_frames"]
    arr = st.arrays(p["piece_id"])
    np.testing.assert_array_equal(item["score"][:n].numpy(), np.asarray(arr.score, np.float32))
    np.testing.assert_array_equal(item["audio"][: n * a.hop_length].numpy(), np.asarray(arr.audio, np.float32))
    # padded with silence past the piece's end
    assert not item["score"][n:].any() and not item["audio"][n * a.hop_length:].any()
    torch.testing.assert_close(item["spec"][n:], torch.full_like(item["spec"][n:], math.log(a.log_eps)))
    short = PerformExamples(st, "validation", example_frames=10, stride_frames=5)
    assert short[0]["score"].shape == (10, 176)
    assert len(short) >= 2
