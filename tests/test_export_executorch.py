"""ExecuTorch export (XNNPACK) of the mobile det/rec models and the classifier: parity with eager in
ExecuTorch's runtime on random and real inputs, input bounds, sidecar, CLI ``--format executorch``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import pxtorch
from pxtorch.cli import main as cli_main
from pxtorch.export import ExportError, executorch_input_ranges, export_executorch, verify_executorch
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.rec_resize import rec_resize_norm

from .test_parity import _inputs

MODELS = ["pp_ocrv4_mobile_det", "pp_ocrv4_mobile_rec", "pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, pretrained):
    root = tmp_path_factory.mktemp("executorch")
    paths: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in paths:  # verified by the tests, on more inputs (the CLI test runs the built-in check)
            paths[name] = export_executorch(pretrained(name), root / name, verify=False)
        return paths[name]

    return get


def _edge_inputs(name: str, demo_image: np.ndarray, demo_lines: list[dict], max_batch: int) -> list[np.ndarray]:
    """The parity inputs split into batches the program admits, plus for recognisers a demo crop at its
    own width (not a multiple of 8)."""
    inputs = [
        x[i : i + max_batch]
        for x in _inputs(name, demo_image, demo_lines).values()
        for i in range(0, len(x), max_batch)
    ]
    if pxtorch.get_pretrained_cfg(name).task == "text_recognition":
        crops = [rec_resize_norm(crop_quad(demo_image, np.asarray(line["quad"]))) for line in demo_lines]
        inputs.append(next(c for c in crops if c.shape[2] % 8)[None])
    return inputs


@pytest.mark.parametrize("name", MODELS)
def test_executorch_matches_eager_on_random_and_real_inputs(name, pretrained, exported, demo_image, demo_lines) -> None:
    model, path = pretrained(name), exported(name)
    inputs = _edge_inputs(name, demo_image, demo_lines, executorch_input_ranges(model)["batch"][1])
    assert len({x.shape for x in inputs}) >= 3  # several sizes through the dynamic axes
    assert verify_executorch(model, path, inputs) <= 1e-4


@pytest.mark.parametrize("name", ["pp_ocrv5_mobile_det", "pp_ocrv5_mobile_rec"])
def test_executorch_sidecar_and_bounds(name, pretrained, exported) -> None:
    model, path = pretrained(name), exported(name)
    side = yaml.safe_load((path.parent / "inference.yml").read_text(encoding="utf-8"))
    export = side["Export"]
    assert export["format"] == "executorch" and export["backend"] == "xnnpack" and export["file"] == "model.pte"
    rng = np.random.default_rng(0)
    if model.pretrained_cfg.task == "text_detection":
        assert export["input"]["shape"] == [1, 3, "height", "width"]
        assert export["input_range"] == {"batch": [1, 1], "height": [32, 1920], "width": [32, 1920]}
        assert side["PreProcess"]["max_side_limit"] == 1920
        too_big = rng.standard_normal((1, 3, 1952, 1952)).astype(np.float32)
    else:
        assert export["input"]["shape"] == ["batch", 3, 48, "width"]
        assert export["input_range"] == {"batch": [1, 6], "width": [16, 3200]}
        assert side["PostProcess"]["character_dict"] == model.charset.characters
        too_big = rng.standard_normal((6, 3, 48, 3208)).astype(np.float32)
    with pytest.raises(ExportError, match="ExecuTorch failed"):  # more elements than the planned input buffer
        verify_executorch(model, path, [too_big])


def test_verify_executorch_catches_a_wrong_export(pretrained, exported, demo_image) -> None:
    """v4 and v5 mobile det share the architecture: the v5 program must not pass as the v4 model."""
    x = _inputs("pp_ocrv4_mobile_det", demo_image, [])["demo"]
    with pytest.raises(ExportError, match="executorch - eager"):
        verify_executorch(pretrained("pp_ocrv4_mobile_det"), exported("pp_ocrv5_mobile_det"), [x])


def test_export_cli_executorch(tmp_path: Path, pretrained, demo_image, demo_lines, capsys) -> None:
    """CLI round trip on the classifier: verified export, then real demo crops through the written file."""
    out = tmp_path / "cls"
    assert cli_main(["export", "ch_ppocr_mobile_v2_0_cls", "-o", str(out), "--format", "executorch"]) == 0
    assert "verified against PyTorch with ExecuTorch" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["inference.yml", "model.pte"]
    model = pretrained("ch_ppocr_mobile_v2_0_cls")
    assert (
        verify_executorch(model, out / "model.pte", _edge_inputs(model.architecture, demo_image, demo_lines, 6)) <= 1e-4
    )


def test_missing_executorch_names_the_extra(pretrained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "executorch.exir", None)
    with pytest.raises(ImportError, match=r"pip install pxtorch\[edge\]"):
        export_executorch(pretrained("ch_ppocr_mobile_v2_0_cls"), tmp_path)
