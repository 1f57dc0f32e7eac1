# The project's contract: CI runs `make test`; README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# The vendored VirtualGL and software Mesa sources, when this checkout has them beside it.
VENDOR_DIR ?= ../shared/vendor
export ANA_VENDOR_CACHE ?= $(HOME)/.cache/ana-headless-vendor
DEMO_PNG ?= out/scene.png

.PHONY: all install system-deps demo test unit lint man vendor bench clean

all: test

system-deps:
	@scripts/system-deps.sh test

$(VENV)/.installed: setup.cfg pyproject.toml
	@scripts/system-deps.sh test
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	@mkdir -p $(dir $(DEMO_PNG))
	$(VENV)/bin/ana-headless run examples/render_scene.py $(DEMO_PNG)
	@echo "demo: a lit 3D scene was rendered without a screen and its pixels checked: $(abspath $(DEMO_PNG))"

# Builds VirtualGL and the xlib software Mesa once into $(ANA_VENDOR_CACHE), so that the GL-mode
# tests run against the real tools; without the vendored sources those tests skip and say why.
vendor:
	@if [ -d "$(VENDOR_DIR)" ]; then \
	  mkdir -p "$(ANA_VENDOR_CACHE)"; \
	  [ -x "$(ANA_VENDOR_CACHE)/virtualgl/bin/vglrun" ] || \
	    { echo "building VirtualGL (about 1 min)..."; bash $(VENDOR_DIR)/build-virtualgl.sh > "$(ANA_VENDOR_CACHE)/virtualgl.log" 2>&1 || { tail -30 "$(ANA_VENDOR_CACHE)/virtualgl.log"; exit 1; }; }; \
	  [ -e "$(ANA_VENDOR_CACHE)/mesa/lib/libGL.so.1" ] || \
	    { echo "building the software Mesa (about 4 min)..."; bash $(VENDOR_DIR)/build-mesa-xlib.sh > "$(ANA_VENDOR_CACHE)/mesa.log" 2>&1 || { tail -30 "$(ANA_VENDOR_CACHE)/mesa.log"; exit 1; }; }; \
	else echo "no $(VENDOR_DIR): the VirtualGL and software-Mesa tests will skip"; fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

man: install
	$(VPY) -m ana_headless.manpage > man/ana-headless.1

test: install vendor lint
	$(VENV)/bin/pytest

unit: install
	$(VENV)/bin/pytest tests/unit

# The benchmark runs a regular install, as users have it (an editable install adds an import
# hook to every Python start), in a virtualenv of its own beside the development one.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: setup.cfg pyproject.toml $(wildcard ana_headless/*.py)
	@scripts/system-deps.sh test
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet '.[bench]'
	@# The same version number: pip would keep the copy installed before these sources.
	$(BENCH_VENV)/bin/python -m pip install --quiet --force-reinstall --no-deps .
	rm -rf build
	touch $@

# W5 (benchmarks/batch.py, batches of snapshots through processes, Dask and soma-workflow)
# runs after the others; BATCH_ARGS="--subjects 20" makes it short.
bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/batch.py $(BATCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) out .mypy_cache .ruff_cache .pytest_cache *.egg-info
