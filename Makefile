# neurotwin-db: `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# git-annex and deno come as PyPI wheels: their binaries live in the venv's bin/.
export PATH := $(BIN):$(PATH)
DEMO_DIR ?= demo-db
# pybids' example datasets ship only in its source archive: the PHI false-positive tests use them
PYBIDS_SDIST := .cache/pybids-0.22.0.tar.gz

.PHONY: install demo test test-all bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/ntdb demo --overwrite $(DEMO_DIR)

lint: install
	$(BIN)/ruff check neurotwin_db datasets tests benchmarks

$(PYBIDS_SDIST): | install
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: pybids==0.22.0 -d .cache

test: install lint $(PYBIDS_SDIST)
	$(BIN)/ntdb --version
	$(BIN)/ntdb --help > /dev/null
	$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

test-all: install lint $(PYBIDS_SDIST)
	$(BIN)/python -m pytest -m "not network"

bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/bench_catalog.py
	$(BIN)/python benchmarks/bench_ingest_dicom.py
	$(BIN)/python benchmarks/bench_anonymize_dicom.py
	$(BIN)/python benchmarks/bench_phi_scan.py
	$(BIN)/python benchmarks/bench_efield.py
	$(BIN)/python benchmarks/bench_nmm_tvb.py
	$(BIN)/python benchmarks/bench_nmm_fc.py
	$(BIN)/python benchmarks/lanmm_ad_direction.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
