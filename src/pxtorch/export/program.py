"""``torch.export`` programs of registered models, stored without pickle: graph as JSON, weights as safetensors.

An export directory holds:

- ``program.json``: the ``ExportedProgram`` in torch's export schema (``torch._export.serde``, UTF-8
  JSON: ATen graph, signature, range constraints of the dynamic dimensions, module call graph),
  serialised with the state dict, the constants and the example inputs left out (that serialiser would
  write each of them as a ``torch.save`` pickle);
- ``model.safetensors``: every tensor the graph reads besides its input, under the program's names
  (``model.backbone...``): parameters and buffers (``ExportedProgram.state_dict``) and lifted tensor
  constants (``ExportedProgram.constants``); the metadata lists which are parameters and which constants;
- ``inference.yml``: the sidecar of the ONNX export (``Export.format: torch.export``).

Why not ``torch.export.save`` (``.pt2``): in torch 2.15 a PT2 archive stores plain tensors as raw bytes,
but tensor subclasses (weights or constants) are ``torch.save`` pickles read back with
``torch.load(weights_only=False)``, TorchBind and opaque constants are pickled, archives written by older
torch versions hold the whole state dict as one pickle, and example inputs (which ``torch.export.export``
records) are a ``torch.save`` pickle that loading unpickles. The project rule is that weights are never
unpickled, so the loader here uses no pickle at all: :func:`load_exported_program` parses the JSON into the
schema dataclasses, reads the tensors with ``safetensors`` and passes both to ``ExportedProgramDeserializer``
as dicts (it takes dicts as they are; only bytes would go through ``torch.load``); example inputs are not
stored. Export refuses what safetensors cannot hold (tensor subclasses, TorchBind objects).

The one kind of string torch's deserializer evaluates, symbolic-shape expressions (``sympy.sympify``, i.e.
``eval``), is checked before deserializing: only sympy/torch shape constructors
(``Mul(Integer(32), Symbol('s42', positive=True, integer=True))``), integers and quoted symbol names may
occur, so a crafted ``program.json`` cannot run code that way (operators are looked up by name in
``torch.ops``).

The program is ``_WithActivation(model)`` (softmax for recognisers and classifiers, as in the ONNX
export) with the ONNX export's dynamic batch (1..1024) and detector H, W (multiples of 32 up to 8192).
Recogniser widths differ from the ONNX export on purpose: any width in [16, 8192] rather than multiples
of 8. PaddleX's recognition resize gives any width (``int(48 * w / h)``), and a program checks its input
against its range constraints (ONNX Runtime does not), so a graph traced for ``8 * k`` would refuse them.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .onnx import SIDECAR_NAME, ExportError, _compare_with_eager, _require, _sidecar, _WithActivation, onnx_input_shapes

__all__ = ["PROGRAM_NAME", "WEIGHTS_NAME", "export_program", "load_exported_program", "load_program", "verify_program"]

_log = logging.getLogger(__name__)
PROGRAM_NAME = "program.json"
WEIGHTS_NAME = "model.safetensors"
_FORMAT = "pxtorch.torch_export.v1"


def _program_dynamic_shapes(axes: dict[int, str]) -> tuple[dict[int, Any]]:
    """``dynamic_shapes`` for ``torch.export.export`` from the ONNX axes ``{axis: name}`` (see module doc)."""
    dim = torch.export.Dim
    dims: dict[int, Any] = {}
    for axis, name in axes.items():
        if name == "batch":
            dims[axis] = dim("batch", min=1, max=1024)
        elif len(axes) == 3:  # detection H, W: multiples of 32, as the detector's resize produces
            dims[axis] = 32 * dim(f"{name}_32", min=1, max=256)
        else:  # recognition width: any; DYNAMIC lets export keep the floor divisions of the strided layers
            dims[axis] = dim.DYNAMIC(min=16, max=8192)
    return (dims,)


def _trace(model: nn.Module) -> tuple[torch.export.ExportedProgram, tuple[int, ...], dict[int, str]]:
    shape, axes = onnx_input_shapes(model)
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.enable_grad():  # the eval-mode, grad-free path folds BN into cached tensors: trace the plain one
        ep = torch.export.export(
            _WithActivation(model).eval(), (example,), dynamic_shapes=_program_dynamic_shapes(axes)
        )
    return ep, shape, axes


def _weights(ep: torch.export.ExportedProgram) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The program's tensors (plain, dense, contiguous copies) and the safetensors metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for kind, items in (("state dict", ep.state_dict), ("constants", ep.constants)):
        for key, value in items.items():
            if not isinstance(value, torch.Tensor) or type(value) not in (torch.Tensor, nn.Parameter):
                raise ExportError(
                    f"program {kind} entry {key!r} is a {type(value).__name__}: not storable as safetensors"
                )
            if key in tensors:
                raise ExportError(f"program tensor name {key!r} is both a weight and a constant")
            tensors[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    meta = {
        "format": _FORMAT,
        "parameters": json.dumps(sorted(ep.graph_signature.parameters)),
        "constants": json.dumps(sorted(ep.constants)),
    }
    return tensors, meta


def export_program(model: nn.Module, output_dir: str | Path, verify: bool = True) -> Path:
    """Write ``program.json``, ``model.safetensors`` and ``inference.yml`` to ``output_dir``; returns the JSON path.

    With ``verify`` the files are loaded back (:func:`load_program`) and run on two seeded inputs of
    different sizes (batch 2 and 3; other spatial sizes, for recognisers a width that is not a multiple of
    8), compared with eager PyTorch by :func:`verify_program`; a mismatch raises :class:`ExportError`.
    """
    from safetensors.torch import save_file
    from torch._export.serde.serialize import serialize

    _require(model)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    try:
        ep, shape, axes = _trace(model)
        artifact = serialize(ep, serialize_state_dict=False, serialize_constants=False, serialize_example_inputs=False)
    except Exception as e:
        raise ExportError(f"{model.architecture}: torch.export failed: {type(e).__name__}: {e}") from e
    tensors, meta = _weights(ep)
    path = out / PROGRAM_NAME
    path.write_bytes(artifact.exported_program)
    save_file(tensors, str(out / WEIGHTS_NAME), metadata=meta)
    _log.info("%s -> %s + %s (%d tensors)", model.architecture, path, WEIGHTS_NAME, len(tensors))
    files = {"program": PROGRAM_NAME, "weights": WEIGHTS_NAME}
    sidecar = _sidecar(model, axes, shape, "torch.export", torch=str(torch.__version__), files=files)
    (out / SIDECAR_NAME).write_text(yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if verify:
        rng = np.random.default_rng(0)
        bigger = list(shape)
        bigger[0] = 3
        for axis in axes:
            if axis >= 2:
                bigger[axis] = shape[axis] + (64 if len(axes) == 3 else 83)
        verify_program(model, out, [rng.standard_normal(s).astype(np.float32) for s in (shape, tuple(bigger))])
    return path


# Names that may occur in the symbolic-shape expressions of a program (sympy ``srepr`` of torch's shape
# arithmetic, evaluated by the deserializer with ``sympy.sympify``): constructors, assumptions, torch's functions.
_SYMPY_NAMES = frozenset(
    {
        *("Integer", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Symbol", "True", "False"),
        *("positive", "integer", "nonnegative", "negative", "nonzero", "real", "finite"),
        *("FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt"),
        *("CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "ToFloat"),
        *("IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "Identity"),
    }
)
_QUOTED_NAME = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'")
_EXPR_CHARS = re.compile(r"[A-Za-z0-9_\s(),=+\-]*")


def _check_expressions(node: Any, where: Path) -> None:
    """Raise unless every ``expr_str`` in the program JSON is a plain shape expression (see module doc)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            expr = item.get("expr_str")
            if isinstance(expr, str):
                bare = _QUOTED_NAME.sub("_", expr)
                names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)) - {"_"}
                if not _EXPR_CHARS.fullmatch(bare) or not names <= _SYMPY_NAMES:
                    raise ExportError(f"{where}: refusing symbolic expression {expr[:80]!r}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _directory(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.name == PROGRAM_NAME else path


def load_exported_program(path: str | Path) -> torch.export.ExportedProgram:
    """The ``ExportedProgram`` saved by :func:`export_program` (``path``: its directory or ``program.json``).

    Reads JSON and safetensors only; no pickle is involved, and the shape expressions torch evaluates are
    checked first (see the module docstring).
    """
    from safetensors import safe_open
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass

    folder = _directory(path)
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != _FORMAT:
            raise ExportError(
                f"{folder / WEIGHTS_NAME}: not a pxtorch program weight file (format {meta.get('format')!r})"
            )
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    params, constant_names = set(json.loads(meta["parameters"])), set(json.loads(meta["constants"]))
    state_dict: dict[str, torch.Tensor] = {
        k: nn.Parameter(v, requires_grad=False) if k in params else v
        for k, v in tensors.items()
        if k not in constant_names
    }
    constants = {k: tensors[k] for k in constant_names}
    text = (folder / PROGRAM_NAME).read_bytes()
    _check_expressions(json.loads(text), folder / PROGRAM_NAME)
    serialized = _bytes_to_dataclass(schema.ExportedProgram, text)
    ep = ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, None)
    sig = ep.graph_signature
    missing = (set(sig.parameters) | set(sig.buffers) | set(sig.lifted_tensor_constants)) - set(tensors)
    if missing:
        raise ExportError(
            f"{folder / WEIGHTS_NAME}: missing {len(missing)} tensors of the program, e.g. {min(missing)}"
        )
    return ep


def load_program(path: str | Path) -> nn.Module:
    """The saved program as a module: ``module(x)``, ``x`` ``[B, C, H, W]`` float32 -> the activated output.

    Detectors give ``[B, 1, H, W]`` probabilities, recognisers ``[B, T, classes]`` and classifiers
    ``[B, classes]`` softmax. Inputs outside the exported ranges raise (the program checks its constraints).
    """
    return load_exported_program(path).module()


def verify_program(
    model: nn.Module, program: str | Path | nn.Module, inputs: list[np.ndarray], atol: float | None = None
) -> float:
    """Max ``|program - eager|`` over ``inputs`` with the rule of :func:`~pxtorch.export.verify_onnx`.

    ``program``: an export directory, its ``program.json``, or a module from :func:`load_program`.
    Recognisers and classifiers must also keep the argmax. Raises :class:`ExportError` on a mismatch.
    """
    if isinstance(program, nn.Module):
        module, where = program, f"{model.architecture} program"
    else:
        module, where = load_program(program), str(_directory(program) / PROGRAM_NAME)

    def run(x: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(x)).float().numpy()

    return _compare_with_eager(model, run, inputs, atol, where, "program", argmax_ndims=(2, 3))
