# Two commands for a newcomer: `make demo` and `make test`.
# `make demo` installs the core only (no torch, no dask); `make test` adds what the tests need.
# Both install the exact versions of requirements/lock.txt (pip constraints), so every run
# tests the same set; `make test-oldest` runs the fast tests on the oldest supported versions
# (requirements/oldest.txt, the lower bounds of pyproject.toml) in a second venv, .venv-oldest.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
LOCK   := requirements/lock.txt
OLDEST := requirements/oldest.txt
OLD_VENV := .venv-oldest
OLD_STAMP := $(OLD_VENV)/.installed
# The extras the tests need; torch is the CPU build pip takes from local disk (torch==2.13.0).
TEST_EXTRAS := .[dev,dask,torch]

.PHONY: demo test test-oldest lint format bench clean browser lock wheel-check

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e "$(TEST_EXTRAS)"
	@touch $(TEST_STAMP)

$(OLD_STAMP): pyproject.toml $(OLDEST)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	rm -rf $(OLD_VENV)
	$(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLD_VENV)/bin/python -m pip install --quiet -c $(OLDEST) -e "$(TEST_EXTRAS)"
	@touch $(OLD_STAMP)

# The headless browser of the HTML report test (Debian packages; needs root or sudo).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium and chromedriver present"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

demo: $(STAMP)
	$(BIN)/rednmf demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(TEST_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

# Fast tests on the oldest versions rednmf claims to support: the files that exercise what the
# dependencies provide (readers: rasterio, fiona, h5py, scipy.io, spectral; metrics and the
# estimator API: scikit-learn, PyOD; the CLI: typer, rich; torch; Dask; numba through the CLI's
# fits), without the `slow` and `realdata` markers, which alone leave nearly the whole suite.
OLDEST_TESTS := tests/io tests/metrics tests/detectors/test_sklearn_api.py \
	tests/detectors/test_check_params.py tests/test_cli.py tests/test_backend_torch.py \
	tests/scoring/test_dask_scoring.py tests/solvers/test_noise.py tests/test_packaging.py
test-oldest: $(OLD_STAMP)
	$(OLD_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not slow and not realdata" \
		$(OLDEST_TESTS)

# Rewrite requirements/lock.txt from the working .venv (after changing a pin or a range).
lock: $(TEST_STAMP)
	@{ sed -n '/^#/p' $(LOCK); \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -i '^pip==\|^rednmf\|^#\|^-e'; \
	} > $(LOCK).new && mv $(LOCK).new $(LOCK)

# The wheel as a user gets it: built, checked for its data files and for the absence of the
# test oracles, installed with the locked versions into a fresh venv, `rednmf demo` run there.
WHEEL_DIR  := build/wheel-check
wheel-check: $(BIN)/python
	rm -rf $(WHEEL_DIR)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(WHEEL_DIR)/dist .
	$(BIN)/python -c "import sys, zipfile; n = set(zipfile.ZipFile(sys.argv[1]).namelist()); \
	  need = {'rednmf/experiments/paper_results.json', 'rednmf/report/assets/scene.js', 'rednmf/report/assets/bench.js'}; \
	  bad = sorted(need - n) + sorted(x for x in n if 'reference.py' in x or x.startswith('tests/')); \
	  sys.exit(f'wheel check: missing or unwanted files {bad}' if bad else 0)" $(WHEEL_DIR)/dist/rednmf-*.whl
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet -c $(LOCK) $(WHEEL_DIR)/dist/rednmf-*.whl
	cd $(WHEEL_DIR) && venv/bin/rednmf demo --out demo-out

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/bench_speed.py

clean:
	rm -rf $(VENV) $(OLD_VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache
