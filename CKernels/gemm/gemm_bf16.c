/*
 * The bf16 GEMM's portable parts: fp32 <-> bf16 rounding and the reference twin, which also
 * runs every bf16 product on a path without a bf16 kernel. The kernel, its packers and the
 * panel layout are in gemm_avx512_bf16.c and gemm_pack_avx512_bf16.c.
 */
#include "gemm_internal.h"

#include <string.h>

uint16_t nnk_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN, quiet */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float nnk_bf16_to_float(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float nnk_bf16_round(float x) { return nnk_bf16_to_float(nnk_bf16_from_float(x)); }

/* C (M, N) <- alpha * bf16(op(A)) * bf16(op(B)) + beta * C: every input rounded to bf16, the
 * products (exact in float) summed in double. */
void nnk_sbgemm_ref(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                    size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (size_t p = 0; p < K; p++) {
                const float a = ta == NNK_NO_TRANS ? A[i * lda + p] : A[p * lda + i];
                const float b = tb == NNK_NO_TRANS ? B[p * ldb + j] : B[j * ldb + p];
                acc += (double)nnk_bf16_round(a) * (double)nnk_bf16_round(b);
            }
            const float s = (float)acc;
            C[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * C[i * ldc + j];
        }
    }
}
