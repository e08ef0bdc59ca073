"""Activations with Paddle's exact definitions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HardSigmoid(nn.Module):
    """Paddle's ``hardsigmoid``: ``clip(slope * x + offset, 0, 1)``.

    PyTorch's ``nn.Hardsigmoid`` is the ``slope=1/6`` case. The MobileNetV3-style SE blocks of
    PaddleOCR (text-line classifier, RSE-FPN neck) use ``slope=0.2``.
    """

    def __init__(self, slope: float = 0.2, offset: float = 0.5) -> None:
        super().__init__()
        self.slope = slope
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"slope={self.slope}, offset={self.offset}"


def make_activation(name: str | None) -> nn.Module:
    """``"relu"``, ``"hardswish"``, ``"swish"`` (SiLU) or ``None`` (identity)."""
    if name is None:
        return nn.Identity()
    table = {"relu": nn.ReLU, "hardswish": nn.Hardswish, "swish": nn.SiLU, "gelu": nn.GELU}
    if name not in table:
        raise ValueError(f"Unknown activation '{name}', expected one of {sorted(table)} or None")
    return table[name]()


_INPLACE = {nn.ReLU: F.relu, nn.Hardswish: F.hardswish, nn.SiLU: F.silu}


def apply_inplace(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(x)`` overwriting ``x`` when the activation has an in-place form (inference on fresh tensors only)."""
    if isinstance(act, nn.Identity):
        return x
    fn = _INPLACE.get(type(act))
    return fn(x, inplace=True) if fn is not None else act(x)
