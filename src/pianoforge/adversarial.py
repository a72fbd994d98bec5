"""GAN losses, penalties and sample-diversity measures (pure functions; shared by training and evaluation).

Scores are raw critic outputs of shape (B,): logits for the BCE / logistic losses, unbounded values for
the Wasserstein critic. Images are (B, 1, H, W) in the normalized [-1, 1] scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------- WGAN-GP

def interpolates(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """``eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample (B,); requires grad."""
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    e = eps.reshape(-1, *([1] * (real.dim() - 1)))
    return (e * real.detach() + (1.0 - e) * fake.detach()).requires_grad_(True)


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample WGAN-GP penalty (Gulrajani et al. 2017): mean over samples of ``(||grad_x D(x_i)|| - 1)**2``.

    scores: (B,) critic outputs at ``inputs`` (B, ...), which must require grad. The gradient norm is taken
    per sample over all of its elements (the original PianoGAN code took one norm of the whole batch's
    gradient). Returns (penalty, per-sample gradient norms (B,)); the penalty keeps its graph
    (``create_graph``) so it can be back-propagated into the critic. Multiply by the weight (10).
    """
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1.0) ** 2).mean(), norms


def wgan_critic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``E[D(fake)] - E[D(real)]`` (minimized by the critic); its negative estimates the W1 distance."""
    return fake.mean() - real.mean()


def wgan_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


# ---------------------------------------------------------------------------------------- BCE (DCGAN)

def bce_targets(n: int, real: bool, smoothing: float, flip: float, generator: torch.Generator | None = None,
                device: torch.device | None = None) -> torch.Tensor:
    """Soft, optionally flipped labels (n,): real ~ U[1 - smoothing, 1], fake ~ U[0, smoothing]; each
    label is swapped to the other class with probability ``flip`` (PianoGAN's tricks to weaken D)."""
    u = torch.rand(n, generator=generator, device=device) * smoothing
    is_real = torch.full((n,), bool(real), device=device)
    if flip > 0:
        is_real ^= torch.rand(n, generator=generator, device=device) < flip
    return torch.where(is_real, 1.0 - u, u)


def bce_discriminator_loss(real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0,
                           flip: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of the discriminator's logits against soft / flipped labels (mean of the
    real and fake halves)."""
    t_real = bce_targets(real.shape[0], True, smoothing, flip, device=real.device)
    t_fake = bce_targets(fake.shape[0], False, smoothing, flip, device=fake.device)
    return 0.5 * (F.binary_cross_entropy_with_logits(real, t_real)
                  + F.binary_cross_entropy_with_logits(fake, t_fake))


def bce_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(z))`` (hard label 1)."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


# ------------------------------------------------------------------------------------ hinge (FrameGAN)

def hinge_critic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


# ---------------------------------------------------------------------------------- logistic (StyleGAN)

def logistic_critic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """StyleGAN2: ``softplus(D(fake)) + softplus(-D(real))``, averaged."""
    return F.softplus(fake).mean() + F.softplus(-real).mean()


def logistic_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def r1_penalty(scores: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over samples of ``||grad_x D(x_i)||**2`` at real images (which must
    require grad). Multiply by ``gamma / 2``."""
    (grad,) = torch.autograd.grad(scores.sum(), reals, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


# ------------------------------------------------------------------------------------------- diversity

def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L1 distance per element over all pairs i < j of a set (N, ...) of samples (0 for N < 2)."""
    flat = x.detach().flatten(1).double()
    n = flat.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(flat, flat, p=1.0) / flat.shape[1]
    return float(d.sum() / (n * (n - 1)))


def diversity_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """Mean pairwise L1 of generated samples divided by that of real samples: ~1 healthy, -> 0 collapse."""
    return mean_pairwise_distance(generated) / max(mean_pairwise_distance(real), 1e-12)


def spectral_moment_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over frequency rows of ``|mean_a - mean_b| + |std_a - std_b|``, each row's moments taken over
    samples and frames of two image sets (N, 1, H, W): how far generated spectra are from real ones on
    average (0 = same per-bin level and spread; in the normalized [-1, 1] units)."""
    return float(row_moment_loss(a.detach().double(), b.double()))


def row_moment_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """:func:`spectral_moment_distance` as a differentiable tensor, for the generator (a feature-matching term, after
    Salimans et al. 2016): mean over rows of ``|mean_f - mean_r| + |std_f - std_r|``, moments over samples
    and frames of (B, 1, H, W) images; ``real`` is detached. Scalar tensor, normalized [-1, 1] units."""
    xf, xr = fake.transpose(0, 2).flatten(1), real.detach().transpose(0, 2).flatten(1)
    return ((xf.mean(1) - xr.mean(1)).abs() + (xf.std(1, unbiased=False) - xr.std(1, unbiased=False)).abs()).mean()


ROLL_MOMENT_KNEE = 0.5
"""Strike level (dictionary-note units: velocity / 80 in the real rolls) at which :func:`roll_moment_loss` counts
half a strike: the real clips' strikes are mostly 0.6-1.6, and a knee at the note critic's 0.1 let a generator
meet the count with inaudible strikes (median 0.15)."""
ROLL_MOMENT_CAP = 3.0
"""Strike levels are summed up to this (the loudest real strikes are 127 / 80 = 1.6)."""


def roll_moment_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Strike statistics of a generated roll against the real batch's (a feature-matching term on the score):
    ``fake``, ``real`` (B, 88, W) strike levels >= 0 in dictionary-note units (``real`` detached). Three
    relative squared errors: per key, the expected soft count of strikes per clip (``x / (x + 0.5)``: note
    density, register and pitch classes) and the expected sum of strike levels (capped at 3: how loud); and
    the mean square of the soft strikes per frame (how many notes a chord strikes together). Each is unbiased
    in the real batch's noise: its minimum over the fake statistics is the data's expectation. Scalar tensor."""
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.clamp_min(0.0)
        soft = x / (x + ROLL_MOMENT_KNEE)
        return soft.sum(2).mean(0), x.clamp_max(ROLL_MOMENT_CAP).sum(2).mean(0), (soft.sum(1) ** 2).mean()

    loss = fake.new_zeros(())
    for f, r in zip(stats(fake), stats(real.detach()), strict=True):
        loss = loss + ((f - r) ** 2).sum() / (r ** 2).sum().clamp_min(1e-6)
    return loss


ROLL_LEVEL_EDGES = (0.05, 0.5, 1.0, 2.0)
"""Band edges (dictionary-note units) of :func:`roll_level_loss`: strikes of 0.05-0.5, 0.5-1, 1-2 and above 2. The
real scores have no strike under 0.5 (velocity 40); their median is 1.12."""
ROLL_LEVEL_SHARPNESS = 6.0
"""Exponent k of the soft band edge ``x^k / (x^k + e^k)``: a strike at half an edge counts 1.5 % above it, at
twice the edge 98.5 %."""


def strike_level_counts(x: torch.Tensor) -> torch.Tensor:
    """Strike levels (B, 88, W) >= 0 (dictionary-note units) -> (B, bands) soft counts of strikes per clip in the
    bands of :data:`ROLL_LEVEL_EDGES` (a level of exactly 0 counts nowhere and has zero gradient)."""
    x = x.clamp_min(0.0)
    k = ROLL_LEVEL_SHARPNESS
    above = [x ** k / (x ** k + e ** k) for e in ROLL_LEVEL_EDGES]  # soft "x > e", each (B, 88, W)
    bands = [lo - hi for lo, hi in zip(above[:-1], above[1:], strict=True)] + [above[-1]]
    return torch.stack([b.sum((1, 2)) for b in bands], dim=1)


def roll_level_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """How loud the strikes are, against the real batch (a feature-matching term on the score's velocities):
    ``fake``, ``real`` (B, 88, W) strike levels in dictionary-note units (``real`` detached). The relative squared
    error of the expected strikes per clip in each level band (:func:`strike_level_counts`); its minimum over the
    fake counts is the data's expectation. So a strike too soft to be a real note (under 0.5) costs as much as a
    missing loud one: it must get louder or go. Scalar tensor."""
    f, r = strike_level_counts(fake).mean(0), strike_level_counts(real.detach()).mean(0)
    return ((f - r) ** 2).sum() / (r ** 2).sum().clamp_min(1e-6)


INTERVAL_WINDOW = 5
"""Frames (+-2, 80 ms at gan-fine) within which strikes count as sounding together for :func:`roll_interval_loss`
(a rolled chord is one chord)."""


def interval_class_shares(x: torch.Tensor) -> torch.Tensor:
    """Strike levels (B, 88, W) >= 0 (key 0 = A0) -> (6,) the batch's share of each interval class 1..6 (minor
    second / major seventh ... tritone) among pairs of pitch classes struck together: soft strikes
    ``x / (x + knee)`` (:data:`ROLL_MOMENT_KNEE`), summed over :data:`INTERVAL_WINDOW` frames and folded onto the
    12 pitch classes (P, (B, 12, W)); class d counts ``sum_t sum_c P[c, t] P[c + d mod 12, t]``."""
    x = x.clamp_min(0.0)
    soft = x / (x + ROLL_MOMENT_KNEE)
    w = INTERVAL_WINDOW
    soft = torch.nn.functional.avg_pool1d(soft, w, 1, w // 2, count_include_pad=True) * w
    b, k, t = soft.shape
    pad = (-(k + 9)) % 12  # key 0 is A (pitch class 9): prepend 9 silent keys, append up to a whole octave
    folded = torch.nn.functional.pad(soft, (0, 0, 9, pad)).view(b, -1, 12, t).sum(1)  # (B, 12, W), C = 0
    counts = torch.stack([(folded * folded.roll(-d, dims=1)).sum((0, 1, 2)) for d in range(1, 7)])
    counts = counts * torch.tensor([1, 1, 1, 1, 1, 0.5], dtype=counts.dtype, device=counts.device)  # d = 6 twice
    return counts / counts.sum().clamp_min(1e-6)


def roll_interval_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The harmony of the strikes against the real batch's (a symbolic prior from the corpus's own scores):
    relative squared error of :func:`interval_class_shares` (``real`` detached). The real clips strike few
    minor seconds together (about 3 % of pairs; random pitch classes: 2 / 11); density is left to
    :func:`roll_moment_loss`. Scalar tensor."""
    f, r = interval_class_shares(fake), interval_class_shares(real.detach())
    return ((f - r) ** 2).sum() / (r ** 2).sum().clamp_min(1e-6)


COLLAPSE_THRESHOLD = 0.25
"""Diversity ratio below which samples are reported as collapsed."""


def collapse_warning(generated: torch.Tensor, real: torch.Tensor,
                     threshold: float = COLLAPSE_THRESHOLD) -> str | None:
    """A one-line warning when generated samples are far less diverse than real ones, else None."""
    if not torch.isfinite(generated).all():
        return "generated samples hold NaN/inf: the generator diverged"
    ratio = diversity_ratio(generated, real)
    if ratio < threshold:
        return (f"MODE COLLAPSE: generated samples are {ratio:.3f}x as diverse as real ones (mean pairwise L1 "
                f"{mean_pairwise_distance(generated):.4f} vs {mean_pairwise_distance(real):.4f}; threshold {threshold})")
    return None
