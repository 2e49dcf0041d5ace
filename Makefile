# The two commands of the README:  `make demo`  and  `make test`.
# Both create .venv on first use: the CPU build of torch 2.13 first (pip takes it from the
# local wheel on our machines; it keeps pip from pulling a CUDA build), then wavegen with its
# test dependencies, then the dtcwt oracle.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: setup demo test bench gallery

setup: $(VENV)/.installed

# The dtcwt oracle pins numpy<2; it runs on NumPy 2 behind the test harness's shims
# (tests/reference_shims.py), so it is installed without its dependencies.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps dtcwt==0.14.0
	touch $@

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest -n 2 -q

bench: setup
	$(PY) benchmarks/run.py

gallery: setup
	$(PY) -m wavegen gallery
