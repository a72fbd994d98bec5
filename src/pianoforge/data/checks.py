"""What a finished build says about its pieces, beside the pieces themselves (written into the manifest):

- ``warnings``: native sample rates that differ between pieces (the top of the band then differs), an
  empty validation or test split (``train`` refuses a store without validation unless ``--no-validation``);
- ``instruments``: pieces that merged several tracks, drum notes dropped, programs that are not a piano,
  and the General MIDI program the store was rendered with;
- ``licences``: of the recordings (MAESTRO: CC BY-NC-SA 4.0) and of the soundfont that rendered the rest;
  training copies them into every checkpoint's metadata.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pianoforge.config import Preset

MAESTRO_LICENCE = ("if these are MAESTRO's recordings and MIDI (Hawthorne et al. 2019): Creative Commons "
                   "Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0); recordings of your own in the "
                   "MAESTRO layout keep their own licence")
RECORDINGS_LICENCE = "recordings supplied by the user: their own licence applies (not recorded by pianoforge)"


def build_warnings(pieces: list[dict[str, Any]], splits: dict[str, dict[str, Any]], preset: Preset,
                   eval_only: bool = False) -> list[str]:
    """One-line warnings about a finished store (also printed by ``data build``)."""
    out = []
    rates = Counter(int(p["native_sr"]) for p in pieces if p.get("native_sr"))
    if len(rates) > 1:
        sr = preset.audio.sample_rate
        listed = ", ".join(f"{r} Hz ({n})" for r, n in sorted(rates.items()))
        if preset.data.lowpass_hz:
            hint = f"every piece is band-limited at {preset.data.lowpass_hz:g} Hz (data.lowpass_hz)"
        elif sr in rates:
            hint = (f"pieces resampled to {sr} Hz are empty near {sr // 2} Hz and those at {sr} Hz are not; the "
                    f"per-bin std floor (data.std_floor={preset.data.std_floor:g}) bounds their z-scores, and "
                    f"--lowpass {0.95 * sr / 2:g} band-limits every piece alike")
        else:
            hint = f"every piece was resampled to {sr} Hz by the same filter, so their bands agree"
        out.append(f"native sample rates are mixed: {listed}; {hint}")
    if not eval_only and pieces:
        for sp in ("validation", "test"):
            if splits.get(sp, {}).get("pieces", 0) == 0:
                then = ("`train` refuses this store unless --no-validation" if sp == "validation"
                        else "`eval` has nothing to evaluate on the test split")
                out.append(f"the {sp} split is empty ({len(pieces)} piece(s) built); {then}")
    return out


def instruments(pieces: list[dict[str, Any]], preset: Preset) -> dict[str, Any]:
    """Counts of merged tracks, dropped drum notes and non-piano programs over the built pieces."""
    programs: Counter[int] = Counter(q for p in pieces for q in p.get("programs", []))
    return {"render_program": preset.render.program,
            "pieces_with_merged_tracks": sum(1 for p in pieces if p.get("tracks_merged", 1) > 1),
            "dropped_drum_notes": sum(int(p.get("dropped_drum_notes", 0)) for p in pieces),
            "pieces_with_non_piano_programs": sum(1 for p in pieces if any(q > 7 for q in p.get("programs", []))),
            "file_programs": {str(k): v for k, v in sorted(programs.items())},
            "tracks": list(preset.data.tracks) if preset.data.tracks is not None else None,
            "programs": list(preset.data.programs) if preset.data.programs is not None else None}


def licences(pieces: list[dict[str, Any]], preset: Preset) -> list[dict[str, str]]:
    """Licences of what the store holds: recordings by source, the soundfont if any piece was rendered."""
    out = []
    sources = {p.get("provenance", {}).get("source") for p in pieces if p.get("audio")}
    if "maestro" in sources:
        out.append({"what": "recordings (maestro source)", "licence": MAESTRO_LICENCE})
    if sources - {"maestro"}:
        out.append({"what": "recordings", "licence": RECORDINGS_LICENCE})
    if any(not p.get("audio") for p in pieces):
        from pianoforge.audio.render import find_soundfont, soundfont_record
        from pianoforge.errors import PianoforgeError

        try:
            rec = soundfont_record(find_soundfont(preset.render.soundfont))
        except PianoforgeError:  # the store was rendered elsewhere; say what is known
            rec = {"soundfont": str(preset.render.soundfont or "unknown"), "licence": "unknown"}
        out.append({"what": f"rendered audio (GM program {preset.render.program}, {rec['soundfont']})",
                    "licence": rec["licence"]})
    return out
