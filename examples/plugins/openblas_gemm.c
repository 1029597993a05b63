/*
 * A kernel plugin: NNBackprop's GEMM replaced by OpenBLAS's cblas_sgemm (Debian libopenblas-dev).
 * Build:  cc -std=c99 -O2 -fPIC -shared -I../../include openblas_gemm.c -o libnnb_openblas.so -lopenblas
 * Every product in training and inference then runs in OpenBLAS; nnb_sgemm_reference stays
 * the built-in reference to check it against.
 */
#include "nnbackprop_plugin.h"

#include <cblas.h>

static void openblas_sgemm(void *ctx, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    (void)ctx;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

nnb_status nnb_plugin_init(const nnb_plugin_host *host);
nnb_status nnb_plugin_init(const nnb_plugin_host *host) {
    const nnb_gemm_plugin gemm = {sizeof(nnb_gemm_plugin), NNB_PLUGIN_ABI_VERSION, "openblas", openblas_sgemm, NULL};
    return host->register_gemm(&gemm);
}
