"""Text detection (PaddleX modules ``text_detection`` and ``seal_text_detection``): DB detectors ->
quads (or, for seal detectors, polygons) per image, sorted later by the OCR pipeline.

Batching: images whose detector input size is the same are stacked into one forward pass; images
of other sizes run in their own pass (padding would change the DB maps near the border, so results
would no longer equal one-by-one runs).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..processing.db_postprocess import DBParams, db_postprocess
from ..processing.det_resize import det_resize
from ..processing.image import normalize, to_chw
from ..processing.inputs import InputItem
from ..results import TextDetResult
from .base import BasePipeline, load_pipeline_model

__all__ = ["SealTextDetectionPipeline", "TextDetectionPipeline"]

_LIMIT_TYPES = ("min", "max", "resize_long")
DET_PARAM_NAMES = ("limit_side_len", "limit_type", "max_side_limit", "thresh", "box_thresh", "unclip_ratio")


class TextDetectionPipeline(BasePipeline):
    """Text detection with a DB model: ``{input_path, page_index, dt_polys, dt_scores}`` per image.

    Args:
        model_name: registered / PaddleX model name (default ``PP-OCRv5_mobile_det``).
        model_dir: a pxtorch checkpoint dir (e.g. fine-tuned), Paddle inference dir or ``.onnx``.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``gpu``, ``gpu:N`` (default: CUDA when available).
        limit_side_len, limit_type, max_side_limit: detector resize (``None``: the model's defaults).
        thresh, box_thresh, unclip_ratio: DB post-processing (``None``: the model's defaults).
        input_shape: a fixed ``(C, H, W)`` detector input instead of the side-length rule.
        batch_size: images per batch.
    """

    pipeline_name = "text_detection"
    task = "text_detection"

    def __init__(
        self,
        model_name: str | None = "PP-OCRv5_mobile_det",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        limit_side_len: int | None = None,
        limit_type: str | None = None,
        max_side_limit: int | None = None,
        thresh: float | None = None,
        box_thresh: float | None = None,
        unclip_ratio: float | None = None,
        input_shape: tuple[int, int, int] | None = None,
        batch_size: int = 1,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(model_name, model_dir, self.task, self.device, engine, engine_config)
        cfg = self.model.pretrained_cfg
        self.preprocess_cfg = cfg.preprocess
        post = cfg.postprocess
        model_defaults = dict(
            limit_side_len=self.preprocess_cfg.limit_side_len or 960,
            limit_type=self.preprocess_cfg.limit_type or "max",
            max_side_limit=self.preprocess_cfg.max_side_limit or 4000,
            thresh=post.get("thresh", 0.3),
            box_thresh=post.get("box_thresh", 0.6),
            unclip_ratio=post.get("unclip_ratio", 2.0),
        )
        given = dict(
            limit_side_len=limit_side_len,
            limit_type=limit_type,
            max_side_limit=max_side_limit,
            thresh=thresh,
            box_thresh=box_thresh,
            unclip_ratio=unclip_ratio,
        )
        self.max_candidates = int(post.get("max_candidates", 1000))
        self.box_type = str(post.get("box_type", "quad"))  # "poly" for seal detectors
        self.defaults = self._check({k: model_defaults[k] if v is None else v for k, v in given.items()})
        self.input_shape = tuple(input_shape) if input_shape is not None else None

    @staticmethod
    def _check(params: dict[str, Any]) -> dict[str, Any]:
        """Validate detection parameters; returns them with their canonical types."""
        out = dict(params)
        for name in ("limit_side_len", "max_side_limit"):
            value = out[name]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"text detection {name} must be a positive integer, got {value!r}")
            out[name] = int(value)
        if out["limit_type"] not in _LIMIT_TYPES:
            raise ValueError(f"text detection limit_type must be one of {_LIMIT_TYPES}, got {out['limit_type']!r}")
        for name in ("thresh", "box_thresh", "unclip_ratio"):
            value = out[name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise ValueError(f"text detection {name} must be a number, got {value!r}")
            out[name] = float(value)
        DBParams(thresh=out["thresh"], box_thresh=out["box_thresh"], unclip_ratio=out["unclip_ratio"])
        return out

    def _resolve_params(self, **params: Any) -> dict[str, Any]:
        unknown = set(params) - set(DET_PARAM_NAMES)
        if unknown:
            raise TypeError(f"text detection got unexpected arguments: {', '.join(sorted(unknown))}")
        return self._check({k: self.defaults[k] if params.get(k) is None else params[k] for k in DET_PARAM_NAMES})

    # -- stages ---------------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
        """BGR uint8 image -> normalised ``[3, H, W]`` float32 detector input and the source ``(h, w)``."""
        p = self.preprocess_cfg
        if p.channel_order == "RGB":
            image = image[:, :, ::-1]
        if self.input_shape is not None:
            resized = cv2.resize(image, (int(self.input_shape[2]), int(self.input_shape[1])))
        else:
            resized, _ = det_resize(image, params["limit_side_len"], params["limit_type"], params["max_side_limit"])
        return to_chw(normalize(resized, p.mean, p.std, p.scale)), image.shape[:2]

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> text probability ``[B, 1, H, W]``."""
        return self.model(batch.to(self.device))

    def postprocess(
        self, prob: np.ndarray, src_hw: tuple[int, int], params: dict[str, Any]
    ) -> tuple[np.ndarray, list[float]]:
        """``[H, W]`` probability map -> (int16 ``[N, 4, 2]`` quads in source pixels, scores); for
        ``box_type == "poly"`` a list of int32 ``[K_i, 2]`` polygons instead of the quad array."""
        db = DBParams(
            thresh=params["thresh"],
            box_thresh=params["box_thresh"],
            unclip_ratio=params["unclip_ratio"],
            max_candidates=self.max_candidates,
            box_type=self.box_type,
        )
        return db_postprocess(prob, src_hw, db)

    def detect(self, images: list[np.ndarray], params: dict[str, Any]) -> list[tuple[np.ndarray, list[float]]]:
        """Quads and scores for each BGR image; same-size inputs share one forward pass."""
        prepared = [self.preprocess(img, params) for img in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (x, _) in enumerate(prepared):
            groups[x.shape].append(i)
        out: list[tuple[np.ndarray, list[float]] | None] = [None] * len(images)
        for indices in groups.values():
            batch = torch.from_numpy(np.stack([prepared[i][0] for i in indices]))
            probs = self._forward(batch)[:, 0].float().cpu().numpy()
            for i, prob in zip(indices, probs, strict=True):
                out[i] = self.postprocess(prob, prepared[i][1], params)
        return out  # type: ignore[return-value]

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[TextDetResult]:
        detections = self.detect([item.image for item in items], params)
        return [
            TextDetResult(
                {
                    "input_path": item.input_path,
                    "page_index": item.page_index,
                    "input_img": item.image,
                    "dt_polys": polys,
                    "dt_scores": scores,
                }
            )
            for item, (polys, scores) in zip(items, detections, strict=True)
        ]


class SealTextDetectionPipeline(TextDetectionPipeline):
    """Seal text detection (PaddleX module ``seal_text_detection``): curved-text polygons per image.

    Same arguments as :class:`TextDetectionPipeline`; the default model is ``PP-OCRv4_mobile_seal_det``
    (PaddleX's default, ``PP-OCRv4_server_seal_det``, has no offline weights) and ``dt_polys`` is a list of
    int32 ``[K, 2]`` polygons. Defaults: 736 / ``min`` / 4000, thresh 0.2, box_thresh 0.6, unclip_ratio 0.5.
    """

    pipeline_name = "seal_text_detection"
    task = "seal_text_detection"

    def __init__(self, model_name: str | None = "PP-OCRv4_mobile_seal_det", *args: Any, **kwargs: Any) -> None:
        super().__init__(model_name, *args, **kwargs)
