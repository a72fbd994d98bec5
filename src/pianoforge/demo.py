"""The main job on the embedded default, as ``make demo`` runs it.

1. Build a small dataset store from the embedded corpus (the first ``limit`` music21 works plus a few
   generated exercises) with the ``default`` preset.
2. Render the example score (``etude.mid``, shipped inside the package) with the FluidSynth reference renderer.
3. Render the same score with the shipped ``default`` model and draw the paper's Figure 4
   (piano roll, the model's spectrogram, FluidSynth reference spectrogram).
4. Generate one clip with the shipped GAN generator (improvise), when one is shipped.
5. Draw one held-out piece of the store.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np

from pianoforge.audio.io import save_audio
from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import log_magnitude_np
from pianoforge.config import load_preset
from pianoforge.data.build import build
from pianoforge.data.sources import collect
from pianoforge.data.store import FeatureStore
from pianoforge.errors import OutputError, PianoforgeError
from pianoforge.fsutil import check_folder
from pianoforge.midi.encoding import encode, frames_for, piano_roll
from pianoforge.midi.score import load_score
from pianoforge.viz import score_and_spectrograms


def example_score(name: str = "etude.mid") -> Path:
    """A MIDI file shipped inside the package (``pianoforge/examples/``), wherever the command runs."""
    p = Path(str(resources.files("pianoforge") / "examples" / name))
    if not p.is_file():
        raise PianoforgeError(p, "example score missing from the installed package; reinstall pianoforge")
    return p


def run_demo(out: Path, workers: int = 2, limit: int = 8, example: Path | None = None,
             force: bool = False) -> dict[str, Path]:
    """Run the five steps into ``out``; an ``out`` that already holds files needs ``force``."""
    example = example_score() if example is None else Path(example)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(out, "already holds files (a previous demo?); use --force to overwrite, or another --out")
    check_folder(out, create=True)
    preset = load_preset("default")
    a = preset.audio
    made: dict[str, Path] = {}

    print(f"[1/5] dataset: embedded corpus (first {limit} music21 works + exercises), preset default")
    t0 = time.perf_counter()
    specs, failures = collect("corpus", None, limit=limit, workers=workers)
    rep = build(specs, out / "dataset", preset, workers=workers, listing_failures=failures,
                source_info={"kind": "corpus", "limit": limit})
    m = rep.manifest
    print(f"      {len(m['pieces'])} pieces, {sum(p['seconds'] for p in m['pieces']) / 60:.1f} min, "
          f"{len(rep.skipped)} skipped, {time.perf_counter() - t0:.1f} s -> {out / 'dataset'}")
    made["dataset"] = out / "dataset"

    print(f"[2/5] reference render of {example} (FluidSynth)")
    score = load_score(example)
    n = frames_for(score.end_time + preset.render.release_seconds, a.frame_rate)
    t0 = time.perf_counter()
    audio = render_score(score, a.sample_rate, preset.render, n * a.hop_length)
    dt = time.perf_counter() - t0
    made["reference_wav"] = save_audio(out / f"{example.stem}.reference.wav", audio, a.sample_rate)
    made["reference_png"] = score_and_spectrograms(
        out / f"{example.stem}.reference.png", piano_roll(encode(score, preset.score, a.frame_rate, n)),
        [("FluidSynth reference (log-magnitude)", log_magnitude_np(audio, a))], a, title=example.name)
    print(f"      {len(audio) / a.sample_rate:.1f} s in {dt:.2f} s -> {made['reference_wav']}")

    from pianoforge.checkpoint import CheckpointError
    from pianoforge.inference import PerformRenderer, figure4

    print(f"[3/5] render of {example} with the shipped default model")
    try:
        r = PerformRenderer.from_checkpoint()
    except CheckpointError as e:
        print(f"      skipped: {e}")
    else:
        print(f"      model: {r.model.cfg.head} head on the {r.engine} engine")
        res = r.render_midi(example, out / f"{example.stem}.neural.wav")
        made["neural_wav"] = out / f"{example.stem}.neural.wav"
        made["figure4_png"] = figure4(out / f"{example.stem}.figure4.png", r, load_score(example), res.logmag)
        print(f"      {res.seconds:.1f} s in {res.wall_s:.2f} s ({res.realtime_factor:.0f}x real time) "
              f"-> {made['neural_wav']}")

    from pianoforge.checkpoint import CheckpointError as _CkptError
    from pianoforge.improvise import generate_to_folder

    print("[4/5] improvise: one clip from the shipped GAN generator")
    try:
        g = generate_to_folder(out / "improvise", 1, seed=0)
    except _CkptError as e:
        print(f"      skipped: {e}")
    else:
        made["gan_wav"] = g["wavs"][0]
        print(f"      {g['seconds']:.1f} s clip in {g['wall_s']:.2f} s -> {made['gan_wav']}")

    print("[5/5] a held-out piece from the store")
    st = FeatureStore(out / "dataset")
    held = st.pieces("test") or st.pieces()
    p = held[0]
    arr = st.arrays(p["piece_id"])
    k = min(int(p["n_frames"]), int(30 * a.frame_rate))
    made["store_png"] = score_and_spectrograms(
        out / "store_piece.png", piano_roll(np.asarray(arr.score[:k], dtype=np.float32)),
        [("stored log-magnitude", np.asarray(arr.spec[:k], dtype=np.float32))], a,
        title=f"{p['piece_id']} ({p['split']}, first {k / a.frame_rate:.0f} s)")
    print("done. Outputs:")
    for key, path in made.items():
        print(f"  {key:<14} {path}")
    return made
