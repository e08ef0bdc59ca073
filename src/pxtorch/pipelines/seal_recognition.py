"""The seal recognition pipeline (PaddleX ``seal_recognition``).

[doc preprocessor] -> [layout detection: regions labelled ``seal``] -> seal OCR (the OCR pipeline with
``text_type: seal``: polygon detector, curved-text rectification, recognition) on each seal region, or on
the whole image without layout detection. Results as PaddleX's ``SealRecognitionResult``: ``input_path,
page_index, model_settings{use_doc_preprocessor, use_layout_detection}, doc_preprocessor_res,
layout_det_res, seal_res_list`` (one OCR result per region, with ``seal_region_id``); images
``seal_res_region<N>`` (+ ``layout_det_res``, ``preprocessed_img``).

Offline default: ``use_layout_detection`` is False. PaddleX finds seals with PP-DocLayout-L, whose weights
are download-only; the one offline layout model (PicoDet CDLA) has no ``seal`` class, so with it no
region would ever be found. The doc preprocessor is off by default for the same reason as in the OCR
pipeline (UVDoc is download-only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from ..processing.inputs import InputItem
from ..results import BaseResult
from .base import BasePipeline
from .config import PipelineConfigError
from .ocr import OCRPipeline
from .sub_pipelines import DocumentStages

__all__ = ["SealRecognitionPipeline", "SealRecognitionResult"]

#: ``predict()`` seal parameters -> the OCR pipeline's names
_SEAL_TO_OCR = {
    "seal_det_limit_side_len": "text_det_limit_side_len",
    "seal_det_limit_type": "text_det_limit_type",
    "seal_det_thresh": "text_det_thresh",
    "seal_det_box_thresh": "text_det_box_thresh",
    "seal_det_unclip_ratio": "text_det_unclip_ratio",
    "seal_rec_score_thresh": "text_rec_score_thresh",
}
_LAYOUT_TO_MODULE = {
    "layout_threshold": "threshold",
    "layout_nms": "layout_nms",
    "layout_unclip_ratio": "layout_unclip_ratio",
    "layout_merge_bboxes_mode": "layout_merge_bboxes_mode",
}


def _json_body(res: Any) -> Any:
    if isinstance(res, BaseResult):
        return res.json["res"]
    if isinstance(res, dict):
        return {k: v for k, v in res.items() if k not in ("output_img", "input_img")}
    return res


class SealRecognitionResult(BaseResult):
    """PaddleX ``SealRecognitionResult``: ``seal_res_list`` holds one seal OCR result per region."""

    json_keys = ("input_path", "page_index", "model_settings", "doc_preprocessor_res", "layout_det_res")

    def _json_data(self) -> dict[str, Any]:
        settings = self["model_settings"]
        data: dict[str, Any] = {
            "input_path": self["input_path"],
            "page_index": self["page_index"],
            "model_settings": dict(settings),
        }
        if settings.get("use_doc_preprocessor"):
            data["doc_preprocessor_res"] = _json_body(self["doc_preprocessor_res"])
        if settings.get("use_layout_detection"):
            data["layout_det_res"] = _json_body(self["layout_det_res"])
        seals = []
        for res in self["seal_res_list"]:
            body = _json_body(res)
            body.pop("input_path", None)
            body.pop("page_index", None)
            body["seal_region_id"] = res["seal_region_id"]
            seals.append(body)
        data["seal_res_list"] = seals
        return data

    @property
    def img(self) -> dict[str, Image.Image]:
        """``seal_res_region<N>`` per region (+ ``layout_det_res`` and ``preprocessed_img`` when those ran)."""
        out: dict[str, Image.Image] = {}
        settings = self["model_settings"]
        if settings.get("use_doc_preprocessor"):
            image = self["doc_preprocessor_res"]["output_img"]
            out["preprocessed_img"] = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        layout = self["layout_det_res"]
        if settings.get("use_layout_detection") and isinstance(layout, BaseResult):
            out["layout_det_res"] = layout.img["res"]
        for res in self["seal_res_list"]:
            out[f"seal_res_region{res['seal_region_id']}"] = res.img["ocr_res_img"]
        return out


class SealRecognitionPipeline(DocumentStages, BasePipeline):
    """PaddleX's ``seal_recognition`` pipeline on PyTorch models. Build it with :func:`pxtorch.pipeline`.

    Args:
        config: a PaddleX-shaped config (``pipeline_name: seal_recognition``, ``use_doc_preprocessor``,
            ``use_layout_detection``, ``SubModules.LayoutDetection``, ``SubPipelines.{DocPreprocessor,
            SealOCR}``; ``SealOCR`` is an OCR config with ``text_type: seal``).
        device: ``cpu``, ``cuda[:N]``, ``gpu[:N]``.

    ``predict()`` parameters (PaddleX names, ``None`` = configured): ``use_doc_orientation_classify``,
    ``use_doc_unwarping``, ``use_layout_detection``, ``layout_det_res`` (a layout result to use instead
    of running the detector), ``layout_threshold``, ``layout_nms``, ``layout_unclip_ratio``,
    ``layout_merge_bboxes_mode``, ``seal_det_limit_side_len``, ``seal_det_limit_type``, ``seal_det_thresh``,
    ``seal_det_box_thresh``, ``seal_det_unclip_ratio``, ``seal_rec_score_thresh``.
    """

    pipeline_name = "seal_recognition"

    def __init__(self, config: dict[str, Any], device: str | torch.device | None = None) -> None:
        super().__init__(device, int(config.get("batch_size", 1) or 1))
        self.config = config
        pipes = config.get("SubPipelines") or {}
        self.use_doc_preprocessor = bool(config.get("use_doc_preprocessor", False))
        self.use_layout_detection = bool(config.get("use_layout_detection", False))
        seal_cfg = pipes.get("SealOCR")
        if not isinstance(seal_cfg, dict):
            raise PipelineConfigError("seal_recognition config: missing SubPipelines.SealOCR")
        seal_cfg = {"pipeline_name": "OCR", "text_type": "seal", **seal_cfg}
        if seal_cfg["text_type"] != "seal":
            raise PipelineConfigError(f"SubPipelines.SealOCR.text_type must be 'seal', got {seal_cfg['text_type']!r}")
        for key in ("engine", "engine_config"):
            if config.get(key) is not None:
                seal_cfg.setdefault(key, config[key])
        self.seal_ocr = OCRPipeline(seal_cfg, device=self.device)
        self._init_document_stages(config)
        if self.use_layout_detection:
            self._layout_pipeline()
        if self.use_doc_preprocessor:
            self._doc_pipeline()

    # -- parameters -------------------------------------------------------------------------------
    def _resolve_params(
        self,
        use_doc_orientation_classify: bool | None = None,
        use_doc_unwarping: bool | None = None,
        use_layout_detection: bool | None = None,
        layout_det_res: dict[str, Any] | None = None,
        layout_threshold: float | dict[int, float] | None = None,
        layout_nms: bool | None = None,
        layout_unclip_ratio: float | tuple[float, float] | dict | None = None,
        layout_merge_bboxes_mode: str | dict | None = None,
        seal_det_limit_side_len: int | None = None,
        seal_det_limit_type: str | None = None,
        seal_det_thresh: float | None = None,
        seal_det_box_thresh: float | None = None,
        seal_det_unclip_ratio: float | None = None,
        seal_rec_score_thresh: float | None = None,
    ) -> dict[str, Any]:
        if use_doc_orientation_classify is None and use_doc_unwarping is None:
            use_doc_preprocessor = self.use_doc_preprocessor
        else:
            use_doc_preprocessor = bool(use_doc_orientation_classify or use_doc_unwarping)
        if use_layout_detection is None:
            use_layout_detection = self.use_layout_detection
        settings = {"use_doc_preprocessor": use_doc_preprocessor, "use_layout_detection": bool(use_layout_detection)}
        if settings["use_layout_detection"] and layout_det_res is not None:
            raise ValueError("layout_det_res was given: set use_layout_detection=False to use it")
        seal_args = dict(
            seal_det_limit_side_len=seal_det_limit_side_len,
            seal_det_limit_type=seal_det_limit_type,
            seal_det_thresh=seal_det_thresh,
            seal_det_box_thresh=seal_det_box_thresh,
            seal_det_unclip_ratio=seal_det_unclip_ratio,
            seal_rec_score_thresh=seal_rec_score_thresh,
        )
        ocr_kwargs = {_SEAL_TO_OCR[k]: v for k, v in seal_args.items() if v is not None}
        layout_args = dict(
            layout_threshold=layout_threshold,
            layout_nms=layout_nms,
            layout_unclip_ratio=layout_unclip_ratio,
            layout_merge_bboxes_mode=layout_merge_bboxes_mode,
        )
        return {
            "model_settings": settings,
            "doc_flags": (use_doc_orientation_classify, use_doc_unwarping),
            "ocr": self.seal_ocr._resolve_params(**ocr_kwargs),  # validated once, reused per region
            "layout": {_LAYOUT_TO_MODULE[k]: v for k, v in layout_args.items() if v is not None},
            "layout_det_res": layout_det_res,
        }

    # -- processing -------------------------------------------------------------------------------
    def _preprocess(self, item: InputItem, params: dict[str, Any]) -> dict[str, Any]:
        if not params["model_settings"]["use_doc_preprocessor"]:
            return {"output_img": item.image}
        ori, unwarp = params["doc_flags"]
        doc = self._doc_pipeline()
        if ori is None:
            ori = getattr(doc, "use_doc_orientation_classify", False)
        if unwarp is None:
            unwarp = getattr(doc, "use_doc_unwarping", False)
        angle, out = doc.process([item.image], bool(ori), bool(unwarp))[0]
        return {
            "input_path": item.input_path,
            "page_index": item.page_index,
            "model_settings": {"use_doc_orientation_classify": bool(ori), "use_doc_unwarping": bool(unwarp)},
            "angle": angle,
            "output_img": out,
        }

    def _seal_ocr(self, image: np.ndarray, params: dict[str, Any], region_id: int) -> BaseResult:
        res = self.seal_ocr._run_batch([InputItem(input_path=None, page_index=None, image=image)], params["ocr"])[0]
        res["seal_region_id"] = region_id
        return res

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[SealRecognitionResult]:
        return [self._run_one(item, params) for item in items]

    def _run_one(self, item: InputItem, params: dict[str, Any]) -> SealRecognitionResult:
        settings = params["model_settings"]
        doc_res = self._preprocess(item, params)
        image = doc_res["output_img"]
        layout_res: Any = params["layout_det_res"]
        seals: list[BaseResult] = []
        if not settings["use_layout_detection"] and layout_res is None:
            layout_res = {}
            seals.append(self._seal_ocr(image, params, 1))
        else:
            if settings["use_layout_detection"]:
                from .layout_detection import LayoutDetResult

                boxes = self._layout_pipeline().detect([image], params["layout"])[0]
                layout_res = LayoutDetResult(
                    {"input_path": item.input_path, "page_index": item.page_index, "input_img": image, "boxes": boxes}
                )
            for box in layout_res["boxes"]:
                if str(box["label"]).lower() != "seal":
                    continue
                x1, y1, x2, y2 = (int(v) for v in box["coordinate"])
                crop = np.ascontiguousarray(image[max(y1, 0) : y2, max(x1, 0) : x2])
                if crop.size == 0:
                    continue
                seals.append(self._seal_ocr(crop, params, len(seals) + 1))
        return SealRecognitionResult(
            {
                "input_path": item.input_path,
                "page_index": item.page_index,
                "model_settings": dict(settings),
                "doc_preprocessor_res": doc_res,
                "layout_det_res": layout_res,
                "seal_res_list": seals,
            }
        )
