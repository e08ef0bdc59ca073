"""Model-name registry: the only string registry in pxtorch (blocks, necks, heads are plain Python).

Canonical names are snake_case (``pp_ocrv4_mobile_det``). Every entry also answers to its
PaddleX name (``PP-OCRv4_mobile_det``) and, for models outside PaddleX's list, its PaddleOCR name
(``ch_ppocr_mobile_v2.0_cls``). Lookups are case-insensitive and treat ``-``/``.`` like ``_``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._pretrained import PretrainedCfg

__all__ = [
    "UnknownModelError",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "model_entrypoint",
    "register_model",
    "resolve_model_name",
]

_entrypoints: dict[str, Callable[..., Any]] = {}
_pretrained_cfgs: dict[str, PretrainedCfg] = {}
_aliases: dict[str, str] = {}  # normalised alias -> canonical name


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered; the message lists the closest names."""


def _normalise(name: str) -> str:
    return re.sub(r"[-.\s]+", "_", name.strip().lower())


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model entrypoint under its function name (timm style).

    The defining module must hold ``default_cfgs[fn.__name__]``: the entry's :class:`PretrainedCfg`.
    Registering a name (or alias) twice raises ``ValueError``.
    """
    name = fn.__name__
    module = sys.modules[fn.__module__]
    cfg = getattr(module, "default_cfgs", {}).get(name)
    if cfg is None:
        raise ValueError(f"{fn.__module__}.default_cfgs has no entry for model '{name}'")
    if cfg.architecture != name:
        raise ValueError(f"default_cfgs['{name}'].architecture is '{cfg.architecture}'")
    if name in _entrypoints:
        raise ValueError(f"An entry is already registered under the name '{name}'.")
    for alias in cfg.names:
        key = _normalise(alias)
        if _aliases.get(key, name) != name:
            raise ValueError(f"Alias '{alias}' of '{name}' is already taken by '{_aliases[key]}'.")
    _entrypoints[name] = fn
    _pretrained_cfgs[name] = cfg
    for alias in cfg.names:
        _aliases[_normalise(alias)] = name
    if hasattr(module, "__all__") and name not in module.__all__:
        module.__all__.append(name)
    return fn


def _all_names() -> list[str]:
    names = set(_entrypoints)
    for cfg in _pretrained_cfgs.values():
        names.update(cfg.names)
    return sorted(names)


def resolve_model_name(name: str) -> str:
    """Map a canonical, PaddleX or PaddleOCR name to the canonical registry name.

    Raises:
        UnknownModelError: the name is not registered; the message lists the closest names.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"Model name must be a non-empty string, got {name!r}.")
    canonical = _aliases.get(_normalise(name))
    if canonical is not None:
        return canonical
    candidates = _all_names()
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(_normalise(name), [_normalise(c) for c in candidates], n=5, cutoff=0.5)
        close = [c for c in candidates if _normalise(c) in close]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown model '{name}'.{hint} See pxtorch.list_models() for all {len(_entrypoints)} models."
    )


def is_model(name: str) -> bool:
    """True when ``name`` (canonical or alias) is registered."""
    return isinstance(name, str) and _normalise(name) in _aliases


def model_entrypoint(name: str) -> Callable[..., Any]:
    """The builder function registered for ``name`` (any accepted spelling)."""
    return _entrypoints[resolve_model_name(name)]


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The :class:`PretrainedCfg` of ``name`` (any accepted spelling)."""
    return _pretrained_cfgs[resolve_model_name(name)]


def list_models(
    filter: str | Sequence[str] = "",
    exclude: str | Sequence[str] = "",
    *,
    task: str | None = None,
) -> list[str]:
    """Canonical names of registered models, sorted.

    Args:
        filter: fnmatch pattern(s), matched case-insensitively against every name of an entry
            (``"*ocrv5*"``, ``"PP-OCRv4*"``).
        exclude: pattern(s) removing entries.
        task: keep only one task (``"text_detection"``, ``"text_recognition"``, ``"textline_orientation"``).
    """
    includes = [filter] if isinstance(filter, str) else list(filter)
    excludes = [exclude] if isinstance(exclude, str) else list(exclude)
    includes = [p for p in includes if p]
    excludes = [p for p in excludes if p]

    def matches(name: str, patterns: list[str]) -> bool:
        names = [n.lower() for n in _pretrained_cfgs[name].names]
        return any(fnmatch.fnmatchcase(n, p.lower()) for n in names for p in patterns)

    out = []
    for name in sorted(_entrypoints):
        if includes and not matches(name, includes):
            continue
        if excludes and matches(name, excludes):
            continue
        if task is not None and _pretrained_cfgs[name].task != task:
            continue
        out.append(name)
    return out
