/*
 * The SIMD optimizer spans, written once for every SIMD path on the lane primitives listed in
 * activations/act_vmath.h.
 *
 * Not a normal header: optim_avx2.c, optim_avx512.c and optim_neon.c each include
 * optim_kernels.h (which turns FP contraction off for the whole file), their ISA's lanes header
 * (simd/lanes_<isa>.h) and then this file, and export the functions below under their ISA's
 * names. The steps use v_add, v_sub, v_mul, v_div and v_sqrt in the order of optim_ref.c, never
 * v_fma, so each lane rounds exactly as the reference loop does; the last n % V_WIDTH elements
 * go through that loop.
 */
#ifndef V_WIDTH
#error "optim_vmath.h is included by an ISA file after it includes the lane primitives"
#endif

#include <string.h>

/* param, velocity, grad are (n). See nnk_sgd_step_ref. */
VFN void vm_sgd_step(float *param, float *velocity, const float *grad, size_t n, const nnk_sgd_params *p,
                     int first_step) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum != 0.0f;
    const V lr = v_set(p->lr), wd = v_set(p->weight_decay);
    const V mu = v_set(p->momentum), damp = v_set(1.0f - p->dampening);
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) {
        const V w = v_load(param + i);
        V g = v_load(grad + i);
        if (decay) g = v_add(g, v_mul(wd, w));
        if (mom) {
            const V b = first_step ? g : v_add(v_mul(mu, v_load(velocity + i)), v_mul(damp, g));
            v_store(velocity + i, b);
            g = p->nesterov ? v_add(g, v_mul(mu, b)) : b;
        }
        v_store(param + i, v_sub(w, v_mul(lr, g)));
    }
    nnk_sgd_step_ref(param + i, mom ? velocity + i : NULL, grad + i, n - i, p, first_step);
}

/* param, m, v, grad are (n). See nnk_adam_step_ref. */
VFN void vm_adam_step(float *param, float *m, float *v, const float *grad, size_t n, const nnk_adam_params *p,
                      int64_t step) {
    const nnk_adam_coef k = nnk_adam_coef_of(p, step);
    const V wd = v_set(p->weight_decay), decay = v_set(k.decay);
    const V b1 = v_set(p->beta1), c1 = v_set(k.one_minus_beta1);
    const V b2 = v_set(p->beta2), c2 = v_set(k.one_minus_beta2);
    const V lr = v_set(k.step_size), bc2 = v_set(k.bc2_sqrt);
    const V eps = v_set(p->eps);
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) {
        V g = v_load(grad + i), w = v_load(param + i);
        if (k.l2) g = v_add(g, v_mul(wd, w));
        if (k.decoupled) w = v_mul(w, decay);
        const V mi = v_add(v_mul(b1, v_load(m + i)), v_mul(c1, g));
        const V vi = v_add(v_mul(b2, v_load(v + i)), v_mul(c2, v_mul(g, g)));
        v_store(m + i, mi);
        v_store(v + i, vi);
        const V den = v_add(v_div(v_sqrt(vi), bc2), eps);
        v_store(param + i, v_sub(w, v_mul(lr, v_div(mi, den))));
    }
    nnk_adam_step_ref(param + i, m + i, v + i, grad + i, n - i, p, step);
}

/* Vectors in one 16-lane block of a sum of squares: acc[j] holds lanes [j V_WIDTH, (j + 1) V_WIDTH). */
#define VM_SUMSQ_VECTORS (NNK_SUMSQ_LANES / V_WIDTH)
/* Unrolled in full, so the accumulators stay in registers: GCC at -O2 leaves NEON's 4-trip loop
 * rolled on its own, and the array in memory. Clang reads the GCC spelling too. */
#define VM_UNROLL _Pragma("GCC unroll 16")

/* acc += the squares of one block of 16 floats at x. */
VFN void vm_sumsq_block(VSUM acc[VM_SUMSQ_VECTORS], const float *x) {
    VM_UNROLL for (int j = 0; j < VM_SUMSQ_VECTORS; j++) acc[j] = vsum_add_squares(acc[j], x + j * V_WIDTH);
}

/* x is (n), n <= NNK_ELEMWISE_CHUNK. See nnk_sum_squares_chunk_ref: the lanes are stored in
 * order and folded as the reference folds them, so every path returns the same double. */
VFN double vm_sum_squares_chunk(const float *x, size_t n) {
    VSUM acc[VM_SUMSQ_VECTORS];
    VM_UNROLL for (int j = 0; j < VM_SUMSQ_VECTORS; j++) acc[j] = vsum_zero();
    size_t i = 0;
    for (; i + NNK_SUMSQ_LANES <= n; i += NNK_SUMSQ_LANES) vm_sumsq_block(acc, x + i);
    if (i < n) {
        float tail[NNK_SUMSQ_LANES] = {0};
        memcpy(tail, x + i, (n - i) * sizeof(float));
        vm_sumsq_block(acc, tail);
    }
    double lanes[NNK_SUMSQ_LANES];
    VM_UNROLL for (int j = 0; j < VM_SUMSQ_VECTORS; j++) vsum_store(lanes + j * V_WIDTH, acc[j]);
    return nnk_sumsq_fold(lanes);
}

/* x is (n). x *= s. */
VFN void vm_scale(float *x, size_t n, float s) {
    const V vs = v_set(s);
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) v_store(x + i, v_mul(v_load(x + i), vs));
    nnk_scale_ref(x + i, n - i, s);
}
