"""Small reusable layers. Tensors are (batch, frames, channels) unless a docstring says otherwise."""

from __future__ import annotations

import torch
from torch import nn


class TimeDistributedMLP(nn.Module):
    """``n`` dense layers applied to every frame: (B, T, in) -> (B, T, units). ``n = 0`` is identity."""

    def __init__(self, n: int, in_dim: int, units: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Linear(in_dim if i == 0 else units, units), nn.GELU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)
        self.out_dim = units if n else in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResConv(nn.Module):
    """Residual 1-D convolution over time: x + Conv(GELU(LayerNorm(x))). (B, T, C) -> (B, T, C)."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.gelu(self.norm(x)).transpose(1, 2)
        return x + self.drop(self.conv(y).transpose(1, 2))


class Recurrent(nn.Module):
    """GRU or LSTM over time, optionally bidirectional: (B, T, in) -> (B, T, units * directions)."""

    def __init__(self, cell: str, in_dim: int, units: int, layers: int, bidirectional: bool,
                 dropout: float = 0.0) -> None:
        super().__init__()
        klass = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = klass(in_dim, units, layers, batch_first=True, bidirectional=bidirectional,
                         dropout=dropout if layers > 1 else 0.0)
        self.out_dim = units * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]
