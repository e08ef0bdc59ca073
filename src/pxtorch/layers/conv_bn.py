"""Convolution + BatchNorm (+ activation) blocks, BatchNorm folding and channel rounding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import apply_inplace, make_activation
from .fusion import cached_fold, fold_bn, inference_fusion_active


class ConvBNAct(nn.Module):
    """``act(bn(conv(x)))`` with a bias-free conv; submodules are named ``conv``, ``bn``, ``act``.

    Args:
        padding: ``None`` gives "same" padding for odd kernels (``(k - 1) // 2`` per side).
        act: activation name for :func:`make_activation`, ``None`` for none.
        bn_name: attribute name of the norm (PaddleOCR's SVTR blocks call it ``norm``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        act: str | None = None,
        bn_name: str = "bn",
    ) -> None:
        super().__init__()
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if padding is None:
            padding = (ks[0] // 2, ks[1] // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, ks, stride, padding, groups=groups, bias=False)
        self._bn_name = bn_name
        self.add_module(bn_name, nn.BatchNorm2d(out_channels))
        self.act = make_activation(act)

    @property
    def norm_layer(self) -> nn.BatchNorm2d:
        return getattr(self, self._bn_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if inference_fusion_active(self):
            conv, bn = self.conv, self.norm_layer
            w, b = cached_fold(
                self,
                (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var),
                lambda: fold_bn(conv.weight, conv.bias, bn),
            )
            return apply_inplace(self.act, F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups))
        return self.act(self.norm_layer(self.conv(x)))


@torch.no_grad()
def fuse_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the preceding bias-free conv kernel.

    Returns ``(kernel * gamma / std, beta - mean * gamma / std)`` with ``std = sqrt(var + eps)``.
    """
    std = (bn.running_var + bn.eps).sqrt()
    t = bn.weight / std
    return kernel * t.reshape(-1, *([1] * (kernel.dim() - 1))), bn.bias - bn.running_mean * t


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round a channel count ``v`` to the nearest multiple of ``divisor``, never below 90% of ``v``
    (the rounding every PaddleClas/PaddleOCR backbone uses for width multipliers)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v
