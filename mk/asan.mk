# mk/asan.mk - build the Xpress codec core with AddressSanitizer + UBSan and run its C test driver
# (tests/xpress/asan_driver.c) over the shared test vectors, mutated vectors and random streams.
#
#   make -f mk/asan.mk asan                 # standalone, from the repository root (or anywhere)
#   include mk/asan.mk                      # from the top-level Makefile, then `make asan`
#
# Variables: MEMFS_SHARED (default: ../shared next to the repository), ASAN_FUZZ (random iterations).

XPRESS_ROOT := $(patsubst %/mk/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
ASAN_DIR := $(XPRESS_ROOT)/build/asan
ASAN_BIN := $(ASAN_DIR)/xpress_asan_driver
ASAN_SRC := $(filter-out %/module.c,$(wildcard $(XPRESS_ROOT)/memfs/xpress/*.c)) \
            $(XPRESS_ROOT)/tests/xpress/asan_driver.c
ASAN_HDR := $(wildcard $(XPRESS_ROOT)/memfs/xpress/*.h) $(XPRESS_ROOT)/tests/asan_util.h
ASAN_CC ?= $(CC)
ASAN_CFLAGS ?= -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -Wall -Wextra -Werror
ASAN_FUZZ ?= 20000
MEMFS_SHARED ?= $(firstword $(wildcard $(XPRESS_ROOT)/../shared $(XPRESS_ROOT)/../../shared))

.PHONY: asan
asan: $(ASAN_BIN)
	@vectors=""; \
	if [ -n "$(MEMFS_SHARED)" ] && [ -f "$(MEMFS_SHARED)/data/xpress/manifest.json" ]; then \
	  python3 -c 'import json, sys; root = sys.argv[1]; \
	    [print(e["algorithm"], root + "/" + e["compressed"], root + "/" + e["expected"]) \
	     for e in json.load(open(root + "/manifest.json"))]' \
	    "$(MEMFS_SHARED)/data/xpress" > $(ASAN_DIR)/vectors.txt && vectors="--list $(ASAN_DIR)/vectors.txt"; \
	else echo "asan: shared/data/xpress not found, fuzzing only"; fi; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(ASAN_BIN) $$vectors --fuzz $(ASAN_FUZZ)

$(ASAN_BIN): $(ASAN_SRC) $(ASAN_HDR)
	@mkdir -p $(ASAN_DIR)
	$(ASAN_CC) $(ASAN_CFLAGS) -I$(XPRESS_ROOT)/memfs/xpress -I$(XPRESS_ROOT)/tests -o $@ $(ASAN_SRC)
