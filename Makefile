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

demo: $(STAMP)
	$(VENV)/bin/kamtools sample --out $(OUT)/sample --force
	$(VENV)/bin/kamtools validate $(OUT)/sample

test: $(STAMP)
	$(PY) -m pytest

# Regenerate the committed sample (data/sample) after changing the generator.
sample-data: $(STAMP)
	$(VENV)/bin/kamtools sample --out data/sample --force

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache kamtools.egg-info
