"""ONNX export of every registered model: dynamic axes, parity with eager (DESIGN.md §4), sidecar, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

import pxtorch
from pxtorch.cli import main as cli_main
from pxtorch.export import ExportError, export_onnx, verify_onnx

from .model_io import export_inputs, exportable_models

DYNAMIC_AXES = {
    "text_detection": [0, 2, 3],
    "seal_text_detection": [0, 2, 3],
    "text_recognition": [0, 3],
    "textline_orientation": [0],
    "doc_text_orientation": [0],
    "table_classification": [0],
    "image_unwarping": [0],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, pretrained):
    root = tmp_path_factory.mktemp("onnx")
    paths: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in paths:
            paths[name] = export_onnx(pretrained(name), root / name)  # verifies two seeded sizes itself
        return paths[name]

    return get


@pytest.mark.parametrize("name", exportable_models())
def test_onnx_matches_eager_on_random_and_real_inputs(name, pretrained, exported, demo_image, demo_lines) -> None:
    model, path = pretrained(name), exported(name)
    inputs = export_inputs(name, demo_image, demo_lines)  # other sizes than the traced one, + real
    task = model.pretrained_cfg.task
    if task == "text_recognition":  # the pipeline's widths are not multiples of 8 (the declared export dim)
        inputs += [np.random.default_rng(w).standard_normal((2, 3, 48, w), dtype=np.float32) for w in (17, 333)]
    assert verify_onnx(model, path, inputs) <= 1e-4
    graph_input = onnx.load(str(path)).graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert [i for i, d in enumerate(dims) if isinstance(d, str)] == DYNAMIC_AXES[task]


@pytest.mark.parametrize("name", exportable_models())
def test_sidecar_carries_pre_and_post_processing(name, pretrained, exported) -> None:
    model = pretrained(name)
    side = yaml.safe_load((exported(name).parent / "inference.yml").read_text(encoding="utf-8"))
    cfg = model.pretrained_cfg
    assert side["Global"]["model_name"] == (cfg.paddlex_name or cfg.paddleocr_name)
    assert side["PreProcess"]["mean"] == list(cfg.preprocess.mean)
    assert side["PreProcess"]["channel_order"] == cfg.preprocess.channel_order
    if model.charset is not None:
        assert side["PostProcess"]["character_dict"] == model.charset.characters
    if cfg.task == "text_detection":
        assert side["PostProcess"]["unclip_ratio"] == cfg.postprocess["unclip_ratio"]
    if cfg.labels:
        assert side["PostProcess"]["label_list"] == list(cfg.labels)


@pytest.mark.parametrize("name", sorted(set(pxtorch.list_models()) - set(exportable_models())))
def test_multi_output_models_are_refused_clearly(name) -> None:
    with pytest.raises(ExportError, match="not exportable yet"):
        export_onnx(pxtorch.create_model(name), "unused-dir")


def test_verify_catches_a_wrong_export(pretrained, exported) -> None:
    """v4 and v5 mobile det share the architecture: the v5 file must not pass as the v4 model."""
    x = np.random.default_rng(0).standard_normal((1, 3, 256, 256)).astype(np.float32)
    with pytest.raises(ExportError, match="onnx - eager"):
        verify_onnx(pretrained("pp_ocrv4_mobile_det"), exported("pp_ocrv5_mobile_det"), [x])


def test_export_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["export", "ch_ppocr_mobile_v2_0_cls", "-o", str(tmp_path / "cls")]) == 0
    assert (tmp_path / "cls" / "inference.onnx").is_file() and (tmp_path / "cls" / "inference.yml").is_file()
    assert "verified" in capsys.readouterr().out
    with pytest.raises(pxtorch.UnknownModelError, match="pp_ocrv4_mobile_det"):
        cli_main(["export", "pp_ocrv4_mobile_dett", "-o", str(tmp_path / "x")])
