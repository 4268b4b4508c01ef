# slidenet developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint fmt bench clean demo docs docs-serve

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples fuzz docs scripts/mkdocs_hooks.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples fuzz docs scripts/mkdocs_hooks.py

fmt: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks examples fuzz docs scripts/mkdocs_hooks.py
	$(VENV)/bin/ruff check --fix src tests benchmarks examples fuzz docs scripts/mkdocs_hooks.py

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

# The documentation site (mkdocs.yml): API reference from the docstrings, the tutorial notebooks
# executed at build time, the README's guides and one page per CLI command; --strict fails on any
# broken link or reference. Output in site/ (open site/index.html, or `make docs-serve`).
# JUPYTER_PATH: the notebooks run on the venv's kernel, whatever kernels the user has installed.
docs: $(STAMP)
	JUPYTER_PATH=$(VENV)/share/jupyter OMP_NUM_THREADS=2 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	JUPYTER_PATH=$(VENV)/share/jupyter OMP_NUM_THREADS=2 $(VENV)/bin/mkdocs serve --strict

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
