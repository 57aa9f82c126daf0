# The two commands a new user needs:
#   make demo   installs into .venv on first use, then runs recipes/banking77.yaml end to end
#               (generate, then a short compare: did the synthetic rows help a student?)
#               make demo HUB_REPO=you/banking77-synthetic also publishes the folder to the Hub
#               (token: HF_TOKEN or `hf auth login`)
#   make test   installs if needed, then runs every test (fast ones and the real-vLLM ones)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synth-datasets-installed

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synth-datasets generate recipes/banking77.yaml
	$(PY) scripts/show_dataset.py outputs/banking77-synthetic-demo
	$(VENV)/bin/synth-datasets compare recipes/banking77.yaml $(if $(HUB_REPO),--push-to-hub $(HUB_REPO))

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/generation_throughput.py

clean:
	rm -rf outputs .pytest_cache
