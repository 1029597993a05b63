/*
 * A loss plugin: binary focal loss from logits (Lin et al., 2017), gamma = 2, alpha = 0.25,
 * mean over all elements; for imbalanced yes/no outputs (targets in [0, 1]).
 *   FL = -alpha_t (1 - p_t)^gamma log(p_t),  p = sigmoid(z), p_t = t p + (1 - t)(1 - p)
 * Build:  cc -std=c99 -O2 -fPIC -shared -I../../include focal_loss.c -o libnnb_focal.so -lm
 */
#include "nnbackprop_plugin.h"

#include <math.h>

typedef struct focal_params { float gamma, alpha; } focal_params;
static const focal_params params = {2.0f, 0.25f};

/* log(sigmoid(z)) without overflow. */
static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }

static float focal_loss(void *ctx, float *grad, const float *pred, const float *target, size_t rows, size_t cols) {
    const focal_params *fp = ctx;
    const double g = fp->gamma, a = fp->alpha, n = (double)(rows * cols);
    double sum = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        const double z = pred[i], t = target[i];
        /* Soft targets are allowed: mix the two one-sided terms. */
        const double p = 1.0 / (1.0 + exp(-z));
        const double lp = log_sigmoid(z), lq = log_sigmoid(-z); /* log p, log(1 - p) */
        const double pos = -a * pow(1.0 - p, g) * lp, neg = -(1.0 - a) * pow(p, g) * lq;
        sum += t * pos + (1.0 - t) * neg;
        if (grad) {
            /* d/dz of each term, with dp/dz = p (1 - p). */
            const double dpos = a * (g * pow(1.0 - p, g) * p * lp - pow(1.0 - p, g + 1.0));
            const double dneg = (1.0 - a) * (pow(p, g + 1.0) - g * pow(p, g) * (1.0 - p) * lq);
            grad[i] = (float)((t * dpos + (1.0 - t) * dneg) / n);
        }
    }
    return (float)(sum / n);
}

nnb_status nnb_plugin_init(const nnb_plugin_host *host);
nnb_status nnb_plugin_init(const nnb_plugin_host *host) {
    const nnb_loss_plugin focal = {
        sizeof(nnb_loss_plugin), NNB_PLUGIN_ABI_VERSION, "focal", focal_loss, (void *)&params,
    };
    return host->register_loss(&focal);
}
