# Two commands do everything on a fresh Debian machine (they install what they need first):
#   make run    the embedded default suite -> results/report/index.html
#   make run-quick  its quick variant (one seed, fewer steps) -> results-quick/report/index.html
#   make test   the test suite (unit tests + a tiny end-to-end snakemake run)
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.venv/torch_extensions
CORES ?= 2
# pytest workers (pytest-xdist: one test module per worker at a time, scheduled by tests/conftest.py); 0 = no workers
TEST_WORKERS ?= 2

.PHONY: setup run run-quick test test-fast lint schema clean

setup:
	@bash scripts/setup.sh

run: setup
	@start=$$(date +%s); \
	snakemake --cores $(CORES) --printshellcmds --rerun-incomplete --show-failed-logs $(ARGS) && \
	echo "[run] finished in $$(( $$(date +%s) - start )) s: results/report/index.html"

run-quick: setup
	@start=$$(date +%s); \
	snakemake --cores $(CORES) --configfile config/config.yaml config/quick.yaml --printshellcmds --rerun-incomplete --show-failed-logs $(ARGS) && \
	echo "[run-quick] finished in $$(( $$(date +%s) - start )) s: results-quick/report/index.html"

test: setup
	pytest -n $(TEST_WORKERS) $(ARGS)

test-fast: setup
	pytest -n $(TEST_WORKERS) -m "not slow" $(ARGS)

lint: setup
	snakemake --lint

schema: setup
	speechrl schema --out workflow/schemas/config.schema.yaml

clean:
	rm -rf results results-quick logs .snakemake
