"""Text recognition (PaddleX module ``text_recognition``): text-line crops -> (text, score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..processing.ctc import ctc_greedy_decode
from ..processing.inputs import InputItem
from ..processing.rec_resize import pad_batch, rec_resize_norm
from ..results import TextRecResult
from .base import BasePipeline, class_probabilities, load_pipeline_model

__all__ = ["TextRecognitionPipeline"]


class TextRecognitionPipeline(BasePipeline):
    """CTC text recognition: ``{input_path, page_index, rec_text, rec_score}`` per text-line image.

    Crops are resized to the model's height (48) keeping their aspect ratio, zero-padded on the right
    to at least the model's width (320) and, within a batch, to the widest crop (PaddleX
    ``OCRReisizeNormImg`` + ``ToBatch``). The caller decides the order (the OCR pipeline sorts by
    aspect ratio first).

    Args:
        model_name: registered / PaddleX name (default ``PP-OCRv5_mobile_rec``).
        model_dir: a pxtorch checkpoint dir (e.g. fine-tuned, with its charset), Paddle dir or ``.onnx``.
        device: see :func:`~pxtorch.pipelines.device.parse_device`.
        batch_size: crops per forward pass.
        input_shape: ``(C, H, W)`` overriding the model's ``(3, 48, 320)``.
    """

    pipeline_name = "text_recognition"

    def __init__(
        self,
        model_name: str | None = "PP-OCRv5_mobile_rec",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        input_shape: tuple[int, int, int] | None = None,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(model_name, model_dir, "text_recognition", self.device, engine, engine_config)
        charset = getattr(self.model, "charset", None)
        if charset is None:
            raise ValueError(f"{model_dir or model_name}: the recogniser has no character dictionary")
        self.labels = charset.labels
        p = self.model.pretrained_cfg.preprocess
        shape = tuple(input_shape) if input_shape is not None else (p.input_size or (3, 48, 320))
        self.height, self.min_width = int(shape[1]), int(shape[2])
        self.max_width = int(p.max_width or 3200)

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """BGR uint8 crop -> ``[3, 48, W]`` float32 in [-1, 1], right-padded to ``W >= 320``."""
        return rec_resize_norm(crop, self.height, self.min_width, self.max_width)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 48, W]`` -> per-step class probabilities ``[B, T, C]``."""
        return class_probabilities(self.model, self.model(batch.to(self.device)))

    def recognize(self, crops: list[np.ndarray], batch_size: int | None = None) -> list[tuple[str, float]]:
        """``(text, score)`` per crop, in the given order, ``batch_size`` crops per forward pass."""
        size = batch_size or self.batch_size
        out: list[tuple[str, float]] = []
        for start in range(0, len(crops), size):
            batch = pad_batch([self.preprocess(c) for c in crops[start : start + size]])
            probs = self._forward(torch.from_numpy(batch)).cpu().numpy()
            out.extend(ctc_greedy_decode(probs, self.labels))
        return out

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[TextRecResult]:
        decoded = self.recognize([item.image for item in items])
        return [
            TextRecResult(
                {"input_path": item.input_path, "page_index": item.page_index, "rec_text": text, "rec_score": score}
            )
            for item, (text, score) in zip(items, decoded, strict=True)
        ]
