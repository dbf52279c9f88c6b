# Two entry points for a fresh machine with Python 3.11: `make bench` and `make test`.
# Each creates the virtual environment .venv on first use, with the pinned versions of constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bench test validity lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	touch $@

## The main job: on every built-in workload the baseline that set its targets, PyTorch, CPU.
bench: $(VENV)/.installed
	$(BIN)/pytest --algoperf-submission=baseline --algoperf-framework=pytorch --algoperf-device=cpu

## The validity study (VALIDITY.md): the panel under external tuning, scored beside AlgoPerf v0.5 (about 4 hours
## on 2 CPUs for its 3 studies; --studies 1 takes a third of that and orders the panel by chance).
validity: $(VENV)/.installed
	$(BIN)/python -m pytest_algoperf.validity --framework pytorch --parallel 2 --output validity/

## The project's own tests, after the linter.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .algoperf .pytest_cache
