/*
 * 2-D max and average pooling: nnk_pool2d_output_size against hand-worked sizes and PyTorch's
 * refusals; each kernel and its reference twin against a definition evaluated here in double
 * (written from PyTorch's documentation, independently of the kernels), over odd shapes, kernels
 * 1, 2, 3, 7, strides 1 to 3, padding up to half the kernel and both count_include_pad modes;
 * every dx against central differences of the scalar loss sum(w * y); maximum ties, -infinity
 * and NaN windows; 1 thread against 4, bitwise. Pooling has no ISA-specific code (pool2d.c says
 * why), so it runs once, on the active path.
 *
 * Tolerances. Max pooling selects, so its outputs and indices must equal the definition exactly.
 * A float sum (an average's window, a dx element's contributions) may round once per term, so it
 * is held to |got - want| <= (terms + 2) ULP32 sum |term| (terms + 1 where no division rounds).
 * Central differences: 1e-6 (1 + sum |term|), the functions being linear between ties.
 */
#include "check_util.h"

#include <stdio.h>
#include <string.h>

#define ULP32 (1.0 / 8388608.0) /* 2^-23 */

typedef struct pool_case {
    size_t batch, channels, in_h, in_w, kh, kw, sh, sw, ph, pw;
} pool_case;

static const pool_case cases[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* kernel 1 on one pixel */
    {3, 2, 8, 7, 1, 1, 2, 3, 0, 0},  /* kernel 1, strided: a subsample */
    {2, 5, 7, 9, 2, 2, 2, 2, 0, 0},  /* the common 2x2, odd sizes leave a ragged edge */
    {3, 4, 28, 28, 2, 2, 2, 2, 0, 0}, /* the 2x2 fast path on a CNN-sized even plane */
    {1, 5, 7, 9, 2, 2, 2, 2, 1, 1},  /* ... padded: half windows on every edge */
    {2, 1, 11, 13, 3, 3, 1, 1, 1, 1}, /* 3x3 stride 1 "same" */
    {1, 5, 13, 11, 3, 3, 2, 2, 1, 1},
    {2, 5, 10, 9, 3, 3, 3, 3, 0, 1},  /* stride 3, padding on one axis */
    {1, 1, 5, 6, 7, 7, 1, 1, 3, 3},   /* kernel 7 over a smaller input: every window clipped */
    {2, 5, 17, 19, 7, 7, 3, 2, 3, 2},
    {1, 5, 9, 8, 3, 2, 2, 1, 1, 0},   /* non-square kernel and stride */
    {1, 1, 1, 9, 1, 3, 1, 2, 0, 1},   /* one row */
    {1, 2, 6, 1, 3, 1, 1, 1, 1, 0},   /* one column */
};
#define NCASES (sizeof cases / sizeof cases[0])

static nnk_pool2d_shape shape_of(const pool_case *k, int include_pad) {
    return (nnk_pool2d_shape){k->batch, k->channels, k->in_h, k->in_w, k->kh, k->kw, k->sh, k->sw, k->ph, k->pw,
                              include_pad};
}

static size_t in_count(const nnk_pool2d_shape *s) { return s->batch * s->channels * s->in_h * s->in_w; }

/* PyTorch's documented output size, floor((in + 2 pad - kernel) / stride) + 1. */
static void out_dims(const nnk_pool2d_shape *s, size_t *oh, size_t *ow) {
    *oh = (s->in_h + 2 * s->pad_h - s->kernel_h) / s->stride_h + 1;
    *ow = (s->in_w + 2 * s->pad_w - s->kernel_w) / s->stride_w + 1;
}

static size_t out_count(const nnk_pool2d_shape *s) {
    size_t oh, ow;
    out_dims(s, &oh, &ow);
    return s->batch * s->channels * oh * ow;
}

/* ---- the definitions, in double ---------------------------------------------------------- */

/* Calls tap(ctx, o, i) for each in-input tap i (an index into x) of each output o, windows in
 * row-major order: the one loop every definition below is written on. */
typedef void (*tap_fn)(void *ctx, size_t o, size_t i);
static void for_each_tap(const nnk_pool2d_shape *s, size_t plane, tap_fn tap, void *ctx) {
    size_t oh_n, ow_n;
    out_dims(s, &oh_n, &ow_n);
    for (size_t p = 0; p < s->batch * s->channels; p++) {
        if (plane != (size_t)-1 && p != plane) continue;
        for (size_t oh = 0; oh < oh_n; oh++)
            for (size_t ow = 0; ow < ow_n; ow++)
                for (size_t ky = 0; ky < s->kernel_h; ky++)
                    for (size_t kx = 0; kx < s->kernel_w; kx++) {
                        const long h = (long)(oh * s->stride_h + ky) - (long)s->pad_h;
                        const long w = (long)(ow * s->stride_w + kx) - (long)s->pad_w;
                        if (h >= 0 && w >= 0 && h < (long)s->in_h && w < (long)s->in_w)
                            tap(ctx, (p * oh_n + oh) * ow_n + ow, p * s->in_h * s->in_w + (size_t)h * s->in_w + (size_t)w);
                    }
    }
}

/* Max: y[o] the largest tap, at[o] the first tap holding it (strictly greater replaces). */
typedef struct max_ctx { const double *x; double *y; long *at; } max_ctx;
static void max_tap(void *v, size_t o, size_t i) {
    max_ctx *m = v;
    if (m->at[o] < 0 || m->x[i] > m->y[o]) m->y[o] = m->x[i], m->at[o] = (long)i;
}

/* Average: y[o] += x[i] and cnt[o] += 1. */
typedef struct avg_ctx { const double *x; double *y, *cnt, *mag; } avg_ctx;
static void avg_tap(void *v, size_t o, size_t i) {
    avg_ctx *a = v;
    a->y[o] += a->x[i];
    a->cnt[o] += 1;
    if (a->mag) a->mag[o] += fabs(a->x[i]);
}

/* y (outputs) and at (outputs; input index, plane included) of max pooling x (inputs), in double;
 * only plane `plane` when it is not (size_t)-1. */
static void max_def(double *y, long *at, const double *x, const nnk_pool2d_shape *s, size_t plane) {
    for (size_t o = 0; o < out_count(s); o++) y[o] = -INFINITY, at[o] = -1;
    max_ctx m = {x, y, at};
    for_each_tap(s, plane, max_tap, &m);
}

/* y = window means of x in double; cnt (outputs) the divisor; mag (outputs) or NULL gets the sum of |x|. */
static void avg_def(double *y, double *cnt, double *mag, const double *x, const nnk_pool2d_shape *s, size_t plane) {
    const size_t no = out_count(s);
    for (size_t o = 0; o < no; o++) {
        y[o] = 0, cnt[o] = 0;
        if (mag) mag[o] = 0;
    }
    avg_ctx a = {x, y, cnt, mag};
    for_each_tap(s, plane, avg_tap, &a);
    for (size_t o = 0; o < no; o++) {
        if (s->count_include_pad) cnt[o] = (double)(s->kernel_h * s->kernel_w);
        y[o] /= cnt[o];
        if (mag) mag[o] /= cnt[o];
    }
}

/* sum over outputs of plane p of w * pool(x): the scalar loss whose gradient the backward is. */
static double loss_def(int is_max, const double *x, const float *w, const nnk_pool2d_shape *s, size_t p,
                       double *y, double *cnt, long *at) {
    size_t oh, ow;
    out_dims(s, &oh, &ow);
    if (is_max)
        max_def(y, at, x, s, p);
    else
        avg_def(y, cnt, NULL, x, s, p);
    double l = 0;
    for (size_t o = p * oh * ow; o < (p + 1) * oh * ow; o++) l += w[o] * y[o];
    return l;
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* Distinct values 0.01 apart in a random order, centred on 0: no two taps of a window tie, and a
 * step of 1e-3 never changes which tap is the largest. */
static void fill_distinct(check_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)i - (double)n / 2) * 0.01f;
    for (size_t i = n; i > 1; i--) {
        const size_t j = (size_t)(check_rng_next(r) % i);
        const float t = x[i - 1];
        x[i - 1] = x[j], x[j] = t;
    }
}

static double *to_double(const float *x, size_t n) {
    double *d = (double *)check_alloc(2 * n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ---- the checks -------------------------------------------------------------------------- */

typedef struct worst { double ratio; size_t at; double got, want; } worst;

static void note(worst *w, size_t i, double got, double want, double tol) {
    const double ratio = isnan(got) ? INFINITY : fabs(got - want) / tol;
    if (ratio > w->ratio) *w = (worst){ratio, i, got, want};
}

/* dx (inputs) against central differences of loss_def, plane by plane (a tap moves only its own
 * plane's outputs). Average pooling is linear and max pooling is linear between ties, so the
 * differences are exact up to rounding: tolerance (terms + 1) ULP32 sum |w| over the terms. */
static void check_fd(nnk_check *c, const char *name, int is_max, const float *dx, const float *x, const float *w,
                     const nnk_pool2d_shape *s, const double *mag) {
    const size_t ni = in_count(s), no = out_count(s), plane = s->in_h * s->in_w;
    double *xd = to_double(x, ni), *y = (double *)check_alloc(2 * no), *cnt = (double *)check_alloc(2 * no);
    long *at = (long *)check_alloc(2 * no);
    const double h = 1e-3;
    worst wst = {0};
    for (size_t i = 0; i < ni; i++) {
        const size_t p = i / plane;
        xd[i] = x[i] + h;
        const double lp = loss_def(is_max, xd, w, s, p, y, cnt, at);
        xd[i] = x[i] - h;
        const double lm = loss_def(is_max, xd, w, s, p, y, cnt, at);
        xd[i] = x[i];
        note(&wst, i, dx[i], (lp - lm) / (2 * h), 1e-6 * (1 + mag[i]));
    }
    check_record(c, wst.ratio <= 1, "%s: dx[%zu] = %.9g vs finite differences %.9g (%.2f x tol)", name, wst.at,
                 wst.got, wst.want, wst.ratio);
    check_free(xd), check_free(y), check_free(cnt), check_free(at);
}

/* The sum of |contributions| to each dx element of a backward that routes dy[o] / cnt[o] to the
 * taps of output o (all taps for average pooling, the arg-max for max pooling): mag (inputs). */
typedef struct route_ctx { const float *dy; const double *cnt; const long *at; double *dx, *mag, *terms; } route_ctx;
static void route_tap(void *v, size_t o, size_t i) {
    route_ctx *r = v;
    if (r->at && r->at[o] != (long)i) return;
    const double d = r->dy[o] / (r->cnt ? r->cnt[o] : 1.0);
    r->dx[i] += d, r->mag[i] += fabs(d), r->terms[i] += 1;
}

/* The double definition of dx (inputs) and, per element, its sum of |terms| and their count. */
static void backward_def(double *dx, double *mag, double *terms, const float *dy, const double *cnt, const long *at,
                         const nnk_pool2d_shape *s) {
    const size_t ni = in_count(s);
    for (size_t i = 0; i < ni; i++) dx[i] = 0, mag[i] = 0, terms[i] = 0;
    route_ctx r = {dy, cnt, at, dx, mag, terms};
    for_each_tap(s, (size_t)-1, route_tap, &r);
}

/* dx (inputs, then a guard of 777) of a kernel and of its twin, dxs[0] and dxs[1], against the
 * routed definition dxd within (terms + slack) ULP32 mag, and against central differences. */
static void check_dx_pair(nnk_check *c, const char *op, int is_max, const char *label, const float *const dxs[2],
                          const double *dxd, const double *mag, const double *terms, double slack, const float *x,
                          const float *dy, const nnk_pool2d_shape *s) {
    const size_t ni = in_count(s);
    for (int twin = 0; twin < 2; twin++) {
        const float *dx = dxs[twin];
        worst w = {0};
        for (size_t i = 0; i < ni; i++) note(&w, i, dx[i], dxd[i], (terms[i] + slack) * ULP32 * mag[i] + 1e-30);
        char name[160];
        snprintf(name, sizeof name, "%s%s %s", op, twin ? "_ref" : "", label);
        check_record(c, w.ratio <= 1 && dx[ni] == 777.0f, "%s: dx[%zu] %.9g want %.9g (%.2f x tol)", name, w.at, w.got,
                     w.want, w.ratio);
        check_fd(c, name, is_max, dx, x, dy, s, mag);
    }
}

/* One shape of max pooling: kernel and twin against max_def exactly; both backwards against
 * the routed definition and central differences; a guard past each output. */
static void check_max_case(nnk_check *c, check_rng *r, const nnk_pool2d_shape *s, const char *label) {
    const size_t ni = in_count(s), no = out_count(s);
    float *x = check_alloc(ni), *dy = check_alloc(no), *y = check_alloc(no + 1), *yr = check_alloc(no + 1);
    float *dx = check_alloc(ni + 1), *dxr = check_alloc(ni + 1);
    int32_t *am = (int32_t *)check_alloc(no + 1), *amr = (int32_t *)check_alloc(no + 1);
    double *xd, *yd = (double *)check_alloc(2 * no), *dxd = (double *)check_alloc(2 * ni);
    double *mag = (double *)check_alloc(2 * ni), *terms = (double *)check_alloc(2 * ni);
    long *at = (long *)check_alloc(2 * no);
    fill_distinct(r, x, ni);
    check_fill(r, dy, no, -1.0f, 1.0f);
    xd = to_double(x, ni);
    max_def(yd, at, xd, s, (size_t)-1);
    y[no] = yr[no] = 777.0f, am[no] = amr[no] = 777, dx[ni] = dxr[ni] = 777.0f;
    nnk_maxpool2d_forward(y, am, x, s);
    nnk_maxpool2d_forward_ref(yr, amr, x, s);
    const size_t plane = s->in_h * s->in_w, oplane = no / (s->batch * s->channels);
    int ok = 1, ok_ref = 1;
    for (size_t o = 0; o < no; o++) {
        const long want_at = at[o] - (long)(o / oplane * plane);
        ok &= y[o] == yd[o] && am[o] == want_at;
        ok_ref &= yr[o] == yd[o] && amr[o] == want_at;
    }
    check_record(c, ok && y[no] == 777.0f && am[no] == 777, "maxpool %s: forward differs from the definition", label);
    check_record(c, ok_ref && yr[no] == 777.0f && amr[no] == 777, "maxpool_ref %s: forward differs from the definition",
                 label);
    backward_def(dxd, mag, terms, dy, NULL, at, s);
    nnk_maxpool2d_backward(dx, dy, am, s);
    nnk_maxpool2d_backward_ref(dxr, dy, amr, s);
    check_dx_pair(c, "maxpool", 1, label, (const float *const[2]){dx, dxr}, dxd, mag, terms, 1, x, dy, s);
    check_free(x), check_free(dy), check_free(y), check_free(yr), check_free(dx), check_free(dxr);
    check_free(am), check_free(amr), check_free(xd), check_free(yd), check_free(dxd), check_free(mag);
    check_free(terms), check_free(at);
}

/* One shape of average pooling, as check_max_case, with sums held to (taps + 1) ULP32 sum |x| / divisor. */
static void check_avg_case(nnk_check *c, check_rng *r, const nnk_pool2d_shape *s, const char *label) {
    const size_t ni = in_count(s), no = out_count(s);
    float *x = check_alloc(ni), *dy = check_alloc(no), *y = check_alloc(no + 1), *yr = check_alloc(no + 1);
    float *dx = check_alloc(ni + 1), *dxr = check_alloc(ni + 1);
    double *xd, *yd = (double *)check_alloc(2 * no), *cnt = (double *)check_alloc(2 * no);
    double *ymag = (double *)check_alloc(2 * no), *dxd = (double *)check_alloc(2 * ni);
    double *mag = (double *)check_alloc(2 * ni), *terms = (double *)check_alloc(2 * ni);
    check_fill(r, x, ni, -2.0f, 3.0f);
    check_fill(r, dy, no, -1.0f, 1.0f);
    xd = to_double(x, ni);
    avg_def(yd, cnt, ymag, xd, s, (size_t)-1);
    y[no] = yr[no] = 777.0f, dx[ni] = dxr[ni] = 777.0f;
    nnk_avgpool2d_forward(y, x, s);
    nnk_avgpool2d_forward_ref(yr, x, s);
    worst w = {0}, wr = {0};
    for (size_t o = 0; o < no; o++) {
        const double tol = (double)(s->kernel_h * s->kernel_w + 2) * ULP32 * ymag[o] + 1e-30;
        note(&w, o, y[o], yd[o], tol);
        note(&wr, o, yr[o], yd[o], tol);
    }
    check_record(c, w.ratio <= 1 && y[no] == 777.0f, "avgpool %s: y[%zu] %.9g want %.9g (%.2f x tol)", label, w.at,
                 w.got, w.want, w.ratio);
    check_record(c, wr.ratio <= 1 && yr[no] == 777.0f, "avgpool_ref %s: y[%zu] %.9g want %.9g (%.2f x tol)", label,
                 wr.at, wr.got, wr.want, wr.ratio);
    backward_def(dxd, mag, terms, dy, cnt, NULL, s);
    nnk_avgpool2d_backward(dx, dy, s);
    nnk_avgpool2d_backward_ref(dxr, dy, s);
    check_dx_pair(c, "avgpool", 0, label, (const float *const[2]){dx, dxr}, dxd, mag, terms, 2, x, dy, s);
    check_free(x), check_free(dy), check_free(y), check_free(yr), check_free(dx), check_free(dxr);
    check_free(xd), check_free(yd), check_free(cnt), check_free(ymag), check_free(dxd), check_free(mag);
    check_free(terms);
}

/* Output sizes worked by hand (as torch.nn.MaxPool2d reports them) and every refusal. */
static void check_output_size(nnk_check *c) {
    static const struct { size_t in, k, s, p, out; } ok[] = {
        {7, 2, 2, 0, 3}, {224, 3, 2, 1, 112}, {5, 7, 1, 3, 5}, {13, 3, 3, 1, 5}, {1, 1, 1, 0, 1},
        {4, 2, 2, 1, 3}, {10, 3, 3, 0, 3},    {2, 3, 5, 1, 1}, {6, 6, 1, 3, 7},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const nnk_pool2d_shape s = {2, 3, ok[i].in, 9, ok[i].k, 1, ok[i].s, 1, ok[i].p, 0, 1};
        size_t oh = 0, ow = 0;
        const int rc = nnk_pool2d_output_size(&s, &oh, &ow);
        check_record(c, rc == 0 && oh == ok[i].out && ow == 9, "pool2d_output_size in %zu k %zu s %zu p %zu: rc %d, %zu x %zu, want %zu x 9",
                     ok[i].in, ok[i].k, ok[i].s, ok[i].p, rc, oh, ow, ok[i].out);
    }
    const nnk_pool2d_shape base = {2, 3, 8, 8, 3, 3, 2, 2, 1, 1, 1};
    struct { const char *why; nnk_pool2d_shape s; } bad[] = {
        {"batch 0", base}, {"channels 0", base}, {"in_h 0", base},     {"in_w 0", base},
        {"kernel_h 0", base}, {"kernel_w 0", base}, {"stride_h 0", base}, {"stride_w 0", base},
        {"pad_h 2 > 3 / 2", base}, {"pad_w 1 > 1 / 2", base}, {"kernel 6 > padded 2 + 2 * 1", base},
        {"kernel_w 9 > padded 8", base}, {"in_h near SIZE_MAX", base}, {"in_h * in_w > INT32_MAX", base},
        {"batch * channels * plane overflows", base},
    };
    bad[0].s.batch = 0, bad[1].s.channels = 0, bad[2].s.in_h = 0, bad[3].s.in_w = 0;
    bad[4].s.kernel_h = 0, bad[5].s.kernel_w = 0, bad[6].s.stride_h = 0, bad[7].s.stride_w = 0;
    bad[8].s.pad_h = 2, bad[9].s.kernel_w = 1;
    bad[10].s.in_h = 2, bad[10].s.kernel_h = 6, bad[10].s.pad_h = 1;
    bad[11].s.kernel_w = 9, bad[11].s.pad_w = 0;
    bad[12].s.in_h = SIZE_MAX - 1;
    bad[13].s.in_h = 65536, bad[13].s.in_w = 32768;
    bad[14].s.in_h = 4096, bad[14].s.in_w = 4096, bad[14].s.batch = SIZE_MAX / 4096, bad[14].s.channels = 4096;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t oh = 12345, ow = 12345;
        const int rc = nnk_pool2d_output_size(&bad[i].s, &oh, &ow);
        check_record(c, rc == -1 && oh == 12345 && ow == 12345, "pool2d_output_size must refuse %s (rc %d)",
                     bad[i].why, rc);
    }
    nnk_pool2d_shape edge = base;
    edge.in_h = 46341, edge.in_w = 46340; /* 2147441940 <= INT32_MAX: still an index */
    check_record(c, nnk_pool2d_output_size(&edge, NULL, NULL) == 0, "pool2d_output_size: a plane of 2147441940 elements is accepted");
    check_record(c, nnk_pool2d_output_size(NULL, NULL, NULL) == -1, "pool2d_output_size(NULL) must be -1");
}

/* Ties pick the first tap in row-major window order; a window of -infinity still names its
 * first in-input tap; a NaN wins its window. Expected values worked by hand. */
static void check_max_specials(nnk_check *c) {
    /* 3 x 4 plane, 2x2 windows stride 1, no padding: outputs 2 x 3. */
    static const float x[12] = {1, 3, 3, 0,  /* row 0 */
                                3, 2, 3, 3,  /* row 1 */
                                5, 5, 1, 5}; /* row 2 */
    static const int32_t want_at[6] = {1, 1, 2, 8, 9, 11};
    static const float want_y[6] = {3, 3, 3, 5, 5, 5};
    const nnk_pool2d_shape s = {1, 1, 3, 4, 2, 2, 1, 1, 0, 0, 1};
    for (int twin = 0; twin < 2; twin++) {
        float y[6];
        int32_t at[6];
        (twin ? nnk_maxpool2d_forward_ref : nnk_maxpool2d_forward)(y, at, x, &s);
        check_record(c, memcmp(at, want_at, sizeof at) == 0 && memcmp(y, want_y, sizeof y) == 0,
                     "maxpool%s ties: got at {%d %d %d %d %d %d}, want {1 1 2 8 9 11}", twin ? "_ref" : "", at[0], at[1],
                     at[2], at[3], at[4], at[5]);
    }
    /* A constant plane with padding: every window's first in-input tap, (h0, w0). 3x3 windows
     * stride 2 pad 1 over 5x5: outputs 3x3 at starts -1, 1, 3. */
    const nnk_pool2d_shape p = {1, 1, 5, 5, 3, 3, 2, 2, 1, 1, 1};
    float flat[25], ninf[25];
    for (int i = 0; i < 25; i++) flat[i] = 0.25f, ninf[i] = -INFINITY;
    static const int32_t want_first[9] = {0, 1, 3, 5, 6, 8, 15, 16, 18};
    for (int twin = 0; twin < 2; twin++) {
        for (int which = 0; which < 2; which++) {
            float y[9];
            int32_t at[9];
            (twin ? nnk_maxpool2d_forward_ref : nnk_maxpool2d_forward)(y, at, which ? ninf : flat, &p);
            int ok = memcmp(at, want_first, sizeof at) == 0;
            for (int i = 0; i < 9; i++) ok &= y[i] == (which ? -INFINITY : 0.25f);
            check_record(c, ok, "maxpool%s: a %s plane must give each window's first tap (at[4] = %d, want 6)",
                         twin ? "_ref" : "", which ? "-infinity" : "constant", at[4]);
        }
        float nanx[25];
        for (int i = 0; i < 25; i++) nanx[i] = (float)i;
        nanx[6] = NAN, nanx[7] = NAN; /* both in window 4 (rows 1-3, cols 1-3); 6 also in windows 0 and 1 */
        float y[9];
        int32_t at[9];
        (twin ? nnk_maxpool2d_forward_ref : nnk_maxpool2d_forward)(y, at, nanx, &p);
        check_record(c, isnan(y[0]) && at[0] == 6 && isnan(y[1]) && at[1] == 7 && isnan(y[4]) && at[4] == 7 &&
                            y[8] == 24.0f && at[8] == 24,
                     "maxpool%s: NaN must win its window, the last NaN in window order (at %d %d %d)", twin ? "_ref" : "",
                     at[0], at[1], at[4]);
    }
}

/* The same rules on 2x2 stride-2 windows (the kernel's fast path): a tie keeps the first tap, the
 * last NaN in window order wins, a window of -infinity names its first tap. By hand. */
static void check_max_specials_2x2(nnk_check *c) {
    static const float x[8] = {2, 2, NAN, 1,  /* row 0 */
                               2, 1, 5, NAN}; /* row 1 */
    const nnk_pool2d_shape s = {1, 1, 2, 4, 2, 2, 2, 2, 0, 0, 1};
    float ninf[8];
    for (int i = 0; i < 8; i++) ninf[i] = -INFINITY;
    for (int twin = 0; twin < 2; twin++) {
        float y[2];
        int32_t at[2];
        (twin ? nnk_maxpool2d_forward_ref : nnk_maxpool2d_forward)(y, at, x, &s);
        check_record(c, y[0] == 2.0f && at[0] == 0 && isnan(y[1]) && at[1] == 7,
                     "maxpool%s 2x2/2: got y {%g %g} at {%d %d}, want {2 nan} at {0 7}", twin ? "_ref" : "", y[0], y[1],
                     at[0], at[1]);
        (twin ? nnk_maxpool2d_forward_ref : nnk_maxpool2d_forward)(y, at, ninf, &s);
        check_record(c, y[0] == -INFINITY && y[1] == -INFINITY && at[0] == 0 && at[1] == 2,
                     "maxpool%s 2x2/2 of -infinity: at {%d %d}, want {0 2}", twin ? "_ref" : "", at[0], at[1]);
    }
}

/* 1 thread against 4, bitwise, for all four kernels on a shape large enough to be split. */
static void check_threads(nnk_check *c, check_rng *r) {
    const nnk_pool2d_shape shapes[] = {
        {4, 5, 64, 67, 3, 3, 2, 2, 1, 1, 0},
        {1, 3, 129, 131, 2, 2, 1, 1, 1, 0, 1},
    };
    const int saved = nnk_get_num_threads();
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const nnk_pool2d_shape *s = &shapes[k];
        const size_t ni = in_count(s), no = out_count(s);
        float *x = check_alloc(ni), *dy = check_alloc(no), *y[2], *dx[2][2];
        int32_t *am[2];
        check_fill(r, x, ni, -1.0f, 1.0f);
        check_fill(r, dy, no, -1.0f, 1.0f);
        for (int t = 0; t < 2; t++) {
            nnk_set_num_threads(t ? 4 : 1);
            y[t] = check_alloc(2 * no), am[t] = (int32_t *)check_alloc(no);
            dx[t][0] = check_alloc(ni), dx[t][1] = check_alloc(ni);
            nnk_maxpool2d_forward(y[t], am[t], x, s);
            nnk_avgpool2d_forward(y[t] + no, x, s);
            nnk_maxpool2d_backward(dx[t][0], dy, am[t], s);
            nnk_avgpool2d_backward(dx[t][1], dy, s);
        }
        check_record(c,
                     memcmp(y[0], y[1], 2 * no * sizeof(float)) == 0 && memcmp(am[0], am[1], no * sizeof(int32_t)) == 0 &&
                         memcmp(dx[0][0], dx[1][0], ni * sizeof(float)) == 0 &&
                         memcmp(dx[0][1], dx[1][1], ni * sizeof(float)) == 0,
                     "pool2d %zux%zux%zux%zu: 4 threads differ from 1", s->batch, s->channels, s->in_h, s->in_w);
        for (int t = 0; t < 2; t++) check_free(y[t]), check_free(am[t]), check_free(dx[t][0]), check_free(dx[t][1]);
        check_free(x), check_free(dy);
    }
    nnk_set_num_threads(saved);
}

void nnk_check_pool(nnk_check *c) {
    check_rng r = {0x9001u};
    check_output_size(c);
    check_max_specials(c);
    check_max_specials_2x2(c);
    for (size_t k = 0; k < NCASES; k++)
        for (int include_pad = 0; include_pad <= 1; include_pad++) {
            const nnk_pool2d_shape s = shape_of(&cases[k], include_pad);
            char label[128];
            snprintf(label, sizeof label, "%zux%zux%zux%zu k%zux%zu s%zux%zu p%zux%zu pad%s", s.batch, s.channels,
                     s.in_h, s.in_w, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                     include_pad ? "+" : "-");
            check_record(c, nnk_pool2d_output_size(&s, NULL, NULL) == 0, "pool2d_output_size refuses %s", label);
            if (include_pad) check_max_case(c, &r, &s, label); /* max pooling ignores the flag */
            check_avg_case(c, &r, &s, label);
        }
    check_threads(c, &r);
}
