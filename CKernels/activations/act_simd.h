/*
 * The per-ISA activation kernels behind nnk_act_forward / nnk_act_backward (act.c), and the two
 * row helpers that the softmax family (softmax.c) borrows from them; the kernel tables
 * (dispatch/table.h) hold them, with the scalar twins of act_ref.c as the reference entries.
 * Internal to CKernels.
 *
 * The math is written once, in act_vmath.h, against a small set of lane primitives; each of
 * act_avx2.c, act_avx512.c and act_neon.c defines those primitives for its ISA and includes it.
 * Every function here computes each element from that element alone, with the same vector code
 * for a partial tail as for a full vector, so a result does not depend on where an element sits
 * in the array; act.c relies on that to split work across threads without changing any bit.
 *
 *   nnk_act_forward_<isa>   y[i] = f(x[i]), x and y (n); y may equal x.
 *   nnk_act_backward_<isa>  dx[i] = dy[i] * f'(x[i]), all (n); dx may equal dy. x may be NULL when
 *                           !nnk_act_needs_input(act); y is read by identity, sigmoid, tanh, relu.
 *   nnk_vec_max_<isa>       max of x (n), n >= 1.
 *   nnk_vec_exp_sum_<isa>   y[i] = exp(x[i] - shift) when y is not NULL, all (n); returns the sum
 *                           of those exps, accumulated in double in a fixed lane order. x - shift
 *                           is carried exactly (two-sum), so each exp keeps its few-ulp accuracy
 *                           where the subtraction alone would round.
 */
#ifndef NNK_ACT_SIMD_H
#define NNK_ACT_SIMD_H

#include "../internal.h"

/* The reference row helpers (act_ref.c); nnk_act_forward_ref / nnk_act_backward_ref are public. */
float nnk_vec_max_ref(const float *x, size_t n);
double nnk_vec_exp_sum_ref(float *y, const float *x, float shift, size_t n);

#if NNK_X86_64
void nnk_act_forward_avx2(nnk_act act, float alpha, float *y, const float *x, size_t n);
void nnk_act_backward_avx2(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                           const float *y, size_t n);
float nnk_vec_max_avx2(const float *x, size_t n);
double nnk_vec_exp_sum_avx2(float *y, const float *x, float shift, size_t n);

void nnk_act_forward_avx512(nnk_act act, float alpha, float *y, const float *x, size_t n);
void nnk_act_backward_avx512(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                             const float *y, size_t n);
float nnk_vec_max_avx512(const float *x, size_t n);
double nnk_vec_exp_sum_avx512(float *y, const float *x, float shift, size_t n);
#endif

#if NNK_ARM64
void nnk_act_forward_neon(nnk_act act, float alpha, float *y, const float *x, size_t n);
void nnk_act_backward_neon(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                           const float *y, size_t n);
float nnk_vec_max_neon(const float *x, size_t n);
double nnk_vec_exp_sum_neon(float *y, const float *x, float shift, size_t n);
#endif

#endif /* NNK_ACT_SIMD_H */
