/* Runs the C kernel suite without XCTest: for arm64 under qemu and sanitizer builds (Makefile). */
#include "CKernelsCheck.h"
#include "CKernels.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    struct { const char *name; void (*run)(nnk_check *); } groups[] = {
        {"dispatch", nnk_check_dispatch}, {"gemm", nnk_check_gemm},   {"dense", nnk_check_dense},
        {"activations", nnk_check_activations}, {"losses", nnk_check_losses}, {"optim", nnk_check_optim}, {"overrides", nnk_check_overrides},
    };
    int passed = 0, failed = 0;
    printf("CKernels check: ISA %s, OpenMP %s, %d threads\n", nnk_isa_name(nnk_isa_active()),
           nnk_openmp_enabled() ? "on" : "off", nnk_get_num_threads());
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (argc > 1 && strcmp(argv[1], groups[g].name) != 0) continue;
        nnk_check c = {0};
        groups[g].run(&c);
        printf("  %-12s %6d passed, %d failed\n", groups[g].name, c.passed, c.failed);
        passed += c.passed;
        failed += c.failed;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
