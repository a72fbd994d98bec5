"""Evaluation: an independent judge (basic-pitch transcription scored with mir_eval), spectral metrics
against the reference audio, and checkpoint evaluation reports.

- :mod:`pianoforge.evaluation.judge`: ``transcribe``, ``score_notes``, ``judge_audio``, ``judge_folders``.
- :mod:`pianoforge.evaluation.metrics`: ``audio_metrics`` (MSE, spectral convergence, LSD, MR-STFT) and
  ``lms_mse`` (the paper's normalized log-magnitude MSE).
- :mod:`pianoforge.evaluation.evaluate`: ``evaluate_checkpoint`` (what ``pianoforge eval`` runs).

This layer may import anything below it (audio, midi, data, models, phase, checkpoint, inference) but
never ``pianoforge.training``. Submodules are imported lazily: basic-pitch takes seconds to import.
"""
