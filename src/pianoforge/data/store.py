"""The dataset store: a versioned, self-describing folder of memory-mapped arrays.

Layout::

    OUT/manifest.json              format + version, full preset, provenance, splits, normalization
    OUT/pieces/<piece_id>/         one folder per piece, written atomically (temp folder + rename)
        score.npy   (frames, channels) float16  frame encoding (see pianoforge.midi.encoding)
        spec.npy    (frames, bins)     float16  natural-log magnitude, log(|STFT| + eps), not normalized
        audio.npy   (frames * hop,)    float16  mono waveform in [-1, 1] at preset.audio.sample_rate
        meta.json   piece id, split, frames, seconds, notes, provenance, data fingerprint

Arrays are opened with ``np.load(mmap_mode="r")``, so training memory does not grow with corpus size.
Normalization statistics are per-frequency-bin moments of ``spec`` over the train split, the std floored at
``data.std_floor`` x the median bin's (``std_floor``, ``floored_bins`` in the manifest; absent in older stores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pianoforge.audio.spectral import Normalizer
from pianoforge.config import Preset
from pianoforge.data.reserved import is_reserved
from pianoforge.errors import StoreError
from pianoforge.fsutil import write_text_atomic

FORMAT = "pianoforge-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = ("score", "spec", "audio")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` atomically (:func:`pianoforge.fsutil.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_manifest(root: Path) -> dict[str, Any]:
    """Read and validate a manifest; unknown formats and versions are rejected."""
    path = root / MANIFEST
    if not path.exists():
        raise StoreError(root, "not a pianoforge dataset (no manifest.json); build one with `pianoforge data build`")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(path, f"unreadable manifest ({e})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise StoreError(path, f"not a {FORMAT} manifest")
    v = m.get("format_version")
    if v != FORMAT_VERSION:
        raise StoreError(path, f"unsupported dataset format version {v!r} (this pianoforge reads {FORMAT_VERSION})")
    return m


def compute_normalization(root: Path, pieces: list[dict[str, Any]], std_floor: float = 0.0) -> dict[str, Any]:
    """Per-bin mean/std of log-magnitude over ``pieces``, streamed in float64, each bin's std floored at
    ``std_floor`` x the median bin's std: a band that is empty in every training piece (audio resampled
    from 44.1 kHz, near Nyquist) would otherwise get a std of ~1e-3 and z-scores in the thousands on a
    validation piece that has energy there. Stores built before the floor keep their own statistics."""
    count, s1, s2 = 0, None, None
    for p in pieces:
        spec = np.load(root / "pieces" / p["piece_id"] / "spec.npy", mmap_mode="r")
        for a in range(0, spec.shape[0], 4096):
            blk = np.asarray(spec[a:a + 4096], dtype=np.float64)
            s1 = blk.sum(0) if s1 is None else s1 + blk.sum(0)
            s2 = (blk**2).sum(0) if s2 is None else s2 + (blk**2).sum(0)
            count += blk.shape[0]
    if s1 is None:
        return {"mean": [], "std": [], "frames": 0, "split": "train"}
    norm = Normalizer.from_moments(count, s1, s2)
    floor = std_floor * float(np.median(norm.std))
    floored = int(np.sum(norm.std < floor))
    norm = Normalizer(norm.mean, np.maximum(norm.std, floor))
    d: dict[str, Any] = norm.to_dict()
    d.update({"frames": count, "split": "train", "std_floor": std_floor, "floored_bins": floored})
    return d


@dataclass
class PieceArrays:
    score: np.ndarray  # (frames, channels) float16 memmap
    spec: np.ndarray  # (frames, bins) float16 memmap
    audio: np.ndarray  # (frames * hop,) float16 memmap


class FeatureStore:
    """Read-only access to a built dataset store."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if self.manifest.get("status") != "complete":
            raise StoreError(self.root, "dataset build is not complete; rerun the same `pianoforge data build`")
        self._arrays: dict[str, PieceArrays] = {}

    @cached_property
    def preset(self) -> Preset:
        return Preset.from_dict(self.manifest["preset"], str(self.root / MANIFEST))

    @cached_property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_dict(self.manifest["normalization"])

    def pieces(self, split: str | None = None) -> list[dict[str, Any]]:
        """Piece records (``piece_id``, ``split``, ``n_frames``, ``seconds``, ...), in manifest order."""
        ps = self.manifest["pieces"]
        return [p for p in ps if split is None or p["split"] == split]

    def check_trainable(self) -> None:
        """StoreError unless a model may be trained on this store: not evaluation-only (``--allow-reserved``),
        no reserved work among its pieces, at least one training piece. (Geometry is the trainer's check.)"""
        if self.manifest.get("eval_only"):
            raise StoreError(self.root, "is an evaluation-only store (built with --allow-reserved); never train on it")
        for p in self.pieces():
            work = p.get("provenance", {}).get("work") or p["piece_id"]
            if is_reserved(work) or is_reserved(Path(p.get("midi") or "").name):
                raise StoreError(self.root, f"holds reserved work {work}; it must never be trained on")
        if not self.pieces("train"):
            raise StoreError(self.root, "has no training pieces")

    def arrays(self, piece_id: str) -> PieceArrays:
        """Memory-mapped arrays of one piece (opened once per process)."""
        if piece_id not in self._arrays:
            d = self.root / "pieces" / piece_id
            try:
                arrs = {k: np.load(d / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in ARRAYS}
            except (OSError, ValueError) as e:
                raise StoreError(d, f"missing or corrupt piece arrays ({e})") from e
            self._arrays[piece_id] = PieceArrays(**arrs)
        return self._arrays[piece_id]

    def examples(self, split: str, example_frames: int, stride_frames: int | None = None) -> np.ndarray:
        """Fixed-length example index (n, 2) of (piece number within the split, start frame).

        Starts every ``stride_frames``; a piece shorter than an example gives one (zero-padded) example;
        a remainder of at least half an example adds one final example ending at the piece's end.
        """
        stride = stride_frames or example_frames
        rows = []
        for i, p in enumerate(self.pieces(split)):
            n = int(p["n_frames"])
            starts = list(range(0, max(n - example_frames, 0) + 1, stride))
            last = starts[-1] + example_frames
            if n - last >= example_frames // 2 and n > example_frames:
                starts.append(n - example_frames)
            rows += [(i, s) for s in starts]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 2)
