"""Data layer: sources (corpus, MIDI folder, MAESTRO), the resumable build, the memory-mapped store."""
