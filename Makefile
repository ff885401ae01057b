# facegan: `make demo` (set-up + train on the built-in faces) and `make test` (set-up + tests).
# The demo installs only facegan's core; `make test` adds the extras the tests use (EXTRAS, default dev: dlib,
# ONNX, Playwright, schemathesis, TensorBoard, and Jupyter's kernel and nbclient for the notebook test). One stamp
# per set, so `make demo` then `make test` adds just the rest.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.facegan-installed-core
EXTRAS_STAMP := $(VENV)/.facegan-installed-$(EXTRAS)
DEMO_DATA ?= data/synthetic-faces-64
DEMO_RUN ?= runs/demo

.PHONY: setup setup-extras demo test lint clean system-deps

$(CORE_STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e .
	touch $@

# Rebuilt whenever the core is (a changed pyproject.toml may change the extras too).
$(EXTRAS_STAMP): $(CORE_STAMP)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

# The core: what `facegan` and the demo need.
setup: $(CORE_STAMP)

# The core and EXTRAS: what the tests and lint need.
setup-extras: $(EXTRAS_STAMP)

# System packages some tests need (a browser for the page tests); installed only where missing.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(BIN)/facegan prepare builtin:synthetic-faces --n 20000 --res 64 --workers 2 --out $(DEMO_DATA) --force
	rm -rf $(DEMO_RUN)
	$(BIN)/facegan train --data $(DEMO_DATA) --out $(DEMO_RUN) --epochs 2 --time-budget-minutes 6 \
		--sample-every 250 --checkpoint-every 1000
	$(BIN)/facegan sample $(DEMO_RUN) --n 64 --seed 7 --out $(DEMO_RUN)/faces.png
	@echo "demo done: dataset $(DEMO_DATA), run $(DEMO_RUN) (metrics.jsonl, samples/, checkpoints/), faces $(DEMO_RUN)/faces.png"

# One torch thread per test process: the tests use tiny models, and some start several processes at once.
test: setup-extras system-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: setup-extras
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) runs data/synthetic-faces-32 .pytest_cache
