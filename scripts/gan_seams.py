"""Measure the joins of long GAN clips (``generate --seconds``; issue 19 item 2) and print the figures.

For ``-n`` seeds, a clip of ``--tiles`` windows is made two ways from the same window latents
(``GanGenerator.tile_latents``):

- ``tiled``: what ``generate --seconds`` does (``sample_tiled``: the base grids joined, neighbours crossfaded
  over half a grid, the generator run over the whole sequence, notes ringing across the joins; a
  join is a crossfade's centre);
- ``concat``: the baseline, each latent's own window-long image, put end to end (a hard cut at each join).

Both go through the same inverse chain and one streaming phase reconstruction over the whole clip, so the
only difference is at the model. Measured:

1. the frame-to-frame change of the log-magnitude, mean over bins of ``|L[:, t] - L[:, t - 1]|`` in dB (and
   of its rises only, max(0, .): the onsets' spectral flux), at the join frames, near them (1-8 frames away), in the blend (9-48) and far from them (> 48 frames),
   on the generator's log-magnitude ("model") and on the STFT of the audio ("audio"); and the share of joins
   whose change is above the 99th percentile of the far frames';
2. with ``--data`` (a store of the checkpoint's geometry, e.g. ``data/gan-fine``), ``eval gan``'s statistics
   (``compare_sets``: FD against the real test clips, diversity, NDB, tonality, notes/s, polyphony,
   pitch-class entropy) of window-long clips cut *across* the joins (centred on the first) of both kinds,
   against the plain window-long clips of the same seeds (``generate``) and the real clips.

    OMP_NUM_THREADS=1 python scripts/gan_seams.py -n 64 --tiles 4 --data data/gan-fine [--out seams.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

BANDS = (("join", 0, 0), ("near 1-8", 1, 8), ("blend 9-48", 9, 48), ("far > 48", 49, 10**9))


def frame_change_db(logmag: np.ndarray, rise: bool = False) -> np.ndarray:
    """(bins, T) natural-log magnitude -> (T,) mean over bins of |L_t - L_{t-1}| in dB (entry 0: nan);
    ``rise``: of max(0, L_t - L_{t-1}) (the spectral flux of onsets, decays left out)."""
    d = np.diff(logmag, axis=1)
    d = np.maximum(d, 0.0) if rise else np.abs(d)
    return np.concatenate([[np.nan], d.mean(axis=0) * (20.0 / np.log(10.0))])


def band_means(change: list[np.ndarray], joins: np.ndarray) -> dict[str, float]:
    """Mean change per distance band from the nearest of the frames ``joins``, over all clips; ``p99 far``
    and the share of joins above it; ``profile``: the mean change in 8-frame bins from 48 frames before a
    join to 48 after."""
    c = np.stack(change)  # (n, T)
    t = np.arange(c.shape[1])
    dist = np.abs(t[:, None] - joins[None]).min(axis=1)
    dist[0] = -1  # no change at frame 0
    out = {name: float(np.nanmean(c[:, (dist >= lo) & (dist <= hi)])) for name, lo, hi in BANDS}
    far = c[:, dist > 48].ravel()
    p99 = float(np.nanpercentile(far, 99))
    out["p99 far"] = p99
    out["joins > p99 far"] = float((c[:, dist == 0] > p99).mean())
    prof = np.stack([c[:, j - 48:j + 48] for j in joins if 48 <= j <= c.shape[1] - 48], axis=1)
    out["profile"] = [round(float(v), 3) for v in np.nanmean(prof.reshape(-1, 12, 8), axis=(0, 2))]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="GAN generator (default: the shipped gan-default)")
    ap.add_argument("-n", type=int, default=64, help="clips (seeds --seed ..), default 64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiles", type=int, default=4, help="windows per long clip (default 4: 3 joins)")
    ap.add_argument("--iterations", type=int, help="Griffin-Lim iterations (default: the checkpoint's)")
    ap.add_argument("--data", help="store for the eval gan statistics (its test split); none: only the joins")
    ap.add_argument("--no-judge", action="store_true", help="eval statistics without the transcriptions")
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    if a.tiles < 2:
        ap.error("--tiles must be at least 2")

    from pianoforge.audio.spectral import log_magnitude_of
    from pianoforge.data.gan_images import image_to_logmag
    from pianoforge.improvise import GanGenerator

    t0 = time.perf_counter()
    gen = GanGenerator.from_checkpoint(a.checkpoint)
    cfg, (bins, w), hop = gen.audio_config, gen.grid, gen.audio_config.hop_length
    model = gen.model
    stride, fade = model.tile_stride(), model.tile_overlap() * (w // model.base[1])
    frames = {"tiled": model.tiled_frames(a.tiles), "concat": a.tiles * w}
    joins = {"tiled": np.arange(1, a.tiles) * stride + fade // 2,  # the crossfades' centres
             "concat": np.arange(1, a.tiles) * w}
    rise_change: dict[str, list[np.ndarray]] = {"tiled": [], "concat": []}
    strikes: list[np.ndarray] = []  # notegan: (T,) summed strike levels of the tiled clip
    model_change: dict[str, list[np.ndarray]] = {"tiled": [], "concat": []}
    audio_change: dict[str, list[np.ndarray]] = {"tiled": [], "concat": []}
    across: dict[str, list[np.ndarray]] = {"tiled": [], "concat": []}
    for i in range(a.n):
        seed = a.seed + i
        z = gen.tile_latents(seed, a.tiles)
        with torch.inference_mode():
            if hasattr(getattr(gen.model, "head", None), "onsets"):
                head = gen.model.head
                strikes.append(head.levels(head.onsets(gen.model.features_tiled(z[None])))[0].sum(0).numpy())
            imgs = {"tiled": gen.model.sample_tiled(z[None]).clamp(-1, 1)[0, 0],
                    "concat": torch.cat([gen.model(z[j:j + 1]).clamp(-1, 1)[0, 0] for j in range(a.tiles)], dim=-1)}
        for kind, img in imgs.items():
            lm = image_to_logmag(img, gen.normalizer, (bins, img.shape[-1])).numpy()
            model_change[kind].append(frame_change_db(lm))
            rise_change[kind].append(frame_change_db(lm, rise=True))
            y = np.concatenate(list(gen.images_audio([img], frames[kind] * hop, seed, iterations=a.iterations)))
            alm = log_magnitude_of(torch.from_numpy(y), cfg).numpy()
            audio_change[kind].append(frame_change_db(alm))
            rise_change[f"{kind}/audio"] = [*rise_change.get(f"{kind}/audio", []), frame_change_db(alm, rise=True)]
            j0 = int(joins[kind][0]) - w // 2
            across[kind].append(y[j0 * hop:(j0 + w) * hop])  # a window centred on the first join
        if (i + 1) % 16 == 0:
            print(f"  {i + 1}/{a.n} clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    res: dict = {"checkpoint": a.checkpoint or "shipped gan-default", "n": a.n, "seed": a.seed, "tiles": a.tiles,
                 "window_frames": w, "stride_frames": stride, "crossfade_frames": fade, "joins": {}}
    print(f"\n{a.n} clips of {a.tiles} windows, seeds {a.seed}..{a.seed + a.n - 1}: tiled {frames['tiled']} frames "
          f"({frames['tiled'] * hop / gen.sample_rate:g} s; a window every {stride} frames, crossfades of {fade} "
          f"frames, joins = their centres), concat {frames['concat']} frames. Mean frame-to-frame change of the "
          f"log-magnitude (dB per bin) by distance from the nearest join")
    print("| clip | where | join | near 1-8 | blend 9-48 | far > 48 | p99 far | joins > p99 far |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = [("tiled", "model", model_change["tiled"]), ("concat", "model", model_change["concat"]),
            ("tiled", "audio", audio_change["tiled"]), ("concat", "audio", audio_change["concat"]),
            ("tiled", "model, rises only", rise_change["tiled"]), ("concat", "model, rises only", rise_change["concat"]),
            ("tiled", "audio, rises only", rise_change["tiled/audio"]),
            ("concat", "audio, rises only", rise_change["concat/audio"])]
    for kind, where, change in rows:
        b = band_means(change, joins[kind])
        res["joins"][f"{kind}/{where}"] = b
        print(f"| {kind} | {where} | {b['join']:.2f} | {b['near 1-8']:.2f} | {b['blend 9-48']:.2f} | "
              f"{b['far > 48']:.2f} | {b['p99 far']:.2f} | {100 * b['joins > p99 far']:.0f} % |")
    if strikes:
        b = band_means(strikes, joins["tiled"])
        res["joins"]["tiled/strike level"] = b
        print(f"| tiled | strike level (note units) per frame | {b['join']:.3f} | {b['near 1-8']:.3f} | "
              f"{b['blend 9-48']:.3f} | {b['far > 48']:.3f} | {b['p99 far']:.2f} | {100 * b['joins > p99 far']:.0f} % |")

    print("\nprofile: mean change (dB per bin) in 8-frame bins from 48 frames before a join to 48 after")
    for key in ("tiled/model", "concat/model", "tiled/audio", "concat/audio"):
        print(f"  {key:13s} " + " ".join(f"{v:5.2f}" for v in res["joins"][key]["profile"]))

    if a.data:
        from pianoforge.data.gan_images import GanImages
        from pianoforge.data.store import FeatureStore
        from pianoforge.evaluation.gan_metrics import compare_sets

        ds = GanImages(FeatureStore(a.data), "test")
        idx = np.unique(np.linspace(0, len(ds) - 1, min(a.n, len(ds))).round().astype(int))
        plain = gen.generate_clips(a.n, a.seed, iterations=a.iterations).audio
        sets = {"plain windows": plain, "tiled, across join": across["tiled"],
                "concat, across join": across["concat"], "real": [ds.audio(int(j)).numpy() for j in idx]}
        rows = compare_sets(sets, gen.sample_rate, judge=not a.no_judge, seed=a.seed)
        res["eval"] = rows
        print(f"\neval gan statistics of {gen.seconds:g} s windows ({a.n} generated, {len(idx)} real test clips "
              f"of {a.data}; real FD: between its halves)")
        print("| set | FD | diversity | NDB/K | tonality dB | notes/s | polyphony | PC entropy |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in rows.items():
            g = r.get
            print(f"| {name} | {g('fd', float('nan')):.0f} | {g('diversity_ratio', float('nan')):.2f} | "
                  f"{g('ndb_ndb_k', float('nan')):.2f} | {g('tonality_db', float('nan')):.1f} | "
                  f"{g('note_density', float('nan')):.2f} | {g('polyphony', float('nan')):.2f} | "
                  f"{g('pitch_class_entropy', float('nan')):.2f} |")
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"\n{res['wall_s']} s")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
