# memfs — the two commands a newcomer needs:
#   make run    set everything up, build the built-in sample image, mount it, say what to try
#   make test   set everything up and run the whole test suite
# and for maintainers: make stop, make lint, make asan, make test-platforms (the platform matrix).
#
# Python packages go into a project virtual environment ($(VENV)), never into the system Python
# (Debian 12 and Ubuntu 23.04+ forbid that: PEP 668).  PYTHON picks the interpreter the venv is made
# with (PYTHON=python3.13 make test); the venv is remade when PYTHON names another one.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip install -q --disable-pip-version-check
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
SAMPLE  := sample
MNT     := $(SAMPLE)/mnt
PYTEST_ARGS ?=
MATRIX_ARGS ?=

.PHONY: setup system-packages test-system-packages platform-system-packages python-packages run stop \
        test test-platforms lint asan clean FORCE

setup: system-packages python-packages

# What stock Debian/Ubuntu lack, looked for the way they are used: venv (ensurepip) and Python.h for
# $(PYTHON) (pythonX.Y-venv, pythonX.Y-dev), libfuse 3 as the dynamic linker finds it (libfuse3.so.3,
# or .so.4 on Debian 13) and fusermount3 (fuse3), a C compiler for the Xpress extension (gcc), make.
system-packages:
	@set -e; \
	version=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
	  || { echo "make: no $(PYTHON) here: install python3, or name another with PYTHON=" >&2; exit 1; }; \
	missing=""; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python$$version-venv"; \
	$(PYTHON) -c 'import os, sys, sysconfig; \
	  sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || missing="$$missing python$$version-dev"; \
	libfuse3=""; for so in libfuse3.so.4 libfuse3.so.3; do \
	  $(PYTHON) -c "import ctypes; ctypes.CDLL('$$so')" 2>/dev/null && libfuse3=$$so; done; \
	{ [ -n "$$libfuse3" ] && command -v fusermount3 >/dev/null; } || missing="$$missing fuse3"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v make >/dev/null || missing="$$missing make"; \
	$(call apt_install,$$missing)

# Only for the tests: smbd and smbclient for the WinDbg-over-Samba test; libusb-1.0, which the
# independent hiberfil reader LeechCore (leechcorepyc) loads at import; for the container tests, ewf-tools
# (ewfacquire makes the E01 fixtures, ewfverify/ewfexport check them; on Debian 12 it depends on
# libfuse2, which memfs does not pick while libfuse 3 is there), libsnappy1v5 (Volatility 3's AVML layer
# loads it), golang-go and golang-github-klauspost-compress-dev (klauspost's own Snappy/S2 writer and
# reader, the library go-winpmem and Velociraptor use: 112 MB to download, 10 s to unpack, measured).
test-system-packages:
	@set -e; missing=""; \
	ldconfig -p | grep -q 'libusb-1.0.so.0 ' || missing="$$missing libusb-1.0-0"; \
	{ command -v smbd >/dev/null || [ -x /usr/sbin/smbd ]; } || missing="$$missing samba"; \
	command -v smbclient >/dev/null || missing="$$missing smbclient"; \
	command -v ewfacquire >/dev/null || missing="$$missing ewf-tools"; \
	ldconfig -p | grep -q 'libsnappy.so.1 ' || missing="$$missing libsnappy1v5"; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	[ -d /usr/share/gocode/src/github.com/klauspost/compress/s2 ] \
	  || missing="$$missing golang-github-klauspost-compress-dev"; \
	$(call apt_install,$$missing)

# Only for the platform matrix: Debian's tools it takes libfuse builds and a stock system with.
platform-system-packages:
	@set -e; missing=""; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v dpkg-source >/dev/null || missing="$$missing dpkg-dev"; \
	{ command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ]; } || missing="$$missing debootstrap"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	$(call apt_install,$$missing)

# $(call apt_install,PACKAGES): install PACKAGES (a shell word list, maybe empty) with apt-get.
define apt_install
if [ -n "$(strip $(1))" ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "make: please install:$(1) (this machine has no apt-get)" >&2; exit 1; fi; \
	  echo "make: installing system packages:$(1)"; \
	  $(APT_GET) install -y -qq $(1) >/dev/null 2>&1 \
	    || { $(APT_GET) update -qq && $(APT_GET) install -y -qq $(1); }; \
	fi
endef

# The venv, (re)made when it is missing or was made with another interpreter than $(PYTHON).
$(VENV)/.made-with: FORCE
	@want="$$($(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	if [ ! -x $(PY) ] || [ "$$(cat $@ 2>/dev/null)" != "$$want" ]; then \
	  echo "make: creating $(VENV) with $$want"; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && echo "$$want" > $@; \
	fi

# Editable install: pip builds the C extension in place and installs the `memfs` command.
$(VENV)/.installed: $(VENV)/.made-with pyproject.toml setup.py $(wildcard memfs/*/*.[ch])
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	@touch $@

python-packages: $(VENV)/.installed

run: setup
	$(PY) -m scripts.make_sample $(SAMPLE)
	@mkdir -p $(MNT)
	@if mountpoint -q $(MNT); then $(PY) -m memfs umount $(MNT); fi
	$(PY) -m memfs mount $(SAMPLE)/$$(cat $(SAMPLE)/IMAGE) $(MNT)
	@$(PY) -m scripts.make_sample --explain $(SAMPLE)

# By the mount table, not `mountpoint`: a mount whose daemon died fails every stat.
stop:
	@if grep -qs " $(CURDIR)/$(MNT) " /proc/self/mountinfo; then \
	  if [ -x $(PY) ]; then $(PY) -m memfs umount $(MNT); else fusermount3 -u $(MNT); fi; fi

test: system-packages test-system-packages $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The platform matrix (Pythons 3.10-3.13, libfuse 2.9/3.10/3.14/3.17, sdists, `make run` on a stock
# machine); it makes its own venvs and needs only the standard library.  Run by .ci/run; needs root.
test-platforms: system-packages test-system-packages platform-system-packages
	$(PYTHON) -m scripts.platform_matrix $(MATRIX_ARGS)

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

FORCE:

-include mk/*.mk

clean: stop
	rm -rf build dist $(SAMPLE) memfs/*/*.so *.egg-info .pytest_cache
