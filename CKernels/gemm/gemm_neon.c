/* NEON GEMM kernels (arm64): an 8x12 register tile (24 q accumulators) and the unpacked dot-row path. */
#include "gemm_internal.h"

#if NNK_ARM64
#include <arm_neon.h>

enum { MR = 8, NR = 12 };

/* c (m <= 8, n <= 12) = alpha * a (8, kc packed) * b (kc, 12 packed) + beta * c. */
static void ukernel_neon_8x12(size_t kc, const float *a, const float *b, float *c, size_t ldc, float alpha,
                              float beta, size_t m, size_t n) {
    float32x4_t acc[MR][3];
    for (size_t i = 0; i < MR; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    for (size_t p = 0; p < kc; p++, a += MR, b += NR) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define ROW(r, av, lane)                                       \
    acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane);      \
    acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane);      \
    acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
    }
    float t[MR * NR];
    for (size_t i = 0; i < MR; i++)
        for (size_t q = 0; q < 3; q++) vst1q_f32(t + i * NR + 4 * q, acc[i][q]);
    nnk_tile_store(t, NR, c, ldc, alpha, beta, m, n);
}

/* C[i, j] = alpha * dot(A_i, B_j) + beta * C[i, j] for i < m <= 4. */
static void dot_rows_neon(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B,
                          size_t ldb, float beta, float *C, size_t ldc) {
    const size_t kv = k - k % 4;
    for (size_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        for (size_t j = 0; j < n; j++) {
            const float *b = B + j * ldb;
            float32x4_t s = vdupq_n_f32(0.0f);
            for (size_t p = 0; p < kv; p += 4) s = vfmaq_f32(s, vld1q_f32(a + p), vld1q_f32(b + p));
            float acc = vaddvq_f32(s);
            for (size_t p = kv; p < k; p++) acc += a[p] * b[p];
            float *cij = C + i * ldc + j;
            *cij = beta == 0.0f ? alpha * acc : alpha * acc + beta * *cij;
        }
    }
}

const nnk_gemm_arch nnk_gemm_arch_neon = {
    .mr = MR, .nr = NR, .kc = 256, .mc = 128, .nc = 1020,
    .ukernel = ukernel_neon_8x12, .dot_rows = dot_rows_neon,
};
#endif
