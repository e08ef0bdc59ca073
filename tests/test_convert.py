"""Foreign-weight readers: Paddle files without Paddle, ONNX graphs of every export style, both formats agreeing."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import pxtorch
from pxtorch import convert
from pxtorch.convert.onnx_matcher import OnnxMatchError, match_onnx_weights
from pxtorch.convert.paddle import PaddleFormatError, read_params_info, read_pdiparams, read_pdmodel_vars
from pxtorch.convert.sources import convert_source
from pxtorch.layers import LearnableAffineBlock

from .conftest import REPO

V4_MODELS = ["pp_ocrv4_mobile_det", "pp_ocrv4_mobile_rec", "ch_ppocr_mobile_v2_0_cls"]


def _source(name: str, fmt: str):
    return next(s for s in pxtorch.get_pretrained_cfg(name).sources if s.format == fmt)


@pytest.mark.parametrize("name", V4_MODELS)
def test_paddle_and_onnx_sources_give_identical_state_dicts(name):
    onnx_model = convert_source(name, _source(name, "onnx"), convert.locate(_source(name, "onnx")))
    paddle_model = convert_source(name, _source(name, "paddle"), convert.locate(_source(name, "paddle")))
    a, b = onnx_model.state_dict(), paddle_model.state_dict()
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


@pytest.mark.parametrize("name", V4_MODELS)
def test_paddle_reader_matches_paddlepaddle(name, tmp_path):
    """Our numpy reader and paddlepaddle's own loader give bit-identical tensors."""
    model_dir = convert.locate(_source(name, "paddle"))
    np.savez(tmp_path / "in.npz")
    env = {**os.environ, "FLAGS_enable_pir_api": "0"}
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "paddle_reference.py"),
            str(model_dir),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    ref = {k.removeprefix("param:"): v for k, v in np.load(tmp_path / "out.npz").items()}
    variables = read_pdmodel_vars(model_dir / "inference.pdmodel")
    saved = [v.name for v in variables if v.persistable and v.name not in ("feed", "fetch")]
    ours = read_pdiparams(model_dir / "inference.pdiparams", saved)
    assert ours.keys() == ref.keys()
    for k, v in ours.items():
        assert v.dtype == ref[k].dtype and np.array_equal(v, ref[k]), k


def test_params_info_is_read_as_data_only(tmp_path):
    info = read_params_info(convert.locate(_source("pp_ocrv4_mobile_det", "paddle")) / "inference.pdiparams.info")
    assert info["batch_norm2d_0.w_1"] == "backbone.conv1.bn._mean"
    assert len(info) == 276  # every parameter of the dygraph model, saved (234) or not

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.info").write_bytes(pickle.dumps({"conv2d_0.w_0": Evil()}))
    with pytest.raises(PaddleFormatError, match="refusing pickle opcode"):
        read_params_info(tmp_path / "evil.info")
    assert not (tmp_path / "pwned").exists()


def test_truncated_paddle_params_are_detected(tmp_path):
    src = convert.locate(_source("ch_ppocr_mobile_v2_0_cls", "paddle"))
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = (tmp_path / "inference.pdiparams").read_bytes()
    (tmp_path / "inference.pdiparams").write_bytes(data[:-100])
    with pytest.raises(PaddleFormatError, match="truncated"):
        pxtorch.from_pretrained(tmp_path, model_name="ch_ppocr_mobile_v2.0_cls")


def test_both_onnx_weight_storages_are_covered():
    """v4 exports keep weights in Constant nodes, v5 exports in initializers: both are read."""
    v4 = onnx.load(str(convert.locate(_source("pp_ocrv4_mobile_det", "onnx"))))
    v5 = onnx.load(str(convert.locate(_source("pp_ocrv5_mobile_det", "onnx"))))
    assert len(v4.graph.initializer) == 0 and any(n.op_type == "Constant" for n in v4.graph.node)
    assert len(v5.graph.initializer) > 100


def test_wrong_architecture_is_refused():
    model = pxtorch.create_model("pp_ocrv4_mobile_rec", deploy=True)
    with pytest.raises(OnnxMatchError, match="not this architecture"):
        convert.convert_onnx(model, convert.locate(_source("pp_ocrv4_mobile_det", "onnx")))


class _Net(nn.Module):
    """Every unit kind the matcher handles: conv+BN, depthwise conv, affine, Linear (MatMul, Gemm), LayerNorm."""

    def __init__(self, fused_first_conv: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=fused_first_conv)
        self.bn = nn.Identity() if fused_first_conv else nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=True)
        self.lab = LearnableAffineBlock(1.3, -0.2)
        self.seq = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16, eps=1e-5)
        self.cls = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.lab(self.dw(x))
        seq = self.norm(self.seq(x.flatten(2).transpose(1, 2)))
        return self.cls(seq.mean(1))


def _randomized_net() -> _Net:
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
        net.norm.weight.uniform_(0.5, 1.5)
        net.norm.bias.uniform_(-0.5, 0.5)
    return net.eval()


def _export(net: nn.Module, opset: int) -> onnx.ModelProto:
    f = io.BytesIO()
    torch.onnx.export(
        net,
        (torch.randn(1, 3, 12, 16),),
        f,
        dynamo=False,
        opset_version=opset,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}},
    )
    return onnx.load_from_string(f.getvalue())


@pytest.mark.parametrize("opset", [13, 17])
def test_graph_with_bn_folded_into_conv_loads_into_conv_bn(opset, tmp_path):
    """The exporter folds BN into the conv (and decomposes LayerNorm below opset 17); the module keeps both."""
    net = _randomized_net()
    proto = _export(net, opset)
    ops = [n.op_type for n in proto.graph.node]
    assert "BatchNormalization" not in ops
    assert ("LayerNormalization" in ops) == (opset >= 17)
    onnx.save(proto, tmp_path / "m.onnx")
    fresh = _Net()
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 16), dtype=np.float32)
    match_onnx_weights(convert.OnnxGraph(tmp_path / "m.onnx"), fresh, x)
    ref = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": x})[0]
    with torch.no_grad():
        out = fresh(torch.from_numpy(x)).numpy()
        expected = net(torch.from_numpy(x)).numpy()
    assert np.abs(out - ref).max() <= 1e-5 and np.abs(out - expected).max() <= 1e-5


def test_graph_bn_is_folded_into_a_biased_conv(tmp_path):
    """A graph Conv -> BatchNormalization loads into a model whose conv already carries the BN (bias)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.uniform(-1, 1, 4).astype(np.float32)
    mean, var = rng.uniform(-1, 1, 4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [(w, "w"), (gamma, "g"), (beta, "b"), (mean, "m"), (var, "v")]]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], epsilon=1e-5),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "bn.onnx")
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=True)).eval()
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    match_onnx_weights(convert.OnnxGraph(tmp_path / "bn.onnx"), model, x)
    ref = ort.InferenceSession(str(tmp_path / "bn.onnx")).run(None, {"x": x})[0]
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - ref).max() <= 1e-5
    # and a model that keeps the BN too, from the same graph
    keeps = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)).eval()
    match_onnx_weights(convert.OnnxGraph(tmp_path / "bn.onnx"), keeps, x)
    assert torch.equal(keeps[1].running_var, torch.from_numpy(var))


def test_leftover_graph_weights_are_an_error(tmp_path):
    net = _randomized_net()
    onnx.save(_export(net, 13), tmp_path / "m.onnx")

    class Smaller(nn.Module):  # stops before the classifier: the Gemm weights are left over
        def __init__(self):
            super().__init__()
            self.inner = _Net()

        def forward(self, x):
            n = self.inner
            x = n.lab(n.dw(torch.relu(n.bn(n.conv(x)))))
            return n.norm(n.seq(x.flatten(2).transpose(1, 2)))

    x = np.random.default_rng(1).standard_normal((1, 3, 12, 16), dtype=np.float32)
    with pytest.raises(OnnxMatchError):
        match_onnx_weights(convert.OnnxGraph(tmp_path / "m.onnx"), Smaller(), x)
