"""Build a dataset store from a list of :class:`~pianoforge.data.sources.PieceSpec`.

The build is resumable and never leaves a corrupt store:
- each piece is processed by a worker and written into ``pieces/.tmp-*`` then renamed into place;
  a piece already present with the same data fingerprint and source checksum is reused;
- ``manifest.json`` is written last (atomically) with ``status: complete``; until then readers refuse
  the store;
- rerunning a finished build with the same preset and sources is a no-op.
Bad pieces (corrupt MIDI, missing, unreadable, silent or too-short audio, audio that does not match its MIDI,
...) are skipped and listed in the manifest; splits are assigned afterwards, over the pieces that built
(forced splits, MAESTRO's official one included, kept as given), and the manifest's ``warnings`` say when
a split is empty or native sample rates are mixed (:mod:`pianoforge.data.checks`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pianoforge.config import Preset
from pianoforge.data import checks, piece
from pianoforge.data.piece import audio_identity, file_digest
from pianoforge.data.reserved import is_reserved
from pianoforge.data.sources import SPLITS, PieceSpec
from pianoforge.data.store import (
    ARRAYS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    compute_normalization,
    read_manifest,
    write_json_atomic,
)
from pianoforge.errors import StoreError
from pianoforge.fsutil import check_folder

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    out: Path
    built: int = 0
    reused: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    up_to_date: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)


def source_digest(specs: Iterable[PieceSpec]) -> str:
    """Identity of the inputs: ids, paths, sizes and modification times."""
    h = hashlib.sha256()
    for s in specs:
        for p in (s.midi, s.audio):
            st = p.stat() if p is not None and p.exists() else None
            h.update(f"{s.piece_id}|{p}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}|{s.split}\n".encode())
    return h.hexdigest()[:16]


def assign_splits(specs: list[PieceSpec], seed: int, fractions: tuple[float, float, float]) -> dict[str, str]:
    """Split by piece, never by chunk. Forced splits are kept; the others are ordered by a seeded hash of
    their id and cut 80/10/10 (at least one validation and one test piece when there are three or more)."""
    out = {s.piece_id: s.split for s in specs if s.split}
    free = sorted((s.piece_id for s in specs if not s.split),
                  key=lambda pid: hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest())
    n = len(free)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    n_train = n - n_val - n_test
    for i, pid in enumerate(free):
        out[pid] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    return out


def _check_writable(out: Path) -> None:
    check_folder(out, create=True)


def _reserved_reason(spec: PieceSpec) -> str | None:
    work = spec.provenance.get("work") or spec.provenance.get("file") or spec.midi.name
    if is_reserved(work) or is_reserved(spec.midi.name):
        return "reserved for independent evaluation (shared/reserved-works.txt); never used for training"
    return None


def build(specs: list[PieceSpec], out: str | Path, preset: Preset, *, workers: int = 1, progress: bool = True,
          source_info: dict[str, Any] | None = None, listing_failures: list[tuple[str, str]] | None = None,
          allow_reserved: bool = False) -> BuildReport:
    """Build (or resume, or confirm) the store at ``out``. Returns a :class:`BuildReport`."""
    out = Path(out)
    _check_writable(out)
    fingerprint = preset.data_fingerprint()
    digest = source_digest(specs)
    old = _existing_manifest(out)
    if old is not None:
        if old.get("fingerprint") != fingerprint:
            raise StoreError(out, f"already holds a dataset built with preset {old['preset'].get('name')!r} "
                                  "and another configuration; use a new --out folder")
        if old.get("status") == "complete" and old.get("source_digest") == digest:
            return BuildReport(out, reused=len(old["pieces"]), skipped=old.get("skipped", []),
                               up_to_date=True, manifest=old)
    pieces_dir = out / "pieces"
    pieces_dir.mkdir(exist_ok=True)
    for stale in pieces_dir.glob(".tmp-*"):  # left by an interrupted build
        shutil.rmtree(stale, ignore_errors=True)

    # provisional splits for the interim manifest; the final ones are assigned over the pieces that built
    splits = assign_splits(specs, preset.data.split_seed, preset.data.split_fractions)
    skipped = [{"piece_id": w, "error": e} for w, e in (listing_failures or [])]
    todo, metas = [], {}
    for s in specs:
        reason = None if allow_reserved else _reserved_reason(s)
        if reason:
            skipped.append({"piece_id": s.piece_id, "file": str(s.midi), "error": f"{s.midi}: {reason}"})
            continue
        meta = _reusable(pieces_dir / s.piece_id, fingerprint, s)
        if meta is not None:
            meta["split"] = "test" if allow_reserved else splits[s.piece_id]
            metas[s.piece_id] = meta
        else:
            todo.append(s)
    report = BuildReport(out, reused=len(metas))
    _write_manifest(out, preset, fingerprint, digest, source_info, metas, skipped, specs, status="building")

    for spec, result in _run(todo, preset, pieces_dir, fingerprint, workers, progress):
        if isinstance(result, str):
            skipped.append({"piece_id": spec.piece_id, "file": str(spec.midi), "error": result})
            log.warning("skipped %s", result)
        else:
            metas[spec.piece_id] = result
            report.built += 1
    final = assign_splits([s for s in specs if s.piece_id in metas], preset.data.split_seed,
                          preset.data.split_fractions)
    for pid, meta in metas.items():  # splits after failures: a bad piece never takes a validation/test place
        meta["split"] = "test" if allow_reserved else final[pid]
    report.skipped = skipped
    report.manifest = _write_manifest(out, preset, fingerprint, digest, source_info, metas, skipped, specs,
                                      status="complete", allow_reserved=allow_reserved)
    return report


def _existing_manifest(out: Path) -> dict[str, Any] | None:
    if not (out / MANIFEST).exists():
        return None
    return read_manifest(out)  # StoreError for unreadable manifests, other formats, unsupported versions


def _reusable(piece_dir: Path, fingerprint: str, spec: PieceSpec) -> dict[str, Any] | None:
    meta_path = piece_dir / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fingerprint or meta.get("midi_sha1") != file_digest(spec.midi):
        return None
    if meta.get("audio_id") != audio_identity(spec.audio):  # the recording was replaced
        return None
    if not all((piece_dir / f"{k}.npy").exists() for k in ARRAYS):
        return None
    return meta


def _run(todo: list[PieceSpec], preset: Preset, pieces_dir: Path, fingerprint: str, workers: int,
         progress: bool):
    from tqdm import tqdm


    if not todo:
        return
    pdict = preset.to_dict()
    bar = tqdm(total=len(todo), desc="build", unit="piece", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            for s in todo:
                yield s, piece.process_piece(s, pdict, pieces_dir, fingerprint)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                     initializer=_init_worker) as ex:
                futs = {ex.submit(piece.process_piece, s, pdict, pieces_dir, fingerprint): s for s in todo}
                for f in as_completed(futs):
                    yield futs[f], f.result()
                    bar.update()
    finally:
        bar.close()


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _write_manifest(out: Path, preset: Preset, fingerprint: str, digest: str, source_info: dict[str, Any] | None,
                    metas: dict[str, dict[str, Any]], skipped: list[dict[str, str]], specs: list[PieceSpec],
                    status: str, allow_reserved: bool = False) -> dict[str, Any]:
    from pianoforge import __version__

    order = [s.piece_id for s in specs if s.piece_id in metas]
    pieces = [metas[pid] for pid in order]
    split_info = {}
    audio, data = preset.audio, preset.data
    t, stride = data.example_frames(audio), data.stride_frames(audio)
    for sp in SPLITS:
        ps = [p for p in pieces if p["split"] == sp]
        split_info[sp] = {"pieces": len(ps), "seconds": round(sum(p["seconds"] for p in ps), 3),
                          "frames": int(sum(p["n_frames"] for p in ps)),
                          "examples": _count_examples([p["n_frames"] for p in ps], t, stride)}
    m: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": status,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "pianoforge_version": __version__, "fingerprint": fingerprint, "source_digest": digest,
        "eval_only": allow_reserved, "source": source_info or {}, "preset": preset.to_dict(),
        "arrays": {"score": ["frames", preset.score.n_channels, "float16", "frame encoding"],
                   "spec": ["frames", audio.n_bins, "float16", "log(|STFT| + eps), natural log"],
                   "audio": ["frames * hop", "float16", f"mono waveform at {audio.sample_rate} Hz"]},
        "example_frames": t, "stride_frames": stride, "splits": split_info,
        "pieces": pieces, "skipped": skipped,
    }
    if status == "complete":
        m["normalization"] = compute_normalization(out, [p for p in pieces if p["split"] == "train"] or pieces,
                                                   data.std_floor)
        m["warnings"] = checks.build_warnings(pieces, split_info, preset, allow_reserved)
        m["instruments"] = checks.instruments(pieces, preset)
        m["licences"] = checks.licences(pieces, preset)
        for w in m["warnings"]:
            log.warning("%s: %s", out, w)
    write_json_atomic(out / MANIFEST, m)
    return m


def _count_examples(lengths: list[int], t: int, stride: int) -> int:
    from pianoforge.data.store import FeatureStore

    fake = FeatureStore.__new__(FeatureStore)
    fake.manifest = {"pieces": [{"n_frames": n, "split": "x"} for n in lengths]}
    return len(FeatureStore.examples(fake, "x", t, stride))
