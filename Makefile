# Two commands on a fresh Debian machine: `make demo` shows ocinb at work, `make test` proves it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lab system-deps browser-deps test-deps install lint bench fuzz clean

# Debian packages: the CNCF registry for everything, Chromium for the explorer's browser test.
system-deps:
	@bash scripts/system-deps.sh registry

browser-deps:
	@bash scripts/system-deps.sh browser

# skopeo: an independent resolver the tests compare ocinb's answers with; tinyproxy: the proxy tests' proxy.
test-deps:
	@bash scripts/system-deps.sh skopeo proxy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

$(VENV)/.demo-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.lab-installed: $(VENV)/.demo-installed
	$(BIN)/pip install --quiet -e '.[demo,lab]'
	touch $@

lint: install
	$(BIN)/ruff check ocinb tests bench
	$(BIN)/mypy

test: system-deps browser-deps test-deps install
	$(BIN)/ruff check ocinb tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

demo: system-deps $(VENV)/.demo-installed
	$(BIN)/python scripts/demo.py

lab: system-deps $(VENV)/.lab-installed
	PYTHON=$(BIN)/python bash scripts/lab.sh

bench: system-deps install
	bash scripts/bench-deps.sh
	$(BIN)/python bench/run.py

fuzz: install
	OCINB_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -q -p no:cacheprovider tests -k fuzz

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
