/* AVX-512F GEMM kernels: an 8x32 register tile (16 zmm accumulators) and the unpacked dot-row path. */
#include "gemm_avx512_tile.h"

#if NNK_X86_64

enum { MR = 8, NR = 32 };
#ifndef NNK_DOT_MAX_M
#define NNK_DOT_MAX_M 64
#endif
#ifndef AVX512_KC
#define AVX512_KC 384
#define AVX512_MC 144
#define AVX512_NC 1536
#endif

/* c (m <= 8, n <= 32) = alpha * a (8, kc packed) * b (kc, 32 packed) + beta * c. */
static NNK_TARGET_AVX512 void ukernel_avx512_8x32(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                                  float alpha, float beta, size_t m, size_t n) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (size_t i = 0; i < m; i++) { /* C is read after the loop: start fetching it now */
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (size_t p = 0; p < kc; p++, a += MR, b += NR) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 av;
#define ROW(r, lo, hi)                          \
    av = _mm512_set1_ps(a[r]);                  \
    lo = _mm512_fmadd_ps(av, b0, lo);           \
    hi = _mm512_fmadd_ps(av, b1, hi);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
        ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
    }
    const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                               {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    nnk_store_tile_8x32(c, ldc, acc, alpha, beta, m, n);
}

/* One output of the dot path: alpha * sum(acc) + beta * c. */
static inline NNK_TARGET_AVX512 float finish(__m512 acc, float alpha, float beta, const float *c) {
    const float s = alpha * _mm512_reduce_add_ps(acc);
    return beta == 0.0f ? s : s + beta * *c;
}

/* C[i, j] = alpha * dot(A_i, B_j) + beta * C[i, j] for i < m <= 4, j < n, as 4x4 register
 * tiles (16 zmm accumulators; 8 loads feed 16 FMAs). Rows of B missing from a tile alias row 0
 * (their sums are discarded), so there is no scalar tail in the loop. */
/* The one-row case of dot_rows_avx512 (a one-sample predict): the same sums, in the same order,
 * without the three aliased rows' wasted FMAs (4 per B load there, 1 here). */
static NNK_TARGET_AVX512 void dot_row1_avx512(size_t n, size_t k, float alpha, const float *a, const float *B,
                                              size_t ldb, float beta, float *c) {
    const __mmask16 tail = nnk_tail_mask16(k % 16);
    const size_t kv = k - k % 16;
    for (size_t j = 0; j < n; j += 4) {
        const size_t nb = NNK_MIN(4, n - j);
        const float *b0 = B + j * ldb, *b1 = nb > 1 ? b0 + ldb : b0, *b2 = nb > 2 ? b0 + 2 * ldb : b0,
                    *b3 = nb > 3 ? b0 + 3 * ldb : b0;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t p = 0; p < kv; p += 16) {
            const __m512 av = _mm512_loadu_ps(a + p);
            s0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b0 + p), s0);
            s1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b1 + p), s1);
            s2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b2 + p), s2);
            s3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b3 + p), s3);
        }
        if (tail) {
            const __m512 av = _mm512_maskz_loadu_ps(tail, a + kv);
            s0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b0 + kv), s0);
            s1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b1 + kv), s1);
            s2 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b2 + kv), s2);
            s3 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b3 + kv), s3);
        }
        const __m512 s[4] = {s0, s1, s2, s3};
        for (size_t q = 0; q < nb; q++) c[j + q] = finish(s[q], alpha, beta, c + j + q);
    }
}

static NNK_TARGET_AVX512 void dot_rows_avx512(size_t m, size_t n, size_t k, float alpha, const float *A,
                                              size_t lda, const float *B, size_t ldb, float beta, float *C,
                                              size_t ldc) {
    if (m == 1) return dot_row1_avx512(n, k, alpha, A, B, ldb, beta, C);
    const __mmask16 tail = nnk_tail_mask16(k % 16);
    const size_t kv = k - k % 16;
    const float *a0 = A, *a1 = m > 1 ? A + lda : A, *a2 = m > 2 ? A + 2 * lda : A, *a3 = m > 3 ? A + 3 * lda : A;
    for (size_t j = 0; j < n; j += 4) {
        const size_t nb = NNK_MIN(4, n - j);
        const float *b0 = B + j * ldb, *b1 = nb > 1 ? b0 + ldb : b0, *b2 = nb > 2 ? b0 + 2 * ldb : b0,
                    *b3 = nb > 3 ? b0 + 3 * ldb : b0;
        __m512 s[4][4];
        for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = _mm512_setzero_ps();
#define DOT_STEP(LOAD, p)                                                                   \
    {                                                                                       \
        const __m512 x0 = LOAD(b0, p), x1 = LOAD(b1, p), x2 = LOAD(b2, p), x3 = LOAD(b3, p); \
        const __m512 av[4] = {LOAD(a0, p), LOAD(a1, p), LOAD(a2, p), LOAD(a3, p)};          \
        for (int i = 0; i < 4; i++) {                                                       \
            s[i][0] = _mm512_fmadd_ps(av[i], x0, s[i][0]);                                  \
            s[i][1] = _mm512_fmadd_ps(av[i], x1, s[i][1]);                                  \
            s[i][2] = _mm512_fmadd_ps(av[i], x2, s[i][2]);                                  \
            s[i][3] = _mm512_fmadd_ps(av[i], x3, s[i][3]);                                  \
        }                                                                                   \
    }
#define LOAD_FULL(ptr, p) _mm512_loadu_ps((ptr) + (p))
#define LOAD_TAIL(ptr, p) _mm512_maskz_loadu_ps(tail, (ptr) + (p))
        for (size_t p = 0; p < kv; p += 16) DOT_STEP(LOAD_FULL, p)
        if (tail) DOT_STEP(LOAD_TAIL, kv)
#undef DOT_STEP
#undef LOAD_FULL
#undef LOAD_TAIL
        for (size_t i = 0; i < m; i++) {
            float *c = C + i * ldc + j;
            for (size_t q = 0; q < nb; q++) c[q] = finish(s[i][q], alpha, beta, c + q);
        }
    }
}

const nnk_gemm_arch nnk_gemm_arch_avx512 = {
    .mr = MR, .nr = NR, .kc = AVX512_KC, .mc = AVX512_MC, .nc = AVX512_NC,
    .ukernel = ukernel_avx512_8x32, .dot_rows = dot_rows_avx512, .dot_max_m = NNK_DOT_MAX_M,
};
#endif
