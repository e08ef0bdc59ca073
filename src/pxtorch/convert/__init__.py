"""Readers for foreign weights: ONNX graphs and Paddle inference models -> pxtorch state dicts.

Used by :mod:`pxtorch.hub` (offline conversion from installed wheels) and by
``weight_conversion/convert_all.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._pretrained import CharsetSource, PretrainedCfg
from ..processing.charset import parse_dict_text
from .onnx_graph import OnnxGraph
from .onnx_matcher import OnnxMatchError, match_onnx_weights
from .paddle import PaddleFormatError, load_paddle_inference
from .wheels import SourceUnavailable, locate, sha256_file

__all__ = [
    "ConversionError",
    "OnnxGraph",
    "OnnxMatchError",
    "PaddleFormatError",
    "SourceUnavailable",
    "apply_output_activation",
    "convert_onnx",
    "convert_paddle",
    "example_input",
    "locate",
    "read_charset",
    "sha256_file",
]

# Probe shapes used to match activations: small, but with every stage non-degenerate.
_PROBE_SHAPES = {
    "text_detection": (1, 3, 128, 160),
    "text_recognition": (1, 3, 48, 160),
    "textline_orientation": (1, 3, 48, 192),
}
_VERIFY_SHAPES = {
    "text_detection": (1, 3, 160, 224),
    "text_recognition": (2, 3, 48, 320),
    "textline_orientation": (2, 3, 48, 192),
}


class ConversionError(RuntimeError):
    """Converted weights do not reproduce the source model."""


def example_input(cfg: PretrainedCfg, seed: int = 0, verify: bool = False) -> np.ndarray:
    """A seeded normal-random input for the task of ``cfg`` (float32 NCHW)."""
    table = _VERIFY_SHAPES if verify else _PROBE_SHAPES
    p = cfg.preprocess
    if cfg.task in table:
        shape = table[cfg.task]
    elif p.resize == "det_limit_side":  # any DB-style detector (seal text detection)
        shape = table["text_detection"]
    elif p.input_size is not None:  # fixed-size inputs: classifiers, layout detectors, table models
        shape = (2 if verify else 1, *p.input_size)
    else:
        raise ConversionError(f"{cfg.architecture}: no example input shape for task '{cfg.task}'")
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def apply_output_activation(model: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Turn ``model(x)`` into what the exported Paddle graph outputs (softmax for rec/cls)."""
    act = getattr(model, "output_activation", "identity")
    if act == "softmax":
        return out.softmax(-1)
    if act == "identity":
        return out
    raise ValueError(f"unknown output_activation {act!r}")


def convert_onnx(model: nn.Module, path: str | Path, verify_atol: float | None = 1e-4) -> dict[str, torch.Tensor]:
    """Load the weights of ONNX file ``path`` into ``model`` by activation matching.

    Args:
        model: a pxtorch model in the form of the source (deploy or train).
        verify_atol: after loading, compare ``model`` with onnxruntime on a fresh seeded input and
            raise :class:`ConversionError` above this max |Δ| (on the graph's output, e.g. probabilities);
            ``None`` skips the check.
    """
    cfg = model.pretrained_cfg
    if cfg.task == "table_structure_recognition":  # an autoregressive head inside an ONNX Loop: loaded by name
        from .slanet_onnx import convert_slanet_onnx

        return convert_slanet_onnx(model, path, verify_atol)
    graph = OnnxGraph(path)
    state = match_onnx_weights(graph, model, example_input(cfg, seed=0))
    if verify_atol is not None:
        x = example_input(cfg, seed=1, verify=True)
        batch = graph.model.graph.input[0].type.tensor_type.shape.dim[0]
        if batch.HasField("dim_value") and 0 < batch.dim_value != x.shape[0]:  # a graph exported with a fixed batch
            x = x[: batch.dim_value]
        refs = graph.session().run(None, {graph.input_names[0]: x})
        with torch.no_grad():
            out = model.eval()(torch.from_numpy(x))
        if isinstance(out, (tuple, list)):  # multi-output heads map the graph's outputs onto theirs
            adapt = getattr(model, "onnx_output_adapter", None)
            pairs = list(zip([o.numpy() for o in out], adapt(refs) if adapt else refs, strict=True))
        else:
            pairs = [(apply_output_activation(model, out).numpy(), refs[0])]
        for got, ref in pairs:
            diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
            if diff > verify_atol:
                name = Path(path).name
                raise ConversionError(f"{name}: converted model differs from onnxruntime (max |Δ| {diff:.2e})")
    return state


def convert_paddle(model: nn.Module, model_dir: str | Path) -> dict[str, torch.Tensor]:
    """Map a Paddle inference model's tensors onto ``model``'s keys (strict: nothing missing or left over).

    Names come from ``inference.pdiparams.info``; ``model.paddle_key_map`` renames them (``None``
    skips training-only tensors). BatchNorm statistics are renamed and Linear weights (stored
    ``[in, out]`` by Paddle) are transposed when the target module is ``nn.Linear``.
    """
    named = load_paddle_inference(model_dir)
    key_map = getattr(model, "paddle_key_map", lambda n: n)
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unexpected = []
    for name, arr in named.items():
        key = key_map(name)
        if key is None:
            continue
        key = key.replace("._mean", ".running_mean").replace("._variance", ".running_var")
        if key not in target:
            unexpected.append(f"{name} -> {key}")
            continue
        module = model.get_submodule(key.rsplit(".", 1)[0])
        if isinstance(module, nn.Linear) and key.endswith(".weight"):
            arr = arr.T
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise PaddleFormatError(f"{name}: shape {tuple(tensor.shape)} but {key} is {tuple(target[key].shape)}")
        out[key] = tensor.to(target[key].dtype)
    missing = [k for k in target if k not in out and not k.endswith("num_batches_tracked")]
    if unexpected or missing:
        raise PaddleFormatError(
            f"{model_dir}: the Paddle model does not fit {getattr(model, 'architecture', type(model).__name__)}"
            f" (unexpected: {unexpected[:5]}, missing: {missing[:5]})"
        )
    for k, v in target.items():
        if k.endswith("num_batches_tracked"):
            out[k] = v.clone()
    return out


def read_charset(source: CharsetSource) -> list[str]:
    """The dictionary entries of ``source`` (CR/LF line endings both accepted)."""
    path = locate(source)
    chars = parse_dict_text(path.read_text(encoding="utf-8"))
    if len(chars) != source.num_chars:
        raise ConversionError(f"{path}: {len(chars)} entries, expected {source.num_chars}")
    return chars
