# memfs — the two commands a newcomer needs:
#   make run    set everything up, build the built-in sample image, mount it, say what to try
#   make test   set everything up and run the whole test suite
PYTHON  ?= python3
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE  := sample
MNT     := $(SAMPLE)/mnt
PYTEST_ARGS ?=

.PHONY: setup system-packages python-packages run stop test lint asan clean

setup: system-packages python-packages

# fuse3 gives fusermount3 and libfuse3, which mfusepy loads; build tools for the C extension;
# libusb-1.0, which the test reader LeechCore (leechcorepyc) loads at import.
system-packages:
	@if ! command -v fusermount3 >/dev/null || ! ldconfig -p | grep -q libfuse3.so.3 \
	   || ! command -v gcc >/dev/null || ! command -v make >/dev/null \
	   || ! ldconfig -p | grep -q libusb-1.0.so.0; then \
	  echo "installing system packages: fuse3 gcc make libusb-1.0-0"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq fuse3 gcc make libusb-1.0-0; \
	fi

# Editable install: builds the C extension in place, installs the `memfs` command and test tools.
python-packages:
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PYTHON) setup.py -q build_ext --inplace

run: setup
	$(PYTHON) -m scripts.make_sample $(SAMPLE)
	@mkdir -p $(MNT)
	@if mountpoint -q $(MNT); then $(PYTHON) -m memfs umount $(MNT); fi
	$(PYTHON) -m memfs mount $(SAMPLE)/$$(cat $(SAMPLE)/IMAGE) $(MNT)
	@$(PYTHON) -m scripts.make_sample --explain $(SAMPLE)

stop:
	@if mountpoint -q $(MNT); then $(PYTHON) -m memfs umount $(MNT); fi

test: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

-include mk/*.mk

clean: stop
	rm -rf build $(SAMPLE) memfs/xpress/*.so *.egg-info .pytest_cache
