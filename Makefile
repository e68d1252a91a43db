# Two commands: `make demo` and `make test`. Both create .venv and install kamtools first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kamtools-installed
OUT    ?= build

.PHONY: demo test install clean sample-data

install: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kamtools needs Python 3.11 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes (quick when already installed).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --editable ".[test]"
	@touch $(STAMP)

# The sample's key-account reports and the portfolio report, as a consultant renders them;
# the last line printed is the path of reports/index.html.
REPORTS ?= reports
PERIOD_END ?= 2025-12-31

demo: $(STAMP)
	$(VENV)/bin/kamtools validate data/sample
	$(VENV)/bin/kamtools report --all-key-accounts --portfolio --data data/sample --period-end $(PERIOD_END) --out $(REPORTS)

# Unit, statistical, CLI, report and browser tests and the docstring examples; then the
# walk-through notebooks under nbval (their check cells assert the key numbers).
# One BLAS thread: the suite runs statistics and notebook kernels side by side on 2 cores.
test: export OPENBLAS_NUM_THREADS = 1
test: export OMP_NUM_THREADS = 1
test: $(STAMP)
	$(PY) -m pytest
	$(PY) -m pytest --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks/

# Regenerate the committed sample (data/sample) after changing the generator.
sample-data: $(STAMP)
	$(VENV)/bin/kamtools sample --out data/sample --force

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache kamtools.egg-info
