"""Fitting a pretrained classifier head to a dataset's vocabulary.

A PaddleX recognition dataset brings its own ``dict.txt``. When it differs from the dictionary the
pretrained weights were trained with, the CTC head is rebuilt for the new class list and every row
whose label also exists in the old list (blank, space and shared characters) is copied, so the
pretrained knowledge of those characters survives; rows of new characters start at zero weight with
the smallest old bias, so the adapted model starts from the pretrained predictions. (PaddleOCR instead
drops the whole head when the shapes differ.)
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from ..processing.charset import Charset

__all__ = ["CharsetMode", "adapt_classifier", "adapt_ctc_head", "merge_charsets"]

CharsetMode = Literal["auto", "replace", "extend", "pretrained"]


def merge_charsets(pretrained: Charset | None, dataset: Charset | None, mode: CharsetMode) -> Charset:
    """The charset to train with.

    - ``"pretrained"``: keep the model's dictionary (dataset characters outside it are dropped from labels);
    - ``"replace"``: the dataset's ``dict.txt`` exactly (PaddleX's behaviour);
    - ``"extend"``: the pretrained dictionary followed by the dataset characters it lacks;
    - ``"auto"``: ``"replace"`` when the dataset brings a dictionary, else ``"pretrained"``.
    """
    if mode == "auto":
        mode = "replace" if dataset is not None else "pretrained"
    if mode == "pretrained" or (mode == "extend" and dataset is None):
        if pretrained is None:
            raise ValueError("no charset: the model has no pretrained dictionary and the dataset has no dict.txt")
        return pretrained
    if dataset is None:
        raise ValueError(f"charset mode {mode!r} needs the dataset's dict.txt")
    if mode == "replace" or pretrained is None:
        return dataset
    if mode == "extend":
        known = set(pretrained.characters)
        extra = [c for c in dataset.characters if c not in known]
        return Charset([*pretrained.characters, *extra], pretrained.use_space_char)
    raise ValueError(f"unknown charset mode {mode!r}; use auto, replace, extend or pretrained")


def _new_linear_like(old: nn.Linear, out_features: int) -> nn.Linear:
    new = nn.Linear(old.in_features, out_features, bias=old.bias is not None)
    return new.to(device=old.weight.device, dtype=old.weight.dtype)


@torch.no_grad()
def _copy_rows(old: nn.Linear, new: nn.Linear, mapping: list[tuple[int, int]]) -> None:
    """Copy ``old`` rows into ``new`` (``(new_row, old_row)`` pairs).

    Rows of new classes start at zero weight with the smallest old bias: their logit is a constant at the
    bottom of the trained classes' range, so the adapted model starts from the pretrained predictions
    (a new class wins only where every old logit falls below that constant). A linear layer learns from
    zero rows: their gradient is the input features.
    """
    if not mapping:  # nothing to keep: PyTorch's default initialisation, as a model built from scratch
        return
    new.weight.zero_()
    if new.bias is not None:
        new.bias.fill_(float(old.bias.min()) if old.bias is not None else 0.0)
    dst = torch.tensor([m[0] for m in mapping], device=new.weight.device)
    src = torch.tensor([m[1] for m in mapping], device=old.weight.device)
    new.weight[dst] = old.weight[src]
    if new.bias is not None and old.bias is not None:
        new.bias[dst] = old.bias[src]


def adapt_ctc_head(model: nn.Module, charset: Charset) -> int:
    """Rebuild ``model.head.fc`` for ``charset`` (in place), keeping rows of labels the old charset had.

    Updates ``model.charset``, ``model.model_args["num_classes"]`` and ``model.pretrained_cfg`` so the
    exported checkpoint describes the new head. Returns the number of rows carried over.
    """
    old_charset: Charset | None = model.charset
    fc: nn.Linear = model.head.fc
    if old_charset is not None and old_charset == charset:
        return fc.out_features
    mapping: list[tuple[int, int]] = []
    if old_charset is not None:
        old_index = {label: i for i, label in enumerate(old_charset.labels)}
        mapping = [(i, old_index[lab]) for i, lab in enumerate(charset.labels) if lab in old_index]
    new = _new_linear_like(fc, charset.num_classes)
    _copy_rows(fc, new, mapping)
    model.head.fc = new
    _set_num_classes(model, charset.num_classes)
    model.charset = charset
    return len(mapping)


def adapt_classifier(model: nn.Module, labels: list[str]) -> int:
    """Rebuild ``model.head.fc`` for ``labels`` keeping the rows of class names the model already had."""
    old_labels = list(model.pretrained_cfg.labels or [])
    fc: nn.Linear = model.head.fc
    if old_labels == list(labels):
        return len(labels)
    index = {name: i for i, name in enumerate(old_labels)}
    mapping = [(i, index[name]) for i, name in enumerate(labels) if name in index]
    new = _new_linear_like(fc, len(labels))
    _copy_rows(fc, new, mapping)
    model.head.fc = new
    _set_num_classes(model, len(labels), labels=tuple(labels))
    return len(mapping)


def _set_num_classes(model: nn.Module, num_classes: int, **cfg_updates: object) -> None:
    model.model_args = {**model.model_args, "num_classes": num_classes}
    model.pretrained_cfg = dataclasses.replace(model.pretrained_cfg, num_classes=num_classes, **cfg_updates)
