# mk/asan_lznt1.mk - build the LZNT1 codec core with AddressSanitizer + UBSan and run its C test driver
# (tests/lznt1/asan_driver.c) over the [MS-XCA] example, the Windows-made vectors of shared/data/lznt1
# (when present), mutated vectors, random streams and encoder round trips.  `make asan` runs it too.
#
#   make -f mk/asan_lznt1.mk asan-lznt1     # standalone, from the repository root (or anywhere)
#   include mk/asan_lznt1.mk                # from the top-level Makefile, then `make asan-lznt1`
#
# Variables: MEMFS_SHARED (default: ../shared next to the repository), ASAN_FUZZ (random iterations).

LZNT1_ROOT := $(patsubst %/mk/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
LZNT1_ASAN_DIR := $(LZNT1_ROOT)/build/asan
LZNT1_ASAN_BIN := $(LZNT1_ASAN_DIR)/lznt1_asan_driver
LZNT1_ASAN_SRC := $(filter-out %/module.c,$(wildcard $(LZNT1_ROOT)/memfs/lznt1/*.c)) \
                  $(LZNT1_ROOT)/memfs/xpress/matcher.c $(LZNT1_ROOT)/tests/lznt1/asan_driver.c
LZNT1_ASAN_HDR := $(wildcard $(LZNT1_ROOT)/memfs/lznt1/*.h $(LZNT1_ROOT)/memfs/xpress/*.h) \
                  $(LZNT1_ROOT)/tests/asan_util.h
ASAN_CC ?= $(CC)
ASAN_CFLAGS ?= -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -Wall -Wextra -Werror
ASAN_FUZZ ?= 20000
MEMFS_SHARED ?= $(firstword $(wildcard $(LZNT1_ROOT)/../shared $(LZNT1_ROOT)/../../shared))
LZNT1_VECTOR := $(wildcard $(MEMFS_SHARED)/data/lznt1/dumpit_block0.lznt1)

.PHONY: asan asan-lznt1
asan: asan-lznt1

asan-lznt1: $(LZNT1_ASAN_BIN)
	@$(if $(LZNT1_VECTOR),,echo "asan-lznt1: shared/data/lznt1 not found, built-in vector and fuzzing only";) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(LZNT1_ASAN_BIN) $(if $(LZNT1_VECTOR),--vector $(LZNT1_VECTOR) 2097152) --fuzz $(ASAN_FUZZ)

$(LZNT1_ASAN_BIN): $(LZNT1_ASAN_SRC) $(LZNT1_ASAN_HDR)
	@mkdir -p $(LZNT1_ASAN_DIR)
	$(ASAN_CC) $(ASAN_CFLAGS) -I$(LZNT1_ROOT)/memfs/lznt1 -I$(LZNT1_ROOT)/memfs/xpress -I$(LZNT1_ROOT)/tests \
	  -o $@ $(LZNT1_ASAN_SRC)
