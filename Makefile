# The two commands a new user needs: `make study` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU-and-CUDA torch build pinned for this project; override for another CUDA or a newer torch.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
PARAMS ?= params/demo.yaml
JOBS   ?=  # empty: kd study's default, one stage per core

.PHONY: setup test study lab bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile $(TORCH)
	$(BIN)/pip install --quiet --no-compile -e '.[dev,mnist]'
	@# pip byte-compiles every file it installs on one core; this does it on all of them, skipping the
	@# packages' own test suites, which nothing imports. A file that does not compile is left to
	@# Python to compile when imported, as pip leaves it, hence the `|| true`.
	$(BIN)/python -m compileall -qq -j 0 -x '/tests?/' $(VENV)/lib || true
	$(BIN)/python -m ipykernel install --sys-prefix --name kdcore --display-name "kdcore" > /dev/null
	touch $@

test: setup
	$(BIN)/ruff check kdcore tests benchmarks tools
	$(BIN)/lint-imports
	$(BIN)/pytest

study: setup
	$(BIN)/kd study $(PARAMS) $(if $(JOBS),--jobs $(JOBS))

lab: setup
	$(BIN)/kd lab

bench: setup
	$(BIN)/kd bench

clean:
	rm -rf $(VENV) reports/*/ reports/*.html
