/*
 * Scalar reference activations (and the softmax family's row max and exp-sum): the source of
 * truth that every SIMD path is held to, and the path on CPUs without one. libm in float, except
 * the two GELUs and SiLU, which are evaluated in double: in float, the GELUs' argument (x / sqrt2,
 * or 2u) rounds before a function whose relative error grows with it (erfc far out, e^2u), which
 * would cost up to ~1e-5 relative at x = -10; the terms of SiLU' cancel near its root at -1.28
 * (to ~1e-9 at the float nearest it, where float leaves no correct digit), and x sigmoid(x) below
 * -87 would multiply a denormal sigmoid.
 */
#include "act_simd.h"

#include <math.h>

#define REF_SQRT1_2 0.70710678118654752440
#define REF_INV_SQRT_2PI 0.39894228040143267794
#define REF_GELU_C 0.79788456080286535588 /* sqrt(2 / pi) */
#define REF_GELU_K 0.044715

/* sigmoid(x), without overflow for either sign. */
static float sigmoid_ref(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

static double sigmoid_ref_d(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

/* 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) of the tanh GELU: 0.5 (1 + tanh u) = sigmoid(2u). */
static double gelu_tanh_2u(double x) { return 2.0 * REF_GELU_C * x * (1.0 + REF_GELU_K * x * x); }

static float forward_one(nnk_act act, float alpha, float x) {
    switch (act) {
    case NNK_ACT_SIGMOID: return sigmoid_ref(x);
    case NNK_ACT_TANH: return tanhf(x);
    case NNK_ACT_RELU: return x < 0.0f ? 0.0f : x;
    case NNK_ACT_LEAKY_RELU: return x > 0.0f ? x : alpha * x;
    case NNK_ACT_ELU: return x > 0.0f ? x : alpha * expm1f(x);
    case NNK_ACT_GELU_ERF: return (float)(0.5 * x * erfc(-x * REF_SQRT1_2));
    case NNK_ACT_GELU_TANH: return (float)(x * sigmoid_ref_d(gelu_tanh_2u(x)));
    case NNK_ACT_SILU: return (float)(x * sigmoid_ref_d(x));
    case NNK_ACT_SOFTPLUS: return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x)));
    default: return x; /* identity */
    }
}

/* f'(x) for the activations whose derivative needs x. */
static float derivative_x(nnk_act act, float alpha, float x) {
    switch (act) {
    case NNK_ACT_LEAKY_RELU: return x > 0.0f ? 1.0f : alpha;
    case NNK_ACT_ELU: return x > 0.0f ? 1.0f : alpha * expf(x);
    case NNK_ACT_GELU_ERF: { /* Phi(x) + x phi(x) */
        const double xd = x;
        return (float)(0.5 * erfc(-xd * REF_SQRT1_2) + xd * REF_INV_SQRT_2PI * exp(-0.5 * xd * xd));
    }
    case NNK_ACT_GELU_TANH: { /* s + x s (1 - s) d(2u)/dx, s = sigmoid(2u) */
        const double xd = x, u2 = gelu_tanh_2u(xd);
        const double s = sigmoid_ref_d(u2), d2u = 2.0 * REF_GELU_C * (1.0 + 3.0 * REF_GELU_K * xd * xd);
        return (float)(s + xd * d2u * s * sigmoid_ref_d(-u2));
    }
    case NNK_ACT_SILU: { /* s + x s (1 - s) */
        const double xd = x, s = sigmoid_ref_d(xd);
        return (float)(s + xd * s * sigmoid_ref_d(-xd));
    }
    case NNK_ACT_SOFTPLUS: return sigmoid_ref(x);
    default: return 1.0f;
    }
}

/* dy * f'(x), from y = f(x) where the activation allows it. */
static float backward_one(nnk_act act, float alpha, float dy, float x, float y) {
    switch (act) {
    case NNK_ACT_IDENTITY: return dy;
    case NNK_ACT_SIGMOID: return dy * (y * (1.0f - y));
    case NNK_ACT_TANH: return dy * ((1.0f - y) * (1.0f + y));
    case NNK_ACT_RELU: return y > 0.0f ? dy : 0.0f;
    default: return dy * derivative_x(act, alpha, x);
    }
}

/* y (n) = f(x (n)); y may equal x. */
void nnk_act_forward_ref(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    assert(n == 0 || (y != NULL && x != NULL));
    for (size_t i = 0; i < n; i++) y[i] = forward_one(act, alpha, x[i]);
}

/* dx (n) = dy (n) * f'(x (n)). x may be NULL when !nnk_act_needs_input(act); then f' comes from
 * y (n) = f(x). dx may equal dy. */
void nnk_act_backward_ref(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                          const float *y, size_t n) {
    const int use_x = nnk_act_needs_input(act);
    assert(n == 0 || (dx != NULL && dy != NULL && (use_x ? x != NULL : y != NULL || act == NNK_ACT_IDENTITY)));
    for (size_t i = 0; i < n; i++) {
        const float xi = use_x ? x[i] : 0.0f, yi = !use_x && y != NULL ? y[i] : 0.0f;
        dx[i] = backward_one(act, alpha, dy[i], xi, yi);
    }
}

/* max of x (n), n >= 1. */
float nnk_vec_max_ref(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* y (n) = exp(x (n) - shift) when y is not NULL; returns the sum of those exps. Each exp is
 * computed in double and rounded once, to float, as it is stored. */
double nnk_vec_exp_sum_ref(float *y, const float *x, float shift, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = exp((double)x[i] - shift);
        if (y != NULL) y[i] = (float)e;
        sum += e;
    }
    return sum;
}
