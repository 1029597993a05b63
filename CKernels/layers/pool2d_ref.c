/*
 * Reference twins of the pooling kernels (pool2d.c): one output at a time, the whole kernel_h x
 * kernel_w window walked in row-major order with an in-input test on each tap, single-threaded;
 * the average sums in double. The source of truth the tests hold pool2d.c to.
 */
#include "../internal.h"

#include <math.h>

/* The shape, checked, and the output size. */
static void ref_dims(const nnk_pool2d_shape *s, size_t *planes, size_t *oh, size_t *ow) {
    const int ok = nnk_pool2d_output_size(s, oh, ow) == 0;
    assert(ok && "pooling shape refused by nnk_pool2d_output_size");
    (void)ok;
    *planes = s->batch * s->channels;
}

/* Tap (ky, kx) of output (oh, ow): 1 and its input row and column when it falls on the input. */
static int ref_tap(const nnk_pool2d_shape *s, size_t oh, size_t ow, size_t ky, size_t kx, size_t *ih, size_t *iw) {
    const long long h = (long long)(oh * s->stride_h + ky) - (long long)s->pad_h;
    const long long w = (long long)(ow * s->stride_w + kx) - (long long)s->pad_w;
    if (h < 0 || w < 0 || h >= (long long)s->in_h || w >= (long long)s->in_w) return 0;
    *ih = (size_t)h, *iw = (size_t)w;
    return 1;
}

void nnk_maxpool2d_forward_ref(float *y, int32_t *argmax, const float *x, const nnk_pool2d_shape *s) {
    size_t planes, oh_n, ow_n;
    ref_dims(s, &planes, &oh_n, &ow_n);
    for (size_t p = 0; p < planes; p++)
        for (size_t oh = 0; oh < oh_n; oh++)
            for (size_t ow = 0; ow < ow_n; ow++) {
                const float *xp = x + p * s->in_h * s->in_w;
                float m = -INFINITY;
                long long at = -1;
                for (size_t ky = 0; ky < s->kernel_h; ky++)
                    for (size_t kx = 0; kx < s->kernel_w; kx++) {
                        size_t ih, iw;
                        if (!ref_tap(s, oh, ow, ky, kx, &ih, &iw)) continue;
                        const size_t i = ih * s->in_w + iw;
                        if (at < 0) at = (long long)i; /* PyTorch starts from the first in-input tap */
                        if (xp[i] > m || isnan(xp[i])) m = xp[i], at = (long long)i;
                    }
                const size_t o = (p * oh_n + oh) * ow_n + ow;
                y[o] = m;
                argmax[o] = (int32_t)at;
            }
}

void nnk_maxpool2d_backward_ref(float *dx, const float *dy, const int32_t *argmax, const nnk_pool2d_shape *s) {
    size_t planes, oh_n, ow_n;
    ref_dims(s, &planes, &oh_n, &ow_n);
    const size_t in_plane = s->in_h * s->in_w, out_plane = oh_n * ow_n;
    for (size_t i = 0; i < planes * in_plane; i++) dx[i] = 0.0f;
    for (size_t p = 0; p < planes; p++)
        for (size_t o = 0; o < out_plane; o++) dx[p * in_plane + (size_t)argmax[p * out_plane + o]] += dy[p * out_plane + o];
}

/* The divisor of output (oh, ow): the whole window, or its taps on the input. */
static double ref_divisor(const nnk_pool2d_shape *s, size_t oh, size_t ow) {
    if (s->count_include_pad) return (double)(s->kernel_h * s->kernel_w);
    size_t n = 0, ih, iw;
    for (size_t ky = 0; ky < s->kernel_h; ky++)
        for (size_t kx = 0; kx < s->kernel_w; kx++) n += (size_t)ref_tap(s, oh, ow, ky, kx, &ih, &iw);
    return (double)n;
}

void nnk_avgpool2d_forward_ref(float *y, const float *x, const nnk_pool2d_shape *s) {
    size_t planes, oh_n, ow_n;
    ref_dims(s, &planes, &oh_n, &ow_n);
    for (size_t p = 0; p < planes; p++)
        for (size_t oh = 0; oh < oh_n; oh++)
            for (size_t ow = 0; ow < ow_n; ow++) {
                const float *xp = x + p * s->in_h * s->in_w;
                double sum = 0.0;
                for (size_t ky = 0; ky < s->kernel_h; ky++)
                    for (size_t kx = 0; kx < s->kernel_w; kx++) {
                        size_t ih, iw;
                        if (ref_tap(s, oh, ow, ky, kx, &ih, &iw)) sum += xp[ih * s->in_w + iw];
                    }
                y[(p * oh_n + oh) * ow_n + ow] = (float)(sum / ref_divisor(s, oh, ow));
            }
}

void nnk_avgpool2d_backward_ref(float *dx, const float *dy, const nnk_pool2d_shape *s) {
    size_t planes, oh_n, ow_n;
    ref_dims(s, &planes, &oh_n, &ow_n);
    const size_t in_plane = s->in_h * s->in_w;
    for (size_t i = 0; i < planes * in_plane; i++) dx[i] = 0.0f;
    for (size_t p = 0; p < planes; p++)
        for (size_t oh = 0; oh < oh_n; oh++)
            for (size_t ow = 0; ow < ow_n; ow++) {
                const float v = (float)(dy[(p * oh_n + oh) * ow_n + ow] / ref_divisor(s, oh, ow));
                for (size_t ky = 0; ky < s->kernel_h; ky++)
                    for (size_t kx = 0; kx < s->kernel_w; kx++) {
                        size_t ih, iw;
                        if (ref_tap(s, oh, ow, ky, kx, &ih, &iw)) dx[p * in_plane + ih * s->in_w + iw] += v;
                    }
            }
}
