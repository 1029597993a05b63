/*
 * NEON (AArch64 Advanced SIMD) optimizer spans, 4 floats a step: optim_vmath.h on the NEON lane
 * primitives (simd/lanes_neon.h), bitwise the same as optim_ref.c.
 */
#include "optim_kernels.h"

#if NNK_ARM64
#include "../simd/lanes_neon.h"

#include "optim_vmath.h"

void nnk_sgd_step_neon(float *param, float *velocity, const float *grad, size_t n,
                       const nnk_sgd_params *p, int first_step) {
    vm_sgd_step(param, velocity, grad, n, p, first_step);
}

void nnk_adam_step_neon(float *param, float *m, float *v, const float *grad, size_t n,
                        const nnk_adam_params *p, int64_t step) {
    vm_adam_step(param, m, v, grad, n, p, step);
}

double nnk_sum_squares_chunk_neon(const float *x, size_t n) { return vm_sum_squares_chunk(x, n); }

void nnk_scale_neon(float *x, size_t n, float s) { vm_scale(x, n, s); }

#endif /* NNK_ARM64 */
