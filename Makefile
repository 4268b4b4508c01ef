# slidenet developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint fmt bench clean demo

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks examples fuzz

fmt: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks examples fuzz
	$(VENV)/bin/ruff check --fix src tests benchmarks examples fuzz

# The whole suite runs on the compiled kernels (the fast extra is in the test extra); the op and
# layer tests run again on the NumPy reference path (SLIDENET_KERNELS=numpy).
test: $(STAMP) lint
	OMP_NUM_THREADS=2 $(PY) -m pytest
	SLIDENET_KERNELS=numpy OMP_NUM_THREADS=2 $(PY) -m pytest tests/ops tests/layers tests/models

bench: $(STAMP)
	$(PY) benchmarks/compare_torch.py

# Train the lecture's CNN on the bundled digits (>= 97% on 1,000 held-out test digits) and save
# it to demo/mnist_cnn.slidenet with three test digits in demo/digits/ to try `slidenet predict`.
demo: $(STAMP)
	$(PY) -m slidenet.demo --out demo/mnist_cnn.slidenet

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
