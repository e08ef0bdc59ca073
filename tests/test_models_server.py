"""Server models (PP-OCRv5/v4 server det and rec) checked against independent implementations.

No official server weights exist offline (WEIGHTS.md: download-only), so the numerical references are:

- transformers' ``pp_ocrv5_server_det`` / ``pp_ocrv5_server_rec`` classes (PaddlePaddle's own port, whose
  names are the official ``PaddlePaddle/PP-OCRv5_server_*_safetensors`` layout): randomly initialised,
  perturbed, written with ``save_pretrained`` and read through pxtorch's Hub layout map; and the reverse,
  a pxtorch model written with ``from_pxtorch`` and loaded strictly by transformers' ``from_pretrained``.
  Detection probability maps and recognition softmax outputs must agree to 1e-5 (plus log-probabilities
  to 1e-4 and identical argmax paths, so a flat random softmax cannot hide a wrong logit).
- timm's PP-HGNet (``hgnet_small`` and its stage blocks) for the PP-OCRv4 server backbones. transformers has
  no PP-HGNet (v1) class, so the full PP-OCRv4 server models have no numerical reference; their LKPAN neck,
  PFHeadLocal head and SVTR/CTC head are the modules checked against transformers here.

Weights are perturbed before every comparison (convolutions re-drawn at unit gain, BatchNorm running
statistics and affine parameters, LayerNorms) so that a BatchNorm or bias mapped to the wrong place changes
the output instead of hiding behind identity initialisations.

LayerNorm eps: transformers' SVTR uses one ``layer_norm_eps`` (1e-6) for every norm while PaddleOCR uses 1e-5
inside the blocks. For the equality checks the pxtorch recogniser is built with ``layer_norm_eps`` set to
transformers' value; the layout map itself keeps PaddleOCR's values (see ``convert/hf_layout/pp_ocr_server``).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import timm.models.hgnet as timm_hgnet
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn

import pxtorch
from pxtorch.convert import apply_output_activation
from pxtorch.convert.hf_layout import LayoutError, get_layout, layout_for_architecture
from pxtorch.layers import reparameterize_model
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.det_resize import det_resize
from pxtorch.processing.image import normalize, read_image, to_chw
from pxtorch.processing.rec_resize import pad_batch, rec_resize_norm

from .conftest import shared_image_dir

TOL = 1e-5  # float64 evaluation: the mapping
TOL32 = 1e-4  # float32 evaluation: DESIGN.md §4
LOG_TOL = 1e-4
# transformers' IntraclassBlock config as the released model has it (transformers' tests, PaddleX's
# PP-OCRv5_server_det config): [kernel, stride, padding] of each convolution. The default config has None.
ICB = {
    "reduce_channel": [1, 1, 0],
    "return_channel": [1, 1, 0],
    "vertical_long_to_small_conv_longratio": [[7, 1], [1, 1], [3, 0]],
    "vertical_long_to_small_conv_midratio": [[5, 1], [1, 1], [2, 0]],
    "vertical_long_to_small_conv_shortratio": [[3, 1], [1, 1], [1, 0]],
    "horizontal_small_to_long_conv_longratio": [[1, 7], [1, 1], [0, 3]],
    "horizontal_small_to_long_conv_midratio": [[1, 5], [1, 1], [0, 2]],
    "horizontal_small_to_long_conv_shortratio": [[1, 3], [1, 1], [0, 1]],
    "symmetric_conv_long_longratio": [[7, 7], [1, 1], [3, 3]],
    "symmetric_conv_long_midratio": [[5, 5], [1, 1], [2, 2]],
    "symmetric_conv_long_shortratio": [[3, 3], [1, 1], [1, 1]],
}


def _perturb(model: nn.Module, seed: int, calibration: torch.Tensor, head_gain: float = 1.0) -> nn.Module:
    """Move every weight away from its initialisation: convolutions/linears re-drawn at unit gain, BatchNorm
    and LayerNorm affines drawn at random, then BatchNorm running statistics set to the batch statistics of
    ``calibration`` (so activations keep unit scale through the deep backbones and the outputs are neither
    saturated nor flat)."""
    g = torch.Generator().manual_seed(seed)

    def rand(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=g)

    def uniform(shape: torch.Size, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    norms = []
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan_in = m.weight[:, 0].numel() if isinstance(m, nn.ConvTranspose2d) else m.weight[0].numel()
                m.weight.copy_(rand(m.weight.shape) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(rand(m.bias.shape) * 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.copy_(uniform(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(rand(m.bias.shape) * 0.1)
                if isinstance(m, nn.BatchNorm2d):
                    m.reset_running_stats()
                    m.momentum = None  # cumulative average: one batch gives its statistics
                    norms.append(m)
        if head_gain != 1.0:  # a peaked softmax: probabilities then carry the logits' errors
            head = model.head.fc if hasattr(model.head, "fc") else model.head.head
            head.weight.mul_(head_gain)
        model.train()
        if isinstance(model, transformers.PreTrainedModel):
            model(pixel_values=calibration)
        else:
            model(calibration)
    with torch.no_grad():
        for m in norms:
            m.momentum = 0.1
            # near-constant channels would be scaled up by up to 1/sqrt(eps), amplifying float32 rounding
            # far beyond what trained weights do: floor the variance
            m.running_var.clamp_(min=0.25)
    return model.eval()


def _calib(kind: str) -> torch.Tensor:
    """The batch whose statistics become the BatchNorm running statistics (not one of the test inputs)."""
    shape = (2, 3, 128, 128) if kind == "det" else (4, 3, 48, 320)
    return torch.from_numpy(_rand(shape, 99))


def _hf_det_config() -> transformers.PPOCRV5ServerDetConfig:
    return transformers.PPOCRV5ServerDetConfig(
        intraclass_block_config=ICB, scale_factor_list=[1, 2, 4, 8], kernel_list=[3, 2, 2]
    )


def _hf_out(hf: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return hf(pixel_values=torch.from_numpy(x)).last_hidden_state.numpy()


def _ours(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return apply_output_activation(model, model(torch.from_numpy(x))).numpy()


def _rand(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _det_image() -> np.ndarray:
    img = read_image(shared_image_dir("scenes") / "00018069.jpg")
    p = pxtorch.get_pretrained_cfg("pp_ocrv5_server_det").preprocess
    resized, _ = det_resize(img, p.limit_side_len, p.limit_type, p.max_side_limit)
    return to_chw(normalize(resized, p.mean, p.std, p.scale))[None]


def _rec_images() -> np.ndarray:
    words = sorted(shared_image_dir("words", "en").glob("*.png"))[:3]
    return pad_batch([rec_resize_norm(read_image(p)) for p in words])


DET_INPUTS = {
    "rand_224x160": lambda: _rand((1, 3, 224, 160), 0),
    "rand_b2_96x288": lambda: _rand((2, 3, 96, 288), 1),
    "scene": _det_image,
}
REC_INPUTS = {
    "rand_b2_w320": lambda: _rand((2, 3, 48, 320), 0),
    "rand_w160": lambda: _rand((1, 3, 48, 160), 1),
    "words": _rec_images,
}


def _labels(num_classes: int) -> list[str]:
    """Distinct one-character labels (index 0 is the CTC blank) for comparing greedy-decoded strings."""
    return [""] + [chr(0x4E00 + i) for i in range(1, num_classes)]


def _check(name: str, pair: tuple[nn.Module, ...], x: np.ndarray, label: str) -> tuple[float, float]:
    """Compare pxtorch with transformers on ``x``; returns ``(max|Δ| in float64, max|Δ| in float32)``.

    float64: both models evaluate the same function, so the mapping must hold to ``TOL`` (measured ~1e-12;
    transformers' rec softmax itself runs in float32). float32: a randomly drawn network is far worse
    conditioned than a trained one (transformers' own float32 output lies up to ~6e-4 from its float64
    evaluation on these inputs), so pxtorch's float32 output is held to DESIGN.md §4's rule for real inputs,
    1e-4 widened by twice the reference's own float32 error, measured against the float64 function and
    without the 4x cap (the cap guards against porting errors, which the float64 check already excludes);
    recognition must decode identical greedy strings (float64) and argmax paths (float32, see below).
    """
    ours, hf, ours64, hf64 = pair
    task = pxtorch.get_pretrained_cfg(name).task
    ref64, out64 = _hf_out(hf64, x.astype(np.float64)), _ours(ours64, x.astype(np.float64))
    assert out64.shape == ref64.shape
    if task == "text_detection":  # a meaningful reference: neither saturated nor constant
        assert ref64.std() > 1e-2 and 0.02 < ref64.mean() < 0.98, (ref64.mean(), ref64.std())
    else:
        assert ref64.max(-1).mean() > 0.2, "the reference softmax is too flat to carry logit errors"
        keep = ref64 > 1e-30  # transformers' float32 softmax underflows below that
        log_diff = float(np.abs(np.log(out64[keep]) - np.log(ref64[keep])).max())
        assert log_diff <= LOG_TOL, f"{name}: log-probability max |Δ| {log_diff:.2e} (float64)"
    diff64 = float(np.abs(out64 - ref64).max())
    assert diff64 <= TOL, f"{name}: max |Δ| {diff64:.2e} (float64)"
    ours32, ref32 = _ours(ours, x), _hf_out(hf, x)
    ref_err, own_err = float(np.abs(ref32 - ref64).max()), float(np.abs(ours32 - ref64).max())
    diff32 = float(np.abs(ours32 - ref32).max())
    tol32 = TOL32 + 2 * ref_err
    assert own_err <= tol32, f"{name}: float32 error {own_err:.2e} > {tol32:.2e} (transformers' own {ref_err:.1e})"
    if task == "text_recognition":
        labels = _labels(ref64.shape[-1])
        assert [t for t, _ in ctc_greedy_decode(out64, labels)] == [t for t, _ in ctc_greedy_decode(ref64, labels)]
        # float32: identical argmax wherever the float64 margin between the top two classes exceeds the
        # float32 error bound (random 18385-way heads have near-ties that rounding may flip either way)
        top2 = np.sort(ref64, axis=-1)[..., -2:]
        decided = top2[..., 1] - top2[..., 0] > 2 * tol32
        assert decided.mean() > 0.9
        assert (ours32.argmax(-1) == ref32.argmax(-1))[decided].all()
    print(
        f"{name} {label}: max|Δ| float64 {diff64:.1e}, float32 {diff32:.1e}; f32 errors {own_err:.1e} / {ref_err:.1e}"
    )
    return diff64, diff32


def _read_hf_dir(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    return load_file(str(path / "model.safetensors")), json.loads((path / "config.json").read_text())


def _write_hf_dir(path: Path, config: dict, state: dict[str, torch.Tensor]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    save_file(state, str(path / "model.safetensors"))
    return path


def _load_hf_strict(auto_cls: type, path: Path) -> nn.Module:
    model, info = auto_cls.from_pretrained(str(path), output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not problems, problems
    return model.eval()


def _with_float64(ours: nn.Module, hf: nn.Module) -> tuple[nn.Module, ...]:
    return ours, hf, copy.deepcopy(ours).double(), copy.deepcopy(hf).double()


def _pxtorch_from_hf(hf: nn.Module, tmp: Path, **overrides) -> nn.Module:
    hf.save_pretrained(str(tmp))
    state, config = _read_hf_dir(tmp)
    arch, kwargs, px_state = get_layout(config["model_type"]).to_pxtorch(state, config)
    model = pxtorch.create_model(arch, **{**kwargs, **overrides})
    model.load_state_dict(px_state, strict=True)
    return model.eval()


# ---- PP-OCRv5 server det ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def det_pair(tmp_path_factory):
    torch.manual_seed(0)
    hf = _perturb(transformers.PPOCRV5ServerDetForObjectDetection(_hf_det_config()), 1, _calib("det"))
    return _with_float64(_pxtorch_from_hf(hf, tmp_path_factory.mktemp("hf_det")), hf)


@pytest.mark.parametrize("inp", list(DET_INPUTS))
def test_v5_server_det_reads_the_transformers_layout(det_pair, inp):
    _check("pp_ocrv5_server_det", det_pair, DET_INPUTS[inp](), f"det read {inp}")


def test_v5_server_det_writes_the_transformers_layout(tmp_path):
    torch.manual_seed(2)
    model = _perturb(pxtorch.create_model("pp_ocrv5_server_det", threshold_head=True), 3, _calib("det"))
    layout = layout_for_architecture("pp_ocrv5_server_det")
    config, state = layout.from_pxtorch(model)
    assert not any(".thresh." in k for k in state)  # training-only branch: transformers has no place for it
    hf = _load_hf_strict(transformers.AutoModelForObjectDetection, _write_hf_dir(tmp_path, config, state))
    assert type(hf).__name__ == config["architectures"][0]
    for inp in ("rand_b2_96x288", "scene"):
        _check("pp_ocrv5_server_det", _with_float64(model, hf), DET_INPUTS[inp](), f"det write {inp}")


# ---- PP-OCRv5 server rec ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rec_pair(tmp_path_factory):
    torch.manual_seed(0)
    hf = transformers.PPOCRV5ServerRecForTextRecognition(transformers.PPOCRV5ServerRecConfig())
    hf = _perturb(hf, 4, _calib("rec"), head_gain=6.0)
    eps = hf.config.layer_norm_eps
    return _with_float64(_pxtorch_from_hf(hf, tmp_path_factory.mktemp("hf_rec"), layer_norm_eps=eps), hf)


@pytest.mark.parametrize("inp", list(REC_INPUTS))
def test_v5_server_rec_reads_the_transformers_layout(rec_pair, inp):
    _check("pp_ocrv5_server_rec", rec_pair, REC_INPUTS[inp](), f"rec read {inp}")


def test_v5_server_rec_writes_the_transformers_layout(tmp_path):
    torch.manual_seed(5)
    model = pxtorch.create_model("pp_ocrv5_server_rec", layer_norm_eps=1e-6)
    model = _perturb(model, 6, _calib("rec"), head_gain=6.0)
    config, state = layout_for_architecture("pp_ocrv5_server_rec").from_pxtorch(model)
    assert config["layer_norm_eps"] == 1e-6 and config["head_out_channels"] == 18385
    hf = _load_hf_strict(transformers.AutoModelForTextRecognition, _write_hf_dir(tmp_path, config, state))
    for inp in ("rand_b2_w320", "words"):
        _check("pp_ocrv5_server_rec", _with_float64(model, hf), REC_INPUTS[inp](), f"rec write {inp}")


def test_hub_layout_keeps_paddles_layer_norm_eps(rec_pair, tmp_path):
    """Without an override the map builds PaddleOCR's norms (1e-5 in the SVTR blocks, 1e-6 after them)."""
    model = _pxtorch_from_hf(rec_pair[1], tmp_path)
    assert [m.eps for m in model.neck.modules() if isinstance(m, nn.LayerNorm)] == [1e-5] * 4 + [1e-6]
    assert model.model_args == {}


def test_layout_rejects_other_architectures(rec_pair, tmp_path):
    rec_pair[1].save_pretrained(str(tmp_path))
    state, config = _read_hf_dir(tmp_path)
    layout = get_layout("pp_ocrv5_server_rec")
    bad = json.loads(json.dumps(config))
    bad["backbone_config"]["stage_numb_of_layers"] = [4, 4, 4, 4]
    with pytest.raises(LayoutError, match="stage_numb_of_layers"):
        layout.to_pxtorch(state, bad)
    with pytest.raises(LayoutError, match="no pxtorch counterpart"):
        layout.to_pxtorch({**state, "head.extra.weight": torch.zeros(1)}, config)
    arch, kwargs, _ = layout.to_pxtorch(state, {**config, "head_out_channels": 97})
    assert (arch, kwargs) == ("pp_ocrv5_server_rec", {"num_classes": 97})
    with pytest.raises(LayoutError):
        layout_for_architecture("pp_ocrv4_server_rec")  # PP-HGNet (v1) has no transformers class


# ---- PP-OCRv4 server backbones against timm's PP-HGNet ---------------------------------------------------


def _timm_key(key: str) -> str:
    """pxtorch (PaddleOCR) PP-HGNet name -> timm name."""
    key = key.replace(".aggregation_conv.", ".aggregation.0.").replace(".att.", ".aggregation.1.")
    return "stem." + key if key.startswith("stem.") else key


def _load_into_timm(backbone: nn.Module, ref: nn.Module) -> None:
    state = {_timm_key(k): v for k, v in backbone.state_dict().items()}
    ref.load_state_dict(state, strict=True)


def test_v4_server_det_backbone_matches_timm_hgnet_small():
    torch.manual_seed(7)
    model = _perturb(pxtorch.create_model("pp_ocrv4_server_det"), 8, _calib("det"))
    ref = timm_hgnet.HighPerfGpuNet(timm_hgnet.model_cfgs["hgnet_small"], num_classes=0, head_hidden_size=None)
    _load_into_timm(model.backbone, ref)
    ref, backbone = ref.eval().double(), model.backbone.double()  # float64: see _check
    x = torch.from_numpy(_rand((1, 3, 160, 224), 0)).double()
    with torch.no_grad():
        ours = backbone(x)
        theirs = ref.forward_intermediates(x, intermediates_only=True)
    assert [tuple(o.shape) for o in ours] == [
        (1, c, 160 // s, 224 // s) for c, s in zip((256, 512, 768, 1024), (4, 8, 16, 32), strict=True)
    ]
    for o, t in zip(ours, theirs, strict=True):
        assert t.std() > 1e-2
        torch.testing.assert_close(o, t, atol=1e-9 * float(t.abs().max()), rtol=0)


def test_v4_server_rec_backbone_matches_timm_hgnet_blocks():
    torch.manual_seed(9)
    model = _perturb(pxtorch.create_model("pp_ocrv4_server_rec"), 10, _calib("rec"))
    stem = timm_hgnet.StemV1([3, 64, 64, 128])
    stages = nn.Sequential(
        *(
            timm_hgnet.HighPerfGpuStage(i, m, o, n, layer_num=6, downsample=True, stride=s, agg="ese")
            for i, m, o, n, s in (
                (128, 128, 256, 1, (2, 1)),
                (256, 160, 512, 1, (1, 2)),
                (512, 192, 768, 2, (2, 1)),
                (768, 224, 1024, 1, (2, 1)),
            )
        )
    )
    ref = nn.ModuleDict({"stem": stem, "stages": stages})
    _load_into_timm(model.backbone, ref)
    ref, backbone = ref.eval().double(), model.backbone.double()
    x = torch.from_numpy(_rand((2, 3, 48, 320), 1)).double()
    with torch.no_grad():
        ours = backbone(x)
        theirs = torch.nn.functional.avg_pool2d(
            ref["stages"](ref["stem"].stem(x)), (3, 2)
        )  # the rec stem does not pool
    assert ours.shape == (2, 1024, 1, 40)
    assert theirs.std() > 1e-2
    torch.testing.assert_close(ours, theirs, atol=1e-9 * float(theirs.abs().max()), rtol=0)


# ---- every server model -----------------------------------------------------------------------------------

SERVER = ["pp_ocrv4_server_det", "pp_ocrv5_server_det", "pp_ocrv4_server_rec", "pp_ocrv5_server_rec"]


@pytest.mark.parametrize("name", SERVER)
def test_inference_folding_and_deploy_form_keep_the_function(name):
    """Eval without autograd folds every BatchNorm into its convolution (evaluated in float64 here, where the
    folded and unfolded forms are the same function to rounding); ``reparameterize_model`` (no branches to
    merge in these networks) and ``deploy=True`` must give the same module and function."""
    torch.manual_seed(11)
    task = pxtorch.get_pretrained_cfg(name).task
    model = _perturb(pxtorch.create_model(name), 12, _calib("det" if task == "text_detection" else "rec")).double()
    x = torch.from_numpy(_rand((1, 3, 96, 128) if task == "text_detection" else (2, 3, 48, 160), 2)).double()
    with torch.no_grad():
        folded = model(x)  # raw outputs: rec logits (a random 18385-way softmax is flat)
    unfolded = model(x).detach()
    assert unfolded.std() > 1e-2
    assert (folded - unfolded).abs().max().item() <= 1e-9
    deploy = reparameterize_model(model)
    with torch.no_grad():
        assert torch.equal(deploy(x), folded)
    fresh = pxtorch.create_model(name, deploy=True).state_dict()
    assert {k: v.shape for k, v in deploy.state_dict().items()} == {k: v.shape for k, v in fresh.items()}


@pytest.mark.parametrize("name", ["pp_ocrv4_server_det", "pp_ocrv5_server_det"])
def test_det_training_maps_follow_pfheadlocal(name):
    """PaddleOCR's PFHeadLocal trains on [refined shrink, threshold, sigmoid(k (base - threshold))]; the
    inference map is the mean of the base and refined shrink maps."""
    torch.manual_seed(13)
    model = _perturb(pxtorch.create_model(name, threshold_head=True), 14, _calib("det"))
    x = torch.from_numpy(_rand((1, 3, 64, 96), 3))
    with torch.no_grad():
        maps = model.forward_maps(x)
        feats = model.forward_features(x)
        base = model.head.binarize(feats)
        thresh = model.head.thresh(feats)
        out = model(x)
    assert maps.shape == (1, 3, 64, 96)
    torch.testing.assert_close(out, 0.5 * (base + maps[:, :1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(maps[:, 1:2], thresh, atol=0, rtol=0)
    torch.testing.assert_close(maps[:, 2:], torch.sigmoid(50 * (base - thresh)), atol=1e-6, rtol=0)


def test_v4_server_det_size_matches_the_published_inference_model():
    """No numerical reference exists for PP-OCRv4_server_det; its size is published: PaddleOCR's model list
    gives the inference model as "110M" and PaddleX's module table as 109 MB. pxtorch's inference tensors
    (parameters and BatchNorm statistics, no threshold branch) in float32 must come within 3% of that."""
    with torch.device("meta"):
        model = pxtorch.create_model("pp_ocrv4_server_det")
    numel = sum(v.numel() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert abs(numel * 4 / 2**20 - 109.5) / 109.5 < 0.03
