/*
 * AVX2 + FMA normalization reductions, 8 floats a vector: norm_vmath.h on the lane primitives
 * of simd/lanes_avx2.h. Compiled with function-level target attributes (no -march).
 */
#include "norm_kernels.h"

#if NNK_X86_64
#include "../simd/lanes_avx2.h"

#include "norm_vmath.h"

NNK_TARGET_AVX2 void nnk_norm_moments_avx2(const float *x, size_t n, double acc[2]) { vm_norm_moments(x, n, acc); }

NNK_TARGET_AVX2 void nnk_norm_dot_avx2(const float *dy, const float *gamma, const float *x, float mean, size_t n,
                                       double acc[2]) {
    vm_norm_dot(dy, gamma, x, mean, n, acc);
}

#endif /* NNK_X86_64 */
