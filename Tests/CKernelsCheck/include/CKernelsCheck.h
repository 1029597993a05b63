/*
 * The CKernels test suite, in C so the same files run natively under XCTest (Tests/CKernelsTests)
 * and on arm64 under qemu (Makefile: check-arm64, with Tests/c/check_main.c as the driver).
 * Each group runs every ISA path this CPU supports against a reference computed in double or
 * against the scalar twin, and records one result per assertion.
 */
#ifndef NNK_CKERNELS_CHECK_H
#define NNK_CKERNELS_CHECK_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnk_check {
    int passed;
    int failed;
    char first_failure[512];
} nnk_check;

/* The groups. Each adds to c->passed / c->failed and prints each failure to stderr. */
void nnk_check_dispatch(nnk_check *c);
void nnk_check_gemm(nnk_check *c);
void nnk_check_dense(nnk_check *c);
void nnk_check_activations(nnk_check *c);
void nnk_check_losses(nnk_check *c);
void nnk_check_optim(nnk_check *c);
void nnk_check_pool(nnk_check *c); /* 2-D max and average pooling */
void nnk_check_norm(nnk_check *c); /* batch and layer normalization */
void nnk_check_overrides(nnk_check *c); /* kernel replacement (plugin API) */
void nnk_check_conv(nnk_check *c);      /* 2-D convolution */
void nnk_check_bf16(nnk_check *c);      /* bf16 products: rounding, GEMM, dense and conv steps */
void nnk_check_int8(nnk_check *c);      /* int8 inference: quantizer, int8 GEMM, dense layer */

/* Runs every group (or only the one named `only`, when not NULL) and prints one line per group
 * and a closing "N passed, N failed" line to stdout; returns the number of failures. */
int nnk_check_run(const char *only);

/* The first failure's message ("" when none). */
const char *nnk_check_first_failure(const nnk_check *c);

#ifdef __cplusplus
}
#endif

#endif
