"""Document preprocessing (PaddleX pipeline ``doc_preprocessor``): orientation correction, then unwarping.

Facts from PaddleX ``paddlex/inference/pipelines/doc_preprocessor/pipeline.py`` and ``result.py``: the page is
classified by the ``doc_text_orientation`` model, ``angle = int(label)`` (0/90/180/270, -1 when the step is
off), rotated back with ``scipy.ndimage.rotate(img, angle, reshape=True)`` (counter-clockwise; for multiples
of 90 degrees exactly ``np.rot90(img, angle // 90)``, which pxtorch uses), then optionally unwarped by
``image_unwarping`` (UVDoc). Result keys ``input_path, page_index, model_settings{use_doc_orientation_classify,
use_doc_unwarping}, angle`` (JSON) plus ``input_img``, ``rot_img``, ``output_img`` (BGR); the visualisation is
``preprocessed_img`` (input | rotated | unwarped side by side). Asking ``predict`` for a step whose model was
not built is an error (PaddleX yields ``{"error": ...}``).

PaddleX's config turns both steps on. UVDoc's weights are not available offline: a pipeline built with
``use_doc_unwarping=True`` (the default) and no network access or local ``UVDoc`` model dir fails at
construction with the unwarping stage's own message; pass ``use_doc_unwarping=False`` to correct the
orientation only.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image, ImageDraw

from ..processing.inputs import InputItem
from ..results import BaseResult
from .base import BasePipeline
from .doc_text_orientation import DocTextOrientationPipeline

__all__ = ["DocPreprocessorPipeline", "DocPreprocessorResult", "rotate_back"]


def rotate_back(image: np.ndarray, angle: int) -> np.ndarray:
    """Rotate ``image`` counter-clockwise by ``angle`` degrees (a multiple of 90); a contiguous copy.

    Equals PaddleX's ``scipy.ndimage.rotate(image, angle, reshape=True)`` bit for bit for these angles.
    """
    if angle % 90 != 0 or not 0 <= angle < 360:
        raise ValueError(f"angle must be 0, 90, 180 or 270, got {angle}")
    return np.ascontiguousarray(np.rot90(image, angle // 90))


class DocPreprocessorResult(BaseResult):
    """``doc_preprocessor`` result: JSON keys ``input_path, page_index, model_settings, angle``; images in
    ``input_img``, ``rot_img`` and ``output_img`` (BGR); ``img`` -> ``{"preprocessed_img": ...}``."""

    json_keys = ("input_path", "page_index", "model_settings", "angle")

    @property
    def img(self) -> dict[str, Image.Image]:
        panels = [self["input_img"], self["rot_img"], self["output_img"]]
        settings = self["model_settings"]
        captions = [
            "Original Image",
            f"Rotated Image ({settings['use_doc_orientation_classify']}, {self['angle']})",
            f"Unwarping Image ({settings['use_doc_unwarping']})",
        ]
        h = max(p.shape[0] for p in panels)
        canvas = Image.new("RGB", (sum(p.shape[1] for p in panels), h + 25), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        x = 0
        for panel, caption in zip(panels, captions, strict=True):
            canvas.paste(Image.fromarray(np.ascontiguousarray(panel[:, :, ::-1])), (x, 0))
            draw.text((x + 10, h + 5), caption, fill=(0, 0, 0))
            x += panel.shape[1]
        return {"preprocessed_img": canvas}


def default_config() -> dict[str, Any]:
    """The shipped ``doc_preprocessor.yaml`` (PaddleX's keys and defaults)."""
    text = resources.files("pxtorch").joinpath("conf/pipeline/doc_preprocessor.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


class DocPreprocessorPipeline(BasePipeline):
    """Orientation correction (PP-LCNet_x1_0_doc_ori) and unwarping (UVDoc) of page images.

    Args:
        config: a PaddleX-shaped ``doc_preprocessor`` config (the YAML, or the ``SubPipelines.DocPreprocessor``
            section of an OCR config); ``None`` = the shipped one (both steps on, as PaddleX).
        use_doc_orientation_classify, use_doc_unwarping: override the config's flags (``None``: keep).
        doc_orientation_classify_model_name/_dir, doc_unwarping_model_name/_dir: override the sub-modules.
        device, batch_size, engine, engine_config: see :class:`~pxtorch.pipelines.base.BasePipeline`.

    Raises:
        Whatever the UVDoc stage raises when unwarping is on and its weights cannot be had (offline).
    """

    pipeline_name = "doc_preprocessor"

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        use_doc_orientation_classify: bool | None = None,
        use_doc_unwarping: bool | None = None,
        doc_orientation_classify_model_name: str | None = None,
        doc_orientation_classify_model_dir: str | Path | None = None,
        doc_unwarping_model_name: str | None = None,
        doc_unwarping_model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(device, batch_size)
        config = copy.deepcopy(default_config() if config is None else config)
        subs = config.get("SubModules") or {}
        ori = dict(subs.get("DocOrientationClassify") or {})
        unwarp = dict(subs.get("DocUnwarping") or {})
        for section, key, value in (
            (ori, "model_name", doc_orientation_classify_model_name),
            (ori, "model_dir", doc_orientation_classify_model_dir),
            (unwarp, "model_name", doc_unwarping_model_name),
            (unwarp, "model_dir", doc_unwarping_model_dir),
        ):
            if value is not None:
                section[key] = value
        if use_doc_orientation_classify is None:
            use_doc_orientation_classify = config.get("use_doc_orientation_classify", True)
        if use_doc_unwarping is None:
            use_doc_unwarping = config.get("use_doc_unwarping", True)
        self.use_doc_orientation_classify = bool(use_doc_orientation_classify)
        self.use_doc_unwarping = bool(use_doc_unwarping)
        self.orientation: DocTextOrientationPipeline | None = None
        self.unwarping: Any = None
        engine_kwargs = {"engine": engine, "engine_config": engine_config}
        if self.use_doc_unwarping:  # first: without UVDoc weights (offline) its own error comes at once
            from .image_unwarping import ImageUnwarpingPipeline

            self.unwarping = ImageUnwarpingPipeline(
                model_name=unwarp.get("model_name", "UVDoc"),
                model_dir=unwarp.get("model_dir"),
                device=self.device,
                **engine_kwargs,
            )
        if self.use_doc_orientation_classify:
            self.orientation = DocTextOrientationPipeline(
                model_name=ori.get("model_name", "PP-LCNet_x1_0_doc_ori"),
                model_dir=ori.get("model_dir"),
                device=self.device,
                batch_size=int(ori.get("batch_size", 1) or 1),
                **engine_kwargs,
            )

    def _resolve_params(
        self, use_doc_orientation_classify: bool | None = None, use_doc_unwarping: bool | None = None, **params: Any
    ) -> dict[str, Any]:
        super()._resolve_params(**params)
        settings = {
            "use_doc_orientation_classify": self.use_doc_orientation_classify
            if use_doc_orientation_classify is None
            else bool(use_doc_orientation_classify),
            "use_doc_unwarping": self.use_doc_unwarping if use_doc_unwarping is None else bool(use_doc_unwarping),
        }
        self._check_settings(**settings)
        return settings

    def _check_settings(self, use_doc_orientation_classify: bool, use_doc_unwarping: bool) -> None:
        if use_doc_orientation_classify and self.orientation is None:
            raise ValueError(
                "use_doc_orientation_classify=True, but this pipeline was built without the orientation model; "
                "build it with use_doc_orientation_classify=True"
            )
        if use_doc_unwarping and self.unwarping is None:
            raise ValueError(
                "use_doc_unwarping=True, but this pipeline was built without the UVDoc model; "
                "build it with use_doc_unwarping=True"
            )

    def process(
        self, images: list[np.ndarray], use_doc_orientation_classify: bool, use_doc_unwarping: bool
    ) -> list[tuple[int, np.ndarray]]:
        """``(angle, output image)`` per BGR image: angle 0/90/180/270 (-1 when not classified)."""
        return [
            (angle, out) for angle, _, out in self._process(images, use_doc_orientation_classify, use_doc_unwarping)
        ]

    def _process(
        self, images: list[np.ndarray], use_doc_orientation_classify: bool, use_doc_unwarping: bool
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(angle, rotated, output)`` per image."""
        self._check_settings(use_doc_orientation_classify, use_doc_unwarping)
        if use_doc_orientation_classify:
            angles = self.orientation.angles(images)
            rotated = [rotate_back(im, a) for im, a in zip(images, angles, strict=True)]
        else:
            angles, rotated = [-1] * len(images), list(images)
        outputs = self.unwarping.unwarp(rotated) if use_doc_unwarping else rotated
        return list(zip(angles, rotated, outputs, strict=True))

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[DocPreprocessorResult]:
        done = self._process([item.image for item in items], **params)
        return [
            DocPreprocessorResult(
                {
                    "input_path": item.input_path,
                    "page_index": item.page_index,
                    "input_img": item.image,
                    "model_settings": dict(params),
                    "angle": angle,
                    "rot_img": rotated,
                    "output_img": output,
                }
            )
            for item, (angle, rotated, output) in zip(items, done, strict=True)
        ]
