/*
 * NEON (AArch64 Advanced SIMD) activations: 4 floats a vector. The math of act_vmath.h on the
 * NEON lane primitives (simd/lanes_neon.h), whose tails go through a zeroed 4-float buffer.
 */
#include "act_simd.h"

#if NNK_ARM64
#include "../simd/lanes_neon.h"

#include "act_vmath.h"

void nnk_act_forward_neon(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    vm_act_forward(act, alpha, y, x, n);
}

void nnk_act_backward_neon(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                           const float *y, size_t n) {
    vm_act_backward(act, alpha, dx, dy, x, y, n);
}

float nnk_vec_max_neon(const float *x, size_t n) { return vm_max(x, n); }

double nnk_vec_exp_sum_neon(float *y, const float *x, float shift, size_t n) { return vm_exp_sum(y, x, shift, n); }

#endif /* NNK_ARM64 */
