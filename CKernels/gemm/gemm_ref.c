/* The reference GEMM (source of truth for the tests) and the portable scalar micro-kernels. */
#include "gemm_internal.h"

/* C (M, N) <- alpha * op(A) (M, K) * op(B) (K, N) + beta * C: the plain triple loop. */
void nnk_sgemm_ref(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                   const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                   size_t ldc) {
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < K; p++) {
                const float a = ta == NNK_NO_TRANS ? A[i * lda + p] : A[p * lda + i];
                const float b = tb == NNK_NO_TRANS ? B[p * ldb + j] : B[j * ldb + p];
                acc += a * b;
            }
            C[i * ldc + j] = beta == 0.0f ? alpha * acc : alpha * acc + beta * C[i * ldc + j];
        }
    }
}

enum { SCALAR_MR = 4, SCALAR_NR = 8 };

/* Portable 4x8 micro-kernel; plain C the compiler may vectorise for the baseline ISA. */
static void ukernel_scalar_4x8(size_t kc, const float *a, const float *b, float *c, size_t ldc, float alpha,
                               float beta, size_t m, size_t n) {
    float t[SCALAR_MR * SCALAR_NR] = {0};
    for (size_t p = 0; p < kc; p++, a += SCALAR_MR, b += SCALAR_NR)
        for (size_t i = 0; i < SCALAR_MR; i++)
            for (size_t j = 0; j < SCALAR_NR; j++) t[i * SCALAR_NR + j] += a[i] * b[j];
    nnk_tile_store(t, SCALAR_NR, c, ldc, alpha, beta, m, n);
}

/* C[i, j] = alpha * dot(A_i, B_j) + beta * C[i, j], m <= 4. */
static void dot_rows_scalar(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                            const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < k; p++) acc += A[i * lda + p] * B[j * ldb + p];
            C[i * ldc + j] = beta == 0.0f ? alpha * acc : alpha * acc + beta * C[i * ldc + j];
        }
}

const nnk_gemm_arch nnk_gemm_arch_scalar = {
    .mr = SCALAR_MR, .nr = SCALAR_NR, .kc = 256, .mc = 64, .nc = 512,
    .ukernel = ukernel_scalar_4x8, .dot_rows = dot_rows_scalar,
};
