/*
 * AVX2 + FMA lane primitives: 8 floats a vector. Tails use masked loads and stores (vmaskmov), so
 * they run the same code as full vectors and never touch memory past n. Every function carries
 * the AVX2 target attribute (VFN), so the package needs no -march flag.
 *
 * Not a normal header: an AVX2 kernel file (act_avx2.c, optim_avx2.c) includes it and then the
 * ISA-independent math written on these primitives (activations/act_vmath.h,
 * optim/optim_vmath.h); act_vmath.h lists what each primitive must do.
 */
#ifndef NNK_SIMD_LANES_AVX2_H
#define NNK_SIMD_LANES_AVX2_H

#include "../internal.h"

#include <immintrin.h>

typedef __m256 V;
typedef __m256 M;
typedef struct { __m256d lo, hi; } VSUM;
#define V_WIDTH 8
#define VFN NNK_TARGET_AVX2 static inline

VFN V v_set(float a) { return _mm256_set1_ps(a); }
VFN V v_load(const float *p) { return _mm256_loadu_ps(p); }
VFN void v_store(float *p, V v) { _mm256_storeu_ps(p, v); }

/* Lanes [0, k) set, for k in [0, 8]: a window into 8 ones then 8 zeros. */
static const int32_t avx2_lane_window[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
VFN __m256i v_first_i(size_t k) { return _mm256_loadu_si256((const __m256i *)(avx2_lane_window + 8 - k)); }
VFN M v_first(size_t k) { return _mm256_castsi256_ps(v_first_i(k)); }
VFN V v_load_part(const float *p, size_t k) { return _mm256_maskload_ps(p, v_first_i(k)); }
VFN void v_store_part(float *p, V v, size_t k) { _mm256_maskstore_ps(p, v_first_i(k), v); }

VFN V v_add(V a, V b) { return _mm256_add_ps(a, b); }
VFN V v_sub(V a, V b) { return _mm256_sub_ps(a, b); }
VFN V v_mul(V a, V b) { return _mm256_mul_ps(a, b); }
VFN V v_div(V a, V b) { return _mm256_div_ps(a, b); }
VFN V v_sqrt(V a) { return _mm256_sqrt_ps(a); }
VFN V v_max(V a, V b) { return _mm256_max_ps(a, b); }
VFN V v_fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
VFN V v_fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }

VFN V v_abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
VFN V v_neg(V a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
VFN V v_with_sign_of(V m, V s) { return _mm256_or_ps(m, _mm256_and_ps(_mm256_set1_ps(-0.0f), s)); }
VFN V v_round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

/* p 2^k as (p 2^(k - k/2)) 2^(k/2): both factors are normal for k in [-152, 128], so only the
 * last product rounds, once, also when the result is denormal. */
VFN V v_scale2(V p, V k) {
    const __m256i ki = _mm256_cvtps_epi32(k);
    const __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s2), s1);
}

VFN M v_lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
VFN M v_gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
VFN M v_not(M m) { return _mm256_xor_ps(m, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
VFN V v_sel(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }
VFN V v_keep(M m, V a) { return _mm256_and_ps(m, a); }

VFN float v_hmax(V a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

VFN VSUM vsum_zero(void) { return (VSUM){_mm256_setzero_pd(), _mm256_setzero_pd()}; }
VFN VSUM vsum_add(VSUM s, V a) {
    s.lo = _mm256_add_pd(s.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    s.hi = _mm256_add_pd(s.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    return s;
}
VFN double vsum_total(VSUM s) {
    const __m256d t = _mm256_add_pd(s.lo, s.hi);
    const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
}

/* The squares are exact in double, so each FMA rounds once, as a separate add would. */
VFN VSUM vsum_add_squares(VSUM s, const float *p) {
    const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(p)), hi = _mm256_cvtps_pd(_mm_loadu_ps(p + 4));
    s.lo = _mm256_fmadd_pd(lo, lo, s.lo);
    s.hi = _mm256_fmadd_pd(hi, hi, s.hi);
    return s;
}
VFN void vsum_store(double *p, VSUM s) {
    _mm256_storeu_pd(p, s.lo);
    _mm256_storeu_pd(p + 4, s.hi);
}

#endif /* NNK_SIMD_LANES_AVX2_H */
