/*
 * Elementwise losses: MSE, MAE (L1), Huber and binary cross-entropy from logits, with PyTorch's
 * reduction='mean' (MSELoss, L1Loss, HuberLoss(delta), BCEWithLogitsLoss). Each term is
 * computed in double and summed in double; grad, when not NULL, receives d(mean)/d(pred).
 * These run once per batch on (batch, outputs) arrays, so plain C is enough.
 * grad may equal pred (each element is read before it is written).
 */
#include "../internal.h"

#include <math.h>

/* pred, target, grad are (rows, cols) contiguous. Returns mean((pred - target)^2). */
float nnk_loss_mse(float *grad, const float *pred, const float *target, size_t rows, size_t cols) {
    const size_t n = rows * cols;
    if (n == 0) return 0.0f;
    assert(pred != NULL && target != NULL);
    const double inv_n = 1.0 / (double)n;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)pred[i] - (double)target[i];
        sum += d * d;
        if (grad != NULL) grad[i] = (float)(2.0 * d * inv_n);
    }
    return (float)(sum * inv_n);
}

/* pred, target, grad are (rows, cols) contiguous. Returns mean(|pred - target|); the gradient
 * is sign(pred - target) / n, 0 where they are equal (PyTorch's sgn). */
float nnk_loss_mae(float *grad, const float *pred, const float *target, size_t rows, size_t cols) {
    const size_t n = rows * cols;
    if (n == 0) return 0.0f;
    assert(pred != NULL && target != NULL);
    const double inv_n = 1.0 / (double)n;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)pred[i] - (double)target[i];
        sum += fabs(d);
        if (grad != NULL) grad[i] = (float)((d > 0.0 ? inv_n : d < 0.0 ? -inv_n : 0.0));
    }
    return (float)(sum * inv_n);
}

/* pred, target, grad are (rows, cols) contiguous. Returns the mean of
 * 0.5 d^2 (|d| <= delta) or delta (|d| - 0.5 delta) (|d| > delta), d = pred - target; the
 * gradient is clamp(d, -delta, delta) / n. */
float nnk_loss_huber(float *grad, const float *pred, const float *target, size_t rows, size_t cols,
                     float delta) {
    const size_t n = rows * cols;
    if (n == 0) return 0.0f;
    assert(pred != NULL && target != NULL && delta > 0.0f);
    const double inv_n = 1.0 / (double)n, dl = (double)delta;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)pred[i] - (double)target[i], a = fabs(d);
        sum += a <= dl ? 0.5 * d * d : dl * (a - 0.5 * dl);
        if (grad != NULL) grad[i] = (float)((d > dl ? dl : d < -dl ? -dl : d) * inv_n);
    }
    return (float)(sum * inv_n);
}

/* 1 / (1 + e^-x) without overflow for any finite x. */
static double sigmoid_stable(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

/* logits, target, grad are (rows, cols) contiguous, targets in [0, 1]. Returns the mean of
 * max(x, 0) - x t + log1p(e^-|x|), which equals -(t log s(x) + (1 - t) log(1 - s(x))) and stays
 * finite for any finite x; the gradient is (s(x) - t) / n. */
float nnk_loss_bce_logits(float *grad, const float *logits, const float *target, size_t rows,
                          size_t cols) {
    const size_t n = rows * cols;
    if (n == 0) return 0.0f;
    assert(logits != NULL && target != NULL);
    const double inv_n = 1.0 / (double)n;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double x = (double)logits[i], t = (double)target[i];
        sum += (x > 0.0 ? x : 0.0) - x * t + log1p(exp(-fabs(x)));
        if (grad != NULL) grad[i] = (float)((sigmoid_stable(x) - t) * inv_n);
    }
    return (float)(sum * inv_n);
}
