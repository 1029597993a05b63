/*
 * AVX-512F optimizer spans, 16 floats a step. Same operations, same order and no FMA as
 * optim_ref.c, so the results match the reference bit for bit; the last n % 16 elements go
 * through the reference loop. Compiled with function-level target attributes (no -march).
 */
#include "optim_kernels.h"

#if NNK_X86_64
#include <immintrin.h>
#include <string.h>

/* param, velocity, grad are (n). See nnk_sgd_step_ref. */
NNK_TARGET_AVX512 void nnk_sgd_step_avx512(float *param, float *velocity, const float *grad, size_t n,
                                         const nnk_sgd_params *p, int first_step) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum != 0.0f;
    const __m512 lr = _mm512_set1_ps(p->lr), wd = _mm512_set1_ps(p->weight_decay);
    const __m512 mu = _mm512_set1_ps(p->momentum), damp = _mm512_set1_ps(1.0f - p->dampening);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 w = _mm512_loadu_ps(param + i);
        __m512 g = _mm512_loadu_ps(grad + i);
        if (decay) g = _mm512_add_ps(g, _mm512_mul_ps(wd, w));
        if (mom) {
            const __m512 b = first_step ? g
                : _mm512_add_ps(_mm512_mul_ps(mu, _mm512_loadu_ps(velocity + i)), _mm512_mul_ps(damp, g));
            _mm512_storeu_ps(velocity + i, b);
            g = p->nesterov ? _mm512_add_ps(g, _mm512_mul_ps(mu, b)) : b;
        }
        _mm512_storeu_ps(param + i, _mm512_sub_ps(w, _mm512_mul_ps(lr, g)));
    }
    nnk_sgd_step_ref(param + i, mom ? velocity + i : NULL, grad + i, n - i, p, first_step);
}

/* param, m, v, grad are (n). See nnk_adam_step_ref. */
NNK_TARGET_AVX512 void nnk_adam_step_avx512(float *param, float *m, float *v, const float *grad, size_t n,
                                          const nnk_adam_params *p, int64_t step) {
    const nnk_adam_coef k = nnk_adam_coef_of(p, step);
    const __m512 wd = _mm512_set1_ps(p->weight_decay), decay = _mm512_set1_ps(k.decay);
    const __m512 b1 = _mm512_set1_ps(p->beta1), c1 = _mm512_set1_ps(k.one_minus_beta1);
    const __m512 b2 = _mm512_set1_ps(p->beta2), c2 = _mm512_set1_ps(k.one_minus_beta2);
    const __m512 lr = _mm512_set1_ps(k.step_size), bc2 = _mm512_set1_ps(k.bc2_sqrt);
    const __m512 eps = _mm512_set1_ps(p->eps);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(grad + i), w = _mm512_loadu_ps(param + i);
        if (k.l2) g = _mm512_add_ps(g, _mm512_mul_ps(wd, w));
        if (k.decoupled) w = _mm512_mul_ps(w, decay);
        const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, g));
        const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)),
                                        _mm512_mul_ps(c2, _mm512_mul_ps(g, g)));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        _mm512_storeu_ps(param + i, _mm512_sub_ps(w, _mm512_mul_ps(lr, _mm512_div_ps(mi, den))));
    }
    nnk_adam_step_ref(param + i, m + i, v + i, grad + i, n - i, p, step);
}

/* acc holds lanes 0-7 and 8-15; x is one block of 16. */
NNK_TARGET_AVX512 static inline void sumsq_block_avx512(__m512d acc[2], const float *x) {
    const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + 8));
    acc[0] = _mm512_fmadd_pd(lo, lo, acc[0]); /* the square is exact, so this equals acc + d * d */
    acc[1] = _mm512_fmadd_pd(hi, hi, acc[1]);
}

/* x is (n), n <= NNK_ELEMWISE_CHUNK. See nnk_sum_squares_chunk_ref. */
NNK_TARGET_AVX512 double nnk_sum_squares_chunk_avx512(const float *x, size_t n) {
    __m512d acc[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    size_t i = 0;
    for (; i + NNK_SUMSQ_LANES <= n; i += NNK_SUMSQ_LANES) sumsq_block_avx512(acc, x + i);
    if (i < n) {
        float tail[NNK_SUMSQ_LANES] = {0};
        memcpy(tail, x + i, (n - i) * sizeof(float));
        sumsq_block_avx512(acc, tail);
    }
    const __m512d a = _mm512_add_pd(acc[0], acc[1]);                                             /* s = 8 */
    const __m256d q = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));    /* s = 4 */
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd(q, 1));        /* s = 2 */
    return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));                              /* s = 1 */
}

/* x is (n). x *= s. */
NNK_TARGET_AVX512 void nnk_scale_avx512(float *x, size_t n, float s) {
    const __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
    nnk_scale_ref(x + i, n - i, s);
}

#endif /* NNK_X86_64 */
