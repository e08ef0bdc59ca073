"""Inference-time folding of per-channel affine ops into convolution weights, cached per module.

Eval-mode BatchNorm and PP-LCNetV3's scalar affine blocks are linear maps that a conv can absorb. At
inference (eval mode, autograd off) the folded kernel and bias are computed once and reused until a
parameter changes (tracked by tensor identity and PyTorch's in-place version counter), so each such
pair costs one convolution instead of two or three passes over a large activation. Training and
autograd always run the unfused modules.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["cached_fold", "fold_bn", "inference_fusion_active"]


def inference_fusion_active(module: nn.Module) -> bool:
    """True when folding is valid: eval mode and no autograd."""
    return not module.training and not torch.is_grad_enabled()


def fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d, transposed: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')`` with ``conv(x; W', b') == bn(conv(x; W, b))`` for an eval-mode BatchNorm.

    ``transposed``: ``weight`` is a ``ConvTranspose2d`` kernel ``[in, out, kh, kw]`` (output channels on dim 1).
    """
    t = bn.weight / (bn.running_var + bn.eps).sqrt()
    shape = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * t if bias is None else bn.bias + (bias - bn.running_mean) * t
    return weight * t.reshape(shape), b


def cached_fold(
    module: nn.Module, tensors: tuple[torch.Tensor, ...], compute: Callable[[], tuple[torch.Tensor, ...]]
) -> tuple[torch.Tensor, ...]:
    """``compute()``, recomputed only when one of ``tensors`` was replaced or modified in place.

    ``tensors`` should be parameters/buffers (inference-mode tensors have no version counter and are
    keyed by identity only).
    """
    key = tuple((t.data_ptr(), -1 if t.is_inference() else t._version, t.dtype, t.device) for t in tensors)
    cache = module.__dict__.get("_pxtorch_fold")
    if cache is None or cache[0] != key:
        with torch.no_grad():
            cache = (key, compute())
        module.__dict__["_pxtorch_fold"] = cache
    return cache[1]
