"""Embedded corpus, exercise part: deterministic, procedurally generated piano exercises (pretty_midi).

Each exercise is one MIDI file with one piano instrument (program 0), pitches within 21..108, written by
:func:`write_exercises` as ``ex-<name>.mid``. Generation uses fixed seeds, so the files are byte-identical on
every machine. They cover what the music21 part lacks: the whole keyboard at every dynamic level, exact
re-strikes, articulation, the sustain pedal and long held notes. 26 exercises: 24 for training (40.6 minutes)
and 2
*test-only* ones (:func:`exercise_split` gives "test"; made with their own seed :data:`TEST_SEED`, in voicings
the training exercises never play), 3.4 minutes:

=============================  =====  ===============================================================
name (file ``ex-<name>.mid``)  sec    content
=============================  =====  ===============================================================
scales-major-octaves             97   12 major scales, 3 octaves up/down, hands in octaves, fast
scales-major-tenths              98   12 major scales, 2 octaves, hands a tenth apart, slower
scales-minor-harmonic           102   12 harmonic minor scales, 3 octaves, hands in octaves
scales-minor-melodic             98   12 melodic minor scales (natural descending), hands in tenths
arpeggios-major                 119   12 major triads, 4 octaves up/down in octaves, two tempos
arpeggios-minor                 119   12 minor triads, 4 octaves, pp crescendo up, diminuendo down
arpeggios-dominant-seventh      104   12 dominant sevenths, 3 octaves, two tempos
chords-block                     89   I-IV-V7-I block chords in 12 keys; pp..ff; held, half, short
chords-broken                   144   Alberti bass under a slow melody, 12 keys
chromatic-runs                   65   chromatic scales across the keyboard (21..108), contrary motion
repeated-notes-no-gap            84   one key re-struck with note-off == next note-on, slow to fast
repeated-notes-gaps              84   re-strikes with 5..120 ms gaps; single notes, octaves, thirds
velocity-ramps                   95   crescendo/decrescendo 1 → 127 → 1 on notes and chords
accents                          97   accents every 2, 3, 4, 5 notes and off-beat over pp..f ground
staccato-legato                 113   the same phrases legato, portato and staccato
pedal-arpeggios                 113   arpeggios with short notes released under the pedal (CC64 127/0)
pedal-chords                    101   chords with pedal changes at each harmony, held or half-length
key-sweeps                      109   every key 21..108 at velocities 12, 45, 80, 115
key-sweeps-pedal                 98   every key 21..108 at 30, 70, 105, 127, pedalled in groups of 8
held-notes                      100   every key 21..108 held 3.6 s at 50 and 100, a new key every 0.55 s
trills-tremolos                  71   semitone and tone trills, octave/chord tremolos, fast
leaps                            94   random wide leaps between low and high registers
two-voice-inventions            120   seeded random-walk two-voice counterpoint in 6 keys
melody-accompaniment            120   seeded melody over broken chords, pedalled, 6 keys
test-chord-dynamics             101   test only: two-hand open block chords (add9, m9, quartal, 7#9,
                                      m7b5, 13, sus), velocity sweeps 16..126, 0.12..1.5 s, no pedal
test-chord-dynamics-pedal       102   test only: the same kind in other keys and registers, two of
                                      every three chords pedalled (CC64 127/0 around each chord)
=============================  =====  ===============================================================
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from pianoforge.data.corpus import atomic_write

LOW, HIGH = 21, 108
SEED = 20240611
TEST_SEED = 20261214
"""Seed of the test-only exercises (unrelated to :data:`SEED`, so no random draw repeats a training one)."""
CHORD_DYNAMICS = "chord-dynamics"
"""``provenance["kind"]`` of the test-only chord-dynamics exercises (and their eval subset)."""
MAJOR = (2, 2, 1, 2, 2, 2, 1)
HARMONIC = (2, 1, 2, 2, 1, 3, 1)
MELODIC_UP = (2, 1, 2, 2, 2, 2, 1)
NATURAL = (2, 1, 2, 2, 1, 2, 2)
KEYS = tuple(range(12))  # tonic pitch classes C..B


class _Piece:
    """Notes and pedal events in seconds; ``t`` is the running cursor."""

    def __init__(self, name: str, seed: int = SEED) -> None:
        self.rng = np.random.default_rng([seed, sum(map(ord, name))])
        self.notes: list[tuple[int, float, float, int]] = []
        self.pedals: list[tuple[float, int]] = []
        self.t = 0.0

    def note(self, pitch: int, start: float, dur: float, vel: float) -> None:
        if not LOW <= pitch <= HIGH:
            raise ValueError(f"pitch {pitch} outside {LOW}..{HIGH}")
        self.notes.append((pitch, start, start + dur, int(np.clip(round(vel), 1, 127))))

    def pedal(self, down: float, up: float) -> None:
        self.pedals += [(down, 127), (up, 0)]

    def line(self, pitches: list[list[int]], ioi: float, art: float, vels: list[float] | float) -> None:
        """Play a sequence of simultaneities from the cursor: inter-onset ``ioi`` s, length ``art*ioi``."""
        for i, chord in enumerate(pitches):
            v = vels[i] if isinstance(vels, list) else vels
            for p in chord:
                self.note(p, self.t + i * ioi, art * ioi, v)
        self.t += len(pitches) * ioi

    def rest(self, sec: float) -> None:
        self.t += sec

    def jitter(self, n: int, sd: float = 5.0) -> np.ndarray:
        return self.rng.normal(0.0, sd, n)

    def to_bytes(self) -> bytes:
        import pretty_midi

        pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=0, name="Piano")
        for p, s, e, v in _no_overlaps(self.notes):
            inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=round(s, 4), end=round(e, 4)))
        for t, val in sorted(self.pedals):
            inst.control_changes.append(pretty_midi.ControlChange(number=64, value=val, time=round(t, 4)))
        pm.instruments.append(inst)
        buf = io.BytesIO()
        pm.write(buf)
        return buf.getvalue()


def _no_overlaps(notes: list[tuple[int, float, float, int]]) -> list[tuple[int, float, float, int]]:
    """Sorted notes where a key struck again while still sounding is first released (one MIDI channel
    cannot hold the same key twice); of two notes starting together on one key, the louder is kept."""
    out: list[tuple[int, float, float, int]] = []
    last: dict[int, int] = {}
    for p, s, e, v in sorted(notes, key=lambda n: (n[1], n[0], -n[3])):
        j = last.get(p)
        if j is not None and out[j][2] > s:
            if out[j][1] >= s:
                continue
            out[j] = (p, out[j][1], s, out[j][3])
        last[p] = len(out)
        out.append((p, s, e, v))
    return out


def _scale(tonic: int, steps: tuple[int, ...], n: int) -> list[int]:
    """``n`` ascending scale pitches from ``tonic``."""
    out = [tonic]
    while len(out) < n:
        out.append(out[-1] + steps[(len(out) - 1) % len(steps)])
    return out


def _fit(tonic: int, span: int) -> int:
    """Move ``tonic`` by octaves so that ``tonic .. tonic+span`` stays within the keyboard."""
    while tonic + span > HIGH:
        tonic -= 12
    while tonic < LOW:
        tonic += 12
    return tonic


def _up_down(seq: list[int]) -> list[int]:
    return seq + seq[-2::-1]


def _hands(rh: list[int], lh: list[int]) -> list[list[int]]:
    return [[a, b] for a, b in zip(rh, lh, strict=True)]


def _swell(n: int, lo: float, hi: float) -> list[float]:
    """Velocities rising from ``lo`` to ``hi`` at the middle of ``n`` notes and back."""
    half = np.linspace(lo, hi, (n + 1) // 2)
    return list(np.concatenate([half, half[::-1][n % 2 :]]))


def _scales(pc: _Piece, up: tuple[int, ...], down: tuple[int, ...] | None, octaves: int, tenths: bool,
            ioi: float, base: int) -> None:
    for k in KEYS:
        lh_tonic = _fit(base + k, 12 * octaves + (16 if tenths else 12))
        n = 7 * octaves + 1
        lh_up = _scale(lh_tonic, up, n + 2)
        lh_dn = _scale(lh_tonic, down or up, n + 2)
        lh = lh_up[:n] + lh_dn[: n - 1][::-1]
        rh_src = (lh_up[2 : n + 2] + lh_dn[2 : n + 1][::-1]) if tenths else lh
        rh = [p + 12 for p in rh_src]
        vel = np.array(_swell(len(lh), 55 + 3 * (k % 4), 90 + 4 * (k % 5))) + pc.jitter(len(lh))
        pc.line(_hands(rh, lh), ioi * (1.0 + 0.05 * (k % 3)), 1.0, list(vel))
        pc.rest(0.9)


def _arpeggios(pc: _Piece, chord: tuple[int, ...], octaves: int, ioi: float, lo: float, hi: float) -> None:
    for k in KEYS:
        tonic = _fit(24 + k, 12 * octaves + 12)
        seq = _up_down([tonic + 12 * o + c for o in range(octaves) for c in chord] + [tonic + 12 * octaves])
        for speed in (1.0, 1.5):
            vel = np.array(_swell(len(seq), lo, hi)) + pc.jitter(len(seq))
            pc.line(_hands([p + 12 for p in seq], seq), ioi * speed, 1.0, list(vel))
            pc.rest(0.6)


def _progression(k: int, octave: int = 48) -> list[tuple[list[int], list[int]]]:
    """I-IV-V7-I in key ``k``: (left-hand bass octave, right-hand chord) pairs."""
    t = _fit(octave + k, 24)
    chords = [(0, (12, 16, 19, 24)), (5, (12, 17, 21, 24)), (7, (11, 14, 17, 19)), (0, (12, 16, 19, 24))]
    return [([t + r - 12, t + r], [t + c for c in cs]) for r, cs in chords]


def _chords_block(pc: _Piece) -> None:
    for i, k in enumerate((0, 7, 2, 9, 4, 11, 6, 1, 8, 3, 10, 5)):
        dur, art = (1.2, 0.95) if i % 3 == 0 else (0.8, 0.45) if i % 3 == 1 else (0.6, 0.2)
        for rep in range(2):
            for lh, rh in _progression(k, 45 + 3 * (i % 5)):
                pc.line([lh + rh], dur, art, (35, 60, 85, 110)[i % 4] + 6 * rep + float(pc.jitter(1)[0]))
        pc.rest(0.6)


def _chords_broken(pc: _Piece) -> None:
    for i, k in enumerate((0, 5, 10, 3, 8, 1, 6, 11, 4, 9, 2, 7)):
        ioi = 0.15 + 0.03 * (i % 3)
        for lh, rh in _progression(k, 48) * 2:
            start, b, c = pc.t, lh[1] - 12, [p - 12 for p in rh[1:]]
            pc.line([[b], [c[2]], [c[0]], [c[2]]] * 2, ioi, 1.0, 45 + 10 * (i % 4))  # Alberti bass
            top = int(pc.rng.choice(rh)) + 12
            pc.t = start
            pc.line([[top], [top + int(pc.rng.choice((-1, 0, 2)))]], 4 * ioi, 0.95, 70 + 10 * (i % 4))
        pc.rest(0.5)


def _chromatic(pc: _Piece) -> None:
    for i, (lo, hi) in enumerate(((21, 60), (36, 84), (48, 96), (60, 108), (21, 108), (40, 76))):
        ioi = (0.09, 0.11, 0.13)[i % 3]
        if i < 4:
            seq = _up_down(list(range(lo, hi + 1)))
            vel = np.array(_swell(len(seq), 40, 100)) + pc.jitter(len(seq))
            pc.line([[p] for p in seq], ioi, 1.0, list(vel))
        else:  # contrary motion from the middle outwards and back
            mid, span = (lo + hi) // 2, list(range(0, (hi - lo) // 2 + 1))
            pc.line([[mid + d, mid - d] for d in _up_down(span)], ioi * 1.5, 1.0, 70)
        pc.rest(0.8)


def _repeated(pc: _Piece, gaps: tuple[float, ...]) -> None:
    """Same key re-struck: note-off exactly at the next note-on (gap 0) or ``gap`` seconds before it."""
    for i, p in enumerate(range(24, 106, 7)):
        for j, ioi in enumerate((0.5, 0.25, 0.125, 0.08)):
            gap = min(gaps[(i + j) % len(gaps)], ioi / 2)
            chord = [p] if gap == 0.0 or i % 3 == 0 else [p, p + (12 if i % 3 == 1 else 4)]
            n = round(1.2 / ioi) + 2
            pc.line([chord] * n, ioi, 1.0 - gap / ioi, list(40 + 60 * pc.rng.random(n)))
        pc.rest(0.4)


def _velocity_ramps(pc: _Piece) -> None:
    for i, p in enumerate((28, 40, 52, 60, 67, 76, 88, 100)):
        chord = [p] if i % 2 == 0 else [p, p + 4, p + 7]
        n = 32 if i < 4 else 24
        pc.line([chord] * n, 0.3 if i % 3 else 0.2, 0.8, _swell(n, 1, 127))  # pp -> ff -> pp
        pc.line([chord] * 16, 0.25, 0.8, list(np.linspace(127, 1, 16)))  # ff -> pp
        pc.rest(0.7)


def _accents(pc: _Piece) -> None:
    for i in range(12):
        every, off, ground = (4, 3, 2, 4, 3, 5)[i % 6], i % 4 == 3, (20, 35, 50, 65, 80, 95)[i % 6]
        seq = _up_down(_scale((36, 43, 50, 57, 45, 40)[i % 6] + i // 6, MAJOR if i % 2 == 0 else NATURAL, 22))
        vel = [min(127, ground + 55) if (j + off) % every == 0 else ground for j in range(len(seq))]
        pc.line([[p, p + 12] for p in seq] if i < 6 else [[p] for p in seq], 0.17, 0.9, vel)
        pc.rest(0.8)


def _staccato_legato(pc: _Piece) -> None:
    for i, k in enumerate((0, 7, 2, 9, 5, 10)):
        phrase = _up_down(_scale(_fit(40 + k, 30), MAJOR if i % 2 == 0 else HARMONIC, 15))
        for art in (1.0, 0.6, 0.25):  # legato, portato, staccato
            pc.line([[p, p + 12] for p in phrase], 0.2, art, list(60 + 12 * np.sin(np.arange(29) / 3)))
            pc.rest(0.5)


def _pedal(pc: _Piece, arpeggios: bool) -> None:
    """Pedal down just after each harmony starts, up just before the next: notes end under the pedal."""
    for i, k in enumerate((0, 9, 5, 7, 2, 11, 4, 1, 8, 3, 10, 6)):
        for lh, rh in _progression(k, 36 + (i % 3) * 6) * 2:
            start = pc.t
            if arpeggios:
                seq = [lh[0], lh[1], *rh, min(rh[-1] + 4, HIGH)]
                pc.line([[p] for p in seq], 0.16, 0.4, list(40 + 8 * np.arange(len(seq))))
            else:
                pc.line([lh + rh], 1.0, 0.5 if i % 2 else 1.0, 50 + 20 * (i % 4))
            pc.pedal(start + 0.05, pc.t - 0.04)
        pc.rest(0.5)


def _key_sweeps(pc: _Piece, vels: tuple[int, ...], pedal: bool) -> None:
    """Every key 21..108 once per velocity, alternately up and down, in groups of 8."""
    for i, v in enumerate(vels):
        keys = list(range(LOW, HIGH + 1))[:: 1 if i % 2 == 0 else -1]
        for j in range(0, len(keys), 8):
            start = pc.t
            pc.line([[p] for p in keys[j : j + 8]], 0.27 if pedal else 0.3, 0.5 if pedal else 0.9, v)
            if pedal:
                pc.pedal(start + 0.02, pc.t - 0.05)
        pc.rest(1.0)


def _held_notes(pc: _Piece, vels: tuple[int, ...], hold: float, ioi: float) -> None:
    """Every key 21..108 held ``hold`` s once per velocity, a new key every ``ioi`` s in a stride order (29 keys
    apart, so the few keys sounding together are in different registers): a piano note long after its strike,
    which the other exercises and the corpus rarely reach (under 1 % of their notes sound longer than 2 s)."""
    n = HIGH - LOW + 1
    for i, v in enumerate(vels):
        order = [LOW + (j * 29 + 7 * i) % n for j in range(n)]
        for j, p in enumerate(order):
            pc.note(p, pc.t + j * ioi, hold, float(v))
        pc.t += n * ioi
    pc.rest(hold)


def _trills(pc: _Piece) -> None:
    for i, p in enumerate((30, 38, 45, 55, 62, 70, 80, 88, 95)):
        for pair in ([p], [p + 1 if i % 2 else p + 2]), ([p, p + 12], [p + 4, p + 7]):
            n = 40 + 4 * (i % 3)
            pc.line(list(pair) * (n // 2), 0.07 + 0.01 * (i % 3), 1.0, _swell(n, 45, 100))
            pc.rest(0.4)


def _leaps(pc: _Piece) -> None:
    for i in range(14):
        lows, highs = pc.rng.integers(21, 50, 12), pc.rng.integers(72, 109, 12)
        seq = [[int(x)] for pair in zip(lows, highs, strict=True) for x in pair]
        pc.line(seq, 0.22 + 0.04 * (i % 3), 0.8, list(50 + 50 * pc.rng.random(len(seq))))
        pc.rest(0.6)


def _inventions(pc: _Piece, accompanied: bool) -> None:
    """Seeded random walks on a scale: two voices, or a melody over broken chords with pedal."""
    for i, k in enumerate((0, 9, 7, 4, 2, 11)):
        pool = [p for p in _scale(24 + k, MAJOR if i % 2 == 0 else HARMONIC, 36) if LOW <= p <= HIGH]
        ioi = (0.16, 0.2, 0.24)[i % 3]
        hi_i, lo_i = len(pool) * 3 // 4 - 3, len(pool) // 3
        for bar in range(12 if accompanied else 6):
            start = pc.t
            if accompanied:
                lh, rh = _progression(k, 40)[bar % 4]
                pc.line([[lh[0]], [rh[1] - 12], [rh[2] - 12], [rh[1] - 12]] * 2, ioi, 1.0, 45)
                pc.t = start
                mel = [int(p) + 12 for p in pc.rng.choice(rh, 4)]
                pc.line([[p] for p in mel], 2 * ioi, 0.95, list(70 + 25 * pc.rng.random(4)))
                pc.pedal(start + 0.03, pc.t - 0.05)
                continue
            for voice, idx in enumerate((hi_i, lo_i)):
                pc.t = start
                walk = np.clip(idx + np.cumsum(pc.rng.choice((-2, -1, 1, 2), 8 * (2 - voice))), 0, len(pool) - 1)
                pc.line([[pool[int(w)]] for w in walk], ioi * (1 + voice), 0.9, 60 + 15 * np.sin(bar))
            hi_i = int(pc.rng.integers(len(pool) // 2, len(pool) - 4))
            lo_i = int(pc.rng.integers(3, len(pool) // 3))
        pc.rest(1.0)


# (left hand, right hand) intervals above the root: open two-hand voicings that no training exercise plays
# (those use closed triads, I-IV-V7 with a doubled bass, and single-hand arpeggios)
_TEST_VOICINGS = (((0, 7), (16, 23, 26)),      # major add9 / maj9 (no root in the right hand)
                  ((0, 10), (15, 19, 26)),     # minor 9
                  ((0, 5), (10, 15, 20)),      # quartal stack
                  ((-12, 0), (16, 22, 27)),    # dominant 7#9 over an octave bass
                  ((0, 6), (15, 22, 24)),      # half-diminished
                  ((0, 10), (16, 21, 26)),     # dominant 13
                  ((0, 7), (14, 17, 22)))      # 9sus4
_TEST_DURATIONS = (0.12, 0.25, 0.5, 0.9, 1.5)  # staccato .. held 1.5 s


def _chord_dynamics(pc: _Piece, keys: tuple[int, ...], base: int, pedal: bool) -> None:
    """Two-hand block chords, one velocity sweep 16 -> 126 -> 16 (or 126 -> 16 -> 126) per key; durations
    cycle staccato .. 1.5 s with a short breath after each chord; with ``pedal`` two of every three chords
    are pedalled from just after their onset to just before the next one."""
    roots = (0, 5, 10, 3, 8, 1, 6)  # around the circle of fourths
    for i, k in enumerate(keys):
        n = 22
        shape = np.array(_swell(n, 16, 126))
        vels = np.clip((shape if i % 2 == 0 else 142 - shape) + pc.jitter(n, 3.0), 16, 126)
        for j in range(n):
            lh, rh = _TEST_VOICINGS[(i + 2 * j) % len(_TEST_VOICINGS)]
            root = _fit(base + 3 * (i % 3) + (k + roots[j % len(roots)]) % 12 + min(lh), 30) - min(lh)
            dur = _TEST_DURATIONS[(i + j) % len(_TEST_DURATIONS)]
            ioi = dur + 0.18 + 0.12 * float(pc.rng.random())
            start = pc.t
            pc.line([[root + d for d in lh] + [root + d for d in rh]], ioi, dur / ioi, float(vels[j]))
            if pedal and j % 3 != 2:
                pc.pedal(start + 0.04, pc.t - 0.03)
        pc.rest(0.8)


_EXERCISES: dict[str, Callable[[_Piece], None]] = {
    "scales-major-octaves": partial(_scales, up=MAJOR, down=None, octaves=3, tenths=False, ioi=0.16, base=33),
    "scales-major-tenths": partial(_scales, up=MAJOR, down=None, octaves=2, tenths=True, ioi=0.24, base=36),
    "scales-minor-harmonic": partial(_scales, up=HARMONIC, down=None, octaves=3, tenths=False, ioi=0.17, base=29),
    "scales-minor-melodic": partial(_scales, up=MELODIC_UP, down=NATURAL, octaves=2, tenths=True, ioi=0.24, base=40),
    "arpeggios-major": partial(_arpeggios, chord=(0, 4, 7), octaves=4, ioi=0.14, lo=50, hi=95),
    "arpeggios-minor": partial(_arpeggios, chord=(0, 3, 7), octaves=4, ioi=0.14, lo=30, hi=115),
    "arpeggios-dominant-seventh": partial(_arpeggios, chord=(0, 4, 7, 10), octaves=3, ioi=0.12, lo=60, hi=100),
    "chords-block": _chords_block,
    "chords-broken": _chords_broken,
    "chromatic-runs": _chromatic,
    "repeated-notes-no-gap": partial(_repeated, gaps=(0.0,)),
    "repeated-notes-gaps": partial(_repeated, gaps=(0.005, 0.02, 0.05, 0.12)),
    "velocity-ramps": _velocity_ramps,
    "accents": _accents,
    "staccato-legato": _staccato_legato,
    "pedal-arpeggios": partial(_pedal, arpeggios=True),
    "pedal-chords": partial(_pedal, arpeggios=False),
    "key-sweeps": partial(_key_sweeps, vels=(12, 45, 80, 115), pedal=False),
    "key-sweeps-pedal": partial(_key_sweeps, vels=(30, 70, 105, 127), pedal=True),
    "held-notes": partial(_held_notes, vels=(50, 100), hold=3.6, ioi=0.55),
    "trills-tremolos": _trills,
    "leaps": _leaps,
    "two-voice-inventions": partial(_inventions, accompanied=False),
    "melody-accompaniment": partial(_inventions, accompanied=True),
    "test-chord-dynamics": partial(_chord_dynamics, keys=(3, 8, 1, 6, 11), base=36, pedal=False),
    "test-chord-dynamics-pedal": partial(_chord_dynamics, keys=(10, 4, 9, 2, 7), base=31, pedal=True),
}
_TEST_ONLY = frozenset({"test-chord-dynamics", "test-chord-dynamics-pedal"})
"""Exercises forced into the test split (never trained on)."""


def exercise_specs() -> list[str]:
    """Names of all exercises, in a fixed order (the table in the module docstring; test-only ones last)."""
    return list(_EXERCISES)


def exercise_split(name: str) -> str:
    """The split an exercise is forced into: "test" for the test-only ones, else "train"."""
    return "test" if name in _TEST_ONLY else "train"


def exercise_kind(name: str) -> str | None:
    """:data:`CHORD_DYNAMICS` for the test-only chord-dynamics exercises, else None."""
    return CHORD_DYNAMICS if name in _TEST_ONLY else None


def build_exercise(name: str) -> bytes:
    """The MIDI file of one exercise, as bytes (deterministic)."""
    if name not in _EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(_EXERCISES)}")
    pc = _Piece(name, TEST_SEED if name in _TEST_ONLY else SEED)
    _EXERCISES[name](pc)
    return pc.to_bytes()


def write_exercises(out_dir: Path, names: list[str] | None = None) -> list[tuple[str, Path]]:
    """Write ``ex-<name>.mid`` for ``names`` (all if None); files already identical are left untouched."""
    out: list[tuple[str, Path]] = []
    for name in exercise_specs() if names is None else names:
        data = build_exercise(name)
        path = Path(out_dir) / f"ex-{name}.mid"
        if not (path.exists() and path.read_bytes() == data):
            atomic_write(path, data)
        out.append((f"ex-{name}", path))
    return out
