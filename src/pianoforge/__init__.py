"""pianoforge: neural piano audio synthesis.

Layers, lowest first: ``config``/``errors`` -> ``audio``, ``midi`` -> ``data`` (and later ``models``) ->
losses/phase/checkpoint -> training/inference -> evaluation -> ``cli``. See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
