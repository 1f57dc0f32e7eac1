# The project's contract: CI runs `make test`; README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# The vendored VirtualGL and software Mesa sources, when this checkout has them beside it.
VENDOR_DIR ?= ../shared/vendor
export ANA_VENDOR_CACHE ?= $(HOME)/.cache/ana-headless-vendor
DEMO_PNG ?= out/scene.png

.PHONY: all install system-deps demo test unit lint man vendor anatomist anatomist-direct debian13 \
  bench clean

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
	@if [ -x "$(ANATOMIST_ROOT)/build/bin/anatomist" ]; then \
	  $(ANATOMIST_ENV) $(VENV)/bin/ana-headless run --python $(ANATOMIST_PYTHON) \
	    examples/anatomist_snapshot.py $(ANATOMIST_DEMO_PNG) > /dev/null || exit 1; \
	  echo "demo: the real Anatomist snapshotted a mesh without a screen, pixels checked: $(abspath $(ANATOMIST_DEMO_PNG))"; \
	else echo "demo: no real Anatomist in $(ANATOMIST_ROOT) (\`make anatomist\` builds it): no Anatomist snapshot"; fi

# Builds VirtualGL and the xlib software Mesa once into $(ANA_VENDOR_CACHE), so that the GL-mode
# tests run against the real tools; without the vendored sources those tests skip and say why.
vendor:
	@if [ -d "$(VENDOR_DIR)" ]; then \
	  mkdir -p "$(ANA_VENDOR_CACHE)"; \
	  [ -x "$(ANA_VENDOR_CACHE)/virtualgl/bin/vglrun" ] || \
	    { echo "building VirtualGL (about 1 min)..."; bash $(VENDOR_DIR)/build-virtualgl.sh > "$(ANA_VENDOR_CACHE)/virtualgl.log" 2>&1 || { tail -30 "$(ANA_VENDOR_CACHE)/virtualgl.log"; exit 1; }; }; \
	  [ -e "$(ANA_VENDOR_CACHE)/mesa/lib/libGL.so.1" ] || \
	    { echo "building the software Mesa (about 4 min)..."; bash $(VENDOR_DIR)/build-mesa-xlib.sh > "$(ANA_VENDOR_CACHE)/mesa.log" 2>&1 || { tail -30 "$(ANA_VENDOR_CACHE)/mesa.log"; exit 1; }; }; \
	else echo "no $(VENDOR_DIR): VirtualGL and the software Mesa are not built here; their tests run only if $(ANA_VENDOR_CACHE) has them"; fi

# The real Anatomist (BrainVISA's C++ viewer and pyanatomist), built once from the vendored
# sources into $(ANATOMIST_ROOT) for the tests marked `anatomist` and the demo's Anatomist
# snapshot. The first build takes about 1.5 hours on 2 cores, so `make test` never starts it:
# those tests skip, naming this target, until it has run. Its client is Debian's Python with
# apt's PyQt5 (the build links against Debian's Qt); click (for ana_headless in that Python) and
# soma-base from PyPI (as BrainVISA users get it) go into directories of their own beside it.
ANATOMIST_ROOT := $(ANA_VENDOR_CACHE)/anatomist
ANATOMIST_PYTHON ?= /usr/bin/python3
SOMA_BASE_VERSION ?= 6.0.19
# What a BrainVISA environment gives Anatomist's users: the program, its libraries and shared
# files, and its Python API.
ANATOMIST_ENV = PATH="$(ANATOMIST_ROOT)/build/bin:$$PATH" LD_LIBRARY_PATH="$(ANATOMIST_ROOT)/build/lib" \
  BRAINVISA_SHARE="$(ANATOMIST_ROOT)/build/share" PYTHONPATH="$(ANATOMIST_ROOT)/python"
ANATOMIST_DEMO_PNG ?= $(dir $(DEMO_PNG))anatomist.png

anatomist: install
	@if [ -x "$(ANATOMIST_ROOT)/build/bin/anatomist" ] && [ -f "$(ANATOMIST_ROOT)/python/anatomist/info.py" ]; then \
	  echo "the real Anatomist is built in $(ANATOMIST_ROOT)"; \
	elif [ ! -d "$(VENDOR_DIR)/anatomist" ]; then \
	  echo "no $(VENDOR_DIR)/anatomist: the real-Anatomist tests will skip"; exit 0; \
	else \
	  mkdir -p "$(ANA_VENDOR_CACHE)"; started=$$(date +%s); \
	  echo "building the real Anatomist into $(ANATOMIST_ROOT) (about 1.5 hours on 2 cores; log: $(ANATOMIST_ROOT).log)..."; \
	  ANA_ROOT="$(ANATOMIST_ROOT)" bash $(VENDOR_DIR)/anatomist/build-anatomist.sh > "$(ANATOMIST_ROOT).log" 2>&1 \
	    || { tail -30 "$(ANATOMIST_ROOT).log"; exit 1; }; \
	  echo "built the real Anatomist in $(ANATOMIST_ROOT) in $$(( ($$(date +%s) - started) / 60 )) min"; \
	fi; \
	[ -d "$(ANATOMIST_ROOT)/site/click" ] || \
	  $(VPY) -m pip install --quiet --no-deps --target "$(ANATOMIST_ROOT)/site" 'click>=8.0'; \
	[ -d "$(ANATOMIST_ROOT)/soma-base-pypi/soma" ] || \
	  $(VPY) -m pip install --quiet --no-deps --target "$(ANATOMIST_ROOT)/soma-base-pypi" 'soma-base==$(SOMA_BASE_VERSION)'

# The Debian 13 roots of the `distro` tests, built once (as root); `make test` never builds them.
debian13:
	@scripts/debian-root.sh xvfb "$(ANA_VENDOR_CACHE)/debian13-xvfb"
	@scripts/debian-root.sh weston "$(ANA_VENDOR_CACHE)/debian13-weston"

# The DIRECT Anatomist, BrainVISA's default implementation: pyaims' and pyanatomist's sip
# bindings, which load libanatomist, Qt's OpenGL and the GL library into the Python process
# itself, built on top of the socket build above (its C++ libraries are reused, only the
# bindings are compiled, at -O0) into $(ANATOMIST_ROOT)/build-direct, for the tests marked
# `anatomist_direct`. After the socket build's 1.5 hours it takes about 6 min on 2 cores (most
# of it copying headers and compiling the sip modules); `make test` never starts it, as it
# needs the socket build. Run again after an interruption or a failure, it resumes where it
# stopped, step by step (the log grows with each run).
ANATOMIST_DIRECT := $(ANATOMIST_ROOT)/build-direct
# What those tests need beside ANATOMIST_PYTHON: the bindings and the pure-Python packages
# (soma, soma.aims, anatomist), the bindings' two helper libraries before the socket build's.
ANATOMIST_DIRECT_ENV = PYTHONPATH="$(ANATOMIST_DIRECT)/python" \
  LD_LIBRARY_PATH="$(ANATOMIST_DIRECT)/lib:$(ANATOMIST_ROOT)/build/lib" \
  BRAINVISA_SHARE="$(ANATOMIST_ROOT)/build/share"

anatomist-direct: anatomist
	@if [ ! -x "$(ANATOMIST_ROOT)/build/bin/anatomist" ]; then \
	  echo "no socket build in $(ANATOMIST_ROOT): the DIRECT Anatomist is not built, its tests will skip"; \
	else \
	  started=$$(date +%s); log="$(ANA_VENDOR_CACHE)/anatomist-direct.log"; \
	  echo "building the DIRECT Anatomist into $(ANATOMIST_DIRECT) (about 6 min on 2 cores the first time; log: $$log)..."; \
	  echo "--- $$(date -u '+%F %T') run" >> "$$log"; \
	  ANA_ROOT="$(ANATOMIST_ROOT)" VENDOR_DIR="$(abspath $(VENDOR_DIR))" \
	    bash scripts/build-anatomist-direct.sh >> "$$log" 2>&1 || { tail -30 "$$log"; exit 1; }; \
	  echo "the DIRECT Anatomist is built in $(ANATOMIST_DIRECT) ($$(( ($$(date +%s) - started) / 60 )) min this run)"; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

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
# runs after the others; BATCH_ARGS="--subjects 20" makes it short. W6
# (benchmarks/anatomist_batch.py, the same with the real Anatomist) last, where `make
# anatomist` has built it; ANATOMIST_BATCH_ARGS="--subjects 20" makes it short.
bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/batch.py $(BATCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/anatomist_batch.py $(ANATOMIST_BATCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) out .mypy_cache .ruff_cache .pytest_cache *.egg-info
