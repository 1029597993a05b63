/*
 * Reference optimizer steps: plain scalar loops, single-threaded, the source of truth for the
 * SIMD spans (which must match them bit for bit, see optim_kernels.h). The formulas are
 * torch.optim's single-tensor ones, with g the gradient after L2 weight decay.
 */
#include "optim_kernels.h"

#include <string.h>

/* param, velocity, grad are (n). torch.optim.SGD:
 *   g = grad + wd * param
 *   buf = first_step ? g : momentum * buf + (1 - dampening) * g     (when momentum != 0)
 *   g = nesterov ? g + momentum * buf : buf
 *   param -= lr * g */
void nnk_sgd_step_ref(float *param, float *velocity, const float *grad, size_t n,
                      const nnk_sgd_params *p, int first_step) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum != 0.0f;
    assert(!p->nesterov || (p->momentum > 0.0f && p->dampening == 0.0f));
    assert(!mom || n == 0 || velocity != NULL);
    const float damp = 1.0f - p->dampening;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (decay) g = g + p->weight_decay * param[i];
        if (mom) {
            const float b = first_step ? g : p->momentum * velocity[i] + damp * g;
            velocity[i] = b;
            g = p->nesterov ? g + p->momentum * b : b;
        }
        param[i] = param[i] - p->lr * g;
    }
}

/* param, m, v, grad are (n). torch.optim.Adam / AdamW (decoupled), step >= 1:
 *   Adam:  g = grad + wd * param          AdamW: param *= 1 - lr * wd
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps) */
void nnk_adam_step_ref(float *param, float *m, float *v, const float *grad, size_t n,
                       const nnk_adam_params *p, int64_t step) {
    const nnk_adam_coef k = nnk_adam_coef_of(p, step);
    for (size_t i = 0; i < n; i++) {
        float g = grad[i], w = param[i];
        if (k.l2) g = g + p->weight_decay * w;
        if (k.decoupled) w = w * k.decay;
        const float mi = p->beta1 * m[i] + k.one_minus_beta1 * g;
        const float vi = p->beta2 * v[i] + k.one_minus_beta2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        param[i] = w - k.step_size * (mi / (sqrtf(vi) / k.bc2_sqrt + p->eps));
    }
}

/* param, sq, grad are (n); buf (n) when momentum > 0, gavg (n) when centered. torch.optim.RMSprop:
 *   g = grad + wd * param;  sq = alpha sq + (1 - alpha) g^2
 *   avg = sqrt(sq) + eps, or when centered: gavg = alpha gavg + (1 - alpha) g,
 *                                            avg = sqrt(sq - gavg^2) + eps
 *   momentum > 0: buf = momentum buf + g / avg, param -= lr * buf;  else param -= lr * g / avg */
void nnk_rmsprop_step_ref(float *param, float *sq, float *buf, float *gavg, const float *grad, size_t n,
                          const nnk_rmsprop_params *p) {
    const int decay = p->weight_decay != 0.0f, mom = p->momentum > 0.0f;
    assert(n == 0 || ((!mom || buf != NULL) && (!p->centered || gavg != NULL)));
    const float oma = 1.0f - p->alpha;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (decay) g = g + p->weight_decay * param[i];
        const float s = p->alpha * sq[i] + oma * (g * g);
        sq[i] = s;
        float var = s;
        if (p->centered) {
            const float a = p->alpha * gavg[i] + oma * g;
            gavg[i] = a;
            var = s - a * a;
        }
        const float step = g / (sqrtf(var) + p->eps);
        if (mom) {
            const float b = p->momentum * buf[i] + step;
            buf[i] = b;
            param[i] = param[i] - p->lr * b;
        } else {
            param[i] = param[i] - p->lr * step;
        }
    }
}

/* param, sum, grad are (n). torch.optim.Adagrad, step >= 1:
 *   g = grad + wd * param;  sum += g^2;  param -= lr / (1 + (step - 1) lr_decay) * g / (sqrt(sum) + eps) */
void nnk_adagrad_step_ref(float *param, float *sum, const float *grad, size_t n,
                          const nnk_adagrad_params *p, int64_t step) {
    const int decay = p->weight_decay != 0.0f;
    const float clr = nnk_adagrad_clr(p, step);
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (decay) g = g + p->weight_decay * param[i];
        const float s = sum[i] + g * g;
        sum[i] = s;
        param[i] = param[i] - clr * (g / (sqrtf(s) + p->eps));
    }
}

/* x is (n), n <= NNK_ELEMWISE_CHUNK. Sum of x^2 in the 16-lane order of optim_kernels.h. */
double nnk_sum_squares_chunk_ref(const float *x, size_t n) {
    double acc[NNK_SUMSQ_LANES] = {0};
    float tail[NNK_SUMSQ_LANES] = {0};
    const size_t full = n - n % NNK_SUMSQ_LANES;
    for (size_t i = 0; i < n; i += NNK_SUMSQ_LANES) {
        const float *b = x + i;
        if (i == full) { /* zero-padded last block */
            memcpy(tail, x + i, (n - i) * sizeof(float));
            b = tail;
        }
        for (int k = 0; k < NNK_SUMSQ_LANES; k++) acc[k] += (double)b[k] * (double)b[k];
    }
    return nnk_sumsq_fold(acc);
}

/* x is (n). x *= s. */
void nnk_scale_ref(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] * s;
}
