/*
 * AVX-512F activations: 16 floats a vector. The math of act_vmath.h on the AVX-512F lane
 * primitives (simd/lanes_avx512.h): AVX-512F instructions only, mask-register tails.
 */
#include "act_simd.h"

#if NNK_X86_64
#include "../simd/lanes_avx512.h"

#include "act_vmath.h"

NNK_TARGET_AVX512 void nnk_act_forward_avx512(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    vm_act_forward(act, alpha, y, x, n);
}

NNK_TARGET_AVX512 void nnk_act_backward_avx512(nnk_act act, float alpha, float *dx, const float *dy,
                                               const float *x, const float *y, size_t n) {
    vm_act_backward(act, alpha, dx, dy, x, y, n);
}

NNK_TARGET_AVX512 float nnk_vec_max_avx512(const float *x, size_t n) { return vm_max(x, n); }

NNK_TARGET_AVX512 double nnk_vec_exp_sum_avx512(float *y, const float *x, float shift, size_t n) {
    return vm_exp_sum(y, x, shift, n);
}

#endif /* NNK_X86_64 */
