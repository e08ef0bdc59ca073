"""ExecuTorch export (``model.pte``, XNNPACK delegate) of registered models, checked with ExecuTorch's runtime.

The program is ``_WithActivation(model)`` as in the ONNX export (probability map for detectors, softmax for
recognisers and classifiers), traced with ``torch.export``, lowered with ``XnnpackPartitioner`` (float32)
and written with a sidecar ``inference.yml`` (``Export.format: executorch``). Needs the ``executorch``
package (``pip install pxtorch[edge]``).

Shapes are dynamic within bounds, because ExecuTorch plans activation memory for the largest input the
program admits (allocated when the method is loaded):

- detectors: batch 1 (``max_batch``), H and W multiples of 32 up to ``max_size`` (default 1920: an arena
  of 204 MB for PP-OCRv5 mobile det; 960: 51 MB, 4000: 885 MB);
- recognisers: batch 1..``max_batch`` (default 6, the OCR pipeline's batch) and any width in
  [16, ``max_size``] (default: the preprocessing's ``max_width``, 3200; 172 MB for PP-OCRv5 mobile rec); not
  only multiples of 8 as in the ONNX export, since the recognition resize gives any width;
- classifiers: batch 1..``max_batch`` (default 6) at the fixed 48x192 (1 MB).

The runtime refuses an input with more elements than the largest admitted one, but checks no axis on its
own: keep inputs within ``Export.input_range`` of the sidecar.

The sidecar lowers ``PreProcess.max_side_limit`` (detection) or ``PreProcess.max_width`` (recognition) to
the bound where it is smaller, so that inputs prepared from the sidecar fit the program.

Layout fix: pxtorch models convert their input to channels-last memory format (fast on CPU in eager
PyTorch), so every traced activation carries channels-last strides, the detector's 1-channel output
``[B, 1, H, W]`` included. With one channel those strides are both NCHW- and NHWC-contiguous: ExecuTorch's
memory planning gives the output the dim order (0, 2, 3, 1) while XNNPACK's layout pass takes an
ambiguous tensor as NCHW, and the runtime then resizes the delegate's output to (B, H, 1, W) ("Attempted
to resize a static tensor", or with dynamic shapes a wrongly shaped result). The export therefore drops
the memory-format conversions from the traced graph (``aten.contiguous``/``clone`` with
``memory_format``: the values are unchanged) and re-traces it, so all tensors are plain NCHW; XNNPACK still
runs its convolutions in NHWC, with the transposes inside the delegate. Nearest-neighbour upsampling (the
detector's FPN) has no XNNPACK lowering and runs in ExecuTorch's portable kernels between delegates.

Verification runs the ``.pte`` with ``executorch.runtime.Runtime`` on two seeded inputs of different
sizes and compares with eager PyTorch under the rule of :func:`~pxtorch.export.verify_onnx` (1e-4 on
probabilities, the ill-conditioned-output rule, same argmax for recognisers and classifiers); XNNPACK
meets the standard threshold, nothing is loosened. Measured max |Δ| against eager (seeded random inputs
at several sizes and the demo image or its crops): detectors 7e-5 on the demo image (random inputs: 4e-8),
recognisers 2.1e-5 with the argmax unchanged, except two outputs of one PP-OCRv4 demo crop at 5.7e-4:
the CTC step that already moves 6.8e-4 between float32 and float64 in PyTorch (the ill-conditioned rule
of ``verify_onnx`` accepts it against float64); classifier 1.5e-6.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .onnx import SIDECAR_NAME, ExportError, _compare_with_eager, _require, _sidecar, _WithActivation, onnx_input_shapes

__all__ = ["PTE_NAME", "executorch_input_ranges", "export_executorch", "load_executorch", "verify_executorch"]

_log = logging.getLogger(__name__)
PTE_NAME = "model.pte"
_EDGE_HINT = "ExecuTorch export needs the 'executorch' package: pip install pxtorch[edge]"


def _require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
    except ImportError as e:
        raise ImportError(_EDGE_HINT) from e


def executorch_input_ranges(
    model: nn.Module, max_batch: int | None = None, max_size: int | None = None
) -> dict[str, tuple[int, int]]:
    """Admitted ``(min, max)`` per input axis name (``batch``, ``height``, ``width``); defaults in the module doc."""
    p = model.pretrained_cfg.preprocess
    _, axes = onnx_input_shapes(model)
    det = p.resize == "det_limit_side"
    batch = max_batch if max_batch is not None else (1 if det else 6)
    if batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {batch}")
    ranges = {"batch": (1, batch)}
    if det:
        size = max_size if max_size is not None else 1920
        if size < 32:
            raise ValueError(f"max_size must be >= 32 for a detector, got {size}")
        ranges.update(height=(32, size // 32 * 32), width=(32, size // 32 * 32))
    elif "width" in axes.values():
        size = max_size if max_size is not None else (p.max_width or 3200)
        if size < 16:
            raise ValueError(f"max_size must be >= 16 for a recogniser, got {size}")
        ranges["width"] = (16, size)
    return ranges


def _shapes(model: nn.Module, ranges: dict[str, tuple[int, int]]) -> tuple[tuple[int, ...], tuple[dict[int, Any]]]:
    """Example input shape and ``dynamic_shapes`` for ``torch.export.export``."""
    dim = torch.export.Dim
    shape, axes = onnx_input_shapes(model)
    example = list(shape)
    dims: dict[int, Any] = {}
    for axis, name in axes.items():
        low, high = ranges[name]
        if name == "batch":
            example[0] = min(2, high)
            if high > 1:  # a batch dim needs an example of 2 (export specialises 1)
                dims[0] = dim("batch", min=1, max=high)
        elif name in ("height", "width") and "height" in ranges:  # detector: multiples of 32
            example[axis] = min(example[axis], high)
            dims[axis] = 32 * dim(f"{name}_32", min=low // 32, max=high // 32)
        else:  # recogniser width: any
            example[axis] = min(example[axis], high)
            dims[axis] = dim.DYNAMIC(min=low, max=high)
    return tuple(example), (dims,)


def _drop_memory_format_hints(ep: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """``ep`` without ``contiguous``/``clone`` nodes that only change the memory format, re-traced (module doc)."""
    graph = ep.graph_module.graph
    hints = (torch.ops.aten.contiguous.default, torch.ops.aten.clone.default)
    dropped = 0
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in hints and node.kwargs.get("memory_format") is not None:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            dropped += 1
    if not dropped:
        return ep
    ep.graph_module.recompile()
    return ep.run_decompositions({})  # re-trace: strides in the node metadata become those of NCHW tensors


def export_executorch(
    model: nn.Module,
    output_dir: str | Path,
    verify: bool = True,
    *,
    max_batch: int | None = None,
    max_size: int | None = None,
) -> Path:
    """Write ``<output_dir>/model.pte`` (XNNPACK) and ``inference.yml`` for ``model``; returns the ``.pte`` path.

    ``max_batch``/``max_size`` bound the dynamic input axes (see :func:`executorch_input_ranges`). With
    ``verify`` the file runs in ExecuTorch's runtime on two seeded inputs of different sizes and is
    compared with eager PyTorch (:func:`verify_executorch`); a mismatch raises :class:`ExportError`.
    """
    _require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    _require(model)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    ranges = executorch_input_ranges(model, max_batch, max_size)
    shape, dynamic_shapes = _shapes(model, ranges)
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.enable_grad():  # trace the plain eval path, not the grad-free one with cached BN folds
            ep = torch.export.export(_WithActivation(model).eval(), (example,), dynamic_shapes=dynamic_shapes)
        ep = _drop_memory_format_hints(ep)
        program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as e:
        raise ExportError(f"{model.architecture}: ExecuTorch export failed: {type(e).__name__}: {e}") from e
    path = out / PTE_NAME
    path.write_bytes(program.buffer)
    _log.info("%s -> %s (%.1f MB)", model.architecture, path, path.stat().st_size / 1e6)
    _, axes = onnx_input_shapes(model)
    dynamic = {i: n for i, n in axes.items() if i in dynamic_shapes[0]}
    sidecar = _sidecar(
        model,
        dynamic,
        shape,
        "executorch",
        executorch=importlib.metadata.version("executorch"),
        backend="xnnpack",
        file=PTE_NAME,
        input_range={name: list(r) for name, r in ranges.items()},
    )
    pre = sidecar["PreProcess"]
    for key, name in (("max_side_limit", "height"), ("max_width", "width")):
        if key in pre and name in ranges:
            pre[key] = min(pre[key], ranges[name][1])
    (out / SIDECAR_NAME).write_text(yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if verify:
        rng = np.random.default_rng(0)
        bigger = list(shape)
        bigger[0] = min(3, ranges["batch"][1])
        for axis, name in axes.items():
            if axis >= 2:
                step = 64 if "height" in ranges else 83
                bigger[axis] = min(shape[axis] + step, ranges[name][1])
        verify_executorch(model, path, [rng.standard_normal(s).astype(np.float32) for s in (shape, tuple(bigger))])
    return path


def load_executorch(path: str | Path) -> Any:
    """The ``forward`` method of a ``.pte`` in ExecuTorch's runtime: ``method.execute([x])[0]``."""
    _require_executorch()
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(Path(path)).load_method("forward")
    if method is None:
        raise ExportError(f"{path}: no 'forward' method")
    return method


def verify_executorch(model: nn.Module, path: str | Path, inputs: list[np.ndarray], atol: float | None = None) -> float:
    """Max ``|executorch - eager|`` over ``inputs`` with the rule of :func:`~pxtorch.export.verify_onnx`.

    Recognisers and classifiers must also keep the argmax. Raises :class:`ExportError` on a mismatch and
    when the runtime refuses an input: it checks the element count against the largest admitted input,
    not each axis against its range (keep inputs within ``Export.input_range`` of the sidecar).
    """
    method = load_executorch(path)

    def run(x: np.ndarray) -> np.ndarray:
        try:
            return method.execute([torch.from_numpy(x)])[0].float().numpy()
        except RuntimeError as e:
            raise ExportError(f"{path}: ExecuTorch failed on input {x.shape}: {e}") from e

    return _compare_with_eager(model, run, inputs, atol, str(path), "executorch", argmax_ndims=(2, 3))
