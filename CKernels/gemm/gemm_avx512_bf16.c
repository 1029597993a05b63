/* AVX512-BF16 GEMM kernel: an 8x32 register tile of vdpbf16ps (bf16 pairs in, fp32 accumulators),
 * the fp32 8x32 kernel's shape with two depths per instruction. */
#include "gemm_avx512_tile.h"

#if NNK_X86_64

#define NNK_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))

enum { MR = 8, NR = 32 };

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
    const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                               {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    nnk_store_tile_8x32(c, ldc, acc, alpha, beta, m, n);
}

/* The depth block is twice the fp32 kernel's (768 depths = 384 slots), so a packed block takes
 * the same bytes and the fp32 work sizes hold it. */
const nnk_gemm_arch nnk_gemm_arch_avx512_bf16 = {
    .mr = MR, .nr = NR, .kc = 768, .mc = 144, .nc = 1536,
    .ukernel = ukernel_avx512_bf16_8x32, .dot_rows = NULL, .dot_max_m = 0,
    .pack_a = nnk_pack_a_bf16_avx512, .pack_b = nnk_pack_b_bf16_avx512,
};
#endif
