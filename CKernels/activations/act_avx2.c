/*
 * AVX2 + FMA activations: 8 floats a vector. The math of act_vmath.h on the AVX2 lane
 * primitives (simd/lanes_avx2.h), whose masked tails never touch memory past n.
 */
#include "act_simd.h"

#if NNK_X86_64
#include "../simd/lanes_avx2.h"

#include "act_vmath.h"

NNK_TARGET_AVX2 void nnk_act_forward_avx2(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    vm_act_forward(act, alpha, y, x, n);
}

NNK_TARGET_AVX2 void nnk_act_backward_avx2(nnk_act act, float alpha, float *dx, const float *dy,
                                           const float *x, const float *y, size_t n) {
    vm_act_backward(act, alpha, dx, dy, x, y, n);
}

NNK_TARGET_AVX2 float nnk_vec_max_avx2(const float *x, size_t n) { return vm_max(x, n); }

NNK_TARGET_AVX2 double nnk_vec_exp_sum_avx2(float *y, const float *x, float shift, size_t n) {
    return vm_exp_sum(y, x, shift, n);
}

#endif /* NNK_X86_64 */
