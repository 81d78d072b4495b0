# Thin wrapper over tasks.py (which needs only Python 3.11+).
PYTHON ?= python3

.PHONY: report test lab notebooks
report:
	$(PYTHON) tasks.py report
test:
	$(PYTHON) tasks.py test
lab:
	$(PYTHON) tasks.py lab
notebooks:
	$(PYTHON) tasks.py notebooks
