/* What the AVX-512 8x32 micro-kernels share (gemm_avx512.c fp32, gemm_avx512_bf16.c bf16): the
 * column masks and the store of the finished tile. Included by those files only. */
#ifndef NNK_GEMM_AVX512_TILE_H
#define NNK_GEMM_AVX512_TILE_H

#include "gemm_internal.h"

#if NNK_X86_64
#include <immintrin.h>

static inline NNK_TARGET_AVX512 __mmask16 nnk_tail_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* c (m <= 8 rows, n <= 32 columns, ldc) = alpha * acc + beta * c (beta == 0: c is not read). */
static inline NNK_TARGET_AVX512 void nnk_store_tile_8x32(float *c, size_t ldc, const __m512 acc[8][2], float alpha,
                                                         float beta, size_t m, size_t n) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = nnk_tail_mask16(n), m1 = n > 16 ? nnk_tail_mask16(n - 16) : 0;
    for (size_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        __m512 lo = _mm512_mul_ps(acc[i][0], va), hi = _mm512_mul_ps(acc[i][1], va);
        if (beta != 0.0f) {
            lo = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), lo);
            hi = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), hi);
        }
        _mm512_mask_storeu_ps(row, m0, lo);
        _mm512_mask_storeu_ps(row + 16, m1, hi);
    }
}
#endif

#endif
