/*
 * The normalization reductions (norm_kernels.h), written once for every SIMD path on the lane
 * primitives listed in activations/act_vmath.h.
 *
 * Not a normal header: norm_avx2.c, norm_avx512.c and norm_neon.c each include their ISA's lanes
 * header (simd/lanes_<isa>.h) and then this file, and export the functions below under their
 * ISA's names. Two vectors a step in two sets of double accumulators, so the add chains overlap;
 * a partial last vector is zero-padded (zeros add nothing to either sum).
 */
#ifndef V_WIDTH
#error "norm_vmath.h is included by an ISA file after it includes the lane primitives"
#endif

#include <string.h>

/* x is (n). See norm_kernels.h. */
VFN void vm_norm_moments(const float *x, size_t n, double acc[2]) {
    VSUM s0 = vsum_zero(), s1 = vsum_zero(), q0 = vsum_zero(), q1 = vsum_zero();
    size_t i = 0;
    for (; i + 2 * V_WIDTH <= n; i += 2 * V_WIDTH) {
        s0 = vsum_add(s0, v_load(x + i));
        s1 = vsum_add(s1, v_load(x + i + V_WIDTH));
        q0 = vsum_add_squares(q0, x + i);
        q1 = vsum_add_squares(q1, x + i + V_WIDTH);
    }
    for (; i < n; i += V_WIDTH) {
        float part[V_WIDTH] = {0.0f};
        memcpy(part, x + i, NNK_MIN((size_t)V_WIDTH, n - i) * sizeof(float));
        s0 = vsum_add(s0, v_load(part));
        q0 = vsum_add_squares(q0, part);
    }
    acc[0] += vsum_total(s0) + vsum_total(s1);
    acc[1] += vsum_total(q0) + vsum_total(q1);
}

/* g = dy (* gamma) and g (x - mean) of the k <= V_WIDTH elements at i, added to sg and sp. */
VFN void vm_norm_dot_step(VSUM *sg, VSUM *sp, const float *dy, const float *gamma, const float *x, V mean,
                          size_t i, size_t k) {
    const int full = k == V_WIDTH;
    V g = full ? v_load(dy + i) : v_load_part(dy + i, k);
    if (gamma) g = v_mul(g, full ? v_load(gamma + i) : v_load_part(gamma + i, k));
    const V xc = v_sub(full ? v_load(x + i) : v_load_part(x + i, k), mean);
    *sg = vsum_add(*sg, g);
    *sp = vsum_add(*sp, v_mul(g, xc)); /* g is 0 in the padded lanes */
}

/* dy, x (n), gamma (n) or NULL. See norm_kernels.h. */
VFN void vm_norm_dot(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]) {
    const V m = v_set(mean);
    VSUM g0 = vsum_zero(), g1 = vsum_zero(), p0 = vsum_zero(), p1 = vsum_zero();
    size_t i = 0;
    for (; i + 2 * V_WIDTH <= n; i += 2 * V_WIDTH) {
        vm_norm_dot_step(&g0, &p0, dy, gamma, x, m, i, V_WIDTH);
        vm_norm_dot_step(&g1, &p1, dy, gamma, x, m, i + V_WIDTH, V_WIDTH);
    }
    for (; i < n; i += V_WIDTH) vm_norm_dot_step(&g0, &p0, dy, gamma, x, m, i, NNK_MIN((size_t)V_WIDTH, n - i));
    acc[0] += vsum_total(g0) + vsum_total(g1);
    acc[1] += vsum_total(p0) + vsum_total(p1);
}
