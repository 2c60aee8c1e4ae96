# SomaAgentHub: offline render, the promotion gate and the tests. `make help` lists targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STACK  ?= dev
PLAN   ?= build/$(STACK)/plan.json

.PHONY: help venv render gate test bench-gate clean

help:
	@echo "make render STACK=dev|prod   render the stack offline into build/<stack>/ and run the gate"
	@echo "make gate STACK=prod [PLAN=]  run the policy gate over a rendered plan"
	@echo "make test                     install what is needed and run every test"
	@echo "make bench-gate               time the gate over 10,000 synthetic workloads"

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

render: venv
	$(PY) -m tools.render --stack $(STACK)
	$(PY) -m tools.gate --stack $(STACK) --plan $(PLAN)

gate: venv
	$(PY) -m tools.gate --stack $(STACK) --plan $(PLAN)

test: venv
	$(PY) -m pytest -q

bench-gate: venv
	$(PY) -m tools.bench_gate --workloads 10000

clean:
	rm -rf build
