"""Squeeze-and-excitation blocks in PaddleOCR's two flavours."""

from __future__ import annotations

import torch
from torch import nn

from .activations import HardSigmoid


class SEModule(nn.Module):
    """``x * hardsigmoid(conv2(relu(conv1(avgpool(x)))))`` with biased 1x1 convs ``conv1``/``conv2``.

    Args:
        slope: hardsigmoid slope; 0.2 for PaddleOCR's MobileNetV3/RSE-FPN SE, 1/6 for PP-LCNet(V3).
    """

    def __init__(self, channels: int, reduction: int = 4, slope: float = 0.2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)
        self.hardsigmoid = HardSigmoid(slope=slope, offset=0.5)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel scale ``[B, C, 1, 1]`` the block multiplies ``x`` by."""
        s = x.mean(dim=(2, 3), keepdim=True)
        return self.hardsigmoid(self.conv2(self.relu(self.conv1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
