"""GAN losses by architecture: named loss dicts combined with weights from the ``train`` section (DAC style).

:data:`ARCH_LOSSES` maps each ``model.arch`` to its adversarial loss and its extra terms;
:func:`critic_losses` and :func:`generator_losses` return ``{"d/adv": ..., "d/gp": ..., "d/loss": weighted
sum}`` and ``{"g/adv": ..., "g/moments": ..., "g/loss": weighted sum}``, the weights from
:func:`loss_weights` (``train.gp_weight``, ``train.r1_gamma`` x ``r1_every`` / 2, ``train.moment_weight``,
``train.note_critic_weight``, ``train.roll_moment_weight``, ``train.roll_level_weight``, ``train.roll_interval_weight``).
A term whose weight is 0 is not computed. The pure loss functions are in :mod:`pianoforge.adversarial`.

=============  ===========================================  ============================================
arch           adversarial (critic / generator)             extra terms
=============  ===========================================  ============================================
``dcgan``      BCE on logits, soft / flipped labels          ``g/moments``
``specgan``    WGAN                                          ``d/gp`` (per-sample gradient penalty), ``g/moments``
``stylegan``   logistic (non-saturating)                     ``d/r1`` (lazy R1), ``g/moments``
``framegan``   hinge                                         ``g/moments``
``notegan``    hinge                                         ``g/moments``, ``g/notes`` (note critic), ``g/roll``,
                                                            ``g/levels``, ``g/intervals`` (strike statistics)
=============  ===========================================  ============================================

To add a term: write ``fn(batch) -> scalar`` into :data:`CRITIC_TERMS` or :data:`GENERATOR_TERMS`, name it
in the arch's :class:`ArchLosses` and give it a weight in :func:`loss_weights` (a ``train`` key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from pianoforge import adversarial as adv


@dataclass
class CriticBatch:
    """One critic step: ``critic`` (B, 1, H, W) -> (B,); images (B, 1, H, W); ``real_in`` is ``real`` with
    ``requires_grad`` on R1 steps; ``d_real``/``d_fake`` (B,) the scores already computed."""

    critic: Callable[[torch.Tensor], torch.Tensor]
    real: torch.Tensor
    fake: torch.Tensor
    real_in: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor
    r1_step: bool = False
    label_smoothing: float = 0.0
    label_flip: float = 0.0
    diagnostics: dict[str, float] = field(default_factory=dict)  # terms add what they measure on the way


@dataclass
class GeneratorBatch:
    """One generator step: ``gen`` (B, 1, H, W) generated images, ``d_gen`` (B,) their scores, ``real``
    the batch's real images; ``extra``: what an added term needs (e.g. a second critic)."""

    gen: torch.Tensor
    d_gen: torch.Tensor
    real: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)


def _gradient_penalty(b: CriticBatch) -> torch.Tensor:
    x_hat = adv.interpolates(b.real, b.fake)
    gp, norms = adv.gradient_penalty(b.critic(x_hat), x_hat)
    b.diagnostics.update(w_dist=float((b.d_real.mean() - b.d_fake.mean()).detach()),
                         grad_norm=float(norms.mean().detach()))
    return gp


def _r1(b: CriticBatch) -> torch.Tensor | None:
    return adv.r1_penalty(b.d_real, b.real_in) if b.r1_step else None


ADVERSARIAL: dict[str, tuple[Callable[[CriticBatch], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "bce": (lambda b: adv.bce_discriminator_loss(b.d_real, b.d_fake, b.label_smoothing, b.label_flip),
            adv.bce_generator_loss),
    "wgan": (lambda b: adv.wgan_critic_loss(b.d_real, b.d_fake), adv.wgan_generator_loss),
    "logistic": (lambda b: adv.logistic_critic_loss(b.d_real, b.d_fake), adv.logistic_generator_loss),
    "hinge": (lambda b: adv.hinge_critic_loss(b.d_real, b.d_fake), adv.hinge_generator_loss),
}
CRITIC_TERMS: dict[str, Callable[[CriticBatch], torch.Tensor | None]] = {"d/gp": _gradient_penalty, "d/r1": _r1}
"""Extra critic terms; a term may return None (not this step: lazy R1)."""
def _note_critic(b: GeneratorBatch) -> torch.Tensor:
    """NoteGAN's note critic (``extra["note_critic"]``) on the generated strike roll (``extra["roll"]``)."""
    from pianoforge.models.gan.note_critic import compress_roll

    return adv.hinge_generator_loss(b.extra["note_critic"](compress_roll(b.extra["roll"])))


def _roll_moments(b: GeneratorBatch) -> torch.Tensor:
    """NoteGAN's strike statistics (``extra["roll"]``, levels) against the real batch's (``extra["real_roll"]``,
    velocity in dictionary-note units)."""
    return adv.roll_moment_loss(b.extra["roll"], b.extra["real_roll"])


def _roll_levels(b: GeneratorBatch) -> torch.Tensor:
    """NoteGAN's strikes per level band against the real batch's (same rolls as :func:`_roll_moments`)."""
    return adv.roll_level_loss(b.extra["roll"], b.extra["real_roll"])


def _roll_intervals(b: GeneratorBatch) -> torch.Tensor:
    """NoteGAN's interval classes struck together against the real batch's (same rolls as :func:`_roll_moments`)."""
    return adv.roll_interval_loss(b.extra["roll"], b.extra["real_roll"])


GENERATOR_TERMS: dict[str, Callable[[GeneratorBatch], torch.Tensor]] = {
    "g/moments": lambda b: adv.row_moment_loss(b.gen, b.real), "g/notes": _note_critic, "g/roll": _roll_moments,
    "g/levels": _roll_levels, "g/intervals": _roll_intervals}


@dataclass(frozen=True)
class ArchLosses:
    adversarial: str
    critic: tuple[str, ...] = ()
    generator: tuple[str, ...] = ("g/moments",)


ARCH_LOSSES: dict[str, ArchLosses] = {
    "dcgan": ArchLosses("bce"),
    "specgan": ArchLosses("wgan", critic=("d/gp",)),
    "stylegan": ArchLosses("logistic", critic=("d/r1",)),
    "framegan": ArchLosses("hinge"),
    "notegan": ArchLosses("hinge", critic=("d/r1",), generator=("g/moments", "g/notes", "g/roll", "g/levels",
                                                                          "g/intervals")),
}


def loss_weights(train: Any) -> dict[str, float]:
    """Term -> weight from a checked GAN ``train`` section (``GanTrainConfig``)."""
    return {"d/adv": 1.0, "d/gp": float(train.gp_weight),
            "d/r1": float(train.r1_gamma) / 2 * int(train.r1_every),  # lazy R1: every r1_every steps, scaled up
            "g/adv": 1.0, "g/moments": float(train.moment_weight), "g/notes": float(train.note_critic_weight),
            "g/roll": float(train.roll_moment_weight), "g/levels": float(train.roll_level_weight),
            "g/intervals": float(train.roll_interval_weight)}


def _weighted(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    total = terms["d/adv" if "d/adv" in terms else "g/adv"]
    for name, value in terms.items():
        if not name.endswith("/adv"):
            total = total + weights[name] * value
    return total


def critic_losses(arch: str, b: CriticBatch, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``{"d/adv": ..., <the arch's critic terms this step>, "d/loss": weighted sum}``."""
    spec = ARCH_LOSSES[arch]
    terms = {"d/adv": ADVERSARIAL[spec.adversarial][0](b)}
    for name in spec.critic:
        if weights.get(name, 0.0):
            value = CRITIC_TERMS[name](b)
            if value is not None:
                terms[name] = value
    return {**terms, "d/loss": _weighted(terms, weights)}


def generator_losses(arch: str, b: GeneratorBatch, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``{"g/adv": ..., <the arch's generator terms>, "g/loss": weighted sum}``."""
    spec = ARCH_LOSSES[arch]
    terms = {"g/adv": ADVERSARIAL[spec.adversarial][1](b.d_gen)}
    for name in spec.generator:
        if weights.get(name, 0.0):
            terms[name] = GENERATOR_TERMS[name](b)
    return {**terms, "g/loss": _weighted(terms, weights)}
