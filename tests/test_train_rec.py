"""Text recognition / orientation training parts: labels, NRTR branch, losses, transforms, metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pxtorch.processing.charset import Charset
from pxtorch.processing.rec_resize import rec_resize_norm
from pxtorch.training.labels import (
    LabelEncoder,
    encode_ctc,
    encode_nrtr,
    nrtr_tokens,
    nrtr_vocab_size,
)
from pxtorch.training.losses.rec_loss import CTCLoss, MultiLoss, NRTRLoss
from pxtorch.training.metrics.rec_metric import ClsMetric, RecMetric, edit_distance, normalized_edit_distance
from pxtorch.training.nrtr import NRTRBranch
from pxtorch.training.transforms.rec import (
    ClsAug,
    RandAugment,
    RecAug,
    RecConAug,
    rec_concat,
    rec_resize_norm_train,
    tia_distort,
    tia_perspective,
    tia_stretch,
    warp_mls,
)


@pytest.fixture
def charset() -> Charset:
    return Charset(list("abc"), use_space_char=True)  # labels: blank a b c " "


def _img(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- labels


def test_ctc_labels(charset: Charset) -> None:
    assert encode_ctc("ab c", charset) == [1, 2, 4, 3]
    assert encode_ctc("aXb", charset) == [1, 2]  # unknown characters dropped
    assert encode_ctc("XYZ", charset) is None  # nothing left
    assert encode_ctc("", charset) is None
    assert encode_ctc("a" * 25, charset) == [1] * 25
    assert encode_ctc("a" * 26, charset) is None  # too long
    # PaddleOCR checks the raw length before dropping unknown characters
    assert encode_ctc("aX" * 13, charset) is None
    assert encode_ctc("abc", charset, max_text_length=2) is None


def test_nrtr_labels(charset: Charset) -> None:
    assert nrtr_tokens(charset) == ["blank", "<unk>", "<s>", "</s>", "a", "b", "c", " "]
    assert encode_nrtr("ab", charset) == [2, 4, 5, 3]
    assert encode_nrtr("c a", charset) == [2, 6, 7, 4, 3]
    assert encode_nrtr("XY", charset) is None
    assert encode_nrtr("a" * 23, charset) == [2, *([4] * 23), 3]  # 25 with <s>, </s>
    assert encode_nrtr("a" * 24, charset) is None  # len(ids) >= max_text_length - 1
    enc = LabelEncoder(charset)
    assert enc.multi("ab") == ([1, 2], [2, 4, 5, 3])
    assert enc.multi("a" * 24) is None  # CTC alone would accept it; MultiLabelEncode drops it


def test_vocab_sizes_and_duplicates() -> None:
    cs = Charset(list("abc"), use_space_char=True)
    assert nrtr_vocab_size(cs) == 9 == cs.num_classes + 4  # 4 specials + 3 chars + space + PaddleOCR's spare
    no_space = Charset(list("abcd"), use_space_char=False)
    assert nrtr_tokens(no_space)[-1] == "d"
    assert nrtr_vocab_size(no_space) == 4 + 4 + 1
    assert encode_ctc("a b", no_space) == [1, 2]
    dup = Charset(["a", "b", "a"], use_space_char=False)  # last occurrence wins, as in PaddleOCR's dict
    assert encode_ctc("a", dup) == [3]
    assert encode_nrtr("a", dup) == [2, 6, 3]
    # the per-charset cache does not mix charsets up
    assert encode_ctc("d", cs) is None and encode_ctc("d", no_space) == [4]


# --------------------------------------------------------------------------- NRTR branch


def _tgt() -> torch.Tensor:
    return torch.tensor([[2, 4, 5, 6, 3, 0], [2, 7, 3, 0, 0, 0]])


def test_nrtr_branch_shapes_and_config() -> None:
    torch.manual_seed(0)
    branch = NRTRBranch(in_channels=16, vocab_size=10, nrtr_dim=64, num_decoder_layers=2).eval()
    out = branch(torch.randn(2, 16, 1, 12), _tgt())
    assert out.shape == (2, 5, 10)
    assert torch.isfinite(out).all()
    layer = branch.gtc_head.decoder[0]
    assert layer.self_attn.num_heads == 2 and layer.mlp.fc1.out_features == 256  # nrtr_dim // 32, nrtr_dim * 4
    assert len(branch.gtc_head.decoder) == 2
    assert branch.before_gtc[1].fc.bias is None and branch.gtc_head.tgt_word_prj.bias is None
    assert torch.count_nonzero(branch.gtc_head.embedding.embedding.weight[0]) == 0  # padding row

    full = NRTRBranch(in_channels=480, vocab_size=6629)  # PP-OCRv4 mobile sizes
    names = {n for n, _ in full.named_parameters()}
    assert "gtc_head.decoder.3.cross_attn.kv.weight" in names and "gtc_head.decoder.4.norm1.weight" not in names
    assert full.gtc_head.decoder[0].self_attn.num_heads == 12
    assert full.gtc_head.decoder[0].mlp.fc1.out_features == 1536
    assert full.gtc_head.tgt_word_prj.weight.shape == (6629, 384)
    assert NRTRBranch.paddle_key_map("head.gtc_head.decoder.0.self_attn.qkv.weight") == (
        "gtc_head.decoder.0.self_attn.qkv.weight"
    )
    assert NRTRBranch.paddle_key_map("head.before_gtc.1.fc.weight") == "before_gtc.1.fc.weight"
    assert NRTRBranch.paddle_key_map("head.ctc_head.fc.weight") is None


def test_nrtr_branch_is_causal() -> None:
    torch.manual_seed(0)
    branch = NRTRBranch(in_channels=16, vocab_size=10, nrtr_dim=64, num_decoder_layers=2).eval()
    feats = torch.randn(2, 16, 1, 12)
    tgt = _tgt()
    changed = tgt.clone()
    changed[:, 3] = 8  # input position 3 (the decoder reads tgt[:, :-1])
    a, b = branch(feats, tgt), branch(feats, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])
    # the memory matters too
    assert not torch.allclose(a, branch(feats + 1.0, tgt))


def test_nrtr_branch_gradients() -> None:
    torch.manual_seed(0)
    branch = NRTRBranch(in_channels=16, vocab_size=10, nrtr_dim=64, num_decoder_layers=2).train()
    feats = torch.randn(2, 16, 1, 12, requires_grad=True)
    tgt = _tgt()
    loss = NRTRLoss()(branch(feats, tgt), tgt[:, 1:])
    loss.backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    assert branch.before_gtc[1].fc.weight.grad.abs().sum() > 0
    assert branch.gtc_head.decoder[0].self_attn.qkv.weight.grad.abs().sum() > 0
    assert branch.gtc_head.embedding.embedding.weight.grad[0].abs().sum() == 0  # padding row frozen


# --------------------------------------------------------------------------- losses


def _brute_force_ctc_nll(log_probs: torch.Tensor, target: list[int]) -> float:
    """-log sum over all alignments [T] that collapse (merge repeats, drop blanks) to ``target``."""
    t, c = log_probs.shape
    total = 0.0
    for path in itertools.product(range(c), repeat=t):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if collapsed == target:
            total += math.exp(sum(log_probs[i, k].item() for i, k in enumerate(path)))
    return -math.log(total)


def test_ctc_loss_perfect_path_is_zero() -> None:
    path = torch.tensor([1, 1, 0, 2, 2, 0])
    logits = F.one_hot(path, 4).float()[None] * 50.0
    loss = CTCLoss()(logits, torch.tensor([[1, 2, 0]]), torch.tensor([2]))
    assert loss.item() < 1e-6
    wrong = CTCLoss()(logits, torch.tensor([[2, 1, 0]]), torch.tensor([2]))
    assert wrong.item() > 10


def test_ctc_loss_matches_brute_force_batch_mean() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3)
    targets = torch.tensor([[1, 2], [2, 0]])
    lengths = torch.tensor([2, 1])
    nll = [
        _brute_force_ctc_nll(logits[0].log_softmax(-1), [1, 2]),
        _brute_force_ctc_nll(logits[1].log_softmax(-1), [2]),
    ]
    loss = CTCLoss()(logits, targets, lengths)
    assert loss.item() == pytest.approx(sum(nll) / 2, rel=1e-5)  # batch mean, not divided by label length
    assert loss.item() != pytest.approx((nll[0] / 2 + nll[1]) / 2, rel=1e-3)
    half = CTCLoss()(logits.to(torch.bfloat16), targets, lengths)
    assert half.dtype == torch.float32


def test_nrtr_loss_label_smoothing_by_hand() -> None:
    logits = torch.tensor([[[2.0, 0.5, -1.0], [0.3, -0.2, 5.0]]])  # [B=1, L=2, V=3]
    targets = torch.tensor([[1, 0]])  # second token is padding
    log_p = [v - math.log(math.exp(2.0) + math.exp(0.5) + math.exp(-1.0)) for v in (2.0, 0.5, -1.0)]
    q = [0.05, 0.9, 0.05]  # 1 - 0.1 on the target, 0.1 / (3 - 1) elsewhere
    expected = -sum(qi * lp for qi, lp in zip(q, log_p, strict=True))
    assert NRTRLoss()(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    plain = NRTRLoss(smoothing=False)(logits, targets).item()
    assert plain == pytest.approx(-log_p[1], rel=1e-6)
    torch.testing.assert_close(
        NRTRLoss(smoothing=False)(logits, targets),
        F.cross_entropy(logits.reshape(-1, 3), targets.reshape(-1), ignore_index=0),
    )


def test_nrtr_loss_token_mean_over_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    targets = torch.tensor([[4, 5, 6, 3], [5, 3, 0, 0]])
    per_token = []
    for b, i in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]:
        lp = logits[b, i].log_softmax(-1)
        q = torch.full((7,), 0.1 / 6)
        q[targets[b, i]] = 0.9
        per_token.append(-(q * lp).sum())
    assert NRTRLoss()(logits, targets).item() == pytest.approx(torch.stack(per_token).mean().item(), rel=1e-6)
    # padding positions are ignored whatever their logits
    other = logits.clone()
    other[1, 2:] = 100.0
    torch.testing.assert_close(NRTRLoss()(other, targets), NRTRLoss()(logits, targets))


def test_multi_loss() -> None:
    torch.manual_seed(0)
    ctc_logits, ctc_t, ctc_l = torch.randn(2, 6, 5), torch.tensor([[1, 2], [3, 0]]), torch.tensor([2, 1])
    nrtr_logits, nrtr_t = torch.randn(2, 3, 9), torch.tensor([[4, 5, 3], [6, 3, 0]])
    only = MultiLoss()(ctc_logits, ctc_t, ctc_l)
    assert set(only) == {"loss", "loss_ctc"}
    torch.testing.assert_close(only["loss"], CTCLoss()(ctc_logits, ctc_t, ctc_l))
    both = MultiLoss(ctc_weight=0.5, nrtr_weight=2.0)(ctc_logits, ctc_t, ctc_l, nrtr_logits, nrtr_t)
    assert set(both) == {"loss", "loss_ctc", "loss_nrtr"}
    torch.testing.assert_close(both["loss_nrtr"], 2.0 * NRTRLoss()(nrtr_logits, nrtr_t))
    torch.testing.assert_close(both["loss"], 0.5 * only["loss"] + both["loss_nrtr"])


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    "hw", [(32, 100), (48, 320), (60, 400), (30, 200), (10, 5), (37, 211), (37, 200), (7, 20), (64, 64)]
)
def test_rec_resize_train_equals_inference_for_normal_ratios(hw: tuple[int, int]) -> None:
    img = _img(*hw)
    train = rec_resize_norm_train(img)
    assert train.shape == (3, 48, 320) and train.dtype == np.float32
    np.testing.assert_array_equal(train, rec_resize_norm(img))


def test_rec_resize_train_squeezes_wide_crops() -> None:
    img = _img(20, 400)
    out = rec_resize_norm_train(img)
    assert out.shape == (3, 48, 320)
    assert rec_resize_norm(img).shape[2] > 320
    assert out.min() >= -1.0 and out.max() <= 1.0
    small = rec_resize_norm_train(_img(16, 40), (3, 32, 320))
    assert small.shape == (3, 32, 320) and np.all(small[:, :, 80:] == 0)


def test_warps_keep_shape_and_identity() -> None:
    img = _img(48, 200)
    corners = [[0, 0], [200, 0], [200, 48], [0, 48]]
    np.testing.assert_array_equal(warp_mls(img, corners, corners), img)
    rng = np.random.default_rng(0)
    for out in (tia_distort(img, rng, 4), tia_stretch(img, rng, 5), tia_perspective(img, rng)):
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
    # a stretch moves content horizontally only: a horizontal gradient image stays constant along columns
    grad = np.tile(np.linspace(0, 255, 200, dtype=np.float32).astype(np.uint8)[None, :, None], (48, 1, 3))
    st = tia_stretch(grad, np.random.default_rng(3), 4)
    assert np.abs(st.astype(int) - st[:1].astype(int)).max() <= 1


def test_rec_aug_shape_dtype_and_determinism() -> None:
    img = _img(48, 240)
    aug = RecAug(tia_prob=1.0, crop_prob=1.0, blur_prob=1.0, hsv_aug_prob=1.0, jitter_prob=1.0, noise_prob=1.0)
    a = aug(img.copy(), np.random.default_rng(7))
    b = aug(img.copy(), np.random.default_rng(7))
    c = aug(img.copy(), np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[1:] == (240, 3)
    assert 40 <= a.shape[0] <= 47  # the crop removes 1..8 rows
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    # default probabilities: still uint8, width kept, input untouched
    before = img.copy()
    out = RecAug()(img, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape[1] == 240
    np.testing.assert_array_equal(img, before)


def test_rec_aug_single_steps() -> None:
    img = _img(48, 100)
    off = dict(tia_prob=0.0, crop_prob=0.0, reverse_prob=0.0, noise_prob=0.0, jitter_prob=0.0, blur_prob=0.0)
    only_reverse = RecAug(**{**off, "reverse_prob": 1.0}, hsv_aug_prob=0.0)
    np.testing.assert_array_equal(only_reverse(img, np.random.default_rng(0)), 255 - img)
    nothing = RecAug(**off, hsv_aug_prob=0.0)
    np.testing.assert_array_equal(nothing(img, np.random.default_rng(0)), img)
    small = _img(12, 100)
    assert RecAug(**{**off, "crop_prob": 1.0}, hsv_aug_prob=0.0)(small, np.random.default_rng(0)).shape == small.shape


def test_rec_concat_rule() -> None:
    a, b = _img(32, 64, 1), _img(32, 96, 2)
    joined = rec_concat(a, "ab", b, "cd")
    assert joined is not None
    img, text = joined
    assert text == "abcd" and img.shape == (48, 96 + 144, 3) and img.dtype == np.uint8
    assert rec_concat(_img(32, 128), "ab", b, "cd") is None  # 4 + 3 > 320 / 48
    assert rec_concat(a, "x" * 20, b, "y" * 6) is None  # 26 > 25 characters
    assert rec_concat(a, "x" * 20, b, "y" * 5) is not None
    assert rec_concat(a, "a", b, "b", max_wh_ratio=4.0) is None


def test_rec_con_aug_stops_at_first_rejection() -> None:
    base, ok, too_wide, fine = _img(32, 64, 1), _img(32, 64, 2), _img(32, 320, 3), _img(32, 32, 4)
    aug = RecConAug(prob=1.0)
    img, text = aug(base, "ab", [(ok, "cd"), (fine, "ef")], np.random.default_rng(0))
    assert text == "abcdef" and img.shape == (48, 96 + 96 + 48, 3)
    img, text = aug(base, "ab", [(too_wide, "cd"), (fine, "ef")], np.random.default_rng(0))
    assert text == "ab" and img is base
    img, text = RecConAug(prob=0.0)(base, "ab", [(ok, "cd")], np.random.default_rng(0))
    assert text == "ab" and img is base


def test_cls_aug_and_randaugment() -> None:
    img = _img(48, 160)
    a = ClsAug()(img.copy(), np.random.default_rng(3))
    b = ClsAug()(img.copy(), np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape[1:] == (160, 3)
    np.testing.assert_array_equal(a, b)
    ra = RandAugment(prob=1.0)
    from PIL import Image

    pil = Image.fromarray(img)
    for name in RandAugment.OPS:
        out = np.asarray(ra.apply(name, pil, np.random.default_rng(0)))
        assert out.shape == img.shape, name
    assert np.array_equal(np.asarray(ra.apply("invert", pil, np.random.default_rng(0))), 255 - img)
    assert RandAugment(prob=0.0)(img, np.random.default_rng(0)) is img


# --------------------------------------------------------------------------- metrics


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("文字识别", "文字识別") == 1
    assert normalized_edit_distance("xyz", "xy") == pytest.approx(1 / 3)
    assert normalized_edit_distance("", "") == 0.0
    rng = np.random.default_rng(0)
    for _ in range(30):  # against a plain recursive definition
        s, t = ("".join(rng.choice(list("ab"), rng.integers(0, 6))) for _ in range(2))

        def ref(i: int, j: int, s: str = s, t: str = t) -> int:
            if i == 0 or j == 0:
                return i + j
            return min(ref(i - 1, j) + 1, ref(i, j - 1) + 1, ref(i - 1, j - 1) + (s[i - 1] != t[j - 1]))

        assert edit_distance(s, t) == ref(len(s), len(t))


def test_rec_metric() -> None:
    metric = RecMetric()
    metric.update(["abc", "a c"], ["abc", "ac"])
    metric.update(["xyz"], ["xy"])
    out = metric.compute()
    assert out["acc"].item() == pytest.approx(2 / (3 + 1e-5), rel=1e-6)
    assert out["norm_edit_dis"].item() == pytest.approx(1 - (0 + 0 + 1 / 3) / (3 + 1e-5), rel=1e-6)
    keep_space = RecMetric(ignore_space=False)
    keep_space.update(["abc", "a c", "xyz"], ["abc", "ac", "xy"])
    assert keep_space.compute()["acc"].item() == pytest.approx(1 / 3, rel=1e-4)
    filtered = RecMetric(is_filter=True)
    filtered.update(["A-b.C"], ["abc"])
    assert filtered.compute()["acc"].item() == pytest.approx(1.0, rel=1e-4)
    metric.reset()
    metric.update(["q"], ["p"])
    assert metric.compute()["acc"].item() == 0.0


def test_cls_metric() -> None:
    metric = ClsMetric()
    metric.update(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
    metric.update(torch.tensor([[0.2, 0.8], [0.9, 0.1]]), torch.tensor([1, 1]))
    assert metric.compute()["top1"].item() == pytest.approx(4 / (6 + 1e-5), rel=1e-6)
