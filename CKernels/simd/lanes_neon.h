/*
 * NEON (AArch64 Advanced SIMD) lane primitives: 4 floats a vector. NEON has no masked loads, so
 * a tail goes through a zeroed 4-float buffer and the same vector code.
 *
 * Not a normal header: a NEON kernel file (act_neon.c, optim_neon.c) includes it and then the
 * ISA-independent math written on these primitives (activations/act_vmath.h,
 * optim/optim_vmath.h); act_vmath.h lists what each primitive must do.
 */
#ifndef NNK_SIMD_LANES_NEON_H
#define NNK_SIMD_LANES_NEON_H

#include "../internal.h"

#include <arm_neon.h>
#include <string.h>

typedef float32x4_t V;
typedef uint32x4_t M;
typedef struct { float64x2_t lo, hi; } VSUM;
#define V_WIDTH 4
#define VFN static inline

VFN V v_set(float a) { return vdupq_n_f32(a); }
VFN V v_load(const float *p) { return vld1q_f32(p); }
VFN void v_store(float *p, V v) { vst1q_f32(p, v); }
VFN V v_load_part(const float *p, size_t k) {
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(buf, p, k * sizeof(float));
    return vld1q_f32(buf);
}
VFN void v_store_part(float *p, V v, size_t k) {
    float buf[4];
    vst1q_f32(buf, v);
    memcpy(p, buf, k * sizeof(float));
}
VFN M v_first(size_t k) {
    const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)k));
}

VFN V v_add(V a, V b) { return vaddq_f32(a, b); }
VFN V v_sub(V a, V b) { return vsubq_f32(a, b); }
VFN V v_mul(V a, V b) { return vmulq_f32(a, b); }
VFN V v_div(V a, V b) { return vdivq_f32(a, b); }
VFN V v_sqrt(V a) { return vsqrtq_f32(a); }
VFN V v_max(V a, V b) { return vmaxq_f32(a, b); }
VFN V v_fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
VFN V v_fnma(V a, V b, V c) { return vfmsq_f32(c, a, b); }

VFN V v_abs(V a) { return vabsq_f32(a); }
VFN V v_neg(V a) { return vnegq_f32(a); }
VFN V v_with_sign_of(V m, V s) { return vbslq_f32(vdupq_n_u32(0x80000000u), s, m); }
VFN V v_round(V a) { return vrndnq_f32(a); }

/* p 2^k as (p 2^(k - k/2)) 2^(k/2): both factors are normal for k in [-152, 128], so only the
 * last product rounds, once, also when the result is denormal. */
VFN V v_scale2(V p, V k) {
    const int32x4_t ki = vcvtq_s32_f32(k); /* k is integral: truncation is exact */
    const int32x4_t k1 = vshrq_n_s32(ki, 1), k2 = vsubq_s32(ki, k1);
    const int32x4_t bias = vdupq_n_s32(127);
    const V s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
    const V s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
    return vmulq_f32(vmulq_f32(p, s2), s1);
}

VFN M v_lt(V a, V b) { return vcltq_f32(a, b); }
VFN M v_gt(V a, V b) { return vcgtq_f32(a, b); }
VFN M v_not(M m) { return vmvnq_u32(m); }
VFN V v_sel(M m, V a, V b) { return vbslq_f32(m, a, b); }
VFN V v_keep(M m, V a) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))); }

VFN float v_hmax(V a) { return vmaxvq_f32(a); }

VFN VSUM vsum_zero(void) { return (VSUM){vdupq_n_f64(0.0), vdupq_n_f64(0.0)}; }
VFN VSUM vsum_add(VSUM s, V a) {
    s.lo = vaddq_f64(s.lo, vcvt_f64_f32(vget_low_f32(a)));
    s.hi = vaddq_f64(s.hi, vcvt_high_f64_f32(a));
    return s;
}
VFN double vsum_total(VSUM s) { return vaddvq_f64(vaddq_f64(s.lo, s.hi)); }

/* The squares are exact in double, so each FMA rounds once, as a separate add would. */
VFN VSUM vsum_add_squares(VSUM s, const float *p) {
    const float32x4_t f = vld1q_f32(p);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(f)), hi = vcvt_high_f64_f32(f);
    s.lo = vfmaq_f64(s.lo, lo, lo);
    s.hi = vfmaq_f64(s.hi, hi, hi);
    return s;
}
VFN void vsum_store(double *p, VSUM s) {
    vst1q_f64(p, s.lo);
    vst1q_f64(p + 2, s.hi);
}

#endif /* NNK_SIMD_LANES_NEON_H */
