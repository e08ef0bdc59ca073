"""The table recognition pipeline (PaddleX ``table_recognition``, v1).

[doc preprocessor] -> OCR over the whole image -> table regions ([layout detection] boxes labelled
``table``, else the whole image) -> SLANet_plus per region -> OCR lines matched to cells -> ``pred_html``
(:mod:`pxtorch.processing.table_match`, PaddleX's rules). Results as PaddleX's ``TableRecognitionResult``:
``input_path, page_index, model_settings, doc_preprocessor_res, layout_det_res, overall_ocr_res,
table_res_list[{cell_box_list, pred_html, table_ocr_pred, table_region_id}]`` with ``html``/``xlsx``,
``save_to_html``, ``save_to_xlsx`` and images (``table_cell_img``, the OCR and layout drawings).

Differences from PaddleX: the structure model runs batched over all table regions of an image; a region
is cropped from the preprocessed image (PaddleX crops the raw input, which only differs when the
document was rotated or unwarped).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..processing.inputs import InputItem
from ..processing.table_match import neighbor_text_indices, table_recognition_result
from ..results import BaseResult
from .base import BasePipeline
from .config import PipelineConfigError
from .sub_pipelines import DocumentStages
from .table_structure_recognition import TableStructureRecognitionPipeline

__all__ = ["SingleTableRecognitionResult", "TableRecognitionPipeline", "TableRecognitionResult"]

_OCR_PARAMS = (
    "text_det_limit_side_len",
    "text_det_limit_type",
    "text_det_thresh",
    "text_det_box_thresh",
    "text_det_unclip_ratio",
    "text_rec_score_thresh",
)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _jsonable_sub(res: Any) -> Any:
    """A sub-result's JSON body: ``res.json["res"]`` for result objects, plain dicts without images."""
    if isinstance(res, BaseResult):
        return res.json["res"]
    if isinstance(res, dict):
        return {k: v for k, v in res.items() if k not in ("output_img", "input_img")}
    return res


class SingleTableRecognitionResult(BaseResult):
    """One table: ``cell_box_list`` (xyxy, image pixels), ``pred_html``, ``table_ocr_pred``, ``table_region_id``."""

    json_keys = ("cell_box_list", "pred_html", "table_ocr_pred")

    @property
    def html(self) -> dict[str, str]:
        return {"pred": self["pred_html"]}

    @property
    def xlsx(self) -> dict[str, str]:
        return {"pred": self["pred_html"]}


class TableRecognitionResult(BaseResult):
    """Table recognition pipeline result (PaddleX keys); ``html``/``xlsx`` are ``{"table_<id>": html}``."""

    json_keys = (
        "input_path",
        "page_index",
        "model_settings",
        "doc_preprocessor_res",
        "layout_det_res",
        "overall_ocr_res",
        "table_res_list",
    )

    def _json_data(self) -> dict[str, Any]:
        data = super()._json_data()
        if not self["model_settings"].get("use_doc_preprocessor"):
            data.pop("doc_preprocessor_res", None)
        else:
            data["doc_preprocessor_res"] = _jsonable_sub(self["doc_preprocessor_res"])
        if not self["layout_det_res"]:
            data.pop("layout_det_res", None)
        else:
            data["layout_det_res"] = _jsonable_sub(self["layout_det_res"])
        data["overall_ocr_res"] = _jsonable_sub(self["overall_ocr_res"])
        data["table_res_list"] = [t.json["res"] for t in self["table_res_list"]]
        return data

    @property
    def html(self) -> dict[str, str]:
        """``{"table_<id>": pred_html}`` with ``<table border="1">`` (PaddleX's ``html``)."""
        return {
            f"table_{t['table_region_id']}": t["pred_html"].replace("<table>", '<table border="1">', 1)
            for t in self["table_res_list"]
        }

    @property
    def xlsx(self) -> dict[str, str]:
        """``{"table_<id>": pred_html}``: the HTML each ``.xlsx`` is made from."""
        return {f"table_{t['table_region_id']}": t["pred_html"] for t in self["table_res_list"]}

    def _targets(self, save_path: str | Path, suffix: str) -> list[tuple[str, Path]]:
        stem = Path(self._input_name()).stem
        keys = list(self.html)
        if Path(save_path).suffix and len(keys) == 1:
            return [(keys[0], self._target(save_path, ""))]
        folder = Path(save_path).parent if Path(save_path).suffix else Path(save_path)
        return [(k, self._target(folder, f"{stem}_{k}{suffix}")) for k in keys]

    def save_to_html(self, save_path: str | Path) -> list[Path]:
        """Write ``{stem}_table_<id>.html`` per table into the directory ``save_path``."""
        html = self.html
        written = []
        for key, target in self._targets(save_path, ".html"):
            target.write_text(html[key], encoding="utf-8")
            written.append(target)
        return written

    def save_to_xlsx(self, save_path: str | Path) -> list[Path]:
        """Write ``{stem}_table_<id>.xlsx`` per table (merged ranges for spans; needs openpyxl)."""
        from ..processing.table_export import html_to_xlsx

        xlsx = self.xlsx
        return [html_to_xlsx(xlsx[key], target) for key, target in self._targets(save_path, ".xlsx")]

    def save_all(self, save_path: str | Path) -> None:
        super().save_all(save_path)
        self.save_to_html(save_path)
        self.save_to_xlsx(save_path)

    @property
    def img(self) -> dict[str, Image.Image]:
        """``layout_det_res``, the doc-preprocessor and OCR images, and ``table_cell_img`` (cell boxes in red)."""
        from ..processing.visualize_table import draw_cell_boxes

        out: dict[str, Image.Image] = {}
        image = self["doc_preprocessor_res"]["output_img"]
        layout = self["layout_det_res"]
        if layout:
            if isinstance(layout, BaseResult):
                out.update({"layout_det_res": next(iter(layout.img.values()))} if layout.img else {})
            else:
                out["layout_det_res"] = draw_cell_boxes(image, [[b["coordinate"] for b in layout.get("boxes", [])]])
        if self["model_settings"].get("use_doc_preprocessor"):
            out["preprocessed_img"] = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        ocr = self["overall_ocr_res"]
        if isinstance(ocr, BaseResult):
            out.update(ocr.img)
        if self["table_res_list"]:
            out["table_cell_img"] = draw_cell_boxes(image, [t["cell_box_list"] for t in self["table_res_list"]])
        return out


class TableRecognitionPipeline(DocumentStages, BasePipeline):
    """PaddleX's ``table_recognition`` pipeline on PyTorch models. Build it with :func:`pxtorch.pipeline`.

    Args:
        config: a PaddleX-shaped config (``pipeline_name: table_recognition``, ``use_doc_preprocessor``,
            ``use_layout_detection``, ``use_ocr_model``, ``SubModules``, ``SubPipelines``).
        device: ``cpu``, ``cuda[:N]``, ``gpu[:N]``.
    """

    pipeline_name = "table_recognition"

    def __init__(self, config: dict[str, Any], device: str | torch.device | None = None) -> None:
        super().__init__(device, 1)
        self.config = config
        subs = config.get("SubModules") or {}
        pipes = config.get("SubPipelines") or {}
        self.use_doc_preprocessor = bool(config.get("use_doc_preprocessor", False))
        self.use_layout_detection = bool(config.get("use_layout_detection", False))
        self.use_ocr_model = bool(config.get("use_ocr_model", True))
        tsr = subs.get("TableStructureRecognition")
        if not isinstance(tsr, dict):
            raise PipelineConfigError("table_recognition config: missing SubModules.TableStructureRecognition")
        self.table_structure = TableStructureRecognitionPipeline(
            model_name=tsr.get("model_name", "SLANet_plus"),
            model_dir=tsr.get("model_dir"),
            device=self.device,
            batch_size=int(tsr.get("batch_size", 8) or 8),
            engine=config.get("engine"),
            engine_config=config.get("engine_config"),
        )
        self._init_document_stages(config)
        self._ocr_cfg = pipes.get("GeneralOCR") or {}
        self._ocr: Any = None
        if self.use_ocr_model:
            self._ocr_pipeline()
        if self.use_layout_detection:
            self._layout_pipeline()
        if self.use_doc_preprocessor:
            self._doc_pipeline()

    # -- sub-pipelines (built on first use) -------------------------------------------------------
    def _ocr_pipeline(self) -> Any:
        if self._ocr is None:
            from . import pipeline as make_pipeline
            from .config import load_pipeline_config

            cfg = _deep_merge(load_pipeline_config("OCR"), self._ocr_cfg)
            cfg["pipeline_name"] = "OCR"
            for key in ("engine", "engine_config"):
                if self.config.get(key) is not None:
                    cfg.setdefault(key, self.config[key])
            self._ocr = make_pipeline(cfg, device=self.device)
        return self._ocr

    # -- parameters -------------------------------------------------------------------------------
    def _resolve_params(
        self,
        use_doc_orientation_classify: bool | None = None,
        use_doc_unwarping: bool | None = None,
        use_layout_detection: bool | None = None,
        use_ocr_model: bool | None = None,
        overall_ocr_res: dict[str, Any] | None = None,
        layout_det_res: dict[str, Any] | None = None,
        text_det_limit_side_len: int | None = None,
        text_det_limit_type: str | None = None,
        text_det_thresh: float | None = None,
        text_det_box_thresh: float | None = None,
        text_det_unclip_ratio: float | None = None,
        text_rec_score_thresh: float | None = None,
        use_ocr_results_with_table_cells: bool = False,
        cell_sort_by_y_projection: bool | None = None,
    ) -> dict[str, Any]:
        if use_doc_orientation_classify is None and use_doc_unwarping is None:
            use_doc_preprocessor = self.use_doc_preprocessor
        else:
            use_doc_preprocessor = bool(use_doc_orientation_classify or use_doc_unwarping)
        settings = {
            "use_doc_preprocessor": use_doc_preprocessor,
            "use_layout_detection": self.use_layout_detection
            if use_layout_detection is None
            else bool(use_layout_detection),
            "use_ocr_model": self.use_ocr_model if use_ocr_model is None else bool(use_ocr_model),
        }
        if settings["use_layout_detection"] and layout_det_res is not None:
            raise ValueError("layout_det_res was given: set use_layout_detection=False to use it")
        if settings["use_ocr_model"] and overall_ocr_res is not None:
            raise ValueError("overall_ocr_res was given: set use_ocr_model=False to use it")
        if not settings["use_ocr_model"] and overall_ocr_res is None:
            raise ValueError("use_ocr_model=False needs overall_ocr_res (the OCR result of the input)")
        ocr_params = dict(
            zip(
                _OCR_PARAMS,
                (
                    text_det_limit_side_len,
                    text_det_limit_type,
                    text_det_thresh,
                    text_det_box_thresh,
                    text_det_unclip_ratio,
                    text_rec_score_thresh,
                ),
                strict=True,
            )
        )
        return {
            "model_settings": settings,
            "doc_flags": (use_doc_orientation_classify, use_doc_unwarping),
            "ocr_params": ocr_params,
            "overall_ocr_res": overall_ocr_res,
            "layout_det_res": layout_det_res,
            "use_ocr_results_with_table_cells": bool(use_ocr_results_with_table_cells),
            "cell_sort_by_y_projection": bool(cell_sort_by_y_projection),
        }

    # -- processing -------------------------------------------------------------------------------
    def _preprocess(self, image: np.ndarray, item: InputItem, params: dict[str, Any]) -> dict[str, Any]:
        if not params["model_settings"]["use_doc_preprocessor"]:
            return {"output_img": image}
        ori, unwarp = params["doc_flags"]
        doc = self._doc_pipeline()
        ori = doc.use_doc_orientation_classify if ori is None and hasattr(doc, "use_doc_orientation_classify") else ori
        unwarp = doc.use_doc_unwarping if unwarp is None and hasattr(doc, "use_doc_unwarping") else unwarp
        angle, out = doc.process([image], bool(ori), bool(unwarp))[0]
        return {
            "input_path": item.input_path,
            "page_index": item.page_index,
            "model_settings": {"use_doc_orientation_classify": bool(ori), "use_doc_unwarping": bool(unwarp)},
            "angle": angle,
            "output_img": out,
        }

    def _cell_texts(self, table_img: np.ndarray, bbox: np.ndarray, params: dict[str, Any]) -> list[str]:
        """PaddleX ``split_ocr_bboxes_by_table_cells``: OCR each cell crop, join its texts."""
        ocr = self._ocr_pipeline()
        texts = []
        for box in bbox:
            x1, y1, x2, y2 = (math.ceil(float(v)) for v in (box[0], box[1], box[4], box[5]))
            crop = table_img[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
            if crop.size == 0 or min(crop.shape[:2]) < 2:
                texts.append("")
                continue
            res = next(ocr.predict(np.ascontiguousarray(crop), **self._ocr_kwargs(params)))
            texts.append("".join(res["rec_texts"]))
        return texts

    @staticmethod
    def _ocr_kwargs(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params["ocr_params"].items() if v is not None}

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[TableRecognitionResult]:
        return [self._run_one(item, params) for item in items]

    def _run_one(self, item: InputItem, params: dict[str, Any]) -> TableRecognitionResult:
        settings = params["model_settings"]
        doc_res = self._preprocess(item.image, item, params)
        image = doc_res["output_img"]
        if settings["use_ocr_model"]:
            overall_ocr = next(self._ocr_pipeline().predict(image, **self._ocr_kwargs(params)))
        else:
            overall_ocr = params["overall_ocr_res"]
        h, w = image.shape[:2]
        layout_res: Any = params["layout_det_res"]
        regions: list[tuple[list[float], np.ndarray, bool]] = []  # (table box, crop, find neighbours)
        if not settings["use_layout_detection"] and layout_res is None:
            layout_res = {}
            regions.append(([0, 0, w - 1, h - 1], image, False))
        else:
            if settings["use_layout_detection"]:
                boxes = self._layout_pipeline().detect([image], {})[0]
                layout_res = {"input_path": item.input_path, "page_index": item.page_index, "boxes": boxes}
            for box in layout_res["boxes"]:
                if str(box["label"]).lower() != "table":
                    continue
                x1, y1, x2, y2 = (int(v) for v in box["coordinate"])
                regions.append((list(box["coordinate"]), image[y1:y2, x1:x2].copy(), True))
        structures = self.table_structure.recognize([crop for _, crop, _ in regions]) if regions else []
        tables = []
        for region_id, ((table_box, crop, neighbours), st) in enumerate(zip(regions, structures, strict=True), 1):
            bbox = np.asarray([b.astype(int) for b in st.bbox]).reshape(-1, st.bbox.shape[-1])
            res = table_recognition_result(
                table_box, st.structure, bbox, overall_ocr, (h, w), params["cell_sort_by_y_projection"]
            )
            if params["use_ocr_results_with_table_cells"] and len(bbox):
                from ..processing.table_match import get_html_result, match_table_and_ocr

                texts = self._cell_texts(crop, bbox, params)
                matched = match_table_and_ocr(res["cell_box_list"], res["cell_box_list"])
                res["pred_html"] = get_html_result(matched, texts, st.structure)
            table = SingleTableRecognitionResult(res)
            table["table_region_id"] = region_id
            if neighbours:
                idx = neighbor_text_indices(np.asarray(overall_ocr["rec_boxes"]), table_box)
                table["neighbor_texts"] = "".join(overall_ocr["rec_texts"][i] + "; " for i in idx)
            tables.append(table)
        return TableRecognitionResult(
            {
                "input_path": item.input_path,
                "page_index": item.page_index,
                "model_settings": dict(settings),
                "doc_preprocessor_res": doc_res,
                "layout_det_res": layout_res,
                "overall_ocr_res": overall_ocr,
                "table_res_list": tables,
            }
        )
