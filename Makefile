# One setup entry point for users, README and CI.
#   make run    set up and run the default pipeline (snakemake --cores 2)
#   make test   set up and run lint + the full test suite (what .ci/run does)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CORES ?= 2
STAMP := $(VENV)/.mllg-setup
APT_PACKAGES := libmumps-seq-dev slurm-wlm munge
export OMP_NUM_THREADS ?= 1

.PHONY: setup system-packages run report dry-run test lint clean

setup: $(STAMP)

# Debian packages: MUMPS for Kwant, SLURM + munge for the cluster test. Needs root.
system-packages:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  fi; \
	else echo "note: not root or no apt-get; install $(APT_PACKAGES) yourself for MUMPS and SLURM"; fi

$(STAMP): pyproject.toml constraints.txt Makefile
	$(MAKE) system-packages
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U -c constraints.txt pip setuptools wheel packaging
	$(PIP) install -q -c constraints.txt numpy scipy tinyarray Cython
	# Kwant 1.5.0 is source-only on PyPI: build it with Cython (auto-detects MUMPS).
	$(PY) -c "import kwant" 2>/dev/null || \
	  $(PIP) install -q --no-build-isolation -C--build-option=--cython -c constraints.txt kwant==1.5.0
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/snakemake --cores $(CORES)

report: setup
	$(VENV)/bin/snakemake --cores $(CORES) --report report.html

dry-run: setup
	$(VENV)/bin/snakemake --cores $(CORES) -n

lint: setup
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/snakemake --lint

test: setup lint
	$(PY) -m pytest

clean:
	rm -rf results .snakemake report.html
