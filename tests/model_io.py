"""Example inputs and output handling for the tests that run every registered model (any task).

OCR models take their task's usual sizes; fixed-size models (classifiers, layout detectors, table
models) take their registered ``input_size``; heavy detectors take a smaller size their strides allow.
"""

from __future__ import annotations

import numpy as np
import torch

import pxtorch

#: ``[B, C, H, W]`` per task for the OCR models (sizes the generic tests have always used)
OCR_SHAPES = {
    "text_detection": (2, 3, 96, 128),
    "seal_text_detection": (2, 3, 96, 128),
    "text_recognition": (2, 3, 48, 160),
}
#: models whose registered input size makes every generic test slow: a smaller valid size
SMALL_SHAPES = {
    "image_unwarping": (1, 3, 712, 488),  # UVDoc resizes to 712x488 inside; its feature strides refer to that size
}
_DETR_SHAPE = (1, 3, 256, 256)  # RT-DETR: H, W multiples of 32, >= 128


def example_shape(name: str, batch: int = 2) -> tuple[int, ...]:
    """A valid ``[B, C, H, W]`` input shape for registered model ``name``."""
    cfg = pxtorch.get_pretrained_cfg(name)
    if cfg.task in OCR_SHAPES:
        return (batch, *OCR_SHAPES[cfg.task][1:])
    if cfg.task in SMALL_SHAPES:
        return SMALL_SHAPES[cfg.task]
    if cfg.postprocess.get("decoder") in ("detr", "pp_doclayout_v3"):
        return _DETR_SHAPE
    if cfg.preprocess.input_size is None:
        raise ValueError(f"{name}: no example input shape (task {cfg.task})")
    return (batch, *cfg.preprocess.input_size)


def output_tensors(out: object) -> list[torch.Tensor]:
    """The tensors of a model output: a tensor, or a (nested) tuple/list/dict of them."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in output_tensors(item)]
    raise TypeError(f"unexpected model output type {type(out).__name__}")


def expected_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The output shape of a single-tensor model for input ``shape`` (``None``: multi-output model)."""
    cfg = pxtorch.get_pretrained_cfg(name)
    b, _, h, w = shape
    return {
        "text_detection": (b, 1, h, w),
        "seal_text_detection": (b, 1, h, w),
        "text_recognition": (b, w // 8, cfg.num_classes),
        "textline_orientation": (b, cfg.num_classes),
        "doc_text_orientation": (b, cfg.num_classes),
        "table_classification": (b, cfg.num_classes),
        "image_unwarping": (b, 2, 45, 31),
    }.get(cfg.task)


def exportable_models() -> list[str]:
    """Registered models that :mod:`pxtorch.export` supports (single input, single output)."""
    from pxtorch.export.onnx import EXPORT_TASKS

    return [n for n in pxtorch.list_models() if pxtorch.get_pretrained_cfg(n).task in EXPORT_TASKS]


def export_inputs(name: str, demo_image: np.ndarray, demo_lines: list[dict]) -> list[np.ndarray]:
    """Seeded random inputs (other batch sizes / sizes than the traced one) plus a real input where one fits."""
    from pxtorch.processing.cls_resize import classification_input

    from .test_parity import _det_input, _inputs

    cfg = pxtorch.get_pretrained_cfg(name)
    p = cfg.preprocess
    if cfg.task in ("text_detection", "text_recognition") or p.resize == "fixed":
        return list(_inputs(name, demo_image, demo_lines).values())
    rng = np.random.default_rng(0)
    if p.resize == "det_limit_side":
        return [rng.standard_normal((1, 3, 256, 352), dtype=np.float32), _det_input(demo_image, name)]
    shape = example_shape(name, batch=1)
    inputs = [rng.standard_normal((b, *shape[1:]), dtype=np.float32) for b in (1, 3)]
    if p.resize in ("short_side_crop", "stretch"):
        inputs.append(classification_input(demo_image, p)[None])
    return inputs
