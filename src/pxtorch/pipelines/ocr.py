"""The OCR pipeline (PaddleX ``OCR``): detect -> sort -> crop -> [orientation] -> recognise -> filter.

Differences from PaddleX, all on the "more" side: detection is batched across the images of a
batch (same-size inputs stacked), and recognition runs over all crops of the batch together,
sorted by aspect ratio (PaddleX recognises each image's crops separately). With ``batch_size=1``
the processing order is exactly PaddleX's.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import torch

from ..processing.crop import crop_by_quad
from ..processing.geometry import points_to_boxes
from ..processing.inputs import InputItem
from ..processing.poly_crop import crop_by_poly
from ..processing.sort_boxes import sort_poly_boxes, sort_quad_boxes
from ..results import OCRResult
from .base import BasePipeline
from .config import PipelineConfigError
from .doc_preprocessor import DocPreprocessorPipeline
from .ocr_langs import ocr_model_names
from .text_detection import DET_PARAM_NAMES, SealTextDetectionPipeline, TextDetectionPipeline
from .text_recognition import TextRecognitionPipeline
from .textline_orientation import TextlineOrientationPipeline

__all__ = ["OCRPipeline", "ocr_model_names"]

# ``text_det_params`` keys in PaddleX's order
_DET_PARAMS_ORDER = ("limit_side_len", "limit_type", "thresh", "max_side_limit", "box_thresh", "unclip_ratio")


def _section(config: dict[str, Any], *path: str) -> dict[str, Any]:
    node: Any = config
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise PipelineConfigError(f"OCR config: missing mapping {'.'.join(path)}")
    return node


class OCRPipeline(BasePipeline):
    """PaddleX's OCR pipeline on PyTorch models. Build it with :func:`pxtorch.pipeline`.

    Args:
        config: a PaddleX-shaped OCR config (``pipeline_name: OCR``, ``SubModules``, ...).
        device: ``cpu``, ``cuda[:N]``, ``gpu[:N]``; default CUDA when available.

    ``recognition_grouping`` (attribute, or a pxtorch-only ``predict()`` argument): ``"batch"``
    (PaddleX) sorts the text lines of every image of a ``predict`` batch by aspect ratio and recognises
    them together, so a line's padding (and, rarely, its text) depends on the other images of the
    batch; ``"image"`` batches each image's lines on their own, so an image gets the same result
    whatever it is batched with (the server uses this).
    """

    pipeline_name = "OCR"
    recognition_grouping: Literal["batch", "image"] = "batch"

    def __init__(self, config: dict[str, Any], device: str | torch.device | None = None) -> None:
        super().__init__(device, int(config.get("batch_size", 1) or 1))
        self.config = config
        self.text_type = config.get("text_type", "general")
        if self.text_type not in ("general", "seal"):
            raise PipelineConfigError(f"text_type must be 'general' or 'seal', got {self.text_type!r}")
        self.use_doc_preprocessor = bool(config.get("use_doc_preprocessor", False))
        self._engine = {"engine": config.get("engine"), "engine_config": config.get("engine_config")}
        doc = config.get("SubPipelines", {}).get("DocPreprocessor") or {}
        self._doc_defaults = (
            bool(doc.get("use_doc_orientation_classify", True)),
            bool(doc.get("use_doc_unwarping", True)),
        )
        self._doc_pipelines: dict[tuple[bool, bool], DocPreprocessorPipeline] = {}
        self._doc_lock = threading.Lock()
        if self.use_doc_preprocessor:  # as PaddleX: built with the pipeline, so missing weights fail here
            self._load_doc_preprocessor(*self._doc_defaults)
        det = _section(config, "SubModules", "TextDetection")
        # seal: polygon detector (box_type "poly", seal defaults 736/min, 0.2/0.6/0.5 from the model), poly sort + crop
        det_class = SealTextDetectionPipeline if self.text_type == "seal" else TextDetectionPipeline
        self.text_det = det_class(
            model_name=det.get("model_name"),
            model_dir=det.get("model_dir"),
            device=self.device,
            **{k: det.get(k) for k in DET_PARAM_NAMES},
            input_shape=det.get("input_shape"),
            **self._engine,
        )
        rec = _section(config, "SubModules", "TextRecognition")
        self.text_rec = TextRecognitionPipeline(
            model_name=rec.get("model_name"),
            model_dir=rec.get("model_dir"),
            device=self.device,
            batch_size=int(rec.get("batch_size", 1) or 1),
            input_shape=rec.get("input_shape"),
            **self._engine,
        )
        self.text_rec_score_thresh = float(rec.get("score_thresh", 0.0) or 0.0)
        self.use_textline_orientation = bool(config.get("use_textline_orientation", False))
        self._textline: TextlineOrientationPipeline | None = None
        self._textline_lock = threading.Lock()
        if self.use_textline_orientation:
            self._load_textline()

    # -- configuration --------------------------------------------------------------------------
    def _load_doc_preprocessor(self, orientation: bool, unwarping: bool) -> DocPreprocessorPipeline:
        """The doc preprocessor with (at least) these steps built; created on first use, once per step set."""
        with self._doc_lock:  # predict() may run on several server threads
            for (has_ori, has_unwarp), built in self._doc_pipelines.items():
                if (has_ori or not orientation) and (has_unwarp or not unwarping):
                    return built
            key = (orientation, unwarping)
            if key not in self._doc_pipelines:
                doc = self.config.get("SubPipelines", {}).get("DocPreprocessor") or {}
                self._doc_pipelines[key] = DocPreprocessorPipeline(
                    doc,
                    use_doc_orientation_classify=key[0],
                    use_doc_unwarping=key[1],
                    device=self.device,
                    **self._engine,
                )
            return self._doc_pipelines[key]

    def _load_textline(self) -> TextlineOrientationPipeline:
        with self._textline_lock:  # predict() may run on several server threads
            return self._load_textline_locked()

    def _load_textline_locked(self) -> TextlineOrientationPipeline:
        if self._textline is None:
            cfg = self.config.get("SubModules", {}).get("TextLineOrientation") or {}
            self._textline = TextlineOrientationPipeline(
                model_name=cfg.get("model_name", "ch_ppocr_mobile_v2.0_cls"),
                model_dir=cfg.get("model_dir"),
                device=self.device,
                batch_size=int(cfg.get("batch_size", 1) or 1),
                **self._engine,
            )
        return self._textline

    def _resolve_params(
        self,
        use_doc_orientation_classify: bool | None = None,
        use_doc_unwarping: bool | None = None,
        use_textline_orientation: bool | None = None,
        text_det_limit_side_len: int | None = None,
        text_det_limit_type: str | None = None,
        text_det_max_side_limit: int | None = None,
        text_det_thresh: float | None = None,
        text_det_box_thresh: float | None = None,
        text_det_unclip_ratio: float | None = None,
        text_rec_score_thresh: float | None = None,
        recognition_grouping: Literal["batch", "image"] | None = None,
    ) -> dict[str, Any]:
        grouping = recognition_grouping or self.recognition_grouping
        if grouping not in ("batch", "image"):
            raise ValueError(f"recognition_grouping must be 'batch' or 'image', got {grouping!r}")
        # PaddleX: no flag given -> the config's use_doc_preprocessor; else on when any given flag is True,
        # and then each step not given takes the DocPreprocessor config's value
        if use_doc_orientation_classify is None and use_doc_unwarping is None:
            use_doc_preprocessor = self.use_doc_preprocessor
        else:
            use_doc_preprocessor = bool(use_doc_orientation_classify or use_doc_unwarping)
        doc_steps = (
            self._doc_defaults[0] if use_doc_orientation_classify is None else bool(use_doc_orientation_classify),
            self._doc_defaults[1] if use_doc_unwarping is None else bool(use_doc_unwarping),
        )
        if use_textline_orientation is None:
            use_textline_orientation = self.use_textline_orientation
        det = self.text_det._resolve_params(
            limit_side_len=text_det_limit_side_len,
            limit_type=text_det_limit_type,
            max_side_limit=text_det_max_side_limit,
            thresh=text_det_thresh,
            box_thresh=text_det_box_thresh,
            unclip_ratio=text_det_unclip_ratio,
        )
        if text_rec_score_thresh is None:
            text_rec_score_thresh = self.text_rec_score_thresh
        return {
            "model_settings": {
                "use_doc_preprocessor": use_doc_preprocessor,
                "use_textline_orientation": bool(use_textline_orientation),
            },
            "doc_steps": doc_steps,
            "text_det_params": {k: det[k] for k in _DET_PARAMS_ORDER},
            "text_rec_score_thresh": float(text_rec_score_thresh),
            "recognition_grouping": grouping,
        }

    # -- processing -----------------------------------------------------------------------------
    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[OCRResult]:
        images = [item.image for item in items]
        settings = params["model_settings"]
        doc_results: list[dict[str, Any]] = [{"output_img": image} for image in images]
        if settings["use_doc_preprocessor"]:
            orientation, unwarping = params["doc_steps"]
            done = self._load_doc_preprocessor(orientation, unwarping).process(images, orientation, unwarping)
            images = [out for _, out in done]
            doc_results = [
                {
                    "input_path": None,
                    "page_index": item.page_index,
                    "model_settings": {"use_doc_orientation_classify": orientation, "use_doc_unwarping": unwarping},
                    "angle": angle,
                    "output_img": out,
                }
                for item, (angle, out) in zip(items, done, strict=True)
            ]
        detections = self.text_det.detect(images, params["text_det_params"])
        seal = self.text_type == "seal"
        sort_boxes, crop = (sort_poly_boxes, crop_by_poly) if seal else (sort_quad_boxes, crop_by_quad)
        polys_per_image = [sort_boxes(polys) for polys, _ in detections]

        crops: list[np.ndarray] = []
        owner: list[tuple[int, int]] = []  # (image index, box index) of each crop
        for i, (image, polys) in enumerate(zip(images, polys_per_image, strict=True)):
            for j, poly in enumerate(polys):
                crops.append(crop(image, poly))
                owner.append((i, j))

        if settings["use_textline_orientation"] and crops:
            angles = [cls for cls, _ in self._load_textline().classify(crops)]
            crops = [np.rot90(c, 2) if a == 1 else c for c, a in zip(crops, angles, strict=True)]
        else:
            angles = [-1] * len(crops)

        # recognise narrowest first (stable sort by aspect ratio, as PaddleX), all crops of the batch together
        # or (recognition_grouping="image") each image's crops on their own
        decoded: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        if params["recognition_grouping"] == "image":
            groups = [[k for k, (i, _) in enumerate(owner) if i == img] for img in range(len(images))]
        else:
            groups = [list(range(len(crops)))]
        for group in groups:
            order = sorted(group, key=lambda k: crops[k].shape[1] / float(crops[k].shape[0]))
            for k, res in zip(order, self.text_rec.recognize([crops[k] for k in order]), strict=True):
                decoded[k] = res

        results = []
        thresh = params["text_rec_score_thresh"]
        for i, item in enumerate(items):
            ks = [k for k, (owner_i, _) in enumerate(owner) if owner_i == i]
            kept = [k for k in ks if decoded[k][1] >= thresh]
            rec_polys = [polys_per_image[i][owner[k][1]] for k in kept]
            results.append(
                OCRResult(
                    {
                        "input_path": item.input_path,
                        "page_index": item.page_index,
                        "model_settings": dict(settings),
                        "doc_preprocessor_res": doc_results[i],
                        "dt_polys": polys_per_image[i],
                        "text_det_params": dict(params["text_det_params"]),
                        "text_type": self.text_type,
                        "textline_orientation_angles": [angles[k] for k in ks],
                        "text_rec_score_thresh": thresh,
                        "return_word_box": False,
                        "rec_texts": [decoded[k][0] for k in kept],
                        "rec_scores": [decoded[k][1] for k in kept],
                        "rec_polys": rec_polys,
                        "rec_boxes": np.array([]) if seal else points_to_boxes(rec_polys),
                    }
                )
            )
        return results
