"""Improvise: piano clips from noise with a GAN generator checkpoint. Never imports training code.

``GanGenerator.from_checkpoint(path)`` needs nothing but the checkpoint: the generator's (EMA) weights,
and in its JSON config the full preset, the model config, the image size, the STFT grid and the
normalization statistics of the training data. The inverse chain (exact wherever the forward chain
of :mod:`pianoforge.data.gan_images` is):

1. image (n, 1, H, W), clamped to [-1, 1] (the tanh / training range);
2. inverse resize to the STFT grid (bins, frames): the Nyquist bin the images drop comes back at its
   training mean, a resized time axis is resized back (:func:`pianoforge.data.gan_images.image_to_logmag`);
3. ``Normalizer.from_unit``: times 3 std, times the per-bin std, plus the per-bin mean of the TRAINING
   data (the statistics stored in the checkpoint, never recomputed) -> natural-log magnitude;
4. ``exp(.) - eps`` -> linear magnitude -> phase reconstruction (Griffin-Lim by default) -> audio of
   ``frames * hop`` samples at the preset's sample rate;
5. optionally, stationary spectral gating (noisereduce) with a noise profile taken from the clip's
   quietest frames -- not from the whole signal, which would treat the music as noise.

A clip's latent depends on its seed only: clip k of ``generate(n, seed)`` is ``generate(1, seed + k)``.

Long clips (``generate --seconds``, :meth:`GanGenerator.long_audio`): see :mod:`pianoforge.improvise.long`.

The package (every name below is importable from ``pianoforge.improvise``):

- :mod:`.generator`: :class:`GanGenerator` (loading and checks, latents, window-long clips, interpolation),
  :class:`Clips`, :func:`shipped_checkpoint`;
- :mod:`.long`: the long clips (:class:`~pianoforge.improvise.long.LongClips`, inherited by
  :class:`GanGenerator`: ``long_images``, ``long_audio``, ``images_audio``, ``tile_latents``, ``windows_for``),
  :func:`preview_stride`;
- :mod:`.denoise`: :func:`reduce_noise`, :func:`noise_profile`;
- :mod:`.outputs`: :func:`generate_to_folder` (``pianoforge generate``), :func:`spectrogram_png`,
  :func:`write_clips`, :func:`output_names`.
"""

from __future__ import annotations

# every name other modules, tests, scripts and docs import from here (as before the split); __all__ as before
from pianoforge.data.gan_images import image_to_logmag, logmag_to_image
from pianoforge.gan_audio import images_to_audio, logmag_to_audio  # noqa: F401
from pianoforge.improvise.denoise import NOISE_QUANTILE, noise_profile, reduce_noise  # noqa: F401
from pianoforge.improvise.generator import (  # noqa: F401
    DEFAULT_CHECKPOINT,
    PHASES,
    Clips,
    GanGenerator,
    shipped_checkpoint,
)
from pianoforge.improvise.long import LONG_BLOCK_TILES, PREVIEW_FRAMES, LongClips, preview_stride  # noqa: F401
from pianoforge.improvise.outputs import (  # noqa: F401
    GENERATE_BATCH,
    generate_to_folder,
    output_names,
    spectrogram_png,
    write_clips,
)
from pianoforge.models.gan.config import gan_checkpoint_config
from pianoforge.viz import sample_grid

__all__ = ["Clips", "GanGenerator", "gan_checkpoint_config", "generate_to_folder", "image_to_logmag", "logmag_to_audio", "logmag_to_image",
           "reduce_noise", "sample_grid"]

