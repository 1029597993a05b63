# C-only builds of the kernel suite, beside the SwiftPM build:
#   make check-c       the C kernel suite built by gcc with OpenMP (libgomp), native
#   make check-asan    the same under AddressSanitizer + UBSan
#   make check-arm64   cross-compiled with aarch64-linux-gnu-gcc and run under qemu-aarch64,
#                      so the NEON path runs, not only compiles (needs gcc-aarch64-linux-gnu, qemu-user)
CC ?= gcc
BUILD ?= build
KERNEL_SRC := $(wildcard CKernels/*/*.c)
CHECK_SRC := $(wildcard Tests/CKernelsCheck/*.c) Tests/c/check_main.c
INCLUDES := -ICKernels/include -ICKernels -ITests/CKernelsCheck/include -ITests/CKernelsCheck
CFLAGS_COMMON := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unknown-pragmas $(INCLUDES)

.PHONY: check-c check-asan check-arm64 clean

$(BUILD)/check-native: $(KERNEL_SRC) $(CHECK_SRC) $(wildcard CKernels/*.h CKernels/include/*.h Tests/CKernelsCheck/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -fopenmp -DNNK_HAVE_OPENMP $(CFLAGS_COMMON) $(KERNEL_SRC) $(CHECK_SRC) -o $@ -lm

$(BUILD)/check-asan: $(KERNEL_SRC) $(CHECK_SRC)
	@mkdir -p $(BUILD)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer $(CFLAGS_COMMON) $(KERNEL_SRC) $(CHECK_SRC) -o $@ -lm

$(BUILD)/check-arm64: $(KERNEL_SRC) $(CHECK_SRC)
	@mkdir -p $(BUILD)
	aarch64-linux-gnu-gcc -O2 -fopenmp -DNNK_HAVE_OPENMP $(CFLAGS_COMMON) $(KERNEL_SRC) $(CHECK_SRC) -o $@ -lm

check-c: $(BUILD)/check-native
	OMP_NUM_THREADS=2 ./$<

check-asan: $(BUILD)/check-asan
	UBSAN_OPTIONS=halt_on_error=1 ./$<

check-arm64: $(BUILD)/check-arm64
	OMP_NUM_THREADS=2 qemu-aarch64 -L /usr/aarch64-linux-gnu ./$<

clean:
	rm -rf $(BUILD)
