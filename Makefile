# Two commands do everything on a fresh Debian machine (they install what they need first):
#   make run    the embedded default pipeline -> results/report/index.html
#   make test   the test suite (unit tests + a tiny end-to-end snakemake run)
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1
CORES ?= 2

.PHONY: setup run test test-fast lint schema clean

setup:
	@bash scripts/setup.sh

run: setup
	@start=$$(date +%s); \
	snakemake --cores $(CORES) --printshellcmds --rerun-incomplete --show-failed-logs $(ARGS) && \
	echo "[run] finished in $$(( $$(date +%s) - start )) s: results/report/index.html"

test: setup
	pytest $(ARGS)

test-fast: setup
	pytest -m "not slow" $(ARGS)

lint: setup
	snakemake --lint

schema: setup
	speechrl schema --out workflow/schemas/config.schema.yaml

clean:
	rm -rf results logs .snakemake
