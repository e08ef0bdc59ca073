"""Text-line orientation (PaddleX module ``textline_orientation``): is a crop upright (0) or upside down (1)?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..processing.cls_resize import classification_input
from ..processing.inputs import InputItem
from ..processing.rec_resize import cls_resize_norm
from ..results import TextlineOrientationResult
from .base import BasePipeline, class_probabilities, load_pipeline_model

__all__ = ["TextlineOrientationPipeline"]


class TextlineOrientationPipeline(BasePipeline):
    """0/180 degree classification of text-line crops: ``{class_ids, scores, label_names}`` (top-1).

    Args:
        model_name: registered name (default ``ch_ppocr_mobile_v2.0_cls``, the classifier whose
            weights ship offline).
        model_dir: a pxtorch checkpoint dir, Paddle dir or ``.onnx``.
        device: see :func:`~pxtorch.pipelines.device.parse_device`.
        batch_size: crops per forward pass.
    """

    pipeline_name = "textline_orientation"

    def __init__(
        self,
        model_name: str | None = "ch_ppocr_mobile_v2.0_cls",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(
            model_name, model_dir, "textline_orientation", self.device, engine, engine_config
        )
        cfg = self.model.pretrained_cfg
        self.labels = tuple(cfg.labels or ("0", "180"))
        self.input_size = tuple(cfg.preprocess.input_size or (3, 48, 192))

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """BGR uint8 crop -> ``[3, H, W]`` float32: the legacy classifier keeps the ratio and pads right
        (``[3, 48, 192]`` in [-1, 1]); PaddleX's PP-LCNet text-line models stretch to 80x160, RGB, ImageNet."""
        p = self.model.pretrained_cfg.preprocess
        if p.resize in ("stretch", "short_side_crop"):
            return classification_input(crop, p)
        return cls_resize_norm(crop, self.input_size)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 48, 192]`` -> class probabilities ``[B, 2]``."""
        return class_probabilities(self.model, self.model(batch.to(self.device)))

    def classify(self, crops: list[np.ndarray], batch_size: int | None = None) -> list[tuple[int, float]]:
        """``(class_id, score)`` per crop; class 1 means rotated by 180 degrees."""
        size = batch_size or self.batch_size
        out: list[tuple[int, float]] = []
        for start in range(0, len(crops), size):
            batch = np.stack([self.preprocess(c) for c in crops[start : start + size]])
            probs = self._forward(torch.from_numpy(batch)).cpu().numpy()
            out.extend((int(p.argmax()), float(p.max())) for p in probs)
        return out

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[TextlineOrientationResult]:
        return [
            TextlineOrientationResult(
                {
                    "input_path": item.input_path,
                    "page_index": item.page_index,
                    "class_ids": np.array([cls], dtype=np.int64),
                    "scores": np.array([score], dtype=np.float32),
                    "label_names": [self.labels[cls]],
                }
            )
            for item, (cls, score) in zip(items, self.classify([item.image for item in items]), strict=True)
        ]
