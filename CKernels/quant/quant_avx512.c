/* AVX-512 int8 kernels: the VNNI tile (8 rows x 32 channels in 16 zmm int32 accumulators, one
 * vpdpbusd per row, 16 channels and 4 depths: each row's four activation bytes broadcast, two
 * panel vectors), and the quantize / dequantize row kernels (AVX-512F; the same fused
 * operations and rounding as their reference twins, so bitwise equal to them). */
#include "quant_internal.h"

#if NNK_X86_64
#include <immintrin.h>
#include <string.h>

#define NNK_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define NNK_TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

static inline NNK_TARGET_AVX512BW __mmask16 mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

NNK_TARGET_AVX512BW void nnk_quantize_u8_avx512(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point) {
    const __m512 s = _mm512_set1_ps(inv_scale), z = _mm512_set1_ps(zero_point);
    const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        __m512 t = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), s, z);
        t = _mm512_min_ps(_mm512_max_ps(t, lo), hi); /* max(NaN, 0) = 0: the second operand */
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(t))); /* round to nearest even */
    }
}

NNK_TARGET_AVX512BW void nnk_dequantize_avx512(float *y, const int32_t *acc, size_t n, int32_t zero_point,
                                               const int32_t *colsum, const float *scale, const float *bias) {
    const __m512i z = _mm512_set1_epi32(zero_point);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 m = mask16(n - j);
        const __m512i a = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, acc + j),
                                           _mm512_mullo_epi32(z, _mm512_maskz_loadu_epi32(m, colsum + j)));
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + j) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(y + j, m, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_maskz_loadu_ps(m, scale + j), b));
    }
}

static inline NNK_TARGET_AVX512BW void store_row(int32_t *c, __m512i lo, __m512i hi, size_t n) {
    const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1u);
    const __mmask16 m1 = n <= 16 ? 0 : n >= 32 ? 0xffff : (__mmask16)((1u << (n - 16)) - 1u);
    _mm512_mask_storeu_epi32(c, m0, lo);
    _mm512_mask_storeu_epi32(c + 16, m1, hi);
}

/* The one-row tile (a one-sample predict): two vpdpbusd per depth group instead of the full
 * tile's sixteen, even and odd groups in separate accumulators so consecutive ones do not wait
 * on each other; the int32 sums are exact, so their order does not matter. */
static NNK_TARGET_AVX512_VNNI void qtile_row1(size_t groups, const uint8_t *a, const int8_t *b, int32_t *c, size_t n) {
    __m512i e0 = _mm512_setzero_si512(), e1 = e0, o0 = e0, o1 = e0;
    size_t g = 0;
    for (; g + 2 <= groups; g += 2, b += 8 * NNK_QNR) {
        int32_t even, odd;
        memcpy(&even, a + 4 * g, sizeof even);
        memcpy(&odd, a + 4 * g + 4, sizeof odd);
        const __m512i ae = _mm512_set1_epi32(even), ao = _mm512_set1_epi32(odd);
        e0 = _mm512_dpbusd_epi32(e0, ae, _mm512_loadu_si512(b));
        e1 = _mm512_dpbusd_epi32(e1, ae, _mm512_loadu_si512(b + 64));
        o0 = _mm512_dpbusd_epi32(o0, ao, _mm512_loadu_si512(b + 128));
        o1 = _mm512_dpbusd_epi32(o1, ao, _mm512_loadu_si512(b + 192));
    }
    if (g < groups) {
        int32_t four;
        memcpy(&four, a + 4 * g, sizeof four);
        const __m512i av = _mm512_set1_epi32(four);
        e0 = _mm512_dpbusd_epi32(e0, av, _mm512_loadu_si512(b));
        e1 = _mm512_dpbusd_epi32(e1, av, _mm512_loadu_si512(b + 64));
    }
    store_row(c, _mm512_add_epi32(e0, o0), _mm512_add_epi32(e1, o1), n);
}

NNK_TARGET_AVX512_VNNI void nnk_qtile_avx512_vnni(size_t groups, const uint8_t *a, size_t lda, const int8_t *b,
                                                  int32_t *c, size_t ldc, size_t m, size_t n) {
    if (m == 1) return qtile_row1(groups, a, b, c, n);
    __m512i acc[NNK_QMR][2];
    for (int i = 0; i < NNK_QMR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    const uint8_t *rows[NNK_QMR];
    for (size_t i = 0; i < NNK_QMR; i++) rows[i] = a + (i < m ? i : 0) * lda; /* missing rows repeat row 0, unstored */
    for (size_t g = 0; g < groups; g++, b += 4 * NNK_QNR) {
        const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
        for (int i = 0; i < NNK_QMR; i++) {
            int32_t four;
            memcpy(&four, rows[i] + 4 * g, sizeof four);
            const __m512i av = _mm512_set1_epi32(four);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], av, b0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], av, b1);
        }
    }
    for (size_t i = 0; i < m; i++) store_row(c + i * ldc, acc[i][0], acc[i][1], n);
}
#endif
