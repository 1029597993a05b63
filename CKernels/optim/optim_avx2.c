/*
 * AVX2 optimizer spans, 8 floats a step. Same operations, same order and no FMA as
 * optim_ref.c, so the results match the reference bit for bit; the last n % 8 elements go
 * through the reference loop. Compiled with function-level target attributes (no -march).
 */
#include "optim_kernels.h"

#if NNK_X86_64
#include <immintrin.h>
#include <string.h>

/* param, velocity, grad are (n). See nnk_sgd_step_ref. */
NNK_TARGET_AVX2 void nnk_sgd_step_avx2(float *param, float *velocity, const float *grad, size_t n,
                                       const nnk_sgd_params *p, int first_step) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum != 0.0f;
    const __m256 lr = _mm256_set1_ps(p->lr), wd = _mm256_set1_ps(p->weight_decay);
    const __m256 mu = _mm256_set1_ps(p->momentum), damp = _mm256_set1_ps(1.0f - p->dampening);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 w = _mm256_loadu_ps(param + i);
        __m256 g = _mm256_loadu_ps(grad + i);
        if (decay) g = _mm256_add_ps(g, _mm256_mul_ps(wd, w));
        if (mom) {
            const __m256 b = first_step ? g
                : _mm256_add_ps(_mm256_mul_ps(mu, _mm256_loadu_ps(velocity + i)), _mm256_mul_ps(damp, g));
            _mm256_storeu_ps(velocity + i, b);
            g = p->nesterov ? _mm256_add_ps(g, _mm256_mul_ps(mu, b)) : b;
        }
        _mm256_storeu_ps(param + i, _mm256_sub_ps(w, _mm256_mul_ps(lr, g)));
    }
    nnk_sgd_step_ref(param + i, mom ? velocity + i : NULL, grad + i, n - i, p, first_step);
}

/* param, m, v, grad are (n). See nnk_adam_step_ref. */
NNK_TARGET_AVX2 void nnk_adam_step_avx2(float *param, float *m, float *v, const float *grad, size_t n,
                                        const nnk_adam_params *p, int64_t step) {
    const nnk_adam_coef k = nnk_adam_coef_of(p, step);
    const __m256 wd = _mm256_set1_ps(p->weight_decay), decay = _mm256_set1_ps(k.decay);
    const __m256 b1 = _mm256_set1_ps(p->beta1), c1 = _mm256_set1_ps(k.one_minus_beta1);
    const __m256 b2 = _mm256_set1_ps(p->beta2), c2 = _mm256_set1_ps(k.one_minus_beta2);
    const __m256 lr = _mm256_set1_ps(k.step_size), bc2 = _mm256_set1_ps(k.bc2_sqrt);
    const __m256 eps = _mm256_set1_ps(p->eps);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(grad + i), w = _mm256_loadu_ps(param + i);
        if (k.l2) g = _mm256_add_ps(g, _mm256_mul_ps(wd, w));
        if (k.decoupled) w = _mm256_mul_ps(w, decay);
        const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, g));
        const __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                        _mm256_mul_ps(c2, _mm256_mul_ps(g, g)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        const __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(param + i, _mm256_sub_ps(w, _mm256_mul_ps(lr, _mm256_div_ps(mi, den))));
    }
    nnk_adam_step_ref(param + i, m + i, v + i, grad + i, n - i, p, step);
}

/* acc + d * d for 4 floats d; d * d is exact in double, so the FMA equals a separate add. */
NNK_TARGET_AVX2 static inline __m256d sumsq_acc_avx2(__m256d acc, const float *x) {
    const __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(x));
    return _mm256_fmadd_pd(d, d, acc);
}

/* acc holds lanes 0-3, 4-7, 8-11, 12-15; x is one block of 16. Unrolled by hand so the four
 * accumulators stay in registers. */
NNK_TARGET_AVX2 static inline void sumsq_block_avx2(__m256d acc[4], const float *x) {
    acc[0] = sumsq_acc_avx2(acc[0], x);
    acc[1] = sumsq_acc_avx2(acc[1], x + 4);
    acc[2] = sumsq_acc_avx2(acc[2], x + 8);
    acc[3] = sumsq_acc_avx2(acc[3], x + 12);
}

/* x is (n), n <= NNK_ELEMWISE_CHUNK. See nnk_sum_squares_chunk_ref. */
NNK_TARGET_AVX2 double nnk_sum_squares_chunk_avx2(const float *x, size_t n) {
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    size_t i = 0;
    for (; i + NNK_SUMSQ_LANES <= n; i += NNK_SUMSQ_LANES) sumsq_block_avx2(acc, x + i);
    if (i < n) {
        float tail[NNK_SUMSQ_LANES] = {0};
        memcpy(tail, x + i, (n - i) * sizeof(float));
        sumsq_block_avx2(acc, tail);
    }
    const __m256d a = _mm256_add_pd(_mm256_add_pd(acc[0], acc[2]), _mm256_add_pd(acc[1], acc[3])); /* s = 8, 4 */
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));          /* s = 2 */
    return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));                                 /* s = 1 */
}

/* x is (n). x *= s. */
NNK_TARGET_AVX2 void nnk_scale_avx2(float *x, size_t n, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    nnk_scale_ref(x + i, n - i, s);
}

#endif /* NNK_X86_64 */
