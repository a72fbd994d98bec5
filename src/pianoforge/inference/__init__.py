"""Inference: render whole MIDI files with a perform checkpoint. Never imports training code.

``PerformRenderer.from_checkpoint(path)`` needs nothing but the checkpoint (weights, normalization
buffers and the full preset live inside it). Rendering:

1. score -> frame encoding (T, channels), T = frames up to the last event + the release tail, made block
   by block from the note list (:class:`pianoforge.midi.blocks.BlockEncoder`, equal to ``encode``);
2. windowed inference: windows of ``chunk_seconds`` overlapping by ``overlap_seconds``, run
   :data:`STREAM_FRAMES` frames of windows at a time, linearly cross-faded in the model's output space (no seams);
3. output -> magnitude (or complex / waveform) -> streaming phase reconstruction
   (:class:`pianoforge.phase.PhaseStream`) -> audio of exactly T * hop samples, starting at the score's
   t = 0 (sample-aligned with the FluidSynth reference of the same MIDI);
4. optionally resampled (streaming), written as it goes (atomic, peak-safe).

Every stage holds a bounded number of frames, so memory does not grow with the piece
(:meth:`PerformRenderer.stream`); :meth:`PerformRenderer.render_score` collects the same blocks into arrays.

Engines (:data:`ENGINES`, ``from_checkpoint(engine=...)``, ``pianoforge render --engine``): ``numpy`` runs a
notes-head checkpoint without a residual trunk (the shipped default) on :class:`pianoforge.models.notes_numpy.
NumpyNotesModel` and the phase on :class:`pianoforge.phase.npstream.NumpyPhaseStream`, so the render never
imports torch (start-up); ``torch`` runs :class:`pianoforge.models.perform.PerformModel`; ``auto`` (the default)
takes numpy where the checkpoint qualifies, torch otherwise. Both give the same audio to float rounding
(tests/test_numpy_engine.py). This package imports torch only where the torch engine needs it.

The package (every name below is importable from ``pianoforge.inference``):

- :mod:`.renderer`: :class:`PerformRenderer` (``from_checkpoint`` and the engines, the phase method, ``stream``,
  ``render_score``, ``render_midi``), :func:`render_midi`, :data:`KEEP_SECONDS`;
- :mod:`.windows`: :class:`~pianoforge.inference.windows.WindowedNetwork` (``chunk_plan``, ``outputs``,
  ``predict``: the network windows, step 2), :data:`STREAM_FRAMES`;
- :mod:`.blocks`: :class:`~pianoforge.inference.blocks.StreamingBlocks` (the streaming audio blocks on torch and
  on numpy, steps 1 to 3);
- :mod:`.common`: :func:`shipped_checkpoint`, :data:`DEFAULT_CHECKPOINT`, :data:`PHASES`, :class:`RenderResult`;
- :mod:`.figure`: :func:`figure4`.

:class:`PerformRenderer` inherits the methods of the two mixins; patch a module constant where it is read
(``pianoforge.inference.windows.STREAM_FRAMES``, ``pianoforge.inference.renderer.KEEP_SECONDS``).
"""

from __future__ import annotations

# every name other modules, tests, scripts and docs import from here (as before the split)
from pianoforge.inference.blocks import StreamingBlocks  # noqa: F401
from pianoforge.inference.common import DEFAULT_CHECKPOINT, PHASES, RenderResult, shipped_checkpoint  # noqa: F401
from pianoforge.inference.figure import figure4  # noqa: F401
from pianoforge.inference.renderer import KEEP_SECONDS, PerformRenderer, render_midi  # noqa: F401
from pianoforge.inference.windows import STREAM_FRAMES, WindowedNetwork  # noqa: F401
from pianoforge.names import ENGINES  # noqa: F401
