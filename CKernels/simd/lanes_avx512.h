/*
 * AVX-512F lane primitives: 16 floats a vector. Only AVX-512F instructions are used (bitwise
 * float ops go through the integer forms; _mm512_and_ps and friends are AVX-512DQ). Tails use
 * mask registers; vscalefps scales by 2^k in one rounding, denormals included. Every function
 * carries the AVX-512 target attribute (VFN), so the package needs no -march flag.
 *
 * Not a normal header: an AVX-512 kernel file (act_avx512.c, optim_avx512.c) includes it and then
 * the ISA-independent math written on these primitives (activations/act_vmath.h,
 * optim/optim_vmath.h); act_vmath.h lists what each primitive must do.
 */
#ifndef NNK_SIMD_LANES_AVX512_H
#define NNK_SIMD_LANES_AVX512_H

#include "../internal.h"

#include <immintrin.h>

typedef __m512 V;
typedef __mmask16 M;
typedef struct { __m512d lo, hi; } VSUM;
#define V_WIDTH 16
#define VFN NNK_TARGET_AVX512 static inline

VFN V v_set(float a) { return _mm512_set1_ps(a); }
VFN V v_load(const float *p) { return _mm512_loadu_ps(p); }
VFN void v_store(float *p, V v) { _mm512_storeu_ps(p, v); }
VFN M v_first(size_t k) { return (M)((1u << k) - 1u); }
VFN V v_load_part(const float *p, size_t k) { return _mm512_maskz_loadu_ps(v_first(k), p); }
VFN void v_store_part(float *p, V v, size_t k) { _mm512_mask_storeu_ps(p, v_first(k), v); }

VFN V v_add(V a, V b) { return _mm512_add_ps(a, b); }
VFN V v_sub(V a, V b) { return _mm512_sub_ps(a, b); }
VFN V v_mul(V a, V b) { return _mm512_mul_ps(a, b); }
VFN V v_div(V a, V b) { return _mm512_div_ps(a, b); }
VFN V v_sqrt(V a) { return _mm512_sqrt_ps(a); }
VFN V v_max(V a, V b) { return _mm512_max_ps(a, b); }
VFN V v_fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
VFN V v_fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }

VFN __m512i v_bits(V a) { return _mm512_castps_si512(a); }
VFN V v_abs(V a) { return _mm512_castsi512_ps(_mm512_andnot_epi32(v_bits(_mm512_set1_ps(-0.0f)), v_bits(a))); }
VFN V v_neg(V a) { return _mm512_castsi512_ps(_mm512_xor_epi32(v_bits(_mm512_set1_ps(-0.0f)), v_bits(a))); }
VFN V v_with_sign_of(V m, V s) {
    const __m512i sign = _mm512_and_epi32(v_bits(_mm512_set1_ps(-0.0f)), v_bits(s));
    return _mm512_castsi512_ps(_mm512_or_epi32(v_bits(m), sign));
}
VFN V v_round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VFN V v_scale2(V p, V k) { return _mm512_scalef_ps(p, k); }

VFN M v_lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
VFN M v_gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
VFN M v_not(M m) { return (M)~m; }
VFN V v_sel(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }
VFN V v_keep(M m, V a) { return _mm512_maskz_mov_ps(m, a); }

VFN float v_hmax(V a) { return _mm512_reduce_max_ps(a); }

VFN VSUM vsum_zero(void) { return (VSUM){_mm512_setzero_pd(), _mm512_setzero_pd()}; }
VFN VSUM vsum_add(VSUM s, V a) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    s.lo = _mm512_add_pd(s.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    s.hi = _mm512_add_pd(s.hi, _mm512_cvtps_pd(hi));
    return s;
}
VFN double vsum_total(VSUM s) { return _mm512_reduce_add_pd(_mm512_add_pd(s.lo, s.hi)); }

/* The squares are exact in double, so each FMA rounds once, as a separate add would. */
VFN VSUM vsum_add_squares(VSUM s, const float *p) {
    const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(p)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(p + 8));
    s.lo = _mm512_fmadd_pd(lo, lo, s.lo);
    s.hi = _mm512_fmadd_pd(hi, hi, s.hi);
    return s;
}
VFN void vsum_store(double *p, VSUM s) {
    _mm512_storeu_pd(p, s.lo);
    _mm512_storeu_pd(p + 8, s.hi);
}

#endif /* NNK_SIMD_LANES_AVX512_H */
