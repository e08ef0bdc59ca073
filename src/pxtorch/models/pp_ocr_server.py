"""Server text detectors and recognisers (PP-OCRv5/v4 server det and rec).

Det: PP-HGNetV2-B4 (v5) or PP-HGNet small (v4) -> LKPAN neck (256 channels, IntraCL blocks) -> PFHeadLocal
(DB binarize head plus a local refinement branch; the probability map is ``0.5 * (p + p_refined)``).
Rec: the same backbones with rec strides -> SVTR neck -> CTC head (reused from :mod:`.text_rec_svtr`).

Facts from PaddleOCR ``ppocr/modeling/necks/db_fpn.py`` (LKPAN "large": 1x1 ``ins_conv``, 9x9 ``inp_conv``
and ``pan_lat_conv``, 3x3/2 ``pan_head_conv``, all bias-free; top-down then bottom-up aggregation,
``incl1..4`` on p2..p5, nearest upsampling, concat p5..p2), ``necks/intracl.py`` (IntraCLBlock,
reduce factor 2: 1x1 reduce, three rounds of kxk + kx1 + 1xk convs for k = 7, 5, 3, 1x1 return + BN +
ReLU, residual), ``heads/det_db_head.py`` (PFHeadLocal: binarize ``Head`` returning its last feature,
``cbn_layer`` = ``LocalModule`` (3x3 conv+BN+ReLU on ``[p, up2(f)]``, 1x1 conv), sigmoid, mean with
``p`` in eval; in training ``maps = [p_refined, threshold, sigmoid(k (p - threshold))]``) and the configs
``PP-OCRv5_server_det.yml`` / ``PP-OCRv4_server_det.yml`` (LKPAN 256 ``intracl``, PFHeadLocal k 50
``mode: large``) and ``PP-OCRv5_server_rec.yml`` / ``PP-OCRv4_server_rec.yml`` (MultiHead CTC branch: svtr
neck dims 120, depth 2, hidden 120, kernel [1, 3], use_guide; 18385 / 6625 classes). Pre/post-processing
follow PaddleX's ``inference.yml`` of these models (det: DetResizeForTest ``resize_long`` 960, DB
thresholds 0.3/0.6, unclip 1.5; rec: 3x48x320, BGR, (x/255 - 0.5)/0.5).

The official weights of these models are not in any installed wheel (WEIGHTS.md): they come from the
Hugging Face Hub (v5: ``PaddlePaddle/PP-OCRv5_server_{det,rec}_safetensors``, transformers' layout, read
by :mod:`pxtorch.convert.hf_layout.pp_ocr_server`). Those checkpoints keep every BatchNorm next to its
convolution, which is also the training form: there are no re-parameterisable branches, so ``deploy``
builds the same modules (BatchNorms are still folded into the convolutions at inference time).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._pretrained import PretrainedCfg
from .._registry import register_model
from ..layers import ConvBNAct
from ..layers.fusion import cached_fold, fold_bn, inference_fusion_active
from .hgnet_v2 import pphgnet_small, pphgnetv2_b4
from .text_det_db import _DET_PREPROCESS as DB_DET_PREPROCESS
from .text_det_db import DBMapHead, TextDetDB
from .text_rec_svtr import CTCHead, EncoderWithSVTR, TextRecCTC
from .text_rec_svtr import default_cfgs as _mobile_rec_cfgs

__all__ = ["LKPAN", "DBMapHeadWithFeature", "IntraCLBlock", "LocalModule", "PFHeadLocal", "TextDetPFHead"]


class IntraCLBlock(nn.Module):
    """Intra-class relation block: ``x + relu(bn(conv1x1_return(rounds(conv1x1_reduce(x)))))``.

    Each round sums a square (``c_layer``), a vertical (``v_layer``, kx1) and a horizontal (``q_layer``, 1xk)
    convolution of the previous round's output, for k = 7, 5, 3. ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, in_channels: int, reduce_factor: int = 2) -> None:
        super().__init__()
        c = in_channels // reduce_factor
        self.conv1x1_reduce_channel = nn.Conv2d(in_channels, c, 1)
        self.conv1x1_return_channel = nn.Conv2d(c, in_channels, 1)
        for k in (7, 5, 3):
            setattr(self, f"v_layer_{k}x1", nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0)))
            setattr(self, f"q_layer_1x{k}", nn.Conv2d(c, c, (1, k), padding=(0, k // 2)))
            setattr(self, f"c_layer_{k}x{k}", nn.Conv2d(c, c, k, padding=k // 2))
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1x1_reduce_channel(x)
        for k in (7, 5, 3):
            square, vertical = getattr(self, f"c_layer_{k}x{k}"), getattr(self, f"v_layer_{k}x1")
            h = square(h) + vertical(h) + getattr(self, f"q_layer_1x{k}")(h)
        ret = self.conv1x1_return_channel
        if inference_fusion_active(self):
            bn = self.bn
            w, b = cached_fold(
                self,
                (ret.weight, ret.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var),
                lambda: fold_bn(ret.weight, ret.bias, bn),
            )
            return x + F.relu(F.conv2d(h, w, b), inplace=True)
        return x + self.relu(self.bn(ret(h)))


class LKPAN(nn.Module):
    """Large-kernel PAN (PaddleOCR ``LKPAN``, mode "large", ``intracl``): four maps (strides 4..32) ->
    ``[B, out_channels, H/4, W/4]`` (the concatenation of the four refined levels, p5 first)."""

    def __init__(self, in_channels: list[int], out_channels: int = 256, reduce_factor: int = 2) -> None:
        super().__init__()
        self.out_channels = out_channels
        q = out_channels // 4
        self.ins_conv = nn.ModuleList(nn.Conv2d(c, out_channels, 1, bias=False) for c in in_channels)
        self.inp_conv = nn.ModuleList(nn.Conv2d(out_channels, q, 9, padding=4, bias=False) for _ in in_channels)
        self.pan_head_conv = nn.ModuleList(
            nn.Conv2d(q, q, 3, stride=2, padding=1, bias=False) for _ in range(len(in_channels) - 1)
        )
        self.pan_lat_conv = nn.ModuleList(nn.Conv2d(q, q, 9, padding=4, bias=False) for _ in in_channels)
        self.incl1 = IntraCLBlock(q, reduce_factor)
        self.incl2 = IntraCLBlock(q, reduce_factor)
        self.incl3 = IntraCLBlock(q, reduce_factor)
        self.incl4 = IntraCLBlock(q, reduce_factor)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)
        out4 = in4 + F.interpolate(in5, scale_factor=2, mode="nearest")
        out3 = in3 + F.interpolate(out4, scale_factor=2, mode="nearest")
        out2 = in2 + F.interpolate(out3, scale_factor=2, mode="nearest")
        f5 = self.inp_conv[3](in5)
        f4 = self.inp_conv[2](out4)
        f3 = self.inp_conv[1](out3)
        f2 = self.inp_conv[0](out2)
        pan3 = f3 + self.pan_head_conv[0](f2)
        pan4 = f4 + self.pan_head_conv[1](pan3)
        pan5 = f5 + self.pan_head_conv[2](pan4)
        p2 = self.incl1(self.pan_lat_conv[0](f2))
        p3 = self.incl2(self.pan_lat_conv[1](pan3))
        p4 = self.incl3(self.pan_lat_conv[2](pan4))
        p5 = self.incl4(self.pan_lat_conv[3](pan5))
        p5 = F.interpolate(p5, scale_factor=8, mode="nearest")
        p4 = F.interpolate(p4, scale_factor=4, mode="nearest")
        p3 = F.interpolate(p3, scale_factor=2, mode="nearest")
        return torch.cat([p5, p4, p3, p2], dim=1)


def _bn_tensors(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, ...]:
    return bn.weight, bn.bias, bn.running_mean, bn.running_var


class DBMapHeadWithFeature(DBMapHead):
    """:class:`DBMapHead` that also returns its last hidden feature (PaddleOCR's ``Head(return_f=True)``)."""

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H/4, W/4] -> [B, C/4, H/2, W/2]``: the input of the final transposed conv."""
        if inference_fusion_active(self):
            c1, c2, bn1, bn2 = self.conv1, self.conv2, self.conv_bn1, self.conv_bn2
            w1, b1, w2, b2 = cached_fold(
                self,
                (c1.weight, c2.weight, c2.bias, *_bn_tensors(bn1), *_bn_tensors(bn2)),
                lambda: (*fold_bn(c1.weight, None, bn1), *fold_bn(c2.weight, c2.bias, bn2, transposed=True)),
            )
            x = F.relu(F.conv2d(x, w1, b1, c1.stride, c1.padding), inplace=True)
            return F.relu(F.conv_transpose2d(x, w2, b2, c2.stride), inplace=True)
        x = F.relu(self.conv_bn1(self.conv1(x)))
        return F.relu(self.conv_bn2(self.conv2(x)))

    def forward_with_feature(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(probability [B, 1, H, W], feature [B, C/4, H/2, W/2])``."""
        f = self.feature(x)
        return torch.sigmoid(self.conv3(f)), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_feature(x)[0]


class LocalModule(nn.Module):
    """Local refinement ``last_1(last_3(cat([p, f])))``, ``last_3`` a 3x3 conv+BN+ReLU: logits ``[B, 1, H, W]``."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.last_3 = ConvBNAct(in_channels + 1, mid_channels, 3, act="relu")
        self.last_1 = nn.Conv2d(mid_channels, 1, 1)

    def forward(self, x: torch.Tensor, init_map: torch.Tensor) -> torch.Tensor:
        return self.last_1(self.last_3(torch.cat([init_map, x], dim=1)))


class PFHeadLocal(nn.Module):
    """DB head with local refinement (PaddleOCR ``PFHeadLocal``): ``[B, C, H/4, W/4] -> [B, 1, H, W]``.

    ``forward`` returns ``0.5 * (p + sigmoid(cbn_layer(up2(f), p)))``, the map the exported model outputs.
    The ``thresh`` branch exists only for training (``threshold_head=True``); the Hub weights lack it.
    """

    def __init__(self, in_channels: int, k: int = 50, mode: str = "large", threshold_head: bool = False) -> None:
        super().__init__()
        if mode not in ("large", "small"):
            raise ValueError(f"mode must be 'large' or 'small', got {mode!r}")
        self.k = k
        self.binarize = DBMapHeadWithFeature(in_channels)
        self.thresh = DBMapHead(in_channels) if threshold_head else None
        mid = in_channels // 4 if mode == "large" else in_channels // 8
        self.cbn_layer = LocalModule(in_channels // 4, mid)

    def _maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base, f = self.binarize.forward_with_feature(x)
        refined = torch.sigmoid(self.cbn_layer(F.interpolate(f, scale_factor=2, mode="nearest"), base))
        return base, refined

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base, refined = self._maps(x)
        return 0.5 * (base + refined)

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """PaddleOCR's training maps ``[B, 3, H, W]``: refined shrink map, threshold map and the approximate
        binary map ``sigmoid(k (p - threshold))`` of the *base* shrink map (as PaddleOCR computes it)."""
        if self.thresh is None:
            raise RuntimeError("forward_maps needs the threshold branch: build with threshold_head=True")
        base, refined = self._maps(x)
        thresh = self.thresh(x)
        return torch.cat([refined, thresh, torch.sigmoid(self.k * (base - thresh))], dim=1)


class TextDetPFHead(TextDetDB):
    """DB text detector with :class:`PFHeadLocal`: ``[B, 3, H, W]`` (multiples of 32) -> probability ``[B, 1, H, W]``.

    :meth:`forward_maps` gives the three DB training maps (refined shrink, threshold, binary) that
    ``DBLoss`` consumes, like :meth:`TextDetDB.forward_maps`.
    """

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.forward_maps(self.forward_features(x))


Backbone = Callable[[bool], nn.Module]


def _create_server_det(variant: str, pretrained: bool = False, **kwargs) -> TextDetPFHead:
    def build(
        make_backbone: Backbone,
        neck_channels: int = 256,
        mode: str = "large",
        deploy: bool = False,
        threshold_head: bool = False,
    ) -> TextDetPFHead:
        del deploy  # one form only (module docstring)
        backbone = make_backbone(True)
        neck = LKPAN(backbone.out_channels, neck_channels, reduce_factor=2)
        return TextDetPFHead(
            backbone, neck, PFHeadLocal(neck.out_channels, k=50, mode=mode, threshold_head=threshold_head)
        )

    return build_model(build, variant, pretrained, det_model_cfgs[variant], kwargs)


def _create_server_rec(variant: str, pretrained: bool = False, **kwargs) -> TextRecCTC:
    def build(
        make_backbone: Backbone,
        num_classes: int,
        dims: int = 120,
        depth: int = 2,
        hidden_dims: int = 120,
        kernel_size: tuple[int, int] = (1, 3),
        use_guide: bool = True,
        layer_norm_eps: float | None = None,
        deploy: bool = False,
    ) -> TextRecCTC:
        """``layer_norm_eps`` sets every SVTR LayerNorm's eps (transformers' single ``layer_norm_eps``);
        ``None`` keeps PaddleOCR's 1e-5 in the blocks and 1e-6 after them."""
        del deploy  # one form only (module docstring)
        backbone = make_backbone(False)
        neck = EncoderWithSVTR(
            backbone.out_channels,
            dims=dims,
            depth=depth,
            hidden_dims=hidden_dims,
            kernel_size=tuple(kernel_size),
            use_guide=use_guide,
        )
        if layer_norm_eps is not None:
            for m in neck.modules():
                if isinstance(m, nn.LayerNorm):
                    m.eps = float(layer_norm_eps)
        return TextRecCTC(backbone, neck, CTCHead(neck.out_channels, num_classes))

    return build_model(build, variant, pretrained, rec_model_cfgs[variant], kwargs)


det_model_cfgs = dict(
    pp_ocrv4_server_det=dict(make_backbone=pphgnet_small),
    pp_ocrv5_server_det=dict(make_backbone=pphgnetv2_b4),
)
rec_model_cfgs = dict(
    pp_ocrv4_server_rec=dict(make_backbone=pphgnet_small, num_classes=6625),
    pp_ocrv5_server_rec=dict(make_backbone=pphgnetv2_b4, num_classes=18385),
)

# PaddleX inference.yml: DetResizeForTest 960 / max / 4000, ImageNet mean/std on BGR (as the mobile DB models)
_DET_PREPROCESS = DB_DET_PREPROCESS
_DB_POSTPROCESS = dict(thresh=0.3, box_thresh=0.6, max_candidates=1000, unclip_ratio=1.5)
# Same charsets and input rule as the mobile recognisers of the same generation.
_V4_CHARSET = _mobile_rec_cfgs["pp_ocrv4_mobile_rec"].charset
_V5_CHARSET = _mobile_rec_cfgs["pp_ocrv5_mobile_rec"].charset
_REC_PREPROCESS = _mobile_rec_cfgs["pp_ocrv5_mobile_rec"].preprocess


def _cfg(**kwargs) -> PretrainedCfg:
    defaults = dict(weight_form="train", license="Apache-2.0", sources=(), hf_hub_layout="paddle-hf")
    if kwargs["task"] == "text_detection":
        defaults.update(preprocess=_DET_PREPROCESS, num_classes=1, postprocess=dict(_DB_POSTPROCESS))
    else:
        defaults.update(preprocess=_REC_PREPROCESS, use_space_char=True, postprocess=dict(decoder="ctc_greedy"))
    return PretrainedCfg(**{**defaults, **kwargs})


default_cfgs = {
    "pp_ocrv4_server_det": _cfg(
        architecture="pp_ocrv4_server_det",
        task="text_detection",
        paddlex_name="PP-OCRv4_server_det",
        paddleocr_name="ch_PP-OCRv4_det_server",
        description="PP-OCRv4 server text detector (PP-HGNet small + LKPAN + PFHeadLocal); download-only weights",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_server_det",
    ),
    "pp_ocrv5_server_det": _cfg(
        architecture="pp_ocrv5_server_det",
        task="text_detection",
        paddlex_name="PP-OCRv5_server_det",
        paddleocr_name=None,
        description="PP-OCRv5 server text detector (PP-HGNetV2-B4 + LKPAN + PFHeadLocal), multilingual",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv5_server_det",
        hf_hub_id="PaddlePaddle/PP-OCRv5_server_det_safetensors",
    ),
    "pp_ocrv4_server_rec": _cfg(
        architecture="pp_ocrv4_server_rec",
        task="text_recognition",
        paddlex_name="PP-OCRv4_server_rec",
        paddleocr_name="ch_PP-OCRv4_rec_server",
        description="PP-OCRv4 server text recogniser (PP-HGNet small + SVTR + CTC), ppocr_keys_v1 charset",
        num_classes=6625,
        charset=_V4_CHARSET,
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_server_rec",
    ),
    "pp_ocrv5_server_rec": _cfg(
        architecture="pp_ocrv5_server_rec",
        task="text_recognition",
        paddlex_name="PP-OCRv5_server_rec",
        paddleocr_name=None,
        description="PP-OCRv5 server text recogniser (PP-HGNetV2-B4 + SVTR + CTC), 18383-entry charset",
        num_classes=18385,
        charset=_V5_CHARSET,
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv5_server_rec",
        hf_hub_id="PaddlePaddle/PP-OCRv5_server_rec_safetensors",
    ),
}


@register_model
def pp_ocrv4_server_det(pretrained: bool = False, **kwargs) -> TextDetPFHead:
    return _create_server_det("pp_ocrv4_server_det", pretrained, **kwargs)


@register_model
def pp_ocrv5_server_det(pretrained: bool = False, **kwargs) -> TextDetPFHead:
    return _create_server_det("pp_ocrv5_server_det", pretrained, **kwargs)


@register_model
def pp_ocrv4_server_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_server_rec("pp_ocrv4_server_rec", pretrained, **kwargs)


@register_model
def pp_ocrv5_server_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_server_rec("pp_ocrv5_server_rec", pretrained, **kwargs)
