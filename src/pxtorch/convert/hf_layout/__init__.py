"""PaddlePaddle's official Hugging Face layout (``PaddlePaddle/<Model>_safetensors``) <-> pxtorch.

Those checkpoints use transformers' module names (``pp_ocrv5_mobile_det``, ``pp_ocrv6_small_rec``,
``hgnet_v2`` ... classes in transformers >= 5.4): a ``config.json`` with ``model_type`` and a
``model.safetensors``. Each model family registers one :class:`HFLayout` that maps that state dict
onto a pxtorch module and back; the maps are plain functions over state dicts, so transformers
itself is never needed at runtime (tests use it as the reference).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..._checkpoint import CheckpointError

__all__ = [
    "HFLayout",
    "LayoutError",
    "fit_state",
    "get_layout",
    "layout_for_architecture",
    "list_layouts",
    "register_layout",
]

StateDict = dict[str, torch.Tensor]


class LayoutError(CheckpointError):
    """A checkpoint or model that the official Hub layout cannot express (message says what and why).

    A :class:`~pxtorch.CheckpointError` (hence a ``ValueError``): callers catching malformed checkpoints
    catch these too.
    """


@dataclass(frozen=True)
class HFLayout:
    """One family's key map.

    Attributes:
        model_type: transformers' ``config.json`` ``model_type`` (e.g. ``"pp_ocrv5_mobile_det"``).
        architectures: the pxtorch architectures this layout serves.
        to_pxtorch: ``(hf_state, hf_config) -> (architecture, create_model kwargs, pxtorch state)``;
            the kwargs say which form to build (e.g. ``{"deploy": False}``) and any size that differs
            from the registry default (``num_classes``). When several pxtorch architectures share one
            ``model_type``, ``hf_config["pxtorch_architecture"]`` (if present) picks one of them.
        from_pxtorch: ``(model) -> (hf_config, hf_state)``; ``hf_config`` is a complete transformers
            config dict (``model_type`` and ``architectures`` included) that loads in transformers.
            Deploy-form (re-parameterised) models are written in the training form transformers
            uses, with function-preserving values.
    """

    model_type: str
    architectures: tuple[str, ...]
    to_pxtorch: Callable[[StateDict, dict[str, Any]], tuple[str, dict[str, Any], StateDict]]
    from_pxtorch: Callable[[nn.Module], tuple[dict[str, Any], StateDict]]


_LAYOUTS: dict[str, HFLayout] = {}


def register_layout(layout: HFLayout) -> HFLayout:
    """Add ``layout`` (one per ``model_type``; a duplicate raises)."""
    if layout.model_type in _LAYOUTS:
        raise ValueError(f"a Hub layout for model_type '{layout.model_type}' is already registered")
    _LAYOUTS[layout.model_type] = layout
    return layout


def list_layouts() -> list[str]:
    """The transformers ``model_type`` names pxtorch reads and writes."""
    _load_families()
    return sorted(_LAYOUTS)


def get_layout(model_type: str) -> HFLayout:
    """The layout of transformers ``model_type``; unknown types raise :class:`LayoutError` listing the known ones."""
    _load_families()
    try:
        return _LAYOUTS[model_type]
    except KeyError:
        close = difflib.get_close_matches(str(model_type), sorted(_LAYOUTS), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise LayoutError(
            f"no pxtorch mapping for transformers model_type '{model_type}'.{hint} Known: {', '.join(sorted(_LAYOUTS))}"
        ) from None


def layout_for_architecture(architecture: str) -> HFLayout:
    """The layout that serves pxtorch ``architecture`` (raises :class:`LayoutError` when none does)."""
    _load_families()
    for layout in _LAYOUTS.values():
        if architecture in layout.architectures:
            return layout
    raise LayoutError(f"'{architecture}' has no official Hugging Face layout in pxtorch")


def fit_state(
    target: dict[str, torch.Tensor],
    hf_state: StateDict,
    hf_key: Callable[[str], str],
    where: str,
    ignored: set[str] | None = None,
) -> StateDict:
    """Take every tensor of pxtorch state ``target`` (shapes only) from ``hf_state`` under ``hf_key(name)``.

    Strict both ways: missing keys, keys of ``hf_state`` nobody asked for (beyond ``ignored``) and shape
    mismatches raise one :class:`LayoutError` naming them (``where`` says which checkpoint and model).
    BatchNorm step counters that transformers leaves out are filled with 0.
    """
    out: StateDict = {}
    missing: list[str] = []
    shapes: list[str] = []
    used = set(ignored or ())
    for key, ref in target.items():
        name = hf_key(key)
        used.add(name)
        tensor = hf_state.get(name)
        if tensor is None:
            if key.endswith("num_batches_tracked"):  # transformers may leave these out
                out[key] = torch.tensor(0)
            else:
                missing.append(name)
            continue
        if tuple(tensor.shape) != tuple(ref.shape):
            shapes.append(f"{name}: checkpoint {tuple(tensor.shape)} vs {tuple(ref.shape)}")
            continue
        out[key] = tensor
    unexpected = [k for k in hf_state if k not in used]
    if missing or unexpected or shapes:

        def part(title: str, items: list[str]) -> str:
            more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
            return f"\n  {title} ({len(items)}): {', '.join(items[:8])}{more}" if items else ""

        raise LayoutError(
            f"{where}:"
            + part("missing keys", missing)
            + part("unexpected keys", unexpected)
            + part("shape mismatches", shapes)
        )
    return out


def _load_families() -> None:
    """Import the family modules (each registers its layouts on import)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
