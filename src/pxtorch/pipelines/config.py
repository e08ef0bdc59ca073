"""PaddleX-shaped pipeline configs: shipped YAMLs, user YAMLs, and PaddleOCR's constructor overrides.

Precedence, highest first (as PaddleX): per-call ``predict()`` arguments > constructor overrides
(PaddleOCR names such as ``text_det_thresh`` or ``text_recognition_model_dir``, mapped onto dotted
config paths) > the YAML (shipped or the user's) > the model's own defaults.
"""

from __future__ import annotations

import copy
import difflib
import shutil
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONSTRUCTOR_OVERRIDES",
    "PIPELINE_OVERRIDES",
    "PipelineConfigError",
    "apply_overrides",
    "get_pipeline_config",
    "list_pipelines",
    "load_pipeline_config",
    "resolve_pipeline_name",
]

#: pipelines with a shipped YAML (PaddleX names)
_CONFIG_PIPELINES = ("OCR", "doc_preprocessor", "seal_recognition", "table_recognition")
#: single-model pipelines (PaddleX module names), configured by keyword arguments only
MODULE_PIPELINES = (
    "text_detection",
    "seal_text_detection",
    "text_recognition",
    "textline_orientation",
    "doc_text_orientation",
    "image_unwarping",
    "layout_detection",
    "table_structure_recognition",
    "table_classification",
    "table_cells_detection",
)

_DET = "SubModules.TextDetection."
_REC = "SubModules.TextRecognition."
_CLS = "SubModules.TextLineOrientation."
_DOC = "SubPipelines.DocPreprocessor."

#: PaddleOCR ``PaddleOCR(...)`` constructor names -> dotted paths in the OCR config
CONSTRUCTOR_OVERRIDES: dict[str, str] = {
    "doc_orientation_classify_model_name": _DOC + "SubModules.DocOrientationClassify.model_name",
    "doc_orientation_classify_model_dir": _DOC + "SubModules.DocOrientationClassify.model_dir",
    "doc_unwarping_model_name": _DOC + "SubModules.DocUnwarping.model_name",
    "doc_unwarping_model_dir": _DOC + "SubModules.DocUnwarping.model_dir",
    "text_detection_model_name": _DET + "model_name",
    "text_detection_model_dir": _DET + "model_dir",
    "textline_orientation_model_name": _CLS + "model_name",
    "textline_orientation_model_dir": _CLS + "model_dir",
    "textline_orientation_batch_size": _CLS + "batch_size",
    "text_recognition_model_name": _REC + "model_name",
    "text_recognition_model_dir": _REC + "model_dir",
    "text_recognition_batch_size": _REC + "batch_size",
    "use_doc_orientation_classify": _DOC + "use_doc_orientation_classify",
    "use_doc_unwarping": _DOC + "use_doc_unwarping",
    "use_textline_orientation": "use_textline_orientation",
    "engine": "engine",
    "engine_config": "engine_config",
    "use_doc_preprocessor": "use_doc_preprocessor",
    "text_det_limit_side_len": _DET + "limit_side_len",
    "text_det_limit_type": _DET + "limit_type",
    "text_det_max_side_limit": _DET + "max_side_limit",
    "text_det_thresh": _DET + "thresh",
    "text_det_box_thresh": _DET + "box_thresh",
    "text_det_unclip_ratio": _DET + "unclip_ratio",
    "text_det_input_shape": _DET + "input_shape",
    "text_rec_score_thresh": _REC + "score_thresh",
    "text_rec_input_shape": _REC + "input_shape",
    "batch_size": "batch_size",
}

_DOC_FLAGS = {
    "use_doc_orientation_classify": _DOC + "use_doc_orientation_classify",
    "use_doc_unwarping": _DOC + "use_doc_unwarping",
    "doc_orientation_classify_model_name": _DOC + "SubModules.DocOrientationClassify.model_name",
    "doc_orientation_classify_model_dir": _DOC + "SubModules.DocOrientationClassify.model_dir",
    "doc_unwarping_model_name": _DOC + "SubModules.DocUnwarping.model_name",
    "doc_unwarping_model_dir": _DOC + "SubModules.DocUnwarping.model_dir",
    "use_doc_preprocessor": "use_doc_preprocessor",
    "engine": "engine",
    "engine_config": "engine_config",
    "batch_size": "batch_size",
}
_LAYOUT = "SubModules.LayoutDetection."
_LAYOUT_FLAGS = {
    "use_layout_detection": "use_layout_detection",
    "layout_detection_model_name": _LAYOUT + "model_name",
    "layout_detection_model_dir": _LAYOUT + "model_dir",
    "layout_threshold": _LAYOUT + "threshold",
    "layout_nms": _LAYOUT + "layout_nms",
    "layout_unclip_ratio": _LAYOUT + "layout_unclip_ratio",
    "layout_merge_bboxes_mode": _LAYOUT + "layout_merge_bboxes_mode",
}
_SEAL_DET = "SubPipelines.SealOCR.SubModules.TextDetection."
_SEAL_REC = "SubPipelines.SealOCR.SubModules.TextRecognition."
_TABLE_DET = "SubPipelines.GeneralOCR.SubModules.TextDetection."
_TABLE_REC = "SubPipelines.GeneralOCR.SubModules.TextRecognition."

#: PaddleOCR's constructor names of the document pipelines (``SealRecognition(...)``, ``TableRecognitionPipeline``)
PIPELINE_OVERRIDES: dict[str, dict[str, str]] = {
    "OCR": CONSTRUCTOR_OVERRIDES,
    "seal_recognition": {
        **_DOC_FLAGS,
        **_LAYOUT_FLAGS,
        "seal_text_detection_model_name": _SEAL_DET + "model_name",
        "seal_text_detection_model_dir": _SEAL_DET + "model_dir",
        "seal_det_limit_side_len": _SEAL_DET + "limit_side_len",
        "seal_det_limit_type": _SEAL_DET + "limit_type",
        "seal_det_thresh": _SEAL_DET + "thresh",
        "seal_det_box_thresh": _SEAL_DET + "box_thresh",
        "seal_det_unclip_ratio": _SEAL_DET + "unclip_ratio",
        "text_recognition_model_name": _SEAL_REC + "model_name",
        "text_recognition_model_dir": _SEAL_REC + "model_dir",
        "text_recognition_batch_size": _SEAL_REC + "batch_size",
        "seal_rec_score_thresh": _SEAL_REC + "score_thresh",
    },
    "table_recognition": {
        **_DOC_FLAGS,
        **_LAYOUT_FLAGS,
        "use_ocr_model": "use_ocr_model",
        "table_structure_recognition_model_name": "SubModules.TableStructureRecognition.model_name",
        "table_structure_recognition_model_dir": "SubModules.TableStructureRecognition.model_dir",
        "text_detection_model_name": _TABLE_DET + "model_name",
        "text_detection_model_dir": _TABLE_DET + "model_dir",
        "text_det_limit_side_len": _TABLE_DET + "limit_side_len",
        "text_det_limit_type": _TABLE_DET + "limit_type",
        "text_det_thresh": _TABLE_DET + "thresh",
        "text_det_box_thresh": _TABLE_DET + "box_thresh",
        "text_det_unclip_ratio": _TABLE_DET + "unclip_ratio",
        "text_recognition_model_name": _TABLE_REC + "model_name",
        "text_recognition_model_dir": _TABLE_REC + "model_dir",
        "text_recognition_batch_size": _TABLE_REC + "batch_size",
        "text_rec_score_thresh": _TABLE_REC + "score_thresh",
    },
}

#: PaddleOCR 2.x names, still accepted by PaddleOCR 3.x with a deprecation warning
DEPRECATED_NAMES: dict[str, str] = {
    "det_model_dir": "text_detection_model_dir",
    "det_limit_side_len": "text_det_limit_side_len",
    "det_limit_type": "text_det_limit_type",
    "det_db_thresh": "text_det_thresh",
    "det_db_box_thresh": "text_det_box_thresh",
    "det_db_unclip_ratio": "text_det_unclip_ratio",
    "rec_model_dir": "text_recognition_model_dir",
    "rec_batch_num": "text_recognition_batch_size",
    "use_angle_cls": "use_textline_orientation",
    "cls_model_dir": "textline_orientation_model_dir",
    "cls_batch_num": "textline_orientation_batch_size",
}


class PipelineConfigError(ValueError):
    """A pipeline name, YAML file or override that cannot be used; the message says why and what fits."""


def _config_dir() -> Path:
    return Path(str(resources.files("pxtorch") / "conf" / "pipeline"))


def list_pipelines() -> list[str]:
    """Names accepted by :func:`pxtorch.pipeline` (PaddleX spelling)."""
    return [*_CONFIG_PIPELINES, *MODULE_PIPELINES]


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


def resolve_pipeline_name(name: str) -> str:
    """``"ocr"``, ``"OCR"``, ``"general-ocr"`` -> ``"OCR"``; unknown names raise with the close matches."""
    aliases = {_key(n): n for n in list_pipelines()} | {"generalocr": "OCR"}
    found = aliases.get(_key(name))
    if found is None:
        close = difflib.get_close_matches(name, list_pipelines(), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise PipelineConfigError(f"unknown pipeline {name!r}.{hint} Available: {', '.join(list_pipelines())}")
    return found


def load_pipeline_config(name_or_path: str | Path) -> dict[str, Any]:
    """The config dict of a pipeline name (the shipped YAML) or of a YAML file path."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise PipelineConfigError(f"{path}: no such pipeline config file")
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise PipelineConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(config, dict) or "pipeline_name" not in config:
            raise PipelineConfigError(f"{path}: a pipeline config is a mapping with a 'pipeline_name' key")
        config["pipeline_name"] = resolve_pipeline_name(str(config["pipeline_name"]))
        return config
    name = resolve_pipeline_name(str(name_or_path))
    if name in MODULE_PIPELINES:
        return {"pipeline_name": name}
    return yaml.safe_load((_config_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


def get_pipeline_config(name: str, save_path: str | Path | None = None) -> Path | dict[str, Any]:
    """PaddleX ``--get_pipeline_config``: copy the shipped ``NAME.yaml`` into ``save_path`` (a dir or file).

    Without ``save_path`` the config dict is returned.
    """
    name = resolve_pipeline_name(name)
    if name not in _CONFIG_PIPELINES:
        raise PipelineConfigError(f"{name} is a single-model pipeline and has no YAML config")
    src = _config_dir() / f"{name}.yaml"
    if save_path is None:
        return yaml.safe_load(src.read_text(encoding="utf-8"))
    target = Path(save_path).expanduser()
    if target.suffix.lower() not in (".yaml", ".yml"):
        target.mkdir(parents=True, exist_ok=True)
        target = target / src.name
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target


def _set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise PipelineConfigError(f"config path {dotted!r}: {part!r} is not a mapping")
    node[leaf] = value


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with PaddleOCR constructor overrides applied (``None`` values are ignored).

    Accepts the names of :data:`PIPELINE_OVERRIDES` for the config's pipeline (OCR:
    :data:`CONSTRUCTOR_OVERRIDES`), PaddleOCR 2.x names (with a ``DeprecationWarning``) and dotted
    config paths (``"SubModules.TextDetection.thresh"``). Unknown names raise
    :class:`PipelineConfigError` listing the close matches.
    """
    table = PIPELINE_OVERRIDES.get(config.get("pipeline_name", "OCR"), CONSTRUCTOR_OVERRIDES)
    config = copy.deepcopy(config)
    for name, value in overrides.items():
        if value is None:
            continue
        if name in DEPRECATED_NAMES:
            new = DEPRECATED_NAMES[name]
            warnings.warn(f"{name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
            name = new
        if name in table:
            _set_path(config, table[name], value)
        elif "." in name and name.split(".")[0] in ("SubModules", "SubPipelines"):
            _set_path(config, name, value)
        else:
            known = [*table, *DEPRECATED_NAMES, "ocr_version", "lang", "device", "config"]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise PipelineConfigError(f"unknown pipeline argument {name!r}.{hint}")
    return config
