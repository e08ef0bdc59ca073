"""Fine-tuning end to end: configs compose, each model config trains (fast_dev_run), outputs are PaddleX's,
the exported model runs in the OCR pipeline, resume continues, a 2-value multirun makes two runs, DDP runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import pxtorch
from pxtorch.training.data.demo import make_demo_dataset
from pxtorch.training.outputs import load_module
from pxtorch.training.run import evaluate, train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
MODEL_CONFIGS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
TASK_OF = {"det": "text_det", "rec": "text_rec", "cls": "textline_ori"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    return {
        "text_det": make_demo_dataset(root / "det", "text_det", num_train=4, num_val=2, seed=0),
        "text_rec": make_demo_dataset(root / "rec", "text_rec", num_train=16, num_val=8, seed=0),
        "textline_ori": make_demo_dataset(root / "cls", "textline_ori", num_train=16, num_val=8, seed=0),
    }


def _compose(overrides: list[str], output_dir: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def _task(model_config: str) -> str:
    return TASK_OF[model_config.rsplit("_", 1)[1]]


@pytest.mark.parametrize("model_config", MODEL_CONFIGS)
def test_model_configs_compose_and_instantiate(model_config: str, tmp_path: Path, datasets: dict[str, Path]) -> None:
    from hydra.utils import instantiate

    task = _task(model_config)
    cfg = _compose([f"model={model_config}", f"data.dataset_dir={datasets[task]}"], tmp_path)
    assert cfg.data.task == task
    assert cfg.model.model_name in pxtorch.list_models()
    dm = instantiate(cfg.data)
    assert dm.task == task
    trainer = instantiate(cfg.trainer)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment: str, tmp_path: Path) -> None:
    cfg = _compose([f"experiment={experiment}"], tmp_path)
    assert cfg.model.model_name in pxtorch.list_models()
    assert cfg.data.dataset_dir not in (None, "???")


@pytest.mark.parametrize("model_config", MODEL_CONFIGS)
def test_fast_dev_run(model_config: str, tmp_path: Path, datasets: dict[str, Path]) -> None:
    task = _task(model_config)
    cfg = _compose(
        [
            f"model={model_config}",
            f"data.dataset_dir={datasets[task]}",
            "debug=fdr",
            "data.batch_size=2",
            "logger=csv",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"])
    assert "val/score" in metrics
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["done_flag"] is True
    exported = tmp_path / result["models"]["best"]["pretrained_dir"]
    model = pxtorch.from_pretrained(exported)
    assert model.architecture == cfg.model.model_name


def _train_rec(tmp_path: Path, dataset: Path, *extra: str) -> tuple[DictConfig, dict[str, float]]:
    cfg = _compose(
        [
            "model=pp_ocrv4_rec",
            f"data.dataset_dir={dataset}",
            "data.batch_size=4",
            "data.num_workers=0",
            "trainer.accelerator=cpu",
            "trainer.limit_val_batches=1",
            *extra,
        ],
        tmp_path,
    )
    return cfg, train(cfg)


def test_rec_outputs_resume_and_pipeline(tmp_path: Path, datasets: dict[str, Path]) -> None:
    """Two epochs of 2 steps: PaddleX outputs, resume continues at the saved step, the export runs in OCR."""
    dataset = datasets["text_rec"]
    run1 = tmp_path / "run1"
    _train_rec(run1, dataset, "trainer.max_epochs=1", "trainer.limit_train_batches=2", "validate_first=true")
    result = json.loads((run1 / "train_result.json").read_text())
    assert result["model_name"] == "PP-OCRv4_mobile_rec"
    assert set(result["models"]) == {"best", "last_1"}
    best = result["models"]["best"]
    assert (run1 / best["checkpoint"]).is_file() and 0.0 <= best["score"] <= 1.0
    assert Path(result["label_dict"]).is_file()
    last_ckpt = run1 / "checkpoints" / "last.ckpt"
    state = torch.load(last_ckpt, map_location="cpu", weights_only=True)
    assert state["global_step"] == 2 and state["epoch"] == 0

    run2 = tmp_path / "run2"
    _train_rec(run2, dataset, "trainer.max_epochs=2", "trainer.limit_train_batches=2", f"ckpt_path={last_ckpt}")
    resumed = torch.load(run2 / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 4  # continued from step 2, not restarted
    before = load_module(last_ckpt).model.state_dict()
    after = load_module(run2 / "checkpoints" / "last.ckpt").model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # The exported best model is a pretrained dir the OCR pipeline loads through model_dir.
    best_dir = run1 / best["pretrained_dir"]
    charset = (dataset / "dict.txt").read_text(encoding="utf-8").split("\n")
    model = pxtorch.from_pretrained(best_dir)
    assert model.charset.characters == [c for c in charset if c != ""]
    ocr = pxtorch.pipeline("OCR", ocr_version="PP-OCRv4", text_recognition_model_dir=str(best_dir), device="cpu")
    (res,) = ocr(str(ROOT / "src/pxtorch/assets/demo_ocr.jpg"))
    assert len(res["rec_texts"]) == len(res["dt_polys"]) > 0

    # evaluate.py on a checkpoint, the pretrained dir and the registry name.
    for weights in (last_ckpt, best_dir, "PP-OCRv4_mobile_rec"):
        out = tmp_path / f"eval_{Path(str(weights)).name}"
        metrics = evaluate(weights, dataset, output=out, num_workers=0, accelerator="cpu")
        written = json.loads((out / "evaluate_result.json").read_text())
        assert written["done_flag"] and written["metrics"] == metrics
        assert set(metrics) == {"acc", "norm_edit_dis"}


def test_exported_models_run_in_pipeline_det_and_cls(tmp_path: Path, datasets: dict[str, Path]) -> None:
    dirs = {}
    for model_config, kind in (("pp_ocrv4_det", "text_det"), ("pp_ocrv2_cls", "textline_ori")):
        out = tmp_path / model_config
        cfg = _compose(
            [
                f"model={model_config}",
                f"data.dataset_dir={datasets[kind]}",
                "data.batch_size=2",
                "data.num_workers=0",
                "trainer.accelerator=cpu",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
            ],
            out,
        )
        train(cfg)
        result = json.loads((out / "train_result.json").read_text())
        dirs[kind] = out / result["models"]["best"]["pretrained_dir"]
        assert set(result["models"]["best"]) >= {"score", "checkpoint", "pretrained_dir"}
    det = pxtorch.from_pretrained(dirs["text_det"])
    assert det.head.thresh is None  # the training-only threshold branch is not exported
    ocr = pxtorch.pipeline(
        "OCR",
        ocr_version="PP-OCRv4",
        text_detection_model_dir=str(dirs["text_det"]),
        textline_orientation_model_dir=str(dirs["textline_ori"]),
        use_textline_orientation=True,
        device="cpu",
    )
    (res,) = ocr(str(ROOT / "src/pxtorch/assets/demo_ocr.jpg"))
    assert {"dt_polys", "rec_texts", "textline_orientation_angles"} <= set(res.keys())


def _script(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_multirun_makes_two_runs(tmp_path: Path, datasets: dict[str, Path]) -> None:
    proc = _script(
        [
            "-m",
            "model=pp_ocrv4_rec",
            f"data.dataset_dir={datasets['text_rec']}",
            "optimizer.lr=1e-4,5e-4",
            "debug=limit",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "data.batch_size=2",
            f"paths.output_root={tmp_path / 'output'}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / "output" / "multiruns").glob("*/*/train_result.json"))
    assert [p.parent.name for p in runs] == ["0", "1"]
    lrs = []
    for p in runs:
        lines = (p.parent / ".hydra" / "overrides.yaml").read_text().splitlines()
        lrs += [float(line.split("=", 1)[1]) for line in lines if "optimizer.lr=" in line]
    lrs.sort()
    assert lrs == [1e-4, 5e-4]


def test_ddp_two_cpu_processes(tmp_path: Path, datasets: dict[str, Path]) -> None:
    proc = _script(
        [
            "model=pp_ocrv2_cls",
            f"data.dataset_dir={datasets['textline_ori']}",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=2",
            "data.batch_size=4",
            "data.num_workers=0",
            f"paths.output_root={tmp_path / 'output'}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result_file,) = (tmp_path / "output").glob("pp_ocrv2_cls/*/train_result.json")
    result = json.loads(result_file.read_text())
    assert result["models"]["last_1"]["global_step"] == 2
    assert "distributed_backend=gloo" in proc.stderr or "world_size=2" in proc.stderr.replace(" ", "")


def test_use_guide_defaults(datasets: dict[str, Path]) -> None:
    """PaddleOCR's use_guide only from scratch: the official weights have no NRTR head to steer the backbone."""
    from pxtorch.training.modules import TextRecModule

    chars = [c for c in (datasets["text_rec"] / "dict.txt").read_text(encoding="utf-8").split("\n") if c]
    pretrained = TextRecModule("pp_ocrv4_mobile_rec", pretrained=True, charset=chars)
    scratch = TextRecModule("pp_ocrv4_mobile_rec", pretrained=False, charset=chars)
    ctc_only = TextRecModule("pp_ocrv4_mobile_rec", pretrained=False, charset=chars, nrtr_weight=0.0)
    assert not pretrained.model.neck.use_guide and scratch.model.neck.use_guide
    assert not ctc_only.model.neck.use_guide and ctc_only.gtc is None
    # From scratch the CTC gradient stops at the neck: the backbone gets gradients only through NRTR.
    batch = {"image": torch.randn(2, 3, 48, 320), "text": ["ab", "ba"]}
    for module, backbone_grad in ((scratch, True), (ctc_only, True)):
        module.train()
        module.zero_grad()
        module.training_step(batch, 0).backward()
        grads = [p.grad for p in module.model.backbone.parameters() if p.grad is not None]
        assert bool(grads) == backbone_grad
    scratch.zero_grad()
    feats = scratch.model.backbone(batch["image"])
    scratch.model.head(scratch.model.neck(feats).squeeze(2).transpose(1, 2)).sum().backward()
    assert all(p.grad is None for p in scratch.model.backbone.parameters())


def test_scripts_evaluate_and_export(tmp_path: Path, datasets: dict[str, Path]) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import evaluate as evaluate_script
        import export as export_script
    finally:
        sys.path.pop(0)
    out = tmp_path / "run"
    _train_rec(out, datasets["text_rec"], "trainer.max_epochs=1", "trainer.limit_train_batches=1")
    ckpt = out / "checkpoints" / "last.ckpt"
    assert export_script.main(["--ckpt", str(ckpt), "--output", str(tmp_path / "exported")]) == 0
    exported = pxtorch.from_pretrained(tmp_path / "exported")
    latest = pxtorch.from_pretrained(out / "latest")
    for key, value in latest.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value, rtol=0, atol=0)
    args = ["--weights", str(tmp_path / "exported"), "--dataset_dir", str(datasets["text_rec"])]
    assert evaluate_script.main([*args, "--output", str(tmp_path / "ev"), "--num_workers", "0", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "ev" / "evaluate_result.json").read_text())["metrics"]["acc"] >= 0.0
    with pytest.raises(ValueError, match="not a pxtorch training checkpoint"):
        torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
        load_module(tmp_path / "foreign.ckpt")


def test_missing_dataset_dir_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _compose(["model=pp_ocrv4_rec", f"data.dataset_dir={tmp_path / 'nope'}"], tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data\.dataset_dir"):
        train(cfg)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model_config", ["pp_ocrv4_rec", "pp_ocrv4_det"])
def test_fast_dev_run_cuda_mixed_precision(model_config: str, tmp_path: Path, datasets: dict[str, Path]) -> None:
    cfg = _compose(
        [
            f"model={model_config}",
            f"data.dataset_dir={datasets[_task(model_config)]}",
            "trainer=gpu",
            "trainer.fast_dev_run=true",
            "data.batch_size=2",
            "data.num_workers=0",
        ],
        tmp_path,
    )
    assert cfg.trainer.precision == "16-mixed"
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"])


@pytest.mark.parametrize("logger", sorted(p.stem for p in (CONF / "logger").glob("*.yaml")))
def test_logger_configs_instantiate(logger: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = _compose(["model=pp_ocrv4_rec", f"logger={logger}"], tmp_path)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert loggers and all(str(tmp_path) in str(lg.save_dir) for lg in loggers)


def test_freeze_bn_keeps_running_statistics(tmp_path: Path, datasets: dict[str, Path]) -> None:
    from pxtorch.training.modules import TextlineOriModule

    # Through the trainer (Lightning never calls train() itself) ...
    cfg = _compose(
        [
            "model=pp_ocrv2_cls",
            f"data.dataset_dir={datasets['textline_ori']}",
            "model.freeze_bn=true",
            "debug=fdr",
            "data.batch_size=4",
        ],
        tmp_path,
    )
    train(cfg)
    official = pxtorch.from_pretrained("ch_ppocr_mobile_v2_0_cls").state_dict()
    trained = pxtorch.from_pretrained(tmp_path / "latest").state_dict()
    assert all(torch.equal(trained[k], official[k]) for k in official if "running_" in k)
    assert any(not torch.equal(trained[k], official[k]) for k in official if k.endswith("weight"))
    # ... and by hand.
    batch = {"image": torch.randn(4, 3, 48, 192) * 3 + 1, "label": torch.tensor([0, 1, 0, 1])}
    for freeze, changed in ((True, False), (False, True)):
        module = TextlineOriModule(pretrained=True, freeze_bn=freeze).train()
        before = {k: v.clone() for k, v in module.model.state_dict().items() if "running_mean" in k}
        module.training_step(batch, 0).backward()
        after = module.model.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before) == changed
        assert module.model.head.fc.weight.grad is not None


@pytest.mark.parametrize("trainer", sorted(p.stem for p in (CONF / "trainer").glob("*.yaml")))
def test_trainer_configs_compose(trainer: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = _compose(["model=pp_ocrv4_rec", f"trainer={trainer}"], tmp_path)
    assert cfg.trainer.default_root_dir == str(tmp_path)
    if trainer == "gpu" and not torch.cuda.is_available():
        assert cfg.trainer.precision == "16-mixed"  # composes; instantiating needs a GPU
        return
    overrides = {"accelerator": "cpu"} if trainer == "ddp" else {}
    assert instantiate(cfg.trainer, **overrides).max_epochs == cfg.trainer.max_epochs
