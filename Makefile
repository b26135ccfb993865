# `bash scripts/run.sh demo` / `bash scripts/run.sh test` (the README's two commands) install the Debian
# packages that are missing (python3, python3-venv, make, ...) and then run `make demo` / `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lab system-deps browser-deps test-deps install lint bench fuzz binder-check fresh-debian clean

# Debian packages: the CNCF registry for everything, Chromium for the explorer's browser test.
system-deps:
	@bash scripts/system-deps.sh registry

browser-deps:
	@bash scripts/system-deps.sh browser

# skopeo: an independent resolver the tests compare ocinb's answers with; umoci: an independent unpacker;
# rpm and go for the catalogers' tests; tinyproxy: the proxy tests' proxy.
test-deps:
	@bash scripts/system-deps.sh skopeo umoci catalogers proxy

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
	$(BIN)/python bench/crawl.py

fuzz: install
	OCINB_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=3600 tests -k fuzz

# Needs the package index (not part of `make test`): binder/requirements.txt installs into a fresh venv.
binder-check: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m network tests/test_binder.py

# Needs root and the network, takes minutes (not part of `make test`): the README's two commands in a
# fresh minimal Debian 12 root (mmdebstrap + chroot); the log is build/fresh-debian.log.
fresh-debian:
	bash scripts/fresh-debian.sh

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
