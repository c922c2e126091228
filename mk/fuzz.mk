# mk/fuzz.mk - coverage-guided fuzzing of every reader through the whole pipeline (issue 12).
#
#   make fuzz                       # 10 minutes on every core
#   make fuzz FUZZ_SECONDS=36000    # a long run; the corpus in build/fuzz-corpus is kept between runs
#
# tests/fuzz/run.py prints executions, rate, uncaught exceptions, hangs and peak RSS, and saves each
# distinct failure (minimised) in tests/fuzz/crashers/, which tests/fuzz/test_corpus.py replays.

FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= $(shell nproc)

.PHONY: fuzz
fuzz: $(VENV)/.installed-test
	$(PIP) -e '.[test,fuzz]'
	$(PY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)
