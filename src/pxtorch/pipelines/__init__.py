"""Pipelines: ``pxtorch.pipeline("OCR")`` and the single-model pipelines it is made of.

ocr = pxtorch.pipeline("OCR")                          # or "ocr", or a path to an OCR.yaml
ocr = pxtorch.pipeline("OCR", ocr_version="PP-OCRv4", text_det_thresh=0.25, device="gpu:0")
for res in ocr.predict("img.jpg", text_det_box_thresh=0.5):
    res.print(); res.save_to_json("out/"); res.save_to_img("out/")
det = pxtorch.pipeline("text_detection", model_name="PP-OCRv4_mobile_det")
det = pxtorch.pipeline("PP-OCRv4_mobile_det")          # a model name gives its task's pipeline
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .._registry import get_pretrained_cfg, is_model
from .base import BasePipeline, InputError
from .config import (
    PipelineConfigError,
    apply_overrides,
    get_pipeline_config,
    list_pipelines,
    load_pipeline_config,
    resolve_pipeline_name,
)
from .device import parse_device
from .ocr import OCRPipeline, ocr_model_names

__all__ = [
    "BasePipeline",
    "DocPreprocessorPipeline",
    "DocTextOrientationPipeline",
    "ImageUnwarpingPipeline",
    "InputError",
    "LayoutDetectionPipeline",
    "OCRPipeline",
    "PipelineConfigError",
    "SealRecognitionPipeline",
    "SealTextDetectionPipeline",
    "TableCellsDetectionPipeline",
    "TableClassificationPipeline",
    "TableRecognitionPipeline",
    "TableStructureRecognitionPipeline",
    "TextDetectionPipeline",
    "TextRecognitionPipeline",
    "TextlineOrientationPipeline",
    "get_pipeline_config",
    "list_pipelines",
    "parse_device",
    "pipeline",
]

#: pipeline class name -> its module (imported on first use: the document pipelines pull in more models)
_CLASS_MODULES = {
    "DocPreprocessorPipeline": "doc_preprocessor",
    "DocTextOrientationPipeline": "doc_text_orientation",
    "ImageUnwarpingPipeline": "image_unwarping",
    "LayoutDetectionPipeline": "layout_detection",
    "SealRecognitionPipeline": "seal_recognition",
    "SealTextDetectionPipeline": "text_detection",
    "TableCellsDetectionPipeline": "layout_detection",
    "TableClassificationPipeline": "doc_text_orientation",
    "TableRecognitionPipeline": "table_recognition",
    "TableStructureRecognitionPipeline": "table_structure_recognition",
    "TextDetectionPipeline": "text_detection",
    "TextRecognitionPipeline": "text_recognition",
    "TextlineOrientationPipeline": "textline_orientation",
}
#: PaddleX module name -> the single-model pipeline class that runs it
_MODULE_CLASSES = {
    "text_detection": "TextDetectionPipeline",
    "seal_text_detection": "SealTextDetectionPipeline",
    "text_recognition": "TextRecognitionPipeline",
    "textline_orientation": "TextlineOrientationPipeline",
    "doc_text_orientation": "DocTextOrientationPipeline",
    "table_classification": "TableClassificationPipeline",
    "image_unwarping": "ImageUnwarpingPipeline",
    "layout_detection": "LayoutDetectionPipeline",
    "table_cells_detection": "TableCellsDetectionPipeline",
    "table_structure_recognition": "TableStructureRecognitionPipeline",
}
#: pipelines built from a (PaddleX-shaped) config; OCR has its own constructor handling below
_CONFIG_CLASSES = {
    "doc_preprocessor": "DocPreprocessorPipeline",
    "seal_recognition": "SealRecognitionPipeline",
    "table_recognition": "TableRecognitionPipeline",
}


def __getattr__(name: str) -> Any:
    if name in _CLASS_MODULES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_CLASS_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pipeline(
    name_or_config: str | Path | dict[str, Any] = "OCR",
    *,
    device: str | torch.device | None = None,
    ocr_version: str | None = None,
    lang: str | None = None,
    **overrides: Any,
) -> BasePipeline:
    """Create a pipeline (PaddleX ``create_pipeline`` / PaddleOCR ``PaddleOCR(...)``).

    Args:
        name_or_config: a pipeline name (``"OCR"``, ``"ocr"``, ``"text_detection"``, ...), a
            PaddleX-shaped YAML path, a config dict, or a registered model name (its task's pipeline).
        device: ``cpu``, ``cuda``, ``cuda:N``, ``gpu``, ``gpu:N``; default CUDA when available.
        ocr_version, lang: PaddleOCR's model choice for OCR (``"PP-OCRv4"``/``"PP-OCRv5"``, ``"ch"``, ``"en"``…).
        **overrides: for OCR, PaddleOCR constructor names (``text_det_thresh``,
            ``text_recognition_model_dir``, ``use_textline_orientation``, ...) or dotted config paths;
            for single-model pipelines, their constructor arguments.
    """
    if isinstance(name_or_config, dict):
        config = dict(name_or_config)
        if "pipeline_name" not in config:
            raise PipelineConfigError("a pipeline config dict needs a 'pipeline_name' key")
        config["pipeline_name"] = resolve_pipeline_name(str(config["pipeline_name"]))
    elif isinstance(name_or_config, str) and not Path(name_or_config).suffix and is_model(name_or_config):
        task = get_pretrained_cfg(name_or_config).task
        return __getattr__(_MODULE_CLASSES[task])(model_name=name_or_config, device=device, **overrides)
    else:
        config = load_pipeline_config(name_or_config)
    name = config["pipeline_name"]
    if name in _MODULE_CLASSES:
        if ocr_version is not None or lang is not None:
            raise PipelineConfigError(f"ocr_version/lang apply to the OCR pipeline, not {name}")
        kwargs = {k: v for k, v in config.items() if k != "pipeline_name"} | overrides
        return __getattr__(_MODULE_CLASSES[name])(device=device, **kwargs)
    if name in _CONFIG_CLASSES:
        if ocr_version is not None or lang is not None:
            raise PipelineConfigError(f"ocr_version/lang apply to the OCR pipeline, not {name}")
        if name == "doc_preprocessor":  # its constructor takes PaddleOCR's names itself
            return __getattr__(_CONFIG_CLASSES[name])(config, device=device, **overrides)
        _derive_use_doc_preprocessor(overrides)
        return __getattr__(_CONFIG_CLASSES[name])(apply_overrides(config, overrides), device=device)
    det_name, rec_name = ocr_model_names(lang, ocr_version)
    if det_name is not None:
        overrides.setdefault("text_detection_model_name", det_name)
        overrides.setdefault("text_recognition_model_name", rec_name)
    _derive_use_doc_preprocessor(overrides)
    return OCRPipeline(apply_overrides(config, overrides), device=device)


def _derive_use_doc_preprocessor(overrides: dict[str, Any]) -> None:
    """PaddleOCR derives ``use_doc_preprocessor`` from the two step flags when either is given."""
    doc_flags = [overrides.get(k) for k in ("use_doc_orientation_classify", "use_doc_unwarping")]
    if any(flag is not None for flag in doc_flags):
        overrides["use_doc_preprocessor"] = any(doc_flags)
