# One-command entry points. Every target creates .venv and installs the
# project (with its test extras) first if needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DVC := $(VENV)/bin/dvc
STAMP := $(VENV)/.installed
# A local folder holding the Omniglot files that params.yaml's source downloads (the Lake zips
# of data.omniglot.lake.urls, or chardata.mat): they are linked into the download cache
# data/raw/, where the prepare stage finds and verifies them (sha256) instead of downloading;
# empty: download. params.yaml stays as committed, so the results are those of any clone.
OMNIGLOT_DIR ?=
seed_omniglot = mkdir -p data/raw $(if $(OMNIGLOT_DIR),&& { test -d "$(OMNIGLOT_DIR)" || { echo "OMNIGLOT_DIR=$(OMNIGLOT_DIR): folder not found" >&2; exit 2; }; } && for f in "$(abspath $(OMNIGLOT_DIR))"/*.zip "$(abspath $(OMNIGLOT_DIR))"/*.mat; do if test -e "$$f"; then ln -sfn "$$f" data/raw/; fi; done)
# `make quick` only: the protocols it runs (e.g. `authors, corrected`; empty: params.yaml's list).
# The headline alone by default, which keeps the preview within its 15 minutes.
PROTOCOLS ?= authors
# `make quick` only: the seeds it runs (e.g. `1234, 1235`; empty: the first of params.yaml's `seeds`).
SEEDS ?=
first_seed = $(shell $(PY) -c "from dlgmm_core.params.read import read_params_tree; print(read_params_tree()['seeds'][0])")
# Stages run side by side by `make quick` and `make repro` (tools/schedule.py); 1: plain `dvc repro`.
JOBS ?= 2
# `make repro` only: a protocol whose stages run before the headline's (e.g. FIRST=corrected when the
# headline's results are already committed); empty: params.yaml's order.
FIRST ?=
# `make repro` only: 1 continues the committed run on a machine without its DVC cache (a fresh clone, or another
# machine): the data is prepared, then a stage whose only change is a cached output missing here (the checkpoint of
# a finished training) is skipped instead of rerun (DVC's --allow-missing). Empty: such stages rerun.
ALLOW_MISSING ?=
# Where `make quick` runs its own copy of the pipeline.
QUICK_DIR := build/quick

export DVC_NO_ANALYTICS := 1
# Idle OpenMP threads sleep instead of spinning (spinning slows a busy 2-core machine many-fold).
export OMP_WAIT_POLICY := PASSIVE
# Stage commands call `python`: make it the project's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install test quick repro bench gpu-check clean

install: $(STAMP)

# An existing .venv is reused, so one made by another Python stops the install with what to do.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import sys; v = '%d.%d' % sys.version_info[:2]; v == '3.11' or sys.exit('$(VENV) was made by Python %s, not 3.11: run \'make clean\' and try again (or PYTHON=/path/to/python3.11)' % v)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# The whole pipeline on the reduced budget (params.yaml `quick` section), in a
# folder of its own, so that it never touches this workspace's params.yaml,
# dvc.lock, models/ or reports/ (the committed paper-budget results). Run
# again, it reruns only what changed. PROTOCOLS (e.g. `authors, corrected`)
# and SEEDS replace params.yaml's `protocols` and `seeds` lists there.
quick: $(STAMP)
	mkdir -p $(QUICK_DIR)/data
	rm -rf $(QUICK_DIR)/stages $(QUICK_DIR)/dlgmm_core
	cp -R stages dlgmm_core dvc.yaml params.yaml .dvcignore $(QUICK_DIR)/
	$(seed_omniglot)
	ln -sfn $(CURDIR)/data/raw $(QUICK_DIR)/data/raw
	test -d $(QUICK_DIR)/.dvc || (cd $(QUICK_DIR) && $(CURDIR)/$(DVC) init --no-scm -q)
	cd $(QUICK_DIR) && $(CURDIR)/$(PY) $(CURDIR)/tools/params.py set budget=quick \
		$(if $(PROTOCOLS),"protocols=[$(PROTOCOLS)]") "seeds=[$(or $(SEEDS),$(first_seed))]"
	cd $(QUICK_DIR) && $(CURDIR)/$(PY) $(CURDIR)/tools/schedule.py --jobs $(JOBS) --dvc $(CURDIR)/$(DVC) \
		--costs-from $(CURDIR)
	@echo "quick-budget report: $(QUICK_DIR)/reports/README.md"

# The paper's budget: params.yaml as committed (OMNIGLOT_DIR seeds the download cache).
repro: $(STAMP)
	$(seed_omniglot)
	$(PY) tools/params.py set budget=paper
	$(if $(ALLOW_MISSING),$(DVC) repro prepare)
	$(PY) tools/schedule.py --jobs $(JOBS) --dvc $(DVC) $(if $(FIRST),--first $(FIRST)) \
		$(if $(ALLOW_MISSING),--allow-missing)

bench: $(STAMP)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/eval_memory.py

# The GPU path checked in one command where a GPU is lent (docs/gpu.md): writes reports/gpu_check.{json,md}
# ($$OUT when set); without CUDA it stops with one line.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf $(VENV)
