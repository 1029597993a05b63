/* AVX2 int8 kernels, for CPUs without AVX512-VNNI: the int8 tile one row at a time, bytes widened
 * to int16 and multiplied with vpmaddwd (pairs of u8 x s8 products added exactly into int32; the
 * pairs are added at the end), and the quantize / dequantize row kernels. The same integer sums
 * and the same fused float operations as the reference twins, so bitwise equal to them. */
#include "quant_internal.h"

#if NNK_X86_64
#include <immintrin.h>
#include <string.h>

NNK_TARGET_AVX2 void nnk_qtile_avx2(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc,
                                    size_t m, size_t n) {
    /* hadd of two accumulators gives columns (0 1 4 5 | 2 3 6 7) of their eight: put them in order. */
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (size_t i = 0; i < m; i++) {
        const uint8_t *ai = a + i * lda;
        const int8_t *bg = b;
        __m256i acc[8];
        for (int q = 0; q < 8; q++) acc[q] = _mm256_setzero_si256();
        for (size_t g = 0; g < groups; g++, bg += 4 * NNK_QNR) {
            int32_t four;
            memcpy(&four, ai + 4 * g, sizeof four);
            const __m256i av = _mm256_cvtepu8_epi16(_mm_set1_epi32(four)); /* a0..a3 for each of 4 columns */
            for (int q = 0; q < 8; q++) {
                const __m256i bv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bg + 16 * q)));
                acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(av, bv)); /* (a0 b0 + a1 b1), (a2 b2 + a3 b3) per column */
            }
        }
        int32_t row[NNK_QNR];
        for (int q = 0; q < 8; q += 2)
            _mm256_storeu_si256((__m256i *)(void *)(row + 4 * q),
                                _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[q], acc[q + 1]), order));
        memcpy(c + i * ldc, row, n * sizeof(int32_t));
    }
}

NNK_TARGET_AVX2 void nnk_quantize_u8_avx2(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point) {
    const __m256 s = _mm256_set1_ps(inv_scale), z = _mm256_set1_ps(zero_point);
    const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    /* The low byte of each int32 (all in 0..255) to the front of its 128-bit lane, then the two lanes together. */
    const __m256i bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), s, z);
        t = _mm256_min_ps(_mm256_max_ps(t, lo), hi); /* max(NaN, 0) = 0: the second operand */
        const __m256i v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_cvtps_epi32(t), bytes), lanes);
        const int64_t eight = _mm_cvtsi128_si64(_mm256_castsi256_si128(v));
        memcpy(q + i, &eight, sizeof eight);
    }
    nnk_quantize_u8_ref(q + i, x + i, n - i, inv_scale, zero_point);
}

NNK_TARGET_AVX2 void nnk_dequantize_avx2(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                                         const float *scale, const float *bias) {
    const __m256i z = _mm256_set1_epi32(zero_point);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i a = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + j)),
                                           _mm256_mullo_epi32(z, _mm256_loadu_si256((const __m256i *)(const void *)(colsum + j))));
        const __m256 b = bias ? _mm256_loadu_ps(bias + j) : _mm256_setzero_ps();
        _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_loadu_ps(scale + j), b));
    }
    nnk_dequantize_ref(y + j, acc + j, n - j, zero_point, colsum + j, scale + j, bias ? bias + j : NULL);
}
#endif
