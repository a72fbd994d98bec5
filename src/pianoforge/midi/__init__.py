"""Score layer: MIDI loading into a typed :class:`~pianoforge.midi.score.Score`, frame encoding/decoding."""
