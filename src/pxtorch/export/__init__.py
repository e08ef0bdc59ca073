"""Export of registered models: ONNX (verified against eager with onnxruntime) with a PaddleX-style sidecar."""

from .onnx import ExportError, export_onnx, onnx_input_shapes, verify_onnx

__all__ = ["ExportError", "export_onnx", "onnx_input_shapes", "verify_onnx"]
