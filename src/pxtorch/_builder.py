"""Model construction shared by every family: architecture args + metadata + optional pretrained weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ._registry import get_pretrained_cfg

__all__ = ["build_model"]


def build_model(
    build_fn: Callable[..., nn.Module],
    variant: str,
    pretrained: bool,
    arch_kwargs: dict[str, Any],
    kwargs: dict[str, Any],
) -> nn.Module:
    """Build ``variant`` and attach ``architecture``, ``model_args`` and ``pretrained_cfg``.

    Args:
        build_fn: family constructor taking the architecture numbers plus user options.
        arch_kwargs: the variant's ``model_cfgs`` entry (fixed architecture numbers).
        kwargs: user options (``deploy``, ``num_classes``, ...); they are recorded in
            ``model.model_args`` so ``save_pretrained``/``from_pretrained`` rebuild the same module.
            ``cache_dir`` (not recorded) is the pxtorch cache root used for pretrained weights.
        pretrained: load the official weights (see :func:`pxtorch.hub.load_pretrained`). The model is
            then built in the form the weights come in unless ``deploy`` is given.
    """
    cfg = get_pretrained_cfg(variant)
    kwargs = dict(kwargs)
    cache_dir = kwargs.pop("cache_dir", None)
    if pretrained:
        kwargs.setdefault("deploy", cfg.weight_form == "deploy")
    unknown = sorted(set(kwargs) - _accepted_args(build_fn))
    if unknown:
        raise TypeError(
            f"{variant}: unexpected model argument(s) {unknown}; accepted: {sorted(_accepted_args(build_fn))}"
        )
    model = build_fn(**{**arch_kwargs, **kwargs})
    model.architecture = variant
    model.model_args = kwargs
    model.pretrained_cfg = cfg
    model.charset = None
    if pretrained:
        from .hub import load_pretrained

        load_pretrained(model, cache_dir)
    return model


def _accepted_args(fn: Callable[..., Any]) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)
