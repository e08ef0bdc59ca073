"""Inference engines for pipeline models (PaddleOCR 3.5's ``engine`` / ``engine_config``).

- ``"eager"`` (default): the PyTorch module as loaded.
- ``"onnxruntime"``: the model is exported with :func:`pxtorch.export.export_onnx` (verified against eager)
  into a temporary directory and run by onnxruntime on the CPU. ``engine_config``: ``num_threads``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["ENGINES", "OnnxRuntimeModel", "apply_engine"]

ENGINES = ("eager", "onnxruntime")


class OnnxRuntimeModel(nn.Module):
    """A loaded pxtorch model exported to ONNX and run by onnxruntime.

    Keeps the model's metadata (``architecture``, ``pretrained_cfg``, ``charset``, ``model_args``). Its
    output already went through the model's activation (``outputs_probabilities``): probabilities for
    recognisers/classifiers, the probability map for detectors.
    """

    outputs_probabilities = True

    def __init__(self, model: nn.Module, num_threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        from .export import export_onnx

        for attr in ("architecture", "pretrained_cfg", "model_args", "charset", "weights_source"):
            setattr(self, attr, getattr(model, attr, None))
        with tempfile.TemporaryDirectory(prefix="pxtorch-onnx-") as tmp:
            path = export_onnx(model.cpu().eval(), Path(tmp))
            options = ort.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = int(num_threads)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)


def apply_engine(
    model: nn.Module, engine: str | None, engine_config: dict[str, Any] | None, device: torch.device
) -> nn.Module:
    """``model`` run by ``engine`` (``None`` = ``"eager"``)."""
    engine = engine or "eager"
    config = dict(engine_config or {})
    if engine == "eager":
        if config:
            raise ValueError(f"engine 'eager' takes no engine_config, got {sorted(config)}")
        return model
    if engine == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"engine 'onnxruntime' runs on the CPU in this version; got device {device}")
        unknown = set(config) - {"num_threads"}
        if unknown:
            raise ValueError(f"unknown engine_config keys for onnxruntime: {sorted(unknown)} (known: num_threads)")
        return OnnxRuntimeModel(model, num_threads=config.get("num_threads"))
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
