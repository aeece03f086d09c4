"""MLP towers and the activations CTR models use (sigmoid, relu, prelu, dice).

All activations act on the **last** dimension, so they work on ``[B, F]`` rows and on
``[B, L, F]`` per-behavior tensors alike (``nn.PReLU`` would pick dimension 1 instead).

Example::

    >>> import torch
    >>> tower = MLP(in_dim=12, hidden=[8, 4], activation="dice", dropout=0.1)
    >>> tower(torch.randn(5, 12)).shape                          # [B, 1]
    torch.Size([5, 1])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from chronorec.layers.dropout import Dropout

Activation = Literal["sigmoid", "relu", "prelu", "dice"]


class PReLU(nn.Module):
    """Parametric ReLU with one slope per feature of the last dimension. ``[..., F] -> [..., F]``."""

    def __init__(self, features: int, init: float = 0.25) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((features,), init))

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, self.alpha * x)


class Dice(nn.Module):
    """DIN's data-adaptive activation: ``p(x) * x + (1 - p(x)) * alpha * x``, ``p = sigmoid(BN(x))``.

    The normalisation uses batch statistics in training and running statistics in eval, like
    DIN's code (``center=False, scale=False``). Because those statistics mix rows, only use it
    where every row is real (the MLP tower), never on padded per-behavior tensors. ``[..., F] -> [..., F]``
    """

    def __init__(self, features: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(features, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(features))

    def forward(self, x: Tensor) -> Tensor:
        p = torch.sigmoid(self.bn(x.reshape(-1, x.shape[-1])).view_as(x))  # [..., F]
        return p * x + (1 - p) * self.alpha * x


def make_activation(name: str, features: int) -> nn.Module:
    """An activation module for ``features``-wide inputs (last dimension)."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return PReLU(features)
    if name == "dice":
        return Dice(features)
    raise ValueError(f"unknown activation {name!r}; choose sigmoid, relu, prelu or dice")


class MLP(nn.Module):
    """``Linear -> activation -> Dropout`` per hidden size, then a final ``Linear`` to ``out_dim``.

    ``forward(x [..., in_dim]) -> [..., out_dim]``; ``out_dim=None`` drops the final layer, so the
    output is the last hidden layer (``[..., hidden[-1]]``, or ``x`` itself when ``hidden`` is empty).
    """

    def __init__(
        self, in_dim: int, hidden: list[int], activation: str = "relu", dropout: float = 0.0,
        out_dim: int | None = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), make_activation(activation, h), Dropout(dropout)]
            d = h
        if out_dim is not None:
            layers.append(nn.Linear(d, out_dim))
            d = out_dim
        self.net = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
