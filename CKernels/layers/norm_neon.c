/*
 * NEON (AArch64 Advanced SIMD) normalization reductions, 4 floats a vector: norm_vmath.h on the
 * lane primitives of simd/lanes_neon.h.
 */
#include "norm_kernels.h"

#if NNK_ARM64
#include "../simd/lanes_neon.h"

#include "norm_vmath.h"

void nnk_norm_moments_neon(const float *x, size_t n, double acc[2]) { vm_norm_moments(x, n, acc); }

void nnk_norm_dot_neon(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]) {
    vm_norm_dot(dy, gamma, x, mean, n, acc);
}

#endif /* NNK_ARM64 */
