/*
 * AVX-512F optimizer spans, 16 floats a step: optim_vmath.h on the AVX-512F lane primitives
 * (simd/lanes_avx512.h), bitwise the same as optim_ref.c. Compiled with function-level target
 * attributes (no -march).
 */
#include "optim_kernels.h"

#if NNK_X86_64
#include "../simd/lanes_avx512.h"

#include "optim_vmath.h"

NNK_TARGET_AVX512 void nnk_sgd_step_avx512(float *param, float *velocity, const float *grad, size_t n,
                                           const nnk_sgd_params *p, int first_step) {
    vm_sgd_step(param, velocity, grad, n, p, first_step);
}

NNK_TARGET_AVX512 void nnk_adam_step_avx512(float *param, float *m, float *v, const float *grad, size_t n,
                                            const nnk_adam_params *p, int64_t step) {
    vm_adam_step(param, m, v, grad, n, p, step);
}

NNK_TARGET_AVX512 double nnk_sum_squares_chunk_avx512(const float *x, size_t n) {
    return vm_sum_squares_chunk(x, n);
}

NNK_TARGET_AVX512 void nnk_scale_avx512(float *x, size_t n, float s) { vm_scale(x, n, s); }

#endif /* NNK_X86_64 */
