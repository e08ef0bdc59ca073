"""PP-OCRv3 mobile det/rec and the English models (en_PP-OCRv3 det, en_PP-OCRv4 rec) against onnxruntime.

The reference is onnxruntime on the ONNX file each registry entry converts from (DESIGN.md §4, with
the thresholds and the float64 rule of ``tests/test_parity.py``): seeded random inputs at several
sizes, the bundled demo image, real photos from ``../shared/data/images/scenes`` and real word crops
from ``../shared/data/images/words``. The English recogniser is also checked against
onnxruntime decoded with ``en_dict.txt`` read here, and against words read off the crops by eye.
The PP-OCRv3 models keep every BatchNorm: their BatchNorm count must be the graph's, and the
training form, the ``reparameterize_model`` form and the BN-folded inference path must agree.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import pxtorch
from pxtorch import convert
from pxtorch.layers import reparameterize_model
from pxtorch.processing.ctc import ctc_greedy_decode
from pxtorch.processing.image import read_image

from .conftest import shared_image_dir
from .test_parity import _compare, _det_input, _exact, _inputs, _ours, _rec_batch

DET = ["pp_ocrv3_mobile_det", "en_pp_ocrv3_mobile_det"]
REC = ["pp_ocrv3_mobile_rec", "en_pp_ocrv4_mobile_rec"]
BN_KEPT = ["pp_ocrv3_mobile_det", "en_pp_ocrv3_mobile_det", "pp_ocrv3_mobile_rec"]
SCENES = {
    "pp_ocrv3_mobile_det": ["00006737.jpg", "1.jpg", "00009282.jpg", "japan_1.jpg"],
    "en_pp_ocrv3_mobile_det": ["00006737.jpg", "french_0.jpg", "ger_1.jpg"],
}
WORD_DIRS = {
    "pp_ocrv3_mobile_rec": ["ch", "chinese_traditional", "en", "en_words", "japan"],
    "en_pp_ocrv4_mobile_rec": ["en", "en_words", "french", "german"],
}
# Words read off the clear English crops by eye (the blurred or stylised ones are left out).
EN_TRUTH = {
    "en/word_1.png": "JOINT",
    "en/word_2.png": "yourself",
    "en/word_3.png": "154",
    "en/word_4.png": "197",
    "en/word_5.png": "727",
    "en_words/word_10.png": "PAIN",
    "en_words/word_19.png": "SLOW",
    "en_words/word_116.png": "QBHOUSE",
    "en_words/word_201.png": "HOUSE",
    "en_words/word_308.png": "LITTLE",
    "en_words/word_336.png": "SUPER",
}


def _source_graph(name: str) -> convert.OnnxGraph:
    cfg = pxtorch.get_pretrained_cfg(name)
    return convert.OnnxGraph(convert.locate(next(s for s in cfg.sources if s.format == "onnx")))


@pytest.mark.parametrize("name", DET + REC)
def test_parity_with_onnxruntime(name, pretrained, onnx_reference, demo_image, demo_lines):
    model, session = pretrained(name), onnx_reference(name)
    labels = model.charset.labels if model.charset is not None else None
    for key, x in _inputs(name, demo_image, demo_lines).items():
        ref = session.run(None, {session.get_inputs()[0].name: x})[0]
        exact = None if key.startswith("rand") else _exact(model, x)
        try:
            _compare(name, _ours(model, x), ref, labels, exact)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e


@pytest.mark.parametrize("name", DET)
def test_det_parity_on_real_photos(name, pretrained, onnx_reference):
    scenes = shared_image_dir("scenes")
    model, session = pretrained(name), onnx_reference(name)
    for file in SCENES[name]:
        x = _det_input(read_image(scenes / file), name)
        ref = session.run(None, {"x": x})[0]
        assert (ref > 0.3).mean() > 0.005, f"{file}: the reference finds no text; not a useful input"
        try:
            _compare(name, _ours(model, x), ref, exact=_exact(model, x))
        except AssertionError as e:
            raise AssertionError(f"{file} {x.shape}: {e}") from e


@pytest.mark.parametrize("name", REC)
def test_rec_parity_on_real_word_crops(name, pretrained, onnx_reference):
    words = shared_image_dir("words")
    crops = [read_image(p) for d in WORD_DIRS[name] for p in sorted((words / d).iterdir())[:10]]
    crops.sort(key=lambda c: c.shape[1] / c.shape[0])  # PaddleX batches by aspect ratio
    model, session = pretrained(name), onnx_reference(name)
    for i in range(0, len(crops), 6):
        x = _rec_batch(crops[i : i + 6])
        ref = session.run(None, {"x": x})[0]
        try:
            _compare(name, _ours(model, x), ref, model.charset.labels, exact=_exact(model, x))
        except AssertionError as e:
            raise AssertionError(f"batch {i // 6} {x.shape}: {e}") from e


def test_en_rec_reads_english_words_like_onnxruntime_with_en_dict(pretrained, onnx_reference):
    """Our decode == onnxruntime decoded with the wheel's en_dict.txt (parsed here) == the words on the crops."""
    name = "en_pp_ocrv4_mobile_rec"
    words = shared_image_dir("words")
    model, session = pretrained(name), onnx_reference(name)
    text = convert.locate(model.pretrained_cfg.charset).read_bytes().decode("utf-8")
    reference_labels = ["blank", *text.splitlines(), " "]  # CTCLabelDecode: blank first, space appended
    files = sorted(p.relative_to(words).as_posix() for d in ("en", "en_words") for p in (words / d).iterdir())
    assert set(EN_TRUTH) <= set(files)
    ours, theirs = {}, {}
    for file in files:
        x = _rec_batch([read_image(words / file)])
        ref = session.run(None, {"x": x})[0]
        assert ref.shape[-1] == len(reference_labels) == 97
        theirs[file] = ctc_greedy_decode(ref, reference_labels)[0][0]
        ours[file] = ctc_greedy_decode(_ours(model, x), model.charset.labels)[0][0]
    assert ours == theirs
    assert {f: ours[f] for f in EN_TRUTH} == EN_TRUTH


def test_charsets(pretrained):
    """ch v3 rec: the dictionary equals the one the ONNX file carries; en v4 rec: en_dict's final ' ' kept."""
    v3 = pretrained("pp_ocrv3_mobile_rec")
    metadata = _source_graph("pp_ocrv3_mobile_rec").metadata["character"]
    assert v3.charset.characters == metadata.split("\n")
    assert len(v3.charset.labels) == v3.pretrained_cfg.num_classes == 6625
    en = pretrained("en_pp_ocrv4_mobile_rec")
    assert len(en.charset.characters) == 95 and en.charset.characters[-1] == " "
    assert en.charset.characters[:10] == list("0123456789")
    assert len(en.charset.labels) == en.pretrained_cfg.num_classes == 97


@pytest.mark.parametrize("name", BN_KEPT)
def test_bn_kept_models_train_and_reparameterized_forms_agree(name, pretrained, demo_image, demo_lines):
    model = pretrained(name)
    assert model.pretrained_cfg.weight_form == "train" and not model.model_args.get("deploy")
    graph = _source_graph(name)
    graph_bns = sum(n.op_type == "BatchNormalization" for n in graph.nodes)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == graph_bns, f"{len(bns)} BatchNorms in the model, {graph_bns} in the graph"
    assert all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bns)
    deploy = reparameterize_model(copy.deepcopy(model)).eval()
    assert deploy.model_args["deploy"] is True
    fresh = pxtorch.create_model(name, deploy=True).state_dict()
    assert {k: v.shape for k, v in deploy.state_dict().items()} == {k: v.shape for k, v in fresh.items()}
    inputs = _inputs(name, demo_image, demo_lines)
    tol = 1e-3 if model.output_activation == "softmax" else 1e-4  # DESIGN §4: raw logits / probabilities
    for key in (next(iter(inputs)), list(inputs)[-1]):  # a random and the real input
        x = torch.from_numpy(inputs[key])
        with torch.no_grad():  # inference path: BatchNorm folded into the convs
            folded, reparam = model(x), deploy(x)
        with torch.enable_grad():  # module path: every BatchNorm applied on its own
            unfolded = model(x).detach()
        assert (folded - reparam).abs().max().item() <= 1e-6, key
        assert (folded - unfolded).abs().max().item() <= tol, key
