"""Device strings: PyTorch's (``cpu``, ``cuda``, ``cuda:1``) and PaddleX's (``gpu``, ``gpu:0``)."""

from __future__ import annotations

import torch

__all__ = ["parse_device"]


def parse_device(device: str | torch.device | None) -> torch.device:
    """Resolve a device string.

    ``None`` means PaddleX's default: ``cuda:0`` when CUDA is available, else ``cpu``. ``gpu``/``gpu:N``
    are PaddleX's spellings of ``cuda``/``cuda:N``. Asking for CUDA without it, or for a GPU index that
    does not exist, is an error (never a silent fall-back to CPU).
    """
    if isinstance(device, torch.device):
        return device
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    spec = str(device).strip().lower()
    kind, _, index = spec.partition(":")
    if kind == "gpu":
        kind = "cuda"
    if kind == "cpu" and not index:
        return torch.device("cpu")
    if kind != "cuda":
        raise ValueError(f"unsupported device {device!r}: use 'cpu', 'cuda', 'cuda:N', 'gpu' or 'gpu:N'")
    if index and not index.isdigit():
        if "," in index:
            raise ValueError(f"device {device!r}: several devices are not supported by one pipeline; create one each")
        raise ValueError(f"device {device!r}: the GPU index must be a number")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available (torch {torch.__version__})")
    n = int(index or 0)
    if n >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device("cuda", n)
