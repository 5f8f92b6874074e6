# emotionkd: the two commands a newcomer needs are `make demo` and `make test` (README.md).
# Both install into a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned here (constraints.txt), not in pyproject.toml, so users keep a free choice.
INSTALL := $(PIP) install --quiet --constraint constraints.txt
STAMP := $(VENV)/.installed-stamp
# apt's chatter goes here, not into `make test` (shown when an install fails)
SYSTEM_DEPS_LOG := build/system-deps.log

.PHONY: all demo test lint install clean bench pipeline bundled-model bundled-model-real system-deps results

all: test

# System packages for the end-to-end tests: D-Bus headers to build dbus-python (python-dbusmock,
# the mocked BlueZ), dbus-daemon for a private bus, gcc for the C firmware library test, tmux for
# the live view at 80x24, chromium for the dashboard in a real browser (driven over its DevTools
# pipe: no chromedriver needed), mosquitto (an MQTT broker on 127.0.0.1) for the gateway
# sharding test.
SYSTEM_DEPS := libdbus-1-dev libglib2.0-dev pkg-config dbus gcc tmux chromium mosquitto

$(STAMP): pyproject.toml constraints.txt | system-deps
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade pip setuptools wheel
	$(INSTALL) --editable '.[train,dev]'
	touch $(STAMP) $(VENV)/.sdk-installed-stamp

install: $(STAMP)

# The demo needs only the edge SDK (numpy, onnxruntime, pyserial, bleak, typer): a first
# `make demo` installs just that, in seconds; `make install`/`make test` add the rest later.
SDK_STAMP := $(VENV)/.sdk-installed-stamp
$(SDK_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) --editable .
	touch $(SDK_STAMP)

## make demo: an EKD sensor emulated on a pseudo-terminal, streamed through the bundled model (6 min of wearer at 6x: ~65 s)
demo: $(SDK_STAMP)
	$(VENV)/bin/emotionkd-sdk demo

## make pipeline: the whole mission on synthetic DEAP-format data, with a report (examples/pipeline.py)
pipeline: $(STAMP)
	$(PY) examples/pipeline.py --out runs/pipeline

## make results: regenerate docs/results.md (and its curves) from the LOSO experiment (<= 60 min on 2 cores)
results: $(STAMP)
	$(VENV)/bin/emotionkd-train evaluate --preset experiment --no-progress --report docs/results.md --append docs/kd-choice.md --append docs/recipe-choice.md

## make bundled-model: rebuild the bundled model (fixed seeds: synthetic data, teacher, KD + feedback, INT8).
## Its recipe is pinned here, so that tuning the pipeline preset does not silently change it.
BUNDLED_MODEL := sdk/models/emotionkd-student.onnx
## v2 input (32 s at 16 Hz): 36 s trials give 2 windows each, 8 x 40 x 2 = 640 windows; the teacher
## gets the experiment preset's 16 epochs x batch 16 (~480 Adam steps: fewer stay on the majority
## plateau), the student 6 epochs, feedback every 8th step; 1 torch thread (see the experiment preset).
## The student is the compact one (2 heads x 32, 1 block): on the 24 real participants it ranks stress
## as well as the faithful student (median per-person AUC 0.807 vs 0.810 fine-tuned, paired compact -
## faithful -0.001 [-0.008, +0.010], p 0.68; docs/results-real.md) at a quarter of the INT8 time.
BUNDLED_RECIPE := --seed 0 --set threads=1 --set data.subjects=8 --set data.trials=40 --set data.trial_s=36.0 \
	--set teacher_optim.epochs=16 --set teacher_optim.batch_size=16 --set student_optim.epochs=6 \
	--set feedback.period=8 --set student.heads=2 --set student.head_dim=32 --set student.blocks=1
bundled-model: $(STAMP)
	$(PY) examples/pipeline.py --out runs/bundled-model --stages synth,teacher,distill,export \
		$(BUNDLED_RECIPE) --bundle $(BUNDLED_MODEL)
	$(VENV)/bin/emotionkd-train bundle-checkpoint runs/bundled-model/run/student.pt

## make bundled-model-real: after bundled-model, the arousal head fine-tuned on the 24 Stress-Predict
## participants (MIT, Iqbal et al. 2022) with the recipe evaluate-real measures (docs/results-real.md);
## valence stays the synthetic KD head. Writes the evaluation to runs/bundled-model/real.
## "shipped" is the synthetic student exported as make bundled-model ships it. The causal baseline takes
## the baseline time constant chosen, nested, from the grid below (900 s on every fold when last
## measured), every recording's baseline seeded from its first rest (docs/results-real.md).
STRESS_PREDICT ?= ../shared/data/stress-predict
REAL_RECIPE := --folds 6 --epochs 3 --train-windows 3000 --seed 0 --threads 1 \
	--baseline-tau 90,300,900,1800,2700,5400,10800,43200 --seed-baseline-from-rest \
	--label-source "binary stress label: stress task = high arousal"
bundled-model-real: $(STAMP)
	$(VENV)/bin/emotionkd-export runs/bundled-model/run/student.pt --int8 -o runs/bundled-model/synthetic-int8.onnx
	$(VENV)/bin/emotionkd-train evaluate-real $(STRESS_PREDICT) --from runs/bundled-model/run/student.pt \
		--shipped runs/bundled-model/synthetic-int8.onnx \
		$(REAL_RECIPE) --out runs/bundled-model/real --write-finetuned runs/bundled-model/real/student.pt
	$(VENV)/bin/emotionkd-export runs/bundled-model/real/student.pt --int8 -o $(BUNDLED_MODEL)
	$(VENV)/bin/emotionkd-train bundle-checkpoint runs/bundled-model/real/student.pt

## make system-deps: apt-get the system packages above, only the missing ones, only as root
system-deps:
	@command -v dpkg >/dev/null 2>&1 || { echo "system-deps: not a Debian/Ubuntu system; install the equivalents of: $(SYSTEM_DEPS)"; exit 0; }; \
	missing=""; for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "system-deps: missing$$missing; run 'sudo make system-deps'"; exit 1; fi; \
	echo "system-deps: installing$$missing (log: $(SYSTEM_DEPS_LOG))"; mkdir -p $(dir $(SYSTEM_DEPS_LOG)); \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
		>$(SYSTEM_DEPS_LOG) 2>&1 || { tail -n 20 $(SYSTEM_DEPS_LOG); exit 1; }

## make test: lint (ruff, the import-layer contracts with import-linter, mypy), then the test suite
test: system-deps $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider

# mypy does not follow the editable install's import hook: it reads the packages through links
# named as they import (emotionkd/<folder>, the package-dir mapping of pyproject.toml)
MYPY_PATH := build/mypy-path
lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-logo --cache-dir build/import-linter
	@mkdir -p $(MYPY_PATH)/emotionkd
	@for p in firmware_bridge sdk training exporters; do ln -sfn ../../../$$p $(MYPY_PATH)/emotionkd/$$p; done
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) tests/benchmarks/startup_budget.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis .mypy_cache .import_linter_cache
