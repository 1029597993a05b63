/* Runs the C kernel suite without XCTest: for arm64 under qemu and sanitizer builds (Makefile).
 * An argument names one group to run. */
#include "CKernelsCheck.h"

#include <stddef.h>

int main(int argc, char **argv) { return nnk_check_run(argc > 1 ? argv[1] : NULL) == 0 ? 0 : 1; }
