"""Map the weights of an ONNX graph onto a pxtorch module by matching activations.

Matching ONNX tensors to modules by order or by shape fails on paddle2onnx graphs: node order differs
from module order (RSE-FPN computes the coarsest level first), many convs share a shape, and biases,
BatchNorms and learnable affine blocks appear as separate ``Add``/``Mul`` nodes or are folded away.
Instead, onnxruntime runs once on a probe input with every intermediate tensor exposed, and the
pxtorch model runs on the same input with a pre-hook on every parameter-carrying unit
(``Conv2d``, ``ConvTranspose2d``, ``Linear``, ``BatchNorm2d``, ``LayerNorm``, ``LearnableAffineBlock``).
Because PyTorch executes in data-flow order and earlier units already carry their weights, each hook
sees the unit's true input; it picks the unused ONNX node of the right kind whose input *value*
equals it, copies the weights (following bias ``Add``, ``BatchNormalization`` and affine chains) and
lets the unit run. BatchNorm folded into a conv in the graph becomes an identity BatchNorm carrying
the bias; a graph BatchNorm after a conv the model has fused is folded into that conv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..layers.lab import LearnableAffineBlock
from .onnx_graph import OnnxGraph

__all__ = ["OnnxMatchError", "match_onnx_weights"]

_UNITS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm, LearnableAffineBlock)
_PARAM_OPS = {"Conv", "ConvTranspose", "BatchNormalization", "LayerNormalization", "Gemm"}


class OnnxMatchError(RuntimeError):
    """The ONNX graph does not fit the module (wrong architecture, form or unsupported pattern)."""


def _t(arr: np.ndarray) -> torch.Tensor:
    """A writable float32 tensor copy of ``arr``."""
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    scale = float(np.abs(b).max()) if b.size else 0.0
    return float(np.abs(a - b).max(initial=0.0)) <= 1e-5 + rtol * scale


@dataclass
class _State:
    values: dict[str, np.ndarray]
    used: set[int] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    pending_bias: dict[int, tuple[np.ndarray, str]] = field(default_factory=dict)
    conv_bias_for: dict[str, np.ndarray] = field(default_factory=dict)


class _Matcher:
    def __init__(self, graph: OnnxGraph, model: nn.Module, rtol: float) -> None:
        self.g = graph
        self.model = model
        self.rtol = rtol
        self.s: _State | None = None

    # -- graph helpers -------------------------------------------------------------------------
    def _value(self, name: str) -> np.ndarray | None:
        v = self.s.values.get(name)
        return v if v is not None else self.g.consts.get(name)

    def _single_consumer(self, tensor: str, op_type: str) -> int | None:
        cons = [i for i in self.g.consumers.get(tensor, []) if i not in self.s.used]
        if len(cons) == 1 and self.g.nodes[cons[0]].op_type == op_type:
            return cons[0]
        return None

    def _const_operand(self, idx: int) -> tuple[np.ndarray | None, str | None]:
        """For a binary node: (constant operand, name of the other operand)."""
        a, b = self.g.nodes[idx].input[:2]
        if a in self.g.consts and b not in self.g.consts:
            return self.g.consts[a], b
        if b in self.g.consts and a not in self.g.consts:
            return self.g.consts[b], a
        return None, None

    def _following_bias(self, tensor: str, channels: int) -> tuple[np.ndarray | None, str]:
        """A bias ``Add`` right after ``tensor``: returns (bias [C], output name)."""
        idx = self._single_consumer(tensor, "Add")
        if idx is not None:
            const, _ = self._const_operand(idx)
            if const is not None and const.size == channels:
                self.s.used.add(idx)
                return const.reshape(-1), self.g.nodes[idx].output[0]
        return None, tensor

    def _find(self, op_types: set[str], x: np.ndarray, accept: Callable[[int], bool], data_input: Callable[[int], str]):
        for idx, node in enumerate(self.g.nodes):
            if idx in self.s.used or node.op_type not in op_types or not accept(idx):
                continue
            v = self._value(data_input(idx))
            if v is not None and _close(x, v, self.rtol):
                return idx
        return None

    # -- unit handlers -------------------------------------------------------------------------
    def _conv(self, name: str, m: nn.Module, x: np.ndarray, transpose: bool) -> None:
        op = "ConvTranspose" if transpose else "Conv"
        w_shape = tuple(m.weight.shape)

        def accept(idx: int) -> bool:
            node, attrs = self.g.nodes[idx], self.g.attrs[idx]
            w = self.g.consts.get(node.input[1])
            return (
                w is not None
                and w.shape == w_shape
                and attrs.get("group", 1) == m.groups
                and tuple(attrs.get("strides", (1, 1))) == tuple(m.stride)
            )

        idx = self._find({op}, x, accept, lambda i: self.g.nodes[i].input[0])
        if idx is None:
            raise self._error(name, m, x, op)
        self.s.used.add(idx)
        node = self.g.nodes[idx]
        weight = self.g.consts[node.input[1]]
        bias = self.g.consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        out = node.output[0]
        channels = w_shape[1] * m.groups if transpose else w_shape[0]
        if bias is None:
            bias, out = self._following_bias(out, channels)
        if m.bias is not None:
            if bias is None:
                bn_idx = self._single_consumer(out, "BatchNormalization")
                if bn_idx is not None:  # the graph keeps a BN the model has folded
                    weight, bias = self._fold_bn(weight, bn_idx, transpose)
                    self.s.used.add(bn_idx)
                else:
                    bias = np.zeros(channels, dtype=np.float32)
            m.bias.copy_(_t(bias))
            self.s.assigned.add(f"{name}.bias")
        elif bias is not None:  # the graph folded a BN the model keeps: carry the bias to that BN
            self.s.conv_bias_for[name] = bias.astype(np.float32)
        m.weight.copy_(_t(weight))
        self.s.assigned.add(f"{name}.weight")

    def _fold_bn(self, weight: np.ndarray, bn_idx: int, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
        node = self.g.nodes[bn_idx]
        gamma, beta, mean, var = (self.g.consts[n] for n in node.input[1:5])
        t = gamma / np.sqrt(var + self.g.attrs[bn_idx].get("epsilon", 1e-5))
        shape = (1, -1, 1, 1) if transpose else (-1, 1, 1, 1)
        return weight * t.reshape(shape), beta - mean * t

    def _bn(self, name: str, m: nn.BatchNorm2d, x: np.ndarray, x_ptr: int) -> None:
        c = m.num_features

        def accept(idx: int) -> bool:
            scale = self.g.consts.get(self.g.nodes[idx].input[1])
            return scale is not None and scale.shape == (c,)

        idx = self._find({"BatchNormalization"}, x, accept, lambda i: self.g.nodes[i].input[0])
        if idx is not None:
            self.s.used.add(idx)
            node, eps = self.g.nodes[idx], self.g.attrs[idx].get("epsilon", 1e-5)
            if abs(eps - m.eps) > 1e-8:
                raise OnnxMatchError(f"{name}: BatchNorm eps is {m.eps} in the model but {eps} in the graph")
            gamma, beta, mean, var = (self.g.consts[n] for n in node.input[1:5])
            tensors = dict(weight=gamma, bias=beta, running_mean=mean, running_var=var)
        elif x_ptr in self.s.pending_bias:
            bias, _ = self.s.pending_bias.pop(x_ptr)
            ones = np.ones(c, dtype=np.float32)
            tensors = dict(weight=ones, bias=bias, running_mean=np.zeros(c, np.float32), running_var=ones - m.eps)
        else:
            raise self._error(name, m, x, "BatchNormalization")
        for key, value in tensors.items():
            getattr(m, key).copy_(_t(value))
            self.s.assigned.add(f"{name}.{key}")

    def _linear(self, name: str, m: nn.Linear, x: np.ndarray) -> None:
        out_f, in_f = m.weight.shape

        def accept(idx: int) -> bool:
            node = self.g.nodes[idx]
            w = self.g.consts.get(node.input[1])
            if w is None:
                return False
            if node.op_type == "Gemm" and self.g.attrs[idx].get("transB", 0):
                return w.shape == (out_f, in_f)
            return w.shape == (in_f, out_f)

        idx = self._find({"MatMul", "Gemm"}, x, accept, lambda i: self.g.nodes[i].input[0])
        if idx is None:
            raise self._error(name, m, x, "MatMul/Gemm")
        self.s.used.add(idx)
        node = self.g.nodes[idx]
        w = self.g.consts[node.input[1]]
        weight = w if node.op_type == "Gemm" and self.g.attrs[idx].get("transB", 0) else w.T
        bias = self.g.consts.get(node.input[2]) if node.op_type == "Gemm" and len(node.input) > 2 else None
        if bias is None:
            bias, _ = self._following_bias(node.output[0], out_f)
        m.weight.copy_(_t(weight))
        self.s.assigned.add(f"{name}.weight")
        if m.bias is not None:
            bias = np.zeros(out_f, np.float32) if bias is None else bias
            m.bias.copy_(_t(bias))
            self.s.assigned.add(f"{name}.bias")
        elif bias is not None:
            raise OnnxMatchError(f"{name}: the graph has a bias but the Linear has none")

    def _layer_norm(self, name: str, m: nn.LayerNorm, x: np.ndarray) -> None:
        idx = self._find({"LayerNormalization"}, x, lambda i: True, lambda i: self.g.nodes[i].input[0])
        if idx is not None:
            node = self.g.nodes[idx]
            self.s.used.add(idx)
            gamma, beta = self.g.consts[node.input[1]], self.g.consts[node.input[2]]
            eps = self.g.attrs[idx].get("epsilon", 1e-5)
        else:
            gamma, beta, eps = self._decomposed_layer_norm(name, m, x)
        if abs(eps - m.eps) > 1e-9:
            raise OnnxMatchError(f"{name}: LayerNorm eps is {m.eps} in the model but {eps} in the graph")
        m.weight.copy_(_t(gamma))
        m.bias.copy_(_t(beta))
        self.s.assigned.update({f"{name}.weight", f"{name}.bias"})

    def _decomposed_layer_norm(self, name: str, m: nn.LayerNorm, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """ReduceMean -> Sub -> Pow -> ReduceMean -> Add(eps) -> Sqrt -> Div -> Mul(gamma) -> Add(beta)."""
        idx = self._find({"ReduceMean"}, x, lambda i: True, lambda i: self.g.nodes[i].input[0])
        if idx is None:
            raise self._error(name, m, x, "LayerNormalization/ReduceMean")
        chain = [idx]
        mean_out = self.g.nodes[idx].output[0]
        sub = next((i for i in self.g.consumers.get(mean_out, []) if self.g.nodes[i].op_type == "Sub"), None)
        if sub is None:
            raise OnnxMatchError(f"{name}: unrecognised LayerNorm decomposition (no Sub after ReduceMean)")
        chain.append(sub)
        centred = self.g.nodes[sub].output[0]
        ops = {self.g.nodes[i].op_type: i for i in self.g.consumers.get(centred, [])}
        if "Pow" not in ops or "Div" not in ops:
            raise OnnxMatchError(f"{name}: unrecognised LayerNorm decomposition (expected Pow and Div)")
        pow_i, div_i = ops["Pow"], ops["Div"]
        rm2 = self.g.consumers[self.g.nodes[pow_i].output[0]][0]
        add_eps = self.g.consumers[self.g.nodes[rm2].output[0]][0]
        eps_const, _ = self._const_operand(add_eps)
        sqrt_i = self.g.consumers[self.g.nodes[add_eps].output[0]][0]
        mul_i = self._single_consumer(self.g.nodes[div_i].output[0], "Mul")
        if eps_const is None or mul_i is None:
            raise OnnxMatchError(f"{name}: unrecognised LayerNorm decomposition (eps or gamma missing)")
        gamma = self._affine_operand(mul_i)
        add_b = self._single_consumer(self.g.nodes[mul_i].output[0], "Add")
        beta = self._affine_operand(add_b) if add_b is not None else None
        if gamma is None or beta is None:
            raise OnnxMatchError(f"{name}: unrecognised LayerNorm decomposition (affine missing)")
        self.s.used.update([*chain, pow_i, div_i, rm2, add_eps, sqrt_i, mul_i, add_b])
        return gamma.reshape(-1), beta.reshape(-1), float(eps_const.reshape(-1)[0])

    def _affine_operand(self, idx: int) -> np.ndarray | None:
        """The weight operand of a decomposed LayerNorm's ``Mul``/``Add``.

        Old paddle2onnx exports (PP-OCRv3 rec) reshape the 1-D weight to a shape computed from the
        activation at run time (``Reshape(w, Slice(Shape(x)))``); the reshape's constant input is the weight.
        """
        const, _ = self._const_operand(idx)
        if const is not None:
            return const
        for name in self.g.nodes[idx].input[:2]:
            producer = next((n for n in self.g.nodes if name in n.output), None)
            if producer is not None and producer.op_type == "Reshape" and producer.input[0] in self.g.consts:
                return self.g.consts[producer.input[0]]
        return None

    def _lab(self, name: str, m: LearnableAffineBlock, x: np.ndarray) -> None:
        def accept(idx: int) -> bool:
            const, _ = self._const_operand(idx)
            return const is not None and const.size == 1

        idx = self._find({"Mul"}, x, accept, lambda i: self._const_operand(i)[1])
        if idx is None:
            raise self._error(name, m, x, "Mul (learnable affine scale)")
        self.s.used.add(idx)
        scale = self._const_operand(idx)[0].reshape(1)
        bias = np.zeros(1, np.float32)
        add_i = self._single_consumer(self.g.nodes[idx].output[0], "Add")
        if add_i is not None:
            const, _ = self._const_operand(add_i)
            if const is not None and const.size == 1:
                bias = const.reshape(1)
                self.s.used.add(add_i)
        m.scale.copy_(_t(scale))
        m.bias.copy_(_t(bias))
        self.s.assigned.update({f"{name}.scale", f"{name}.bias"})

    def _error(self, name: str, m: nn.Module, x: np.ndarray, op: str) -> OnnxMatchError:
        return OnnxMatchError(
            f"No unused ONNX {op} node in {self.g.path.name} takes the input of '{name}' "
            f"({type(m).__name__}, input {tuple(x.shape)}). The graph is not this architecture, or not in "
            f"the model's form (deploy vs train)."
        )

    # -- driver --------------------------------------------------------------------------------
    def run(self, example: np.ndarray) -> set[str]:
        if len(self.g.input_names) != 1:
            raise OnnxMatchError(f"expected one graph input, got {self.g.input_names}")
        try:
            values = self.g.run({self.g.input_names[0]: example})
        except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types
            raise OnnxMatchError(
                f"{self.g.path.name} does not run on a {tuple(example.shape)} probe input: the graph is not this "
                f"architecture ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from e
        values[self.g.input_names[0]] = example
        self.s = _State(values=values)
        handles = []

        def pre_hook(name: str):
            @torch.no_grad()
            def hook(module: nn.Module, args: tuple) -> None:
                x_t = args[0]
                x = x_t.detach().cpu().numpy()
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    self._conv(name, module, x, transpose=isinstance(module, nn.ConvTranspose2d))
                elif isinstance(module, nn.BatchNorm2d):
                    self._bn(name, module, x, x_t.data_ptr())
                elif isinstance(module, nn.Linear):
                    self._linear(name, module, x)
                elif isinstance(module, nn.LayerNorm):
                    self._layer_norm(name, module, x)
                else:
                    self._lab(name, module, x)

            return hook

        def post_hook(name: str):
            def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
                bias = self.s.conv_bias_for.pop(name, None)
                if bias is not None:
                    self.s.pending_bias[out.data_ptr()] = (bias, name)

            return hook

        for name, module in self.model.named_modules():
            if isinstance(module, _UNITS):
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    handles.append(module.register_forward_hook(post_hook(name)))
        try:
            # grad mode keeps every unit a module call (inference fast paths fold some of them away)
            with torch.enable_grad():
                self.model(torch.from_numpy(example))
        finally:
            for h in handles:
                h.remove()
        if self.s.pending_bias:
            convs = [n for _, n in self.s.pending_bias.values()]
            raise OnnxMatchError(f"the graph has biases for {convs} but the model has neither bias nor BatchNorm there")
        unused = [
            f"{n.op_type} {n.name or n.output[0]}"
            for i, n in enumerate(self.g.nodes)
            if i not in self.s.used
            and (n.op_type in _PARAM_OPS or (n.op_type == "MatMul" and n.input[1] in self.g.consts))
        ]
        if unused:
            raise OnnxMatchError(f"{len(unused)} weight-carrying ONNX nodes were not used, e.g. {unused[:5]}")
        return self.s.assigned


def match_onnx_weights(
    graph: OnnxGraph, model: nn.Module, example: np.ndarray, rtol: float = 2e-3
) -> dict[str, torch.Tensor]:
    """Copy the weights of ``graph`` into ``model`` (in place) and return the resulting state dict.

    Args:
        graph: the loaded ONNX model.
        model: a pxtorch model in the same form (deploy/train) as the graph; put in eval mode.
        example: probe input ``[1, C, H, W]`` float32 (any values; random normal works).
        rtol: relative tolerance (of the tensor's max magnitude) for two activations to match.

    Raises:
        OnnxMatchError: a module found no matching node, or graph weights were left over, or a
            module parameter was never assigned.
    """
    model.eval()
    assigned = _Matcher(graph, model, rtol).run(np.ascontiguousarray(example, dtype=np.float32))
    state = model.state_dict()
    missing = [k for k in state if k not in assigned and not k.endswith("num_batches_tracked")]
    if missing:
        raise OnnxMatchError(f"{len(missing)} model tensors found no weights in the graph, e.g. {missing[:5]}")
    return {k: v.detach().clone() for k, v in state.items()}
