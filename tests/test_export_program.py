"""torch.export programs of every registered model: parity with eager, no pickle on load, sidecar, CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

import pxtorch
from pxtorch.cli import main as cli_main
from pxtorch.export import ExportError, export_program, load_exported_program, load_program, verify_program
from pxtorch.processing.crop import crop_quad
from pxtorch.processing.rec_resize import rec_resize_norm

from .model_io import export_inputs, exportable_models
from .test_export import DYNAMIC_AXES


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, pretrained):
    root = tmp_path_factory.mktemp("program")
    paths: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in paths:  # verified by the tests, on more inputs (the CLI test runs the built-in check)
            paths[name] = export_program(pretrained(name), root / name, verify=False)
        return paths[name]

    return get


@pytest.fixture(scope="module")
def loaded(exported):
    """``loaded(name)``: the exported program read back from disk (JSON + safetensors), once per module."""
    programs: dict[str, torch.export.ExportedProgram] = {}

    def get(name: str) -> torch.export.ExportedProgram:
        if name not in programs:
            programs[name] = load_exported_program(exported(name))
        return programs[name]

    return get


def _real_inputs(name: str, demo_image: np.ndarray, demo_lines: list[dict]) -> list[np.ndarray]:
    """The parity inputs (random at other sizes than the traced one, demo image) plus, for recognisers,
    the first demo crop whose own width (PaddleX's resize, unpadded) is not a multiple of 8."""
    inputs = export_inputs(name, demo_image, demo_lines)
    if pxtorch.get_pretrained_cfg(name).task == "text_recognition":
        crops = [rec_resize_norm(crop_quad(demo_image, np.asarray(line["quad"]))) for line in demo_lines]
        inputs.append(next(c for c in crops if c.shape[2] % 8)[None])
    return inputs


@pytest.mark.parametrize("name", exportable_models())
def test_program_matches_eager_on_random_and_real_inputs(name, pretrained, loaded, demo_image, demo_lines) -> None:
    model, ep = pretrained(name), loaded(name)
    inputs = _real_inputs(name, demo_image, demo_lines)
    if model.pretrained_cfg.task == "text_recognition":
        assert inputs[-1].shape[3] % 8 != 0  # the program takes any recognition width
    assert verify_program(model, ep.module(), inputs) <= 1e-4
    placeholder = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == "x")
    dims = placeholder.meta["val"].shape
    assert [i for i, d in enumerate(dims) if isinstance(d, torch.SymInt)] == DYNAMIC_AXES[model.pretrained_cfg.task]


def test_program_files_and_sidecar(pretrained, exported) -> None:
    name = "pp_ocrv5_mobile_rec"
    model, path = pretrained(name), exported(name)
    assert sorted(p.name for p in path.parent.iterdir()) == ["inference.yml", "model.safetensors", "program.json"]
    assert json.loads(path.read_text(encoding="utf-8"))["graph_module"]["graph"]["nodes"]
    with safe_open(str(path.parent / "model.safetensors"), framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    params, constants = set(json.loads(meta["parameters"])), set(json.loads(meta["constants"]))
    assert keys == {f"model.{k}" for k in model.state_dict()} | constants  # the wrapped model's weights
    assert params == {f"model.{k}" for k, _ in model.named_parameters()}
    side = yaml.safe_load((path.parent / "inference.yml").read_text(encoding="utf-8"))
    assert side["Export"]["format"] == "torch.export"
    assert side["Export"]["files"] == {"program": "program.json", "weights": "model.safetensors"}
    assert side["Export"]["input"]["shape"] == ["batch", 3, 48, "width"]
    assert side["PostProcess"]["character_dict"] == model.charset.characters


def test_load_program_never_unpickles(pretrained, exported, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every unpickling entry point made to fail, the program still loads and runs; a .pt2 does not."""
    name = "ch_ppocr_mobile_v2_0_cls"
    model, path = pretrained(name), exported(name)
    pt2 = path.parent.parent / "linear.pt2"  # torch's own format pickles at least the example inputs
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),)), pt2)

    def trap(*args, **kwargs):
        raise AssertionError("pickle used")

    class TrapUnpickler:
        def __init__(self, *args, **kwargs) -> None:
            trap()

    for module, attr in [
        (pickle, "load"),
        (pickle, "loads"),
        (torch, "load"),
        (torch.serialization, "load"),
        (torch._C, "_pickle_load_obj"),
    ]:
        monkeypatch.setattr(module, attr, trap)
    monkeypatch.setattr(pickle, "Unpickler", TrapUnpickler)
    monkeypatch.setattr(torch._weights_only_unpickler, "Unpickler", TrapUnpickler)
    x = np.random.default_rng(0).standard_normal((3, 3, 48, 192)).astype(np.float32)
    assert verify_program(model, path, [x]) <= 1e-4  # loads the program with the traps in place
    with pytest.raises(AssertionError, match="pickle used"):  # the traps do catch torch's own format
        torch.export.load(pt2)


def test_load_refuses_code_in_shape_expressions(exported, tmp_path: Path) -> None:
    """torch evaluates the symbolic-shape strings with sympy.sympify: anything but shape arithmetic is refused."""
    src = exported("ch_ppocr_mobile_v2_0_cls").parent
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    text = (tmp_path / "program.json").read_text(encoding="utf-8")
    expr = "Symbol('s77', positive=True, integer=True)"
    assert expr in text
    evil = f"__import__('os').system('touch {tmp_path / 'pwned'}')"
    (tmp_path / "program.json").write_text(text.replace(expr, evil), encoding="utf-8")
    with pytest.raises(ExportError, match="refusing symbolic expression"):
        load_program(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_program_checks_its_input_ranges(loaded) -> None:
    module = loaded("pp_ocrv5_mobile_det").module()
    with torch.inference_mode():
        assert module(torch.zeros(1, 3, 64, 96)).shape == (1, 1, 64, 96)
        with pytest.raises(Exception, match="32"):
            module(torch.zeros(1, 3, 64, 100))  # detector H, W are multiples of 32


def test_verify_program_catches_a_wrong_export(pretrained, exported) -> None:
    """v4 and v5 mobile det share the architecture: the v5 program must not pass as the v4 model."""
    x = np.random.default_rng(0).standard_normal((1, 3, 256, 256)).astype(np.float32)
    with pytest.raises(ExportError, match="program - eager"):
        verify_program(pretrained("pp_ocrv4_mobile_det"), exported("pp_ocrv5_mobile_det"), [x])


def test_export_cli_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CLI round trip with the built-in check (two seeded sizes through the loaded program)."""
    out = tmp_path / "cls"
    assert cli_main(["export", "ch_ppocr_mobile_v2_0_cls", "-o", str(out), "--format", "program"]) == 0
    assert "verified against PyTorch with the loaded program" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["inference.yml", "model.safetensors", "program.json"]
    with torch.inference_mode():
        assert load_program(out / "program.json")(torch.zeros(5, 3, 48, 192)).shape == (5, 2)
