/*
 * NEON (AArch64 Advanced SIMD) optimizer spans, 4 floats a step. Same operations, same order
 * and no FMA as optim_ref.c, so the results match the reference bit for bit; the last n % 4
 * elements go through the reference loop.
 */
#include "optim_kernels.h"

#if NNK_ARM64
#include <arm_neon.h>
#include <string.h>

/* param, velocity, grad are (n). See nnk_sgd_step_ref. */
void nnk_sgd_step_neon(float *param, float *velocity, const float *grad, size_t n,
                       const nnk_sgd_params *p, int first_step) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum != 0.0f;
    const float32x4_t lr = vdupq_n_f32(p->lr), wd = vdupq_n_f32(p->weight_decay);
    const float32x4_t mu = vdupq_n_f32(p->momentum), damp = vdupq_n_f32(1.0f - p->dampening);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t w = vld1q_f32(param + i);
        float32x4_t g = vld1q_f32(grad + i);
        if (decay) g = vaddq_f32(g, vmulq_f32(wd, w));
        if (mom) {
            const float32x4_t b = first_step ? g
                : vaddq_f32(vmulq_f32(mu, vld1q_f32(velocity + i)), vmulq_f32(damp, g));
            vst1q_f32(velocity + i, b);
            g = p->nesterov ? vaddq_f32(g, vmulq_f32(mu, b)) : b;
        }
        vst1q_f32(param + i, vsubq_f32(w, vmulq_f32(lr, g)));
    }
    nnk_sgd_step_ref(param + i, mom ? velocity + i : NULL, grad + i, n - i, p, first_step);
}

/* param, m, v, grad are (n). See nnk_adam_step_ref. */
void nnk_adam_step_neon(float *param, float *m, float *v, const float *grad, size_t n,
                        const nnk_adam_params *p, int64_t step) {
    const nnk_adam_coef k = nnk_adam_coef_of(p, step);
    const float32x4_t wd = vdupq_n_f32(p->weight_decay), decay = vdupq_n_f32(k.decay);
    const float32x4_t b1 = vdupq_n_f32(p->beta1), c1 = vdupq_n_f32(k.one_minus_beta1);
    const float32x4_t b2 = vdupq_n_f32(p->beta2), c2 = vdupq_n_f32(k.one_minus_beta2);
    const float32x4_t lr = vdupq_n_f32(k.step_size), bc2 = vdupq_n_f32(k.bc2_sqrt);
    const float32x4_t eps = vdupq_n_f32(p->eps);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vld1q_f32(grad + i), w = vld1q_f32(param + i);
        if (k.l2) g = vaddq_f32(g, vmulq_f32(wd, w));
        if (k.decoupled) w = vmulq_f32(w, decay);
        const float32x4_t mi = vaddq_f32(vmulq_f32(b1, vld1q_f32(m + i)), vmulq_f32(c1, g));
        const float32x4_t vi = vaddq_f32(vmulq_f32(b2, vld1q_f32(v + i)), vmulq_f32(c2, vmulq_f32(g, g)));
        vst1q_f32(m + i, mi);
        vst1q_f32(v + i, vi);
        const float32x4_t den = vaddq_f32(vdivq_f32(vsqrtq_f32(vi), bc2), eps);
        vst1q_f32(param + i, vsubq_f32(w, vmulq_f32(lr, vdivq_f32(mi, den))));
    }
    nnk_adam_step_ref(param + i, m + i, v + i, grad + i, n - i, p, step);
}

/* acc[2j], acc[2j + 1] += the squares of x[4j .. 4j + 3]; the squares are exact in double,
 * so the FMA equals a separate add. */
static inline void sumsq_acc_neon(float64x2_t acc[8], int j, const float *x) {
    const float32x4_t f = vld1q_f32(x + 4 * j);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(f)), hi = vcvt_high_f64_f32(f);
    acc[2 * j] = vfmaq_f64(acc[2 * j], lo, lo);
    acc[2 * j + 1] = vfmaq_f64(acc[2 * j + 1], hi, hi);
}

/* acc[k] holds lanes 2k and 2k + 1; x is one block of 16. Unrolled by hand so the eight
 * accumulators stay in registers. */
static inline void sumsq_block_neon(float64x2_t acc[8], const float *x) {
    sumsq_acc_neon(acc, 0, x);
    sumsq_acc_neon(acc, 1, x);
    sumsq_acc_neon(acc, 2, x);
    sumsq_acc_neon(acc, 3, x);
}

/* x is (n), n <= NNK_ELEMWISE_CHUNK. See nnk_sum_squares_chunk_ref. */
double nnk_sum_squares_chunk_neon(const float *x, size_t n) {
    float64x2_t acc[8];
    for (int k = 0; k < 8; k++) acc[k] = vdupq_n_f64(0.0);
    size_t i = 0;
    for (; i + NNK_SUMSQ_LANES <= n; i += NNK_SUMSQ_LANES) sumsq_block_neon(acc, x + i);
    if (i < n) {
        float tail[NNK_SUMSQ_LANES] = {0};
        memcpy(tail, x + i, (n - i) * sizeof(float));
        sumsq_block_neon(acc, tail);
    }
    /* lane folds s = 8, 4, 2 (acc[k] += acc[k + 4], then + 2, then + 1), then s = 1 */
    const float64x2_t s8a = vaddq_f64(acc[0], acc[4]), s8b = vaddq_f64(acc[1], acc[5]);
    const float64x2_t s8c = vaddq_f64(acc[2], acc[6]), s8d = vaddq_f64(acc[3], acc[7]);
    const float64x2_t s2 = vaddq_f64(vaddq_f64(s8a, s8c), vaddq_f64(s8b, s8d));
    return vgetq_lane_f64(s2, 0) + vgetq_lane_f64(s2, 1);
}

/* x is (n). x *= s. */
void nnk_scale_neon(float *x, size_t n, float s) {
    const float32x4_t vs = vdupq_n_f32(s);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), vs));
    nnk_scale_ref(x + i, n - i, s);
}

#endif /* NNK_ARM64 */
