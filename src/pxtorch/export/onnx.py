"""ONNX export of registered models (``torch.onnx.export`` with ``dynamo=True``), checked against eager.

The graph ends like PaddleX's exported models: recognisers and classifiers in a softmax, detectors in the
probability map. Batch and the spatial sizes the architecture allows stay dynamic (detection: H, W in
multiples of 32; recognition: W in multiples of 8; classifiers: fixed size). A sidecar ``inference.yml``
carries what a non-Python runtime needs: pre-processing, post-processing defaults, the character
dictionary or class labels, and the input/output description.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

__all__ = ["ExportError", "export_onnx", "onnx_input_shapes", "verify_onnx"]

_log = logging.getLogger(__name__)
SIDECAR_NAME = "inference.yml"


class ExportError(RuntimeError):
    """Export failed, or the exported model does not reproduce the eager one."""


class _WithActivation(nn.Module):
    """The model plus its output activation (softmax for recognisers/classifiers), as Paddle exports it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.softmax = getattr(model, "output_activation", "identity") == "softmax"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y.softmax(-1) if self.softmax else y


#: tasks whose models map one image tensor to one output tensor: the ones export supports
EXPORT_TASKS = (
    "text_detection",
    "seal_text_detection",
    "text_recognition",
    "textline_orientation",
    "doc_text_orientation",
    "table_classification",
    "image_unwarping",
)


def _require(model: nn.Module) -> None:
    for attr in ("architecture", "pretrained_cfg"):
        if not hasattr(model, attr):
            raise TypeError(f"export needs a model from pxtorch.create_model/from_pretrained (missing '{attr}')")
    task = model.pretrained_cfg.task
    if task not in EXPORT_TASKS:
        raise ExportError(
            f"{model.architecture}: export supports single-output models ({', '.join(EXPORT_TASKS)}); "
            f"'{task}' models return several outputs (or decode step by step) and are not exportable yet"
        )


def onnx_input_shapes(model: nn.Module) -> tuple[tuple[int, int, int, int], dict[int, str]]:
    """Example input shape ``[B, C, H, W]`` for tracing and the dynamic axes ``{axis: name}``."""
    p = model.pretrained_cfg.preprocess
    if p.resize == "det_limit_side":
        return (2, 3, 256, 320), {0: "batch", 2: "height", 3: "width"}
    if p.resize == "none":  # UVDoc: the page at the size the network resizes to (its output size is fixed)
        return (2, 3, 712, 488), {0: "batch"}
    c, h, w = p.input_size
    if p.resize == "rec_height":
        return (2, c, h, w), {0: "batch", 3: "width"}
    return (2, c, h, w), {0: "batch"}


def _dynamic_shapes(axes: dict[int, str]) -> tuple[dict[int, Any]]:
    dims: dict[int, Any] = {}
    for axis, name in axes.items():
        if name == "batch":
            dims[axis] = torch.export.Dim("batch", min=1, max=1024)
        elif name in ("height", "width") and len(axes) == 3:  # detection: multiples of 32
            dims[axis] = 32 * torch.export.Dim(f"{name}_32", min=1, max=256)
        else:  # recognition width: multiples of 8 (the backbone's horizontal stride)
            dims[axis] = 8 * torch.export.Dim(f"{name}_8", min=2, max=1024)
    return (dims,)


def _sidecar(
    model: nn.Module, axes: dict[int, str], shape: tuple[int, ...], format: str = "onnx", **export: Any
) -> dict[str, Any]:
    """The ``inference.yml`` content; ``export`` items (e.g. ``opset=18``) go into ``Export`` after ``format``."""
    cfg = model.pretrained_cfg
    pre = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg.preprocess).items() if v is not None}
    post: dict[str, Any] = dict(cfg.postprocess)
    charset = getattr(model, "charset", None)
    if charset is not None:
        post.update(name="CTCLabelDecode", character_dict=list(charset.characters))
        post["use_space_char"] = charset.use_space_char
    if cfg.labels:
        post["label_list"] = list(cfg.labels)
    return {
        "Global": {"model_name": cfg.paddlex_name or cfg.paddleocr_name or model.architecture},
        "pxtorch": {"architecture": model.architecture, "model_args": dict(model.model_args), "task": cfg.task},
        "PreProcess": pre,
        "PostProcess": post,
        "Export": {
            "format": format,
            **export,
            "input": {"name": "x", "shape": [axes.get(i, n) for i, n in enumerate(shape)], "dtype": "float32"},
            "output": {
                "name": "y",
                "activation": "softmax" if getattr(model, "output_activation", "") == "softmax" else "none",
            },
        },
    }


def export_onnx(model: nn.Module, output_dir: str | Path, opset: int = 18, verify: bool = True) -> Path:
    """Write ``<output_dir>/inference.onnx`` and ``inference.yml`` for ``model``; returns the ``.onnx`` path.

    With ``verify`` the file is run in onnxruntime on two seeded inputs of different sizes and compared with
    eager PyTorch (:func:`verify_onnx`); a mismatch raises :class:`ExportError`.
    """
    _require(model)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "inference.onnx"
    model = model.eval()
    shape, axes = onnx_input_shapes(model)
    wrapped = _WithActivation(model).eval()
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    try:
        torch.onnx.export(
            wrapped,
            (example,),
            str(path),
            dynamo=True,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=_dynamic_shapes(axes),
            external_data=False,
            verbose=False,
        )
    except Exception as e:
        raise ExportError(f"{model.architecture}: ONNX export failed: {type(e).__name__}: {e}") from e
    sidecar = _sidecar(model, axes, shape, "onnx", opset=opset)
    (out / SIDECAR_NAME).write_text(yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if verify:
        rng = np.random.default_rng(0)
        inputs = [rng.standard_normal(shape).astype(np.float32)]
        bigger = list(shape)
        bigger[0] = 3
        for axis in axes:
            if axis >= 2:
                bigger[axis] = shape[axis] + (64 if len(axes) == 3 else 80)
        inputs.append(rng.standard_normal(bigger).astype(np.float32))
        verify_onnx(model, path, inputs)
    return path


@torch.inference_mode()
def verify_onnx(model: nn.Module, path: str | Path, inputs: list[np.ndarray], atol: float | None = None) -> float:
    """Max ``|onnxruntime - eager|`` over ``inputs``; raises :class:`ExportError` above ``atol``.

    Default ``atol``: DESIGN.md §4, 1e-4 on probabilities. Recognisers must also give the same argmax
    per step. Single outputs can be ill-conditioned (one CTC step of PP-OCRv4 rec on the demo crops moves
    6.8e-4 between float32 and float64 evaluations of the same PyTorch model): outputs past ``atol`` are
    accepted only if they are at most 0.1% of all and both float32 results lie within ``10 * atol`` of the
    float64 evaluation, the rule of ``tests/test_parity.py``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return _compare_with_eager(model, lambda x: session.run(None, {name: x})[0], inputs, atol, str(path), "onnx")


@torch.inference_mode()
def _compare_with_eager(
    model: nn.Module,
    run: Callable[[np.ndarray], np.ndarray],
    inputs: list[np.ndarray],
    atol: float | None = None,
    where: str = "export",
    label: str = "export",
    argmax_ndims: tuple[int, ...] = (3,),
) -> float:
    """Max ``|run(x) - eager(x)|`` over ``inputs`` (``[B, C, H, W]`` float32) under the rule of :func:`verify_onnx`.

    ``run`` is the exported model (returns the activated output as an array); ``where`` and ``label`` name
    it in errors (``"{where}: max |{label} - eager| = ..."``). Softmax outputs with a rank in
    ``argmax_ndims`` (``[B, T, C]`` recognisers by default) must also keep the argmax over the last axis.
    Returns the largest deviation among the well-conditioned outputs.
    """
    wrapped = _WithActivation(model.eval())
    tol = atol if atol is not None else 1e-4
    worst = 0.0
    for x in inputs:
        ref = wrapped(torch.from_numpy(x)).float().numpy()
        got = np.asarray(run(x))
        if got.shape != ref.shape:
            raise ExportError(f"{where}: output shape {got.shape} != eager {ref.shape} for input {x.shape}")
        delta = np.abs(got - ref)
        diff = float(delta.max())
        if not math.isfinite(diff):
            raise ExportError(f"{where}: non-finite outputs for input {x.shape}")
        if diff > tol:
            _check_ill_conditioned(model, x, got, ref, delta > tol, tol, where, label)
        worst = max(worst, float(delta[delta <= tol].max(initial=0.0)))
        if wrapped.softmax and ref.ndim in argmax_ndims and not np.array_equal(got.argmax(-1), ref.argmax(-1)):
            raise ExportError(f"{where}: argmax differs from eager for input {x.shape}")
    _log.info("%s: %s matches eager (max |diff| %.3g on well-conditioned outputs)", where, label, worst)
    return worst


def _check_ill_conditioned(
    model: nn.Module,
    x: np.ndarray,
    got: np.ndarray,
    ref: np.ndarray,
    far: np.ndarray,
    tol: float,
    where: str,
    label: str = "onnx",
) -> None:
    import copy

    what = f"{where}: max |{label} - eager| = {float(np.abs(got - ref).max()):.3g} > {tol:g} for input {x.shape}"
    if far.mean() > 1e-3:
        raise ExportError(f"{what} ({far.sum()} outputs)")
    exact = _WithActivation(copy.deepcopy(model).double()).eval()
    ref64 = exact(torch.from_numpy(x).double()).numpy()
    off = max(float(np.abs(got - ref64)[far].max()), float(np.abs(ref - ref64)[far].max()))
    if off > 10 * tol:
        raise ExportError(f"{what} ({off:.3g} from float64)")
