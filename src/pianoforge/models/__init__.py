"""Models: ``perform`` (score frames -> spectrogram) and, later, ``gan``. Shared layers in ``blocks``."""
