/*
 * An activation plugin: Mish, f(x) = x tanh(softplus(x)) (Misra, 2019).
 * Build:  cc -std=c99 -O2 -fPIC -shared -I../../include mish.c -o libnnb_mish.so -lm
 * Use:    nnb_plugin_load("libnnb_mish.so"), then "784-256:mish-10"; or nnb train --plugin.
 */
#include "nnbackprop_plugin.h"

#include <math.h>

/* softplus without overflow: log(1 + e^x) = max(x, 0) + log1p(e^-|x|). */
static float softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

static void mish_forward(void *ctx, float *y, const float *x, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = x[i] * tanhf(softplus(x[i]));
}

/* f'(x) = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2). */
static void mish_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)ctx, (void)y;
    for (size_t i = 0; i < n; i++) {
        const float t = tanhf(softplus(x[i])), s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] = dy[i] * (t + x[i] * s * (1.0f - t * t));
    }
}

nnb_status nnb_plugin_init(const nnb_plugin_host *host);
nnb_status nnb_plugin_init(const nnb_plugin_host *host) {
    const nnb_activation_plugin mish = {
        sizeof(nnb_activation_plugin), NNB_PLUGIN_ABI_VERSION, "mish", mish_forward, mish_backward, NULL,
    };
    return host->register_activation(&mish);
}
