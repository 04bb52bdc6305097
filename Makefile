# PEFT from Scratch — every command bootstraps its own environment (.venv from requirements.lock).
# Nothing needs activating: the venv's bin/ is put first on PATH for every recipe.

PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
export PYTHONWARNINGS ?= ignore
# PyTorch's OpenMP threads spin while they wait for work. When other processes want the same cores
# (two kernels, a parallel grading run, any busy machine) the spinning steals their time: a training
# cell measured 8x slower (180 s instead of 23 s). Waiting threads sleep instead.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help venv book test release grade merge grade-bench bench gpu-check public fork fixtures signals lock clean

help:
	@echo "make book      build the website into _build/html"
	@echo "make test      run every test"
	@echo "make release   regenerate notebooks/ (student edition) from solutions/"
	@echo "make grade SUBMISSIONS=<folder or .zip> OUT=<folder> [WORKERS=N] [SHARD=K/N]   autograde a class (sandboxed; UNSANDBOXED=1 without)"
	@echo "make merge SHARDS='<out1> <out2> ...' OUT=<folder>   join the outputs of shards"
	@echo "make export OUT=<folder>    after hand grading in formgrader: its scores into OUT/grades.csv"
	@echo "make hub-course COURSE=<folder> [IDS='ch04_lora ...']   an nbgrader course folder (release/) for the hub's exchange"
	@echo "make grade-bench OUT=<folder> [STUDENTS=60] [WORKERS=2]  time the grader on a synthetic class"
	@echo "make bench [MODELS='qwen2.5-0.5b llama-2-7b'] [METHODS='full lora qlora'] [BATCH=4] [SEQ=512] [STEPS=10] [JSON=<file>]"
	@echo "               peak memory and tokens/s of full fine-tuning, LoRA, QLoRA beside the prediction (GPU; CPU: tiny)"
	@echo "make gpu-check [CPU=1] [JSON=<file>]   prove the GPU path on one CUDA machine, offline, < 8 min: memory"
	@echo "               (bench), the capstone's QLoRA loop in fp16+GradScaler and bf16, a mixed-adapter batch; one table"
	@echo "make public DEST=<folder>   export the public edition (no solutions, no hidden tests)"
	@echo "make fork REPO=<url>        point the launch buttons and setup cells at your fork"
	@echo "make fixtures OUT=<folder>  write the wrong-submission fixtures as a class folder"
	@echo "make signals IDS='ch05_quantization ...'   which classic mistakes the visible and the hidden tests catch"

# torch is the CPU build: requirements.lock pins torch==<version>+cpu, which the package index (PyPI)
# does not have (its Linux torch is the CUDA build, with nvidia-* libraries the lock does not list).
# It comes from PyTorch's CPU index when that answers, else from a wheel in pip's find-links
# (PIP_FIND_LINKS, e.g. an offline machine's /opt/wheels). TORCH_INDEX= (empty) skips the index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN = $(shell grep -m1 '^torch==' requirements.lock)
# prints "--extra-index-url <TORCH_INDEX>" when the index answers within 10 s, else nothing
TORCH_SOURCE = [ -n "$(TORCH_INDEX)" ] && $(PYTHON) -c "import sys, urllib.request; \
  urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=10); \
  print('--extra-index-url', sys.argv[1])" '$(TORCH_INDEX)' 2>/dev/null
INSTALL_TORCH = source=$$($(TORCH_SOURCE)); \
  echo "installing $(TORCH_PIN) from $${source:-pip's find-links (no CPU index: TORCH_INDEX='$(TORCH_INDEX)')}"; \
  $(1)/python -m pip install --quiet --no-deps "$(TORCH_PIN)" $$source || { echo "error: $(TORCH_PIN) \
  comes from PyTorch's CPU index (TORCH_INDEX) or a wheel in pip's find-links; neither had it" >&2; exit 1; }

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@$(call INSTALL_TORCH,$(BIN))
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP)

# A failed build (a page that raised, a cell that never ran, any Sphinx warning) exits non-zero and
# leaves no HTML, doctrees or executed notebooks behind that a re-run would take as up to date.
book: $(STAMP)
	@status=0; PEFTLAB_PROGRESS=text $(BIN)/jupyter-book build . -W -n --keep-going || status=$$?; \
	  $(BIN)/python book/check_build.py _build --build-status $$status
	@echo "website: $(abspath _build/html/index.html)"

test: $(STAMP)
	$(BIN)/python -m pytest

release: instructor-only $(STAMP)
	$(BIN)/python -m autograder.release

grade: instructor-only $(STAMP)
	@if [ -z "$(SUBMISSIONS)" ] || [ -z "$(OUT)" ]; then \
	  echo "usage: make grade SUBMISSIONS=<folder or .zip> OUT=<folder> [WORKERS=N] [SHARD=K/N]"; exit 2; fi
	$(BIN)/python -m autograder.grade "$(SUBMISSIONS)" "$(OUT)" $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(SHARD),--shard $(SHARD)) $(if $(UNSANDBOXED),--no-sandbox)

merge: instructor-only $(STAMP)
	@if [ -z "$(SHARDS)" ] || [ -z "$(OUT)" ]; then echo "usage: make merge SHARDS='<out1> <out2> ...' OUT=<folder>"; exit 2; fi
	$(BIN)/python -m autograder.merge $(SHARDS) --out "$(OUT)"

# After hand grading in formgrader (OUT/course): the gradebook's scores, manual ones included, into
# OUT/grades.csv and OUT/cells.csv (the file for the LMS). Run it again after any change in formgrader.
.PHONY: export
export: instructor-only $(STAMP)
	@if [ -z "$(OUT)" ]; then echo "usage: make export OUT=<folder>"; exit 2; fi
	$(BIN)/python -m autograder.export "$(OUT)"

# An nbgrader course folder for a JupyterHub's exchange: source/, release/<id>/, gradebook, config.
.PHONY: hub-course
hub-course: instructor-only $(STAMP)
	@if [ -z "$(COURSE)" ]; then echo "usage: make hub-course COURSE=<folder> [IDS='ch04_lora ...']"; exit 2; fi
	$(BIN)/python -m autograder.hub "$(COURSE)" $(IDS)

grade-bench: instructor-only $(STAMP)
	@if [ -z "$(OUT)" ]; then echo "usage: make grade-bench OUT=<folder> [STUDENTS=60] [WORKERS=2]"; exit 2; fi
	$(BIN)/python -m autograder.bench "$(OUT)" --students $(or $(STUDENTS),60) --workers $(or $(WORKERS),2)

# Peak memory and training speed of full fine-tuning, LoRA and QLoRA beside the course's prediction
# (bench/memory_speed.py). Meant for a GPU; on a CPU it runs a tiny model (checks the code, not speed).
BENCH_OPTIONS = $(if $(MODELS),--models $(MODELS)) $(if $(METHODS),--methods $(METHODS)) \
  $(if $(BATCH),--batch $(BATCH)) $(if $(SEQ),--seq $(SEQ)) $(if $(STEPS),--steps $(STEPS)) \
  $(if $(JSON),--json "$(JSON)")
bench: instructor-only $(STAMP)
	$(BIN)/python -m bench.memory_speed $(strip $(BENCH_OPTIONS))

# The course's GPU path on one CUDA machine, offline (bench/gpu_check.py): the memory benchmark in bf16 and
# fp16, the capstone's QLoRA loop in fp16 with a GradScaler (a T4) and in bf16 (Ampere and later), a
# mixed-adapter batch. Without a GPU it says so and fails; CPU=1 is a dry run of the same code.
gpu-check: instructor-only $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.gpu_check $(if $(CPU),--cpu) $(if $(JSON),--json "$(JSON)")

public: instructor-only $(STAMP)
	@if [ -z "$(DEST)" ]; then echo "usage: make public DEST=<folder>"; exit 2; fi
	$(BIN)/python -m autograder.public "$(DEST)"

# The instructors' repository regenerates the student edition (autograder.fork); the public edition,
# which has no solutions to regenerate from, rewrites the address in _config.yml and the setup cells.
fork: $(STAMP)
	@if [ -z "$(REPO)" ]; then echo "usage: make fork REPO=https://github.com/<you>/<repo>"; exit 2; fi
	@if [ -d solutions ] && [ -d autograder ]; then $(BIN)/python -m autograder.fork "$(REPO)"; else \
	  $(BIN)/python -c "import json, pathlib, re, sys; url = sys.argv[1]; \
	  assert re.fullmatch(r'https://[^\s\"\x27#]+', url), f'{url!r} is not an https URL of a repository'; \
	  config = pathlib.Path('_config.yml'); text = config.read_text(); \
	  old = re.search(r'(?m)^repository:\n(?:[ \t].*\n)*?[ \t]+url:[ \t]*(\S+)', text).group(1); \
	  paths = [config, *sorted(pathlib.Path('notebooks').glob('*/*.ipynb'))]; \
	  [p.write_text(p.read_text().replace(old, url)) for p in paths]; \
	  print(f'{old} -> {url} in _config.yml and {len(paths) - 1} notebooks')" "$(REPO)"; fi

fixtures: instructor-only $(STAMP)
	@if [ -z "$(OUT)" ]; then echo "usage: make fixtures OUT=<folder>"; exit 2; fi
	$(BIN)/python -m autograder.mistakes "$(OUT)"

.PHONY: instructor-only
signals: instructor-only $(STAMP)
	@if [ -z "$(IDS)" ]; then echo "usage: make signals IDS='ch05_quantization ...'"; exit 2; fi
	$(BIN)/python -m autograder.signals $(IDS)

instructor-only:
	@if [ ! -d solutions ] || [ ! -d autograder ]; then \
	  echo "This is the public edition: release, grading and export need the instructors' repository."; exit 2; fi

# Refresh requirements.lock after changing requirements*.txt (needs the package index). The torch pin
# stays what the lock says (the CPU build): edit its line to move to another torch.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	@$(call INSTALL_TORCH,.venv-lock/bin)
	.venv-lock/bin/python -m pip install --quiet -r requirements-dev.txt
	( echo "# Full pinned environment (generated by 'make lock' from requirements-dev.txt; do not edit by hand)."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable ) > requirements.lock
	@if grep -iq '^nvidia-' requirements.lock || ! grep -q '^torch==.*+cpu$$' requirements.lock; then \
	  echo "error: the lock must hold the CPU torch (torch==...+cpu) and no nvidia-* package"; exit 1; fi
	rm -rf .venv-lock

clean:
	rm -rf _build .pytest_cache
