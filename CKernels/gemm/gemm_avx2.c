/* AVX2+FMA GEMM kernels: a 6x16 register tile (12 ymm accumulators) and the unpacked dot-row path. */
#include "gemm_internal.h"

#if NNK_X86_64
#include <immintrin.h>

enum { MR = 6, NR = 16 };

/* c (m <= 6, n <= 16) = alpha * a (6, kc packed) * b (kc, 16 packed) + beta * c. */
static NNK_TARGET_AVX2 void ukernel_avx2_6x16(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                              float alpha, float beta, size_t m, size_t n) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t p = 0; p < kc; p++, a += MR, b += NR) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
#define ROW(r, lo, hi)                          \
    av = _mm256_broadcast_ss(a + r);            \
    lo = _mm256_fmadd_ps(av, b0, lo);           \
    hi = _mm256_fmadd_ps(av, b1, hi);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
    }
    const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (m == MR && n == NR) {
        for (size_t i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            __m256 lo = _mm256_mul_ps(acc[i][0], va), hi = _mm256_mul_ps(acc[i][1], va);
            if (beta != 0.0f) {
                lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), lo);
                hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), hi);
            }
            _mm256_storeu_ps(ci, lo);
            _mm256_storeu_ps(ci + 8, hi);
        }
        return;
    }
    float t[MR * NR];
    for (size_t i = 0; i < MR; i++) {
        _mm256_storeu_ps(t + i * NR, acc[i][0]);
        _mm256_storeu_ps(t + i * NR + 8, acc[i][1]);
    }
    nnk_tile_store(t, NR, c, ldc, alpha, beta, m, n);
}

static inline NNK_TARGET_AVX2 float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* C[i, j] = alpha * dot(A_i, B_j) + beta * C[i, j] for i < m <= 4: rows of B four at a time. */
static NNK_TARGET_AVX2 void dot_rows_avx2(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                                          const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    const size_t kv = k - k % 8;
    for (size_t j = 0; j < n; j += 4) {
        const size_t nb = NNK_MIN(4, n - j);
        for (size_t i = 0; i < m; i++) {
            const float *a = A + i * lda;
            const float *bq[4];
            for (size_t q = 0; q < 4; q++) bq[q] = B + (j + (q < nb ? q : 0)) * ldb;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t p = 0; p < kv; p += 8) {
                const __m256 av = _mm256_loadu_ps(a + p);
                s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq[0] + p), s0);
                s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq[1] + p), s1);
                s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq[2] + p), s2);
                s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq[3] + p), s3);
            }
            const float sums[4] = {hsum(s0), hsum(s1), hsum(s2), hsum(s3)};
            float *c = C + i * ldc + j;
            for (size_t q = 0; q < nb; q++) {
                float s = sums[q];
                for (size_t p = kv; p < k; p++) s += a[p] * bq[q][p];
                c[q] = beta == 0.0f ? alpha * s : alpha * s + beta * c[q];
            }
        }
    }
}

const nnk_gemm_arch nnk_gemm_arch_avx2 = {
    .mr = MR, .nr = NR, .kc = 256, .mc = 120, .nc = 1024,
    .ukernel = ukernel_avx2_6x16, .dot_rows = dot_rows_avx2,
};
#endif
