"""``create_model``: the one entry point from a model name to a module."""

from __future__ import annotations

from typing import Any

from torch import nn

from ._registry import model_entrypoint

__all__ = ["create_model"]


def create_model(model_name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a registered model, optionally with its official weights.

    Args:
        model_name: canonical (``"pp_ocrv5_mobile_det"``), PaddleX (``"PP-OCRv5_mobile_det"``) or
            PaddleOCR (``"ch_ppocr_mobile_v2.0_cls"``) name; unknown names raise
            :class:`~pxtorch._registry.UnknownModelError` listing the closest ones.
        pretrained: load the official PaddlePaddle weights (see :mod:`pxtorch.hub` for where they come
            from). The model is built in the form of the weights (``deploy=True`` for PP-OCRv4/v5).
        **kwargs: model options: ``deploy`` (re-parameterised form), ``cache_dir`` (pxtorch cache root),
            and architecture overrides such as ``num_classes``.

    Example:
        >>> det = pxtorch.create_model("PP-OCRv5_mobile_det", pretrained=True)
        >>> prob = det(torch.zeros(1, 3, 640, 640))  # [1, 1, 640, 640]
    """
    return model_entrypoint(model_name)(pretrained=pretrained, **kwargs)
