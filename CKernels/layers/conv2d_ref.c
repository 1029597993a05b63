/* The direct-loop twins of the convolution (the source of truth for the tests): the definition,
 * one output element at a time, with float accumulation and the activation's reference twin. */
#include "../internal.h"

#include <string.h>

/* Output length along one axis, PyTorch's formula (the shape is valid). */
static size_t out_len(size_t in, size_t pad, size_t kernel, size_t dilation, size_t stride) {
    return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

/* The input index of output position o at kernel tap t along one axis, or -1 in the padding. */
static ptrdiff_t tap(size_t o, size_t stride, size_t t, size_t dilation, size_t pad, size_t in) {
    const size_t at = o * stride + t * dilation;
    return at < pad || at - pad >= in ? -1 : (ptrdiff_t)(at - pad);
}

/* y, z (N, Cout, OH, OW) = act(conv(x (N, Cin, H, W), w (Cout, Cin / G, KH, KW)) + b). */
void nnk_conv2d_forward_ref(float *y, float *z, const float *x, const float *w, const float *b,
                            const nnk_conv2d_shape *s, nnk_act act, float alpha) {
    assert(nnk_conv2d_output_size(s, NULL, NULL) == 0);
    const size_t oh_n = out_len(s->in_h, s->pad_h, s->kernel_h, s->dilation_h, s->stride_h);
    const size_t ow_n = out_len(s->in_w, s->pad_w, s->kernel_w, s->dilation_w, s->stride_w);
    const size_t cg = s->in_channels / s->groups, og = s->out_channels / s->groups;
    const size_t kh = s->kernel_h, kw = s->kernel_w, hw = s->in_h * s->in_w;
    float *out = y;
    for (size_t n = 0; n < s->batch; n++)
        for (size_t o = 0; o < s->out_channels; o++) {
            const float *xg = x + (n * s->in_channels + o / og * cg) * hw, *wo = w + o * cg * kh * kw;
            for (size_t oh = 0; oh < oh_n; oh++)
                for (size_t ow = 0; ow < ow_n; ow++, out++) {
                    float acc = 0.0f;
                    for (size_t c = 0; c < cg; c++)
                        for (size_t ki = 0; ki < kh; ki++) {
                            const ptrdiff_t ih = tap(oh, s->stride_h, ki, s->dilation_h, s->pad_h, s->in_h);
                            if (ih < 0) continue;
                            for (size_t kj = 0; kj < kw; kj++) {
                                const ptrdiff_t iw = tap(ow, s->stride_w, kj, s->dilation_w, s->pad_w, s->in_w);
                                if (iw >= 0) acc += wo[(c * kh + ki) * kw + kj] * xg[c * hw + (size_t)ih * s->in_w + (size_t)iw];
                            }
                        }
                    *out = acc + (b ? b[o] : 0.0f);
                }
        }
    const size_t len = (size_t)(out - y);
    if (z) memcpy(z, y, len * sizeof(float));
    nnk_act_forward_ref(act, alpha, y, y, len);
}

/* dy becomes dz = dy act'(z); dw (+)= dz (*) x; db (+)= sums of dz; dx = the scatter of dz through w. */
void nnk_conv2d_backward_ref(float *dx, float *dw, float *db, float *dy, const float *x, const float *w,
                             const float *z, const float *y, const nnk_conv2d_shape *s, nnk_act act,
                             float alpha, int accumulate) {
    assert(nnk_conv2d_output_size(s, NULL, NULL) == 0);
    const size_t oh_n = out_len(s->in_h, s->pad_h, s->kernel_h, s->dilation_h, s->stride_h);
    const size_t ow_n = out_len(s->in_w, s->pad_w, s->kernel_w, s->dilation_w, s->stride_w);
    const size_t cg = s->in_channels / s->groups, og = s->out_channels / s->groups;
    const size_t kh = s->kernel_h, kw = s->kernel_w, hw = s->in_h * s->in_w, pix = oh_n * ow_n;
    const size_t y_len = s->batch * s->out_channels * pix, w_len = s->out_channels * cg * kh * kw;
    if (act != NNK_ACT_IDENTITY) nnk_act_backward_ref(act, alpha, dy, dy, z, y, y_len);
    if (db)
        for (size_t o = 0; o < s->out_channels; o++) {
            float acc = accumulate ? db[o] : 0.0f;
            for (size_t n = 0; n < s->batch; n++)
                for (size_t i = 0; i < pix; i++) acc += dy[(n * s->out_channels + o) * pix + i];
            db[o] = acc;
        }
    if (dw && !accumulate) memset(dw, 0, w_len * sizeof(float));
    if (dx) memset(dx, 0, s->batch * s->in_channels * hw * sizeof(float));
    if (!dw && !dx) return;
    const float *d = dy;
    for (size_t n = 0; n < s->batch; n++)
        for (size_t o = 0; o < s->out_channels; o++) {
            const size_t x0 = (n * s->in_channels + o / og * cg) * hw, w0 = o * cg * kh * kw;
            for (size_t oh = 0; oh < oh_n; oh++)
                for (size_t ow = 0; ow < ow_n; ow++, d++)
                    for (size_t c = 0; c < cg; c++)
                        for (size_t ki = 0; ki < kh; ki++) {
                            const ptrdiff_t ih = tap(oh, s->stride_h, ki, s->dilation_h, s->pad_h, s->in_h);
                            if (ih < 0) continue;
                            for (size_t kj = 0; kj < kw; kj++) {
                                const ptrdiff_t iw = tap(ow, s->stride_w, kj, s->dilation_w, s->pad_w, s->in_w);
                                if (iw < 0) continue;
                                const size_t xi = x0 + c * hw + (size_t)ih * s->in_w + (size_t)iw;
                                const size_t wi = w0 + (c * kh + ki) * kw + kj;
                                if (dw) dw[wi] += *d * x[xi];
                                if (dx) dx[xi] += *d * w[wi];
                            }
                        }
        }
}
