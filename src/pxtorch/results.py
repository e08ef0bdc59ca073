"""Pipeline result objects: dicts with PaddleX's keys, printing, JSON and image export.

Every result is a ``dict`` (``res["rec_texts"]``) with PaddleX's mixin surface:

- ``json`` -> ``{"res": {...}}`` with numpy values turned into lists; ``str`` -> ``{"res": text}``;
- ``print(json_format=False, indent=4, ensure_ascii=False)``;
- ``img`` -> ``{name: PIL.Image}``; ``save_to_json(path)`` writes ``{stem}_res.json``,
  ``save_to_img(path)`` writes ``{stem}_{name}{ext}``; ``save_all(path)`` does both.

``stem`` is the input file's name (``{stem}_{page_index}`` for PDF pages; a timestamp for arrays).
If ``save_path`` names a file (it has a suffix) it is used as given.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "BaseResult",
    "ErrorResult",
    "OCRResult",
    "TextDetResult",
    "TextRecResult",
    "TextlineOrientationResult",
    "to_jsonable",
]

logger = logging.getLogger(__name__)

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def to_jsonable(obj: Any) -> Any:
    """numpy arrays/scalars -> lists/Python numbers, recursively (dict keys kept, tuples become lists)."""
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _format_str(obj: Any) -> str:
    """A readable rendering: JSON layout; numpy arrays (and long lists of them) abbreviated with shape and dtype."""

    def shorten(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: shorten(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)) and len(o) > 6 and isinstance(o[0], np.ndarray):
            return [*(shorten(v) for v in o[:3]), f"... ({len(o)} arrays)"]
        if isinstance(o, (list, tuple)):
            return [shorten(v) for v in o]
        if isinstance(o, np.ndarray):
            body = np.array2string(o, threshold=8, edgeitems=1, separator=",").replace("\n", "")
            return f"array{list(o.shape)} {o.dtype}: {body}"
        if isinstance(o, np.generic):
            return o.item()
        return o

    return json.dumps(shorten(obj), indent=4, ensure_ascii=False, default=str)


class BaseResult(dict):
    """A dict of one input's results. Subclasses choose the serialised keys and the images."""

    #: keys written to JSON/str, in order; keys missing from the dict are skipped
    json_keys: tuple[str, ...] = ()

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._auto_name: str | None = None

    # -- serialisation -------------------------------------------------------------------------
    def _json_data(self) -> dict[str, Any]:
        keys = self.json_keys or tuple(k for k in self if not k.startswith("_"))
        return {k: self[k] for k in keys if k in self}

    @property
    def json(self) -> dict[str, Any]:
        """``{"res": data}`` with only JSON types (PaddleX's ``res.json``)."""
        return {"res": to_jsonable(self._json_data())}

    @property
    def str(self) -> dict[str, str]:
        """``{"res": text}``: the result as readable text, long arrays abbreviated."""
        return {"res": _format_str(self._json_data())}

    def __str__(self) -> str:
        return self.str["res"]

    def print(self, json_format: bool = False, indent: int = 4, ensure_ascii: bool = False) -> None:
        """Print the result (``json_format=True``: the full JSON)."""
        if json_format:
            print(json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii))
        else:
            body = self.str["res"].replace("\n", "\n" + " " * indent)
            print("{\n" + " " * indent + '"res": ' + body + "\n}")

    # -- file naming ----------------------------------------------------------------------------
    def _input_name(self) -> str:
        """The input's file name (``a.jpg``, ``doc_3.pdf`` for page 3); a timestamp for in-memory inputs."""
        path = self.get("input_path")
        if path is None:
            if self._auto_name is None:
                self._auto_name = f"{int(time.time())}_{random.randint(1000, 9999)}"
                logger.warning("input has no file name; results are saved as %s_*", self._auto_name)
            name = self._auto_name
        else:
            name = Path(str(path).split("?")[0]).name or "res"
        page = self.get("page_index")
        if page is not None:
            p = Path(name)
            name = f"{p.stem}_{page}{p.suffix}"
        return name

    @staticmethod
    def _target(save_path: str | Path, default_name: str) -> Path:
        path = Path(save_path)
        if path.suffix:  # a file name: used as given
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
        path.mkdir(parents=True, exist_ok=True)
        return path / default_name

    # -- saving ---------------------------------------------------------------------------------
    def save_to_json(self, save_path: str | Path, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write ``{stem}_res.json`` into the directory ``save_path`` (or to ``save_path`` itself if it is a file)."""
        target = self._target(save_path, f"{Path(self._input_name()).stem}_res.json")
        target.write_text(json.dumps(self.json["res"], indent=indent, ensure_ascii=ensure_ascii), encoding="utf-8")
        return target

    @property
    def img(self) -> dict[str, Image.Image]:
        """Visualisations by name (empty for results without one)."""
        return {}

    def save_to_img(self, save_path: str | Path) -> list[Path]:
        """Write each image of :attr:`img` as ``{stem}_{name}{ext}`` (ext from the input; ``.png`` otherwise)."""
        images = self.img
        name = Path(self._input_name())
        ext = name.suffix.lower() if name.suffix.lower() in _IMAGE_SUFFIXES else ".png"
        written = []
        if Path(save_path).suffix and len(images) > 1:
            logger.warning("save_path %s is a file name but %d images were produced; saving the first", save_path, 2)
            images = dict(list(images.items())[:1])
        for key, image in images.items():
            target = self._target(save_path, f"{name.stem}_{key}{ext}")
            image.convert("RGB").save(target)
            written.append(target)
        return written

    def save_all(self, save_path: str | Path) -> None:
        """``save_to_json`` and ``save_to_img`` (what the CLI calls)."""
        self.save_to_json(save_path)
        self.save_to_img(save_path)


class ErrorResult(BaseResult):
    """An input that could not be processed: ``{input_path, page_index, error}`` (``predict(on_error="keep")``)."""

    json_keys = ("input_path", "page_index", "error")

    def save_to_img(self, save_path: str | Path) -> list[Path]:
        return []


class TextDetResult(BaseResult):
    """Text detection module result: ``dt_polys`` int16 ``[N, 4, 2]`` and ``dt_scores``."""

    json_keys = ("input_path", "page_index", "dt_polys", "dt_scores")

    @property
    def img(self) -> dict[str, Image.Image]:
        from .processing.visualize import draw_det_boxes

        return {"res": draw_det_boxes(self["input_img"], self["dt_polys"])}


class TextRecResult(BaseResult):
    """Text recognition module result: ``rec_text`` and ``rec_score`` of one text-line image."""

    json_keys = ("input_path", "page_index", "rec_text", "rec_score")


class TextlineOrientationResult(BaseResult):
    """Text-line orientation module result: ``class_ids``, ``scores``, ``label_names`` (top-1)."""

    json_keys = ("input_path", "page_index", "class_ids", "scores", "label_names")


class OCRResult(BaseResult):
    """OCR pipeline result with PaddleX's keys and dtypes.

    ``dt_polys``/``rec_polys`` int16 ``[N, 4, 2]``, ``rec_boxes`` int16 ``[N, 4]`` (xyxy),
    ``rec_scores`` float ``[N]``, ``textline_orientation_angles`` int ``[N]`` (-1 when the stage is
    off). With ``text_type == "seal"`` the polygons are a list of int ``[K, 2]`` arrays (K varies) and
    ``rec_boxes`` is empty, as PaddleX. ``doc_preprocessor_res["output_img"]`` holds the image the
    boxes refer to (BGR; the corrected page when the document preprocessor ran).
    """

    json_keys = (
        "input_path",
        "page_index",
        "model_settings",
        "doc_preprocessor_res",
        "dt_polys",
        "text_det_params",
        "text_type",
        "textline_orientation_angles",
        "text_rec_score_thresh",
        "return_word_box",
        "rec_texts",
        "rec_scores",
        "rec_polys",
        "rec_boxes",
    )

    def _json_data(self) -> dict[str, Any]:
        data = super()._json_data()
        if self["model_settings"].get("use_doc_preprocessor"):
            data["doc_preprocessor_res"] = {
                k: v for k, v in self["doc_preprocessor_res"].items() if k not in ("output_img", "input_img")
            }
        else:
            data.pop("doc_preprocessor_res", None)
        return data

    @property
    def img(self) -> dict[str, Image.Image]:
        """``{"ocr_res_img": side-by-side boxes | texts}`` (+ ``preprocessed_img`` after doc preprocessing)."""
        from .processing.visualize import draw_ocr

        image = self["doc_preprocessor_res"]["output_img"]
        out = {"ocr_res_img": draw_ocr(image, self["rec_polys"], self["rec_texts"])}
        if self["model_settings"].get("use_doc_preprocessor"):
            out["preprocessed_img"] = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        return out
