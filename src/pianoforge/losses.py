"""Training losses, selectable by name and combined with weights from the config.

Every function takes the model's raw output and the batch and returns a scalar; :func:`perform_losses`
returns a dict ``{"loss/<name>": value, ..., "loss": weighted sum}`` (DAC style).

==============  ================================================================  ==================
name            what                                                              needs
==============  ================================================================  ==================
``lms``         MSE of per-bin normalized log-magnitude (the paper's LMS MSE)     any output
``elms``        ``lms`` with per-bin ISO 226 equal-loudness weights (mean 1)      any output
``time_mse``    MSE of the waveform (the paper's time-domain loss)                complex or time
``complex_mse`` MSE of scaled real and imaginary STFT parts                       complex
``mrstft``      multi-resolution STFT: spectral convergence + log-magnitude L1    complex or time
==============  ================================================================  ==================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

LOSSES = ("lms", "elms", "time_mse", "complex_mse", "mrstft")
PHASE_LOSSES = ("time_mse", "mrstft")


def _norm_logmag(model, out: torch.Tensor) -> torch.Tensor:
    """(B, T, bins) z-scored log-magnitude of a raw output (unweighted)."""
    if model.cfg.output == "logmag":
        return out
    return (model.to_logmag(out) - model.mean) / model.std


def lms(model, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if model.cfg.output in ("logmag", "logmag_el"):
        return torch.mean((out - model.target(batch["spec"], batch["audio"])) ** 2)
    return torch.mean((_norm_logmag(model, out) - (batch["spec"] - model.mean) / model.std) ** 2)


def elms(model, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    w = model.el_gain / model.el_gain.mean()
    err = (_norm_logmag(model, out) - (batch["spec"] - model.mean) / model.std) ** 2
    return torch.mean(err * w)


def time_mse(model, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.mean((model.to_audio(out) - batch["audio"]) ** 2)


def complex_mse(model, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if model.cfg.output != "complex":
        raise ValueError("complex_mse needs output: complex")
    return torch.mean((out - model.target(batch["spec"], batch["audio"])) ** 2)


def stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, samples) -> (B, bins, frames) magnitude with a Hann window (floored for stable gradients)."""
    win = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    s = torch.stft(x, n_fft, hop, window=win, center=True, pad_mode="constant", return_complex=True)
    return torch.sqrt(s.real**2 + s.imag**2 + 1e-10)


def multi_resolution_stft(y_hat: torch.Tensor, y: torch.Tensor, n_ffts: Sequence[int] = (256, 512, 1024, 2048),
                          eps: float = 1e-5) -> torch.Tensor:
    """Mean over resolutions of spectral convergence ||Y| - |Ŷ||_F / ||Y||_F plus mean |log|Y| - log|Ŷ||.

    y_hat, y: (B, samples). Hop n_fft/4. Zero for a perfect prediction.
    """
    total = y.new_zeros(())
    n_ffts = [n for n in n_ffts if n <= y.shape[-1]] or [min(n_ffts)]
    for n in n_ffts:
        a, b = stft_mag(y_hat, n, n // 4), stft_mag(y, n, n // 4)
        sc = torch.linalg.norm(b - a) / torch.linalg.norm(b).clamp_min(eps)
        mag = torch.mean(torch.abs(torch.log(a + eps) - torch.log(b + eps)))
        total = total + sc + mag
    return total / len(n_ffts)


def mrstft(model, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return multi_resolution_stft(model.to_audio(out), batch["audio"])


_FNS = {"lms": lms, "elms": elms, "time_mse": time_mse, "complex_mse": complex_mse, "mrstft": mrstft}


def check_losses(weights: dict[str, float], output: str) -> None:
    """Raise ValueError for unknown losses or ones the output representation cannot support."""
    for name in weights:
        if name not in _FNS:
            raise ValueError(f"unknown loss {name!r} (one of {', '.join(LOSSES)})")
        if name in PHASE_LOSSES and output not in ("complex", "time"):
            raise ValueError(f"loss {name} needs a waveform: use model output complex or time, not {output}")
        if name == "complex_mse" and output != "complex":
            raise ValueError("loss complex_mse needs model output complex")


def perform_losses(model, out: torch.Tensor, batch: dict[str, torch.Tensor],
                   weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Named losses and their weighted sum under ``"loss"``."""
    d = {f"loss/{k}": _FNS[k](model, out, batch) for k in weights}
    d["loss"] = sum(float(w) * d[f"loss/{k}"] for k, w in weights.items())
    return d
