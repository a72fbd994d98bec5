"""Audio layer: file I/O, spectral features (pure functions), FluidSynth reference rendering."""
