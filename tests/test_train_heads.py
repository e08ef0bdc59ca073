"""Head adaptation to a dataset's vocabulary, and the warm-up cosine schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import pxtorch
from pxtorch.processing.charset import Charset
from pxtorch.training.heads import adapt_classifier, adapt_ctc_head, merge_charsets
from pxtorch.training.schedulers import warmup_cosine


def _tiny_rec(chars: list[str]) -> torch.nn.Module:
    model = pxtorch.create_model("pp_ocrv4_mobile_rec", num_classes=len(chars) + 2)
    model.charset = Charset(chars)
    return model


def test_merge_charsets_modes() -> None:
    old, new = Charset(["a", "b", "c"]), Charset(["b", "x"])
    assert merge_charsets(old, new, "auto") == new
    assert merge_charsets(old, None, "auto") == old
    assert merge_charsets(old, new, "replace") == new
    assert merge_charsets(old, new, "pretrained") == old
    assert merge_charsets(old, new, "extend").characters == ["a", "b", "c", "x"]
    with pytest.raises(ValueError, match=r"dict\.txt"):
        merge_charsets(old, None, "replace")
    with pytest.raises(ValueError, match="unknown charset mode"):
        merge_charsets(old, new, "bogus")  # type: ignore[arg-type]


def test_adapt_ctc_head_copies_rows_by_label() -> None:
    model = _tiny_rec(["a", "b", "c"])  # labels: blank a b c ' '
    old_w = model.head.fc.weight.detach().clone()
    old_b = model.head.fc.bias.detach().clone()
    kept = adapt_ctc_head(model, Charset(["b", "x", "a"]))  # labels: blank b x a ' '
    w, b = model.head.fc.weight, model.head.fc.bias
    assert w.shape == (5, old_w.shape[1]) and kept == 4
    for new_row, old_row in ((0, 0), (1, 2), (3, 1), (4, 4)):
        assert torch.equal(w[new_row], old_w[old_row]) and b[new_row] == old_b[old_row]
    assert torch.count_nonzero(w[2]) == 0 and b[2] == old_b.min()  # 'x' is new: a constant, lowest logit
    assert model.model_args["num_classes"] == 5 and model.pretrained_cfg.num_classes == 5
    assert model.charset.characters == ["b", "x", "a"]


def test_adapted_head_keeps_old_logits_and_starts_new_ones_low() -> None:
    model = _tiny_rec(["a", "b", "c"]).eval()  # labels: blank a b c ' '
    x = torch.randn(2, 3, 48, 160)
    old_logits = model(x)
    lowest = float(model.head.fc.bias.min())
    adapt_ctc_head(model, Charset(["a", "b", "c", "x", "y"]))  # labels: blank a b c x y ' '
    logits = model(x)
    torch.testing.assert_close(logits[..., [0, 1, 2, 3, 6]], old_logits, rtol=0, atol=0)
    torch.testing.assert_close(logits[..., 4:6], torch.full_like(logits[..., 4:6], lowest), rtol=0, atol=0)


def test_adapted_head_round_trips_through_save_pretrained(tmp_path) -> None:
    model = _tiny_rec(["a", "b"])
    adapt_ctc_head(model, Charset(["a", "b", "€", "ß"]))
    pxtorch.save_pretrained(model, tmp_path)
    loaded = pxtorch.from_pretrained(tmp_path)
    assert loaded.charset.characters == ["a", "b", "€", "ß"]
    x = torch.randn(1, 3, 48, 160)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_adapt_classifier_keeps_known_classes() -> None:
    model = pxtorch.create_model("ch_ppocr_mobile_v2_0_cls")
    old = model.head.fc.weight.detach().clone()
    kept = adapt_classifier(model, ["180", "0", "90"])
    assert kept == 2 and model.head.fc.out_features == 3
    assert torch.equal(model.head.fc.weight[0], old[1]) and torch.equal(model.head.fc.weight[1], old[0])
    assert model.pretrained_cfg.labels == ("180", "0", "90")


def test_warmup_cosine_schedule() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[1] == pytest.approx(2 / 3)
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
