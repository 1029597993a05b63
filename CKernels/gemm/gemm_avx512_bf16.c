/* AVX512-BF16 GEMM kernel: an 8x32 register tile of vdpbf16ps (bf16 pairs in, fp32 accumulators),
 * the fp32 8x32 kernel's shape with two depths per instruction. */
#include "gemm_internal.h"

#if NNK_X86_64
#include <immintrin.h>

#define NNK_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))

enum { MR = 8, NR = 32 };

static inline NNK_TARGET_AVX512_BF16 __mmask16 tail_mask(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* c (m <= 8, n <= 32) = alpha * a (slots, 8 pair-packed) * b (slots, 32 pair-packed) + beta * c. */
static NNK_TARGET_AVX512_BF16 void ukernel_avx512_bf16_8x32(size_t slots, const float *a_, const float *b_,
                                                            float *c, size_t ldc, float alpha, float beta,
                                                            size_t m, size_t n) {
    const int32_t *a = (const int32_t *)(const void *)a_;
    const int32_t *b = (const int32_t *)(const void *)b_;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (size_t i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (size_t q = 0; q < slots; q++, a += MR, b += NR) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        __m512bh av;
#define ROW(r, lo, hi)                               \
    av = (__m512bh)_mm512_set1_epi32(a[r]);          \
    lo = _mm512_dpbf16_ps(lo, av, b0);               \
    hi = _mm512_dpbf16_ps(hi, av, b1);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
        ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = tail_mask(n), m1 = n > 16 ? tail_mask(n - 16) : 0;
    const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                               {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
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

/* The depth block is twice the fp32 kernel's (768 depths = 384 slots), so a packed block takes
 * the same bytes and the fp32 work sizes hold it. */
const nnk_gemm_arch nnk_gemm_arch_avx512_bf16 = {
    .mr = MR, .nr = NR, .kc = 768, .mc = 144, .nc = 1536,
    .ukernel = ukernel_avx512_bf16_8x32, .dot_rows = NULL, .dot_max_m = 0,
    .pack_a = nnk_pack_a_bf16_avx512, .pack_b = nnk_pack_b_bf16_avx512,
};
#endif
