# Two commands do everything on a fresh machine:
#   make demo   set up (once) and run the short end-to-end demonstration
#   make test   set up (once) and run the test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0

.PHONY: setup demo test clean-venv pilot

setup: $(STAMP)

# torch first, pinned: a plain `torch` requirement would pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m mechgrok.demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)

# ---- the replication (issue 7): long sweeps, resumable; run again to continue ----
# Stage 1, pilot at the paper's settings: seed 42 plus two seeds, every regime; grokfast in hard.
pilot: $(STAMP)
	$(BIN)/python -m mechgrok.sweep --regimes hard --arms baseline dream control grokfast --seeds 42,0,1 --out runs --workers 1 & \
	$(BIN)/python -m mechgrok.sweep --regimes easy medium --arms baseline dream control --seeds 42,0,1 --out runs --workers 1; wait
