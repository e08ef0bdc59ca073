"""Greedy CTC decoding (PaddleX ``CTCLabelDecode``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ctc_greedy_decode"]


def ctc_greedy_decode(probs: np.ndarray, labels: Sequence[str], blank: int = 0) -> list[tuple[str, float]]:
    """Decode ``[B, T, C]`` per-step probabilities.

    Per step take the argmax; drop repeats, then blanks. The text joins the kept labels; the score is
    the mean of the kept steps' max probability, 0.0 when nothing is kept.
    """
    if probs.ndim != 3:
        raise ValueError(f"expected [B, T, C] probabilities, got shape {probs.shape}")
    idx = probs.argmax(axis=2)
    conf = probs.max(axis=2)
    out = []
    for ids, cs in zip(idx, conf, strict=True):
        keep = np.ones(len(ids), dtype=bool)
        keep[1:] = ids[1:] != ids[:-1]
        keep &= ids != blank
        text = "".join(labels[i] for i in ids[keep])
        out.append((text, float(cs[keep].mean()) if keep.any() else 0.0))
    return out
