/* The bf16 packers (gemm_bf16.c's layout) with AVX512-BF16 conversions: vcvtne2ps2bf16 rounds
 * 32 floats at once (round to nearest even, as nnk_bf16_from_float; NaN stays NaN), so packing
 * stops being the bf16 GEMM's bottleneck. */
#include "gemm_internal.h"

#if NNK_X86_64
#include <immintrin.h>

#define NNK_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))

static inline NNK_TARGET_AVX512_BF16 __mmask16 mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* Slots (lo[i], hi[i]) for i < n <= 16: the two rows rounded together, then interleaved. */
static inline NNK_TARGET_AVX512_BF16 __m512i interleave_pairs(const float *lo, const float *hi, size_t n) {
    const __mmask16 m = mask16(n);
    const __m512 l = _mm512_maskz_loadu_ps(m, lo), h = hi ? _mm512_maskz_loadu_ps(m, hi) : _mm512_setzero_ps();
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(h, l); /* l0..l15 h0..h15 */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, both);
}

/* Slots (x[2t], x[2t + 1]) for t < 16 from 32 depths of a contiguous row (n <= 32 of them). */
static inline NNK_TARGET_AVX512_BF16 __m512i row_pairs(const float *x, size_t n) {
    const __m512 a = _mm512_maskz_loadu_ps(mask16(n), x);
    const __m512 b = n > 16 ? _mm512_maskz_loadu_ps(mask16(n - 16), x + 16) : _mm512_setzero_ps();
    return (__m512i)_mm512_cvtne2ps_pbh(b, a); /* x0..x31 in order: dword t = (x[2t], x[2t + 1]) */
}

/* r[i] (row i of a 16x16 block of dwords) becomes column i: unpack dwords and qwords within
 * 128-bit lanes (4x4 blocks), then move the lanes with two rounds of shuffle_i32x4. */
static inline NNK_TARGET_AVX512_BF16 void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* u[4g + k], lane l: rows 4g..4g+3 of column 4l + k. */
    for (int g = 0; g < 16; g += 4) {
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int k = 0; k < 4; k++) {
        const __m512i xlo = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x44), xhi = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xee);
        const __m512i ylo = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x44);
        const __m512i yhi = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xee);
        r[k] = _mm512_shuffle_i32x4(xlo, ylo, 0x88);
        r[4 + k] = _mm512_shuffle_i32x4(xlo, ylo, 0xdd);
        r[8 + k] = _mm512_shuffle_i32x4(xhi, yhi, 0x88);
        r[12 + k] = _mm512_shuffle_i32x4(xhi, yhi, 0xdd);
    }
}

/* One panel of `rows` rows (of mr) and kc depths. */
static NNK_TARGET_AVX512_BF16 void pack_pairs_avx512(uint32_t *dst, int depth_major, const float *X, size_t ld,
                                                     size_t r0, size_t rows, size_t p0, size_t kc, size_t mr) {
    const size_t slots = (kc + 1) / 2;
    if (depth_major) {
        for (size_t q = 0; q < slots; q++) {
            const float *lo = X + (p0 + 2 * q) * ld + r0, *hi = 2 * q + 1 < kc ? lo + ld : NULL;
            uint32_t *d = dst + q * mr;
            for (size_t i = 0; i < mr; i += 16) {
                const size_t n = i < rows ? NNK_MIN(16, rows - i) : 0, w = NNK_MIN(16, mr - i);
                const __m512i v = n ? interleave_pairs(lo + i, hi ? hi + i : NULL, n) : _mm512_setzero_si512();
                _mm512_mask_storeu_epi32(d + i, mask16(w), v);
            }
        }
    } else {
        /* Rows are contiguous along depth: 16 rows at a time, 32 depths (16 slots) each,
         * rounded, then transposed so each slot's 16 rows are stored as one vector. */
        const size_t width = NNK_MIN(16, mr);
        for (size_t i0 = 0; i0 < mr; i0 += 16) {
            for (size_t p = 0; p < kc; p += 32) {
                const size_t n = NNK_MIN(32, kc - p), q0 = p / 2, nq = NNK_MIN(16, slots - q0);
                __m512i r[16];
                for (size_t i = 0; i < 16; i++)
                    r[i] = i0 + i < rows ? row_pairs(X + (r0 + i0 + i) * ld + p0 + p, n) : _mm512_setzero_si512();
                transpose16(r);
                for (size_t q = 0; q < nq; q++) _mm512_mask_storeu_epi32(dst + (q0 + q) * mr + i0, mask16(width), r[q]);
            }
        }
    }
}

NNK_TARGET_AVX512_BF16 void nnk_pack_a_bf16_avx512(float *dst, nnk_trans ta, const float *A, size_t lda, size_t i0,
                                                   size_t mc, size_t p0, size_t kc, size_t mr) {
    uint32_t *d = (uint32_t *)(void *)dst;
    const size_t slots = (kc + 1) / 2;
    for (size_t ip = 0; ip < mc; ip += mr, d += mr * slots)
        pack_pairs_avx512(d, ta == NNK_TRANS, A, lda, i0 + ip, NNK_MIN(mr, mc - ip), p0, kc, mr);
}

NNK_TARGET_AVX512_BF16 void nnk_pack_b_bf16_avx512(float *dst, nnk_trans tb, const float *B, size_t ldb, size_t p0,
                                                   size_t kc, size_t j0, size_t nc, size_t nr) {
    uint32_t *d = (uint32_t *)(void *)dst;
    const size_t slots = (kc + 1) / 2;
    for (size_t jp = 0; jp < nc; jp += nr, d += nr * slots)
        pack_pairs_avx512(d, tb == NNK_NO_TRANS, B, ldb, j0 + jp, NNK_MIN(nr, nc - jp), p0, kc, nr);
}
#endif
