"""Re-parameterisable conv layers (MobileOne-style) with a training and a deploy form.

Training form: the sum of ``num_conv_branches`` kxk conv+BN branches, a 1x1 conv+BN branch (when
k > 1) and an identity BN branch (stride 1, in == out). Deploy form: the single equivalent conv
with bias (``reparam_conv``), as in PaddlePaddle's exported inference models.
:func:`reparameterize_model` turns a whole model from the first form into the second.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv_bn import ConvBNAct, fuse_bn
from .fusion import cached_fold, inference_fusion_active
from .lab import LearnableAffineBlock


class LabActivation(nn.Module):
    """Hardswish followed by a learnable affine block (PaddleOCR's ``Act``); parameters ``lab.*``."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Hardswish()
        self.lab = LearnableAffineBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lab(self.act(x))


class LearnableRepLayer(nn.Module):
    """PP-LCNetV3's ``LearnableRepLayer``: ``act(lab(sum of branches))``; no ``act`` when stride is 2.

    Input ``[B, C_in, H, W]`` -> output ``[B, C_out, H / s_h, W / s_w]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int | tuple[int, int] = 1,
        groups: int = 1,
        num_conv_branches: int = 4,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups
        self.padding = (kernel_size - 1) // 2
        self.deploy = deploy
        strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
        if deploy:
            self.reparam_conv = nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, self.padding, groups=groups, bias=True
            )
        else:
            has_identity = out_channels == in_channels and strides == (1, 1)
            self.identity = nn.BatchNorm2d(in_channels) if has_identity else None
            self.conv_kxk = nn.ModuleList(
                ConvBNAct(in_channels, out_channels, kernel_size, stride, self.padding, groups=groups)
                for _ in range(num_conv_branches)
            )
            self.conv_1x1 = (
                ConvBNAct(in_channels, out_channels, 1, stride, 0, groups=groups) if kernel_size > 1 else None
            )
        self.lab = LearnableAffineBlock()
        # PaddleOCR skips the activation when the (scalar) stride is 2; rec strides like (2, 1) keep it.
        self.act = LabActivation() if stride != 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy and inference_fusion_active(self):
            return self._forward_inference(x)
        if self.deploy:
            out = self.reparam_conv(x)
        else:
            out = 0
            if self.identity is not None:
                out = out + self.identity(x)
            if self.conv_1x1 is not None:
                out = out + self.conv_1x1(x)
            for conv in self.conv_kxk:
                out = out + conv(x)
        out = self.lab(out)
        if self.act is not None:
            out = self.act(out)
        return out

    def folded_conv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Deploy-form kernel and bias with the affine block folded in: ``lab(conv(x)) == conv'(x)`` (cached)."""
        conv, lab = self.reparam_conv, self.lab
        return cached_fold(
            self,
            (conv.weight, conv.bias, lab.scale, lab.bias),
            lambda: (conv.weight * lab.scale, torch.addcmul(lab.bias, conv.bias, lab.scale)),
        )

    def conv_inference(self, x: torch.Tensor) -> torch.Tensor:
        """``lab(conv(x))`` as one convolution (deploy form, inference)."""
        w, b = self.folded_conv()
        conv = self.reparam_conv
        return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)

    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Deploy form without autograd: the same function with fewer passes over the activation.

        The affine block rides in the (small) conv kernel and the activation's hardswish + affine run in
        place on the fresh conv output.
        """
        out = self.conv_inference(x)
        if self.act is not None:
            out = F.hardswish(out, inplace=True).mul_(self.act.lab.scale).add_(self.act.lab.bias)
        return out

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The deploy-form ``(weight, bias)`` equivalent to the training-form branches."""
        if self.deploy:
            return self.reparam_conv.weight.clone(), self.reparam_conv.bias.clone()
        k, p = self.kernel_size, self.kernel_size // 2
        weight = torch.zeros_like(self.conv_kxk[0].conv.weight) if self.conv_kxk else None
        bias = torch.zeros(self.out_channels, device=self.lab.scale.device, dtype=self.lab.scale.dtype)
        for branch in self.conv_kxk:
            w, b = fuse_bn(branch.conv.weight, branch.bn)
            weight, bias = weight + w, bias + b
        if self.conv_1x1 is not None:
            w, b = fuse_bn(self.conv_1x1.conv.weight, self.conv_1x1.bn)
            weight, bias = weight + F.pad(w, [p, p, p, p]), bias + b
        if self.identity is not None:
            in_per_group = self.in_channels // self.groups
            eye = torch.zeros(self.in_channels, in_per_group, k, k, dtype=bias.dtype, device=bias.device)
            idx = torch.arange(self.in_channels)
            eye[idx, idx % in_per_group, k // 2, k // 2] = 1.0
            w, b = fuse_bn(eye, self.identity)
            weight, bias = weight + w, bias + b
        return weight, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Switch to the deploy form in place (idempotent). Branch BNs use their running stats."""
        if self.deploy:
            return
        weight, bias = self.fused_kernel_bias()
        self.reparam_conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            groups=self.groups,
            bias=True,
        ).to(device=weight.device, dtype=weight.dtype)
        self.reparam_conv.weight.copy_(weight)
        self.reparam_conv.bias.copy_(bias)
        del self.conv_kxk, self.conv_1x1, self.identity
        self.deploy = True


@torch.no_grad()
def reparameterize_model(model: nn.Module) -> nn.Module:
    """Call ``reparameterize()`` on every submodule that has one (in place); returns ``model``.

    Sets ``model.model_args["deploy"] = True`` when the model records its build arguments, so a
    saved checkpoint rebuilds in the deploy form.
    """
    for module in list(model.modules()):
        if module is not model and hasattr(module, "reparameterize"):
            module.reparameterize()
    if isinstance(getattr(model, "model_args", None), dict):
        model.model_args["deploy"] = True
    return model
