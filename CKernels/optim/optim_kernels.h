/*
 * Shared by the optimizer-step sources only (not part of CKernels.h).
 *
 * Each variant (scalar reference, AVX2, AVX-512, NEON) updates one span of a flat buffer;
 * optim.c cuts long buffers into NNK_ELEMWISE_CHUNK spans and hands them to threads. All
 * variants do the same float operations in the same order, with no fused multiply-add (the
 * steps are memory-bound, so FMA would buy nothing), and take their per-step scalars from the
 * helpers below, so every path writes bitwise the same parameters and state. The SIMD variants
 * are one source, optim_vmath.h, compiled per ISA; a SIMD span finishes its last n % width
 * elements with the reference loop.
 *
 * nnk_sum_squares accumulates in double, exactly (a float squared is exact in double), into 16
 * lanes: lane k takes elements i = k (mod 16) of a chunk; a partial block is zero-padded. The
 * lanes are then folded as acc[k] += acc[k + s] for s = 8, 4, 2, 1, and the chunk sums added in
 * order, so the result is the same for every path and every thread count.
 */
#ifndef NNK_OPTIM_KERNELS_H
#define NNK_OPTIM_KERNELS_H

#include "../internal.h"

#include <math.h>

/* The variants round each product and each sum separately, so no compiler may contract a * b + c
 * into an FMA here: clang does by default within an expression, GCC in GNU mode (-std=gnu11)
 * even across statements and NEON intrinsics. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define NNK_SUMSQ_LANES 16

/* Per-step scalars of an Adam / AdamW step, computed in double as PyTorch does in Python. */
typedef struct nnk_adam_coef {
    float one_minus_beta1, one_minus_beta2;
    float step_size; /* lr / (1 - beta1^step) */
    float bc2_sqrt;  /* sqrt(1 - beta2^step) */
    float decay;     /* AdamW's 1 - lr * weight_decay */
    int l2;          /* Adam with weight decay: grad += weight_decay * param */
    int decoupled;   /* AdamW with weight decay: param *= decay first */
} nnk_adam_coef;

static inline nnk_adam_coef nnk_adam_coef_of(const nnk_adam_params *p, int64_t step) {
    assert(step >= 1);
    const double bc1 = 1.0 - pow((double)p->beta1, (double)step);
    const double bc2 = 1.0 - pow((double)p->beta2, (double)step);
    nnk_adam_coef k;
    k.one_minus_beta1 = 1.0f - p->beta1;
    k.one_minus_beta2 = 1.0f - p->beta2;
    k.step_size = (float)((double)p->lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.decay = (float)(1.0 - (double)p->lr * (double)p->weight_decay);
    k.l2 = !p->decoupled && p->weight_decay != 0.0f;
    k.decoupled = p->decoupled && p->weight_decay != 0.0f;
    return k;
}

/* The lane fold of a sum of squares: acc[k] += acc[k + s] for s = 8, 4, 2, 1; returns acc[0]. */
static inline double nnk_sumsq_fold(double acc[NNK_SUMSQ_LANES]) {
    for (int s = NNK_SUMSQ_LANES / 2; s > 0; s /= 2)
        for (int k = 0; k < s; k++) acc[k] += acc[k + s];
    return acc[0];
}

/* Adagrad's decayed learning rate lr / (1 + (step - 1) lr_decay). */
static inline float nnk_adagrad_clr(const nnk_adagrad_params *p, int64_t step) {
    assert(step >= 1);
    return (float)((double)p->lr / (1.0 + (double)(step - 1) * (double)p->lr_decay));
}

/* Scalar spans (optim_ref.c). nnk_sgd_step_ref / nnk_adam_step_ref are public. */
void nnk_rmsprop_step_ref(float *param, float *sq, float *buf, float *gavg, const float *grad, size_t n,
                          const nnk_rmsprop_params *p);
void nnk_adagrad_step_ref(float *param, float *sum, const float *grad, size_t n,
                          const nnk_adagrad_params *p, int64_t step);
/* Sum of squares of one chunk (n <= NNK_ELEMWISE_CHUNK), in the 16-lane order above. */
double nnk_sum_squares_chunk_ref(const float *x, size_t n);
void nnk_scale_ref(float *x, size_t n, float s);

#if NNK_X86_64
void nnk_sgd_step_avx2(float *param, float *velocity, const float *grad, size_t n,
                       const nnk_sgd_params *p, int first_step);
void nnk_adam_step_avx2(float *param, float *m, float *v, const float *grad, size_t n,
                        const nnk_adam_params *p, int64_t step);
double nnk_sum_squares_chunk_avx2(const float *x, size_t n);
void nnk_scale_avx2(float *x, size_t n, float s);

void nnk_sgd_step_avx512(float *param, float *velocity, const float *grad, size_t n,
                         const nnk_sgd_params *p, int first_step);
void nnk_adam_step_avx512(float *param, float *m, float *v, const float *grad, size_t n,
                          const nnk_adam_params *p, int64_t step);
double nnk_sum_squares_chunk_avx512(const float *x, size_t n);
void nnk_scale_avx512(float *x, size_t n, float s);
#endif

#if NNK_ARM64
void nnk_sgd_step_neon(float *param, float *velocity, const float *grad, size_t n,
                       const nnk_sgd_params *p, int first_step);
void nnk_adam_step_neon(float *param, float *m, float *v, const float *grad, size_t n,
                        const nnk_adam_params *p, int64_t step);
double nnk_sum_squares_chunk_neon(const float *x, size_t n);
void nnk_scale_neon(float *x, size_t n, float s);
#endif

#endif /* NNK_OPTIM_KERNELS_H */
