"""Feature declarations (timm's ``feature_info``): which module outputs which channels at which stride."""

from __future__ import annotations

__all__ = ["prefixed_feature_info"]


def prefixed_feature_info(info: list[dict], prefix: str = "backbone") -> list[dict]:
    """A submodule's ``feature_info`` with module paths made relative to the model holding it.

    Each entry is ``dict(num_chs=int, reduction=int | (h, w), module="dotted.path")``.
    """
    return [dict(f, module=f"{prefix}.{f['module']}") for f in info]
