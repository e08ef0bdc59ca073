"""Run a Paddle inference model with paddlepaddle (a dev-only reference), in its own process.

    FLAGS_enable_pir_api=0 python tests/paddle_reference.py MODEL_DIR INPUTS.npz OUT.npz

Reads every array of INPUTS.npz as one input batch for the model's single feed and writes
``out_<name>`` (the fetched output) plus ``param:<var name>`` for every persistable tensor as Paddle
itself loaded it. Kept out of the test process so Paddle's runtime never meets torch's.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("FLAGS_enable_pir_api", "0")

import numpy as np
import paddle


def main(model_dir: str, inputs: str, out: str) -> None:
    paddle.enable_static()
    paddle.set_flags({"FLAGS_use_mkldnn": False})
    exe = paddle.static.Executor(paddle.CPUPlace())
    prog, feeds, fetches = paddle.static.load_inference_model(os.path.join(model_dir, "inference"), exe)
    scope = paddle.static.global_scope()
    result = {}
    for var in prog.list_vars():
        if var.persistable and var.name not in ("feed", "fetch"):
            result[f"param:{var.name}"] = np.array(scope.find_var(var.name).get_tensor())
    for key, x in np.load(inputs).items():
        result[f"out_{key}"] = exe.run(prog, feed={feeds[0]: x}, fetch_list=fetches)[0]
    np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:4])
