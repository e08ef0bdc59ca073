"""Export of registered models, each with a PaddleX-style ``inference.yml`` sidecar and verified against eager.

- ONNX (:func:`export_onnx`, checked with onnxruntime);
- ``torch.export`` programs (:func:`export_program`): graph as JSON plus ``model.safetensors``, loaded
  without pickle by :func:`load_program`;
- ExecuTorch (:func:`export_executorch`): ``model.pte`` with the XNNPACK delegate, checked with
  ExecuTorch's runtime. Needs ``pip install pxtorch[edge]``; ``executorch`` is imported only when called.
"""

from .executorch import executorch_input_ranges, export_executorch, load_executorch, verify_executorch
from .onnx import ExportError, export_onnx, onnx_input_shapes, verify_onnx
from .program import export_program, load_exported_program, load_program, verify_program

__all__ = [
    "ExportError",
    "executorch_input_ranges",
    "export_executorch",
    "export_onnx",
    "export_program",
    "load_executorch",
    "load_exported_program",
    "load_program",
    "onnx_input_shapes",
    "verify_executorch",
    "verify_onnx",
    "verify_program",
]
