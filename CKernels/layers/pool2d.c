/*
 * 2-D max and average pooling, NCHW, PyTorch semantics (CKernels.h), and the shape rule they share.
 *
 * Portable C, no kernel-table entry (yet). Each output row splits into edge columns (window
 * clipped by the padding: one window at a time) and interior columns (window wholly inside the
 * input's columns), where the window is walked tap by tap across the whole interior span,
 * `y[ow] op= x[... + ow * stride_w]`, with strides 1 and 2 passed as literals. Clang, the
 * package's compiler, vectorises the average's tap loops at -O2 (at the baseline width: CKernels
 * builds without -march), stride 2 with de-interleaving loads; its cost model keeps max pooling's
 * value-and-index select scalar on SSE2 and NEON (it vectorises it only under -mavx2), so a lane
 * kernel for the max taps is where a kernel-table entry would pay next. GCC's -O2 vectorises none
 * of these loops (its cost model refuses a runtime trip count); the Makefile's GCC builds are
 * checks, not the shipped library. Measured single-threaded on 32x64x56x56 (clang -O2, AVX2
 * machine, shared and noisy cores) against the twins: average 3x3/1 p1 5-7x forward, 4-6x
 * backward; max 2x2/2 and 3x3/2 p1 only 0.9-2x, run to run. The unpadded 2x2 stride-2 max pool,
 * nearly every CNN's, has its own loop with a window's four taps in registers: on 128x16x28x28,
 * one thread of a Zen 4 (clang -O2), 7.4 ms by the tap walk, 1.25 ms by it; the walk had been
 * 18% of a training step of the README's CNN (perf).
 *
 * Every output still sees its window in row-major order, as the reference twin (pool2d_ref.c)
 * and PyTorch do, so first-on-ties and NaN handling are the same. The forward splits (plane,
 * output row) pairs across threads, the backward whole planes (windows overlap within a plane);
 * each element is written by one thread in a fixed order, so results do not depend on the thread
 * count.
 */
#include "../internal.h"

#include <math.h>

/* ---- the shape rule ---------------------------------------------------------------------- */

/* *p = a * b; 0 when that overflows size_t. */
static int mul_ok(size_t a, size_t b, size_t *p) {
    if (b != 0 && a > SIZE_MAX / b) return 0;
    *p = a * b;
    return 1;
}

int nnk_pool2d_output_size(const nnk_pool2d_shape *s, size_t *out_h, size_t *out_w) {
    if (s == NULL || s->batch == 0 || s->channels == 0 || s->in_h == 0 || s->in_w == 0 || s->kernel_h == 0 ||
        s->kernel_w == 0 || s->stride_h == 0 || s->stride_w == 0)
        return -1;
    if (s->pad_h > s->kernel_h / 2 || s->pad_w > s->kernel_w / 2) return -1;
    /* 2 pad <= kernel, so in + 2 pad overflows only if in + kernel does. */
    if (s->in_h > SIZE_MAX - s->kernel_h || s->in_w > SIZE_MAX - s->kernel_w) return -1;
    const size_t padded_h = s->in_h + 2 * s->pad_h, padded_w = s->in_w + 2 * s->pad_w;
    if (s->kernel_h > padded_h || s->kernel_w > padded_w) return -1;
    const size_t oh = (padded_h - s->kernel_h) / s->stride_h + 1, ow = (padded_w - s->kernel_w) / s->stride_w + 1;
    size_t planes, in_plane, out_plane, n;
    if (!mul_ok(s->batch, s->channels, &planes) || !mul_ok(s->in_h, s->in_w, &in_plane) ||
        in_plane > (size_t)INT32_MAX || !mul_ok(oh, ow, &out_plane) || !mul_ok(planes, in_plane, &n) ||
        !mul_ok(n, sizeof(float), &n) || !mul_ok(planes, out_plane, &n) || !mul_ok(n, sizeof(float), &n))
        return -1;
    if (out_h) *out_h = oh;
    if (out_w) *out_w = ow;
    return 0;
}

/* ---- geometry ---------------------------------------------------------------------------- */

/* One call's sizes, and the interior output columns [ow_lo, ow_hi): those whose window lies
 * inside the input columns. */
typedef struct pool_geom {
    size_t planes, in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw;
    size_t ow_lo, ow_hi;
    int include_pad;
} pool_geom;

static pool_geom geom_of(const nnk_pool2d_shape *s) {
    pool_geom g;
    const int ok = nnk_pool2d_output_size(s, &g.out_h, &g.out_w) == 0;
    assert(ok && "pooling shape refused by nnk_pool2d_output_size");
    (void)ok;
    g.planes = s->batch * s->channels;
    g.in_h = s->in_h, g.in_w = s->in_w;
    g.kh = s->kernel_h, g.kw = s->kernel_w, g.sh = s->stride_h, g.sw = s->stride_w, g.ph = s->pad_h, g.pw = s->pad_w;
    g.include_pad = s->count_include_pad;
    /* ow * sw >= pw and ow * sw - pw + kw <= in_w. */
    const size_t lo = (g.pw + g.sw - 1) / g.sw;
    const size_t hi = g.in_w + g.pw >= g.kw ? (g.in_w + g.pw - g.kw) / g.sw + 1 : 0;
    g.ow_lo = NNK_MIN(lo, g.out_w);
    g.ow_hi = NNK_MAX(NNK_MIN(hi, g.out_w), g.ow_lo);
    return g;
}

/* The in-input part [*b, *e) of the window starting at o * stride - pad, in a dimension of n. Not
 * empty: pad <= kernel / 2 and out = (n + 2 pad - kernel) / stride + 1 keep every window on the input. */
static void window_span(size_t o, size_t stride, size_t pad, size_t kernel, size_t n, size_t *b, size_t *e) {
    const size_t start = o * stride;
    *b = start > pad ? start - pad : 0;
    *e = NNK_MIN(start + kernel - pad, n);
}

/* Threads for `work` element visits. */
static int pool_threads(double work) { return nnk_threads_for(work, NNK_ELEMWISE_PARALLEL_MIN / 2.0); }

/* ---- max pooling ------------------------------------------------------------------------- */

/* y / argmax of output (oh, ow) of plane xp, one window at a time (the edge columns). */
static void max_window(float *y, int32_t *am, const float *xp, const pool_geom *g, size_t h0, size_t h1, size_t ow) {
    size_t w0, w1;
    window_span(ow, g->sw, g->pw, g->kw, g->in_w, &w0, &w1);
    float m = -INFINITY;
    size_t at = h0 * g->in_w + w0;
    for (size_t ih = h0; ih < h1; ih++)
        for (size_t iw = w0; iw < w1; iw++) {
            const float v = xp[ih * g->in_w + iw];
            if (v > m || isnan(v)) m = v, at = ih * g->in_w + iw;
        }
    *y = m;
    *am = (int32_t)at;
}

/* One tap of n interior windows, x[j sw] for j < n: y[j], am[j] take it when it is greater or NaN.
 * Branch-free (a random window's updates are unpredictable branches), and written so that a
 * compiler may vectorise it; the callers pass strides 1 and 2 as literals. */
static inline void max_taps(float *NNK_RESTRICT y, int32_t *NNK_RESTRICT am, const float *NNK_RESTRICT x, size_t n,
                            size_t sw, int32_t at) {
    for (size_t j = 0; j < n; j++) {
        const float v = x[j * sw];
        const int take = v > y[j] || v != v;
        y[j] = take ? v : y[j];
        am[j] = take ? at + (int32_t)(j * sw) : am[j];
    }
}

/* Tap v at index at of a window: taken when greater than the maximum so far or NaN. */
#define MAX_TAKE(v, at)                        \
    do {                                       \
        const float v_ = (v);                  \
        const int t_ = v_ > m || v_ != v_;     \
        m = t_ ? v_ : m;                       \
        i = t_ ? (at) : i;                     \
    } while (0)

/* Output row oh of a 2x2 stride-2 unpadded pooling (the common case): each output's four taps
 * in row-major order, in registers. */
static void max_row_2x2(float *NNK_RESTRICT y, int32_t *NNK_RESTRICT am, const float *NNK_RESTRICT xp, const pool_geom *g,
                        size_t oh) {
    const size_t w = g->in_w;
    const float *r0 = xp + 2 * oh * w, *r1 = r0 + w;
    const int32_t base = (int32_t)(2 * oh * w);
    for (size_t j = 0; j < g->out_w; j++) {
        float m = r0[2 * j];
        int32_t i = base + (int32_t)(2 * j);
        MAX_TAKE(r0[2 * j + 1], i + 1);
        MAX_TAKE(r1[2 * j], base + (int32_t)(w + 2 * j));
        MAX_TAKE(r1[2 * j + 1], base + (int32_t)(w + 2 * j + 1));
        y[j] = m;
        am[j] = i;
    }
}

/* Output row oh of plane p: y, am (out_w). */
static void max_row(float *y, int32_t *am, const float *xp, const pool_geom *g, size_t oh) {
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) {
        max_row_2x2(y, am, xp, g, oh);
        return;
    }
    size_t h0, h1;
    window_span(oh, g->sh, g->ph, g->kh, g->in_h, &h0, &h1);
    for (size_t ow = 0; ow < g->ow_lo; ow++) max_window(y + ow, am + ow, xp, g, h0, h1, ow);
    for (size_t ow = g->ow_hi; ow < g->out_w; ow++) max_window(y + ow, am + ow, xp, g, h0, h1, ow);
    const size_t lo = g->ow_lo, n = g->ow_hi - lo, sw = g->sw;
    if (n == 0) return;
    const size_t first = h0 * g->in_w + lo * sw - g->pw; /* window (h0, 0) of output lo */
    for (size_t j = 0; j < n; j++) y[lo + j] = -INFINITY, am[lo + j] = (int32_t)(first + j * sw);
    for (size_t ih = h0; ih < h1; ih++)
        for (size_t kx = 0; kx < g->kw; kx++) {
            const size_t at = ih * g->in_w + lo * sw + kx - g->pw;
            if (sw == 1)
                max_taps(y + lo, am + lo, xp + at, n, 1, (int32_t)at);
            else if (sw == 2)
                max_taps(y + lo, am + lo, xp + at, n, 2, (int32_t)at);
            else
                max_taps(y + lo, am + lo, xp + at, n, sw, (int32_t)at);
        }
}

/* y, argmax (planes, out_h, out_w) from x (planes, in_h, in_w). */
void nnk_maxpool2d_forward(float *y, int32_t *argmax, const float *x, const nnk_pool2d_shape *s) {
    const pool_geom g = geom_of(s);
    assert(y != NULL && argmax != NULL && x != NULL);
    const size_t rows = g.planes * g.out_h;
    const int threads = pool_threads((double)rows * (double)g.out_w * (double)(g.kh * g.kw));
    NNK_PARALLEL_FOR(threads, rows, r,
                     max_row(y + r * g.out_w, argmax + r * g.out_w, x + r / g.out_h * g.in_h * g.in_w, &g, r % g.out_h));
}

/* dx of one plane (in_plane): zeroed, then each dy (out_plane) added at its argmax. */
static void max_backward_plane(float *dx, const float *dy, const int32_t *am, size_t in_plane, size_t out_plane) {
    for (size_t i = 0; i < in_plane; i++) dx[i] = 0.0f;
    for (size_t i = 0; i < out_plane; i++) {
        assert(am[i] >= 0 && (size_t)am[i] < in_plane);
        dx[am[i]] += dy[i];
    }
}

/* dx (planes, in_h, in_w) = scatter of dy (planes, out_h, out_w) through argmax. */
void nnk_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax, const nnk_pool2d_shape *s) {
    const pool_geom g = geom_of(s);
    assert(dx != NULL && dy != NULL && argmax != NULL);
    const size_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    const int threads = pool_threads((double)g.planes * (double)(in_plane + out_plane));
    NNK_PARALLEL_FOR(threads, g.planes, p,
                     max_backward_plane(dx + p * in_plane, dy + p * out_plane, argmax + p * out_plane, in_plane,
                                        out_plane));
}

/* ---- average pooling --------------------------------------------------------------------- */

/* The divisor of a window whose in-input part is (h1 - h0) x (w1 - w0). Without ceil mode no
 * window reaches past the padding, so the whole window is kernel_h x kernel_w (PyTorch clips it
 * to the padded input, which changes nothing here). */
static float avg_divisor(const pool_geom *g, size_t h0, size_t h1, size_t w0, size_t w1) {
    return (float)(g->include_pad ? g->kh * g->kw : (h1 - h0) * (w1 - w0));
}

/* y of output (oh, ow) of plane xp, one window at a time (the edge columns). */
static float avg_window(const float *xp, const pool_geom *g, size_t h0, size_t h1, size_t ow) {
    size_t w0, w1;
    window_span(ow, g->sw, g->pw, g->kw, g->in_w, &w0, &w1);
    float sum = 0.0f;
    for (size_t ih = h0; ih < h1; ih++)
        for (size_t iw = w0; iw < w1; iw++) sum += xp[ih * g->in_w + iw];
    return sum / avg_divisor(g, h0, h1, w0, w1);
}

/* a[j sa] += b[j sb] for j < n: one tap of n interior windows, forward (sa 1, sb the stride) or
 * backward (sa the stride, sb 1). The callers pass the strides as literals where they are 1 or 2
 * (see max_taps). Distinct j never meet, so the loop vectorises (clang -O2). */
static inline void add_taps(float *NNK_RESTRICT a, size_t sa, const float *NNK_RESTRICT b, size_t sb, size_t n) {
    for (size_t j = 0; j < n; j++) a[j * sa] += b[j * sb];
}

/* Output row oh of plane xp: y (out_w). */
static void avg_row(float *y, const float *xp, const pool_geom *g, size_t oh) {
    size_t h0, h1;
    window_span(oh, g->sh, g->ph, g->kh, g->in_h, &h0, &h1);
    for (size_t ow = 0; ow < g->ow_lo; ow++) y[ow] = avg_window(xp, g, h0, h1, ow);
    for (size_t ow = g->ow_hi; ow < g->out_w; ow++) y[ow] = avg_window(xp, g, h0, h1, ow);
    const size_t lo = g->ow_lo, n = g->ow_hi - lo, sw = g->sw;
    if (n == 0) return;
    float *yr = y + lo;
    for (size_t j = 0; j < n; j++) yr[j] = 0.0f;
    for (size_t ih = h0; ih < h1; ih++)
        for (size_t kx = 0; kx < g->kw; kx++) {
            const float *xr = xp + ih * g->in_w + lo * sw + kx - g->pw;
            if (sw == 1)
                add_taps(yr, 1, xr, 1, n);
            else if (sw == 2)
                add_taps(yr, 1, xr, 2, n);
            else
                add_taps(yr, 1, xr, sw, n);
        }
    const float div = avg_divisor(g, h0, h1, 0, g->kw);
    for (size_t j = 0; j < n; j++) yr[j] /= div;
}

/* y (planes, out_h, out_w) = window means of x (planes, in_h, in_w). */
void nnk_avgpool2d_forward(float *y, const float *x, const nnk_pool2d_shape *s) {
    const pool_geom g = geom_of(s);
    assert(y != NULL && x != NULL);
    const size_t rows = g.planes * g.out_h;
    const int threads = pool_threads((double)rows * (double)g.out_w * (double)(g.kh * g.kw));
    NNK_PARALLEL_FOR(threads, rows, r, avg_row(y + r * g.out_w, x + r / g.out_h * g.in_h * g.in_w, &g, r % g.out_h));
}

/* dy / divisor of output (oh, ow) added over its window's in-input part of d (the edge columns). */
static void avg_window_backward(float *d, float dy, const pool_geom *g, size_t h0, size_t h1, size_t ow) {
    size_t w0, w1;
    window_span(ow, g->sw, g->pw, g->kw, g->in_w, &w0, &w1);
    const float v = dy / avg_divisor(g, h0, h1, w0, w1);
    for (size_t ih = h0; ih < h1; ih++)
        for (size_t iw = w0; iw < w1; iw++) d[ih * g->in_w + iw] += v;
}

/* dx of plane p: zeroed, then output row by output row, its edge windows one at a time and its
 * interior windows tap by tap over AVG_TILE columns at once (dy / divisor staged on the stack). */
static void avg_backward_plane(float *d, const float *gy, const pool_geom *g) {
    enum { AVG_TILE = 256 };
    for (size_t i = 0; i < g->in_h * g->in_w; i++) d[i] = 0.0f;
    const size_t lo = g->ow_lo, sw = g->sw;
    for (size_t oh = 0; oh < g->out_h; oh++) {
        size_t h0, h1;
        window_span(oh, g->sh, g->ph, g->kh, g->in_h, &h0, &h1);
        const float *gr = gy + oh * g->out_w;
        for (size_t ow = 0; ow < lo; ow++) avg_window_backward(d, gr[ow], g, h0, h1, ow);
        for (size_t ow = g->ow_hi; ow < g->out_w; ow++) avg_window_backward(d, gr[ow], g, h0, h1, ow);
        const float div = avg_divisor(g, h0, h1, 0, g->kw);
        for (size_t t = lo; t < g->ow_hi; t += AVG_TILE) {
            const size_t n = NNK_MIN((size_t)AVG_TILE, g->ow_hi - t);
            float v[AVG_TILE];
            for (size_t j = 0; j < n; j++) v[j] = gr[t + j] / div;
            for (size_t ih = h0; ih < h1; ih++)
                for (size_t kx = 0; kx < g->kw; kx++) {
                    float *dr = d + ih * g->in_w + t * sw + kx - g->pw;
                    if (sw == 1)
                        add_taps(dr, 1, v, 1, n);
                    else if (sw == 2)
                        add_taps(dr, 2, v, 1, n);
                    else
                        add_taps(dr, sw, v, 1, n);
                }
        }
    }
}

/* dx (planes, in_h, in_w) from dy (planes, out_h, out_w). */
void nnk_avgpool2d_backward(float *dx, const float *dy, const nnk_pool2d_shape *s) {
    const pool_geom g = geom_of(s);
    assert(dx != NULL && dy != NULL);
    const size_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    const int threads = pool_threads((double)g.planes * (double)(in_plane + out_plane * g.kh * g.kw));
    NNK_PARALLEL_FOR(threads, g.planes, p, avg_backward_plane(dx + p * in_plane, dy + p * out_plane, &g));
}
