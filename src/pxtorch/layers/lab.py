"""Learnable affine block (PP-LCNetV3 / PP-HGNetV2): ``y = scale * x + bias`` with scalar parameters."""

from __future__ import annotations

import torch
from torch import nn


class LearnableAffineBlock(nn.Module):
    """Scalar affine transform. Parameters ``scale`` and ``bias`` have shape ``[1]``."""

    def __init__(self, scale_value: float = 1.0, bias_value: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale_value]))
        self.bias = nn.Parameter(torch.tensor([bias_value]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.bias
