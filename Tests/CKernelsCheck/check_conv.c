/*
 * 2-D convolution on every ISA path: nnk_conv2d_forward / backward against the direct-loop twins
 * and both against the definition computed here in double (PyTorch's nn.Conv2d formula, written
 * with signed input coordinates, independently of the kernels); every gradient against central
 * differences of L = sum(r (.) act(conv(x, w) + b)) in double; accumulate adds; NULL outputs
 * change nothing else; 1, 3 and 4 threads bitwise; the output-size refusals.
 *
 * Shapes: conv2d.c groups the samples of a layer with few pixels and long patches (K >= 128)
 * into blocks of >= 256 pixels, one GEMM each, and blocks into weight-gradient chunks; the cases
 * cover one sample a block and several, a short last block, one chunk and several, and the 1x1
 * path that reads x in place.
 *
 * Tolerances, for float sums of T terms of magnitude <= 1: 4e-6 (T + 4), as the dense group.
 * T is the patch length Cg kh kw for y and z, batch out_h out_w for dw and db, and
 * Og kh kw for dx. Finite differences (h = 1e-6 in double): 1e-3 absolute plus relative.
 */
#include "check_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINZ(a, b) ((a) < (b) ? (a) : (b))
#define MAXZ(a, b) ((a) > (b) ? (a) : (b))

typedef struct conv_case {
    nnk_conv2d_shape s;
    int bias;
} conv_case;

/* batch, in_c, in_h, in_w, out_c, kh, kw, stride h w, pad h w, dilation h w, groups; bias */
static const conv_case cases[] = {
    {{1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},    /* 1x1 direct, batch 1 */
    {{5, 6, 7, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2}, 0},    /* 1x1 direct, groups 2, batch 5, no bias */
    {{2, 3, 9, 8, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1}, 1},    /* 1x1 stride 2: through im2col */
    {{2, 2, 11, 13, 3, 7, 7, 1, 1, 3, 3, 1, 1, 1}, 1},  /* 7x7, pad 3 */
    {{5, 4, 9, 11, 6, 3, 5, 1, 1, 1, 2, 1, 1, 2}, 1},   /* 3x5, groups 2, batch 5 */
    {{3, 3, 13, 11, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1}, 0},  /* stride 2, no bias */
    {{2, 2, 14, 10, 3, 3, 2, 3, 3, 0, 1, 1, 1, 1}, 1},  /* stride 3, 3x2 */
    {{2, 3, 7, 9, 2, 3, 3, 1, 1, 2, 2, 1, 1, 1}, 1},    /* pad 2 > half of 3 */
    {{1, 5, 5, 4, 5, 3, 3, 2, 1, 3, 2, 1, 1, 5}, 1},    /* depthwise, pad 3: rows all padding */
    {{3, 4, 11, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 4}, 1},   /* dilation 2, depthwise */
    {{2, 4, 12, 10, 6, 3, 3, 1, 2, 1, 1, 2, 1, 2}, 1},  /* dilation (2, 1), stride (1, 2), groups 2 */
    {{3, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},  /* LeNet-sized, K 72, P 196 */
    {{2, 3, 9, 10, 6, 5, 3, 2, 3, 2, 1, 1, 1, 3}, 0},   /* depthwise x2, 5x3, stride (2, 3) */
    {{2, 2, 3, 4, 3, 5, 6, 1, 1, 1, 1, 1, 1, 1}, 1},    /* kernel == padded input: 1x1 output */
    {{5, 16, 8, 7, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16}, 1}, /* depthwise 16: 5 samples in 4 dW chunks */
    {{3, 40, 16, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 40}, 1}, /* depthwise 40: 3 samples in one dW chunk */
    {{5, 16, 5, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},   /* K 144, 30 pixels: one block of 5 */
    {{9, 15, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},   /* K 135, 49 pixels: blocks of 6 and 3 */
    {{5, 32, 6, 5, 8, 3, 3, 2, 1, 1, 0, 1, 1, 2}, 0},   /* K 144, groups 2, stride (2, 1): one block */
    {{4, 128, 5, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},  /* 1x1, K 128, 25 pixels: a block of 4, x copied */
};

typedef struct conv_sizes {
    size_t oh, ow, cg, og, k, p, x, y, w;
} conv_sizes;

static conv_sizes sizes_of(const nnk_conv2d_shape *s) {
    conv_sizes z = {0};
    nnk_conv2d_output_size(s, &z.oh, &z.ow);
    z.cg = s->in_channels / s->groups, z.og = s->out_channels / s->groups;
    z.k = z.cg * s->kernel_h * s->kernel_w, z.p = z.oh * z.ow;
    z.x = s->batch * s->in_channels * s->in_h * s->in_w, z.y = s->batch * s->out_channels * z.p;
    z.w = s->out_channels * z.k;
    return z;
}

/* Input coordinate of output o at tap t, or -1 in the padding (signed, as the formula reads). */
static long in_at(size_t o, size_t stride, size_t t, size_t dilation, size_t pad, size_t in) {
    const long i = (long)(o * stride) - (long)pad + (long)(t * dilation);
    return i >= 0 && i < (long)in ? i : -1;
}

/* zd (y's shape) = conv(xd, wd) + bd in double; bd may be NULL. */
static void conv_d(double *zd, const double *xd, const double *wd, const double *bd, const nnk_conv2d_shape *s) {
    const conv_sizes z = sizes_of(s);
    for (size_t n = 0; n < s->batch; n++)
        for (size_t o = 0; o < s->out_channels; o++)
            for (size_t oh = 0; oh < z.oh; oh++)
                for (size_t ow = 0; ow < z.ow; ow++) {
                    double t = bd ? bd[o] : 0;
                    for (size_t c = 0; c < z.cg; c++) {
                        const size_t ci = o / z.og * z.cg + c;
                        for (size_t ki = 0; ki < s->kernel_h; ki++) {
                            const long ih = in_at(oh, s->stride_h, ki, s->dilation_h, s->pad_h, s->in_h);
                            for (size_t kj = 0; kj < s->kernel_w && ih >= 0; kj++) {
                                const long iw = in_at(ow, s->stride_w, kj, s->dilation_w, s->pad_w, s->in_w);
                                if (iw < 0) continue;
                                t += wd[((o * z.cg + c) * s->kernel_h + ki) * s->kernel_w + kj] *
                                     xd[((n * s->in_channels + ci) * s->in_h + (size_t)ih) * s->in_w + (size_t)iw];
                            }
                        }
                    }
                    zd[((n * s->out_channels + o) * z.oh + oh) * z.ow + ow] = t;
                }
}

/* dw, dx, db in double from dz (float, y's shape): the transposes of conv_d's sums. */
static void conv_grads_d(double *dwd, double *dxd, double *dbd, const float *dz, const float *x, const float *w,
                         const nnk_conv2d_shape *s) {
    const conv_sizes z = sizes_of(s);
    memset(dwd, 0, z.w * sizeof(double)), memset(dxd, 0, z.x * sizeof(double));
    memset(dbd, 0, s->out_channels * sizeof(double));
    for (size_t n = 0; n < s->batch; n++)
        for (size_t o = 0; o < s->out_channels; o++)
            for (size_t oh = 0; oh < z.oh; oh++)
                for (size_t ow = 0; ow < z.ow; ow++) {
                    const double d = dz[((n * s->out_channels + o) * z.oh + oh) * z.ow + ow];
                    dbd[o] += d;
                    for (size_t c = 0; c < z.cg; c++)
                        for (size_t ki = 0; ki < s->kernel_h; ki++) {
                            const long ih = in_at(oh, s->stride_h, ki, s->dilation_h, s->pad_h, s->in_h);
                            for (size_t kj = 0; kj < s->kernel_w && ih >= 0; kj++) {
                                const long iw = in_at(ow, s->stride_w, kj, s->dilation_w, s->pad_w, s->in_w);
                                if (iw < 0) continue;
                                const size_t wi = ((o * z.cg + c) * s->kernel_h + ki) * s->kernel_w + kj;
                                const size_t xi =
                                    ((n * s->in_channels + o / z.og * z.cg + c) * s->in_h + (size_t)ih) * s->in_w + (size_t)iw;
                                dwd[wi] += d * x[xi];
                                dxd[xi] += d * w[wi];
                            }
                        }
                }
}

/* L = sum r act(conv(xd, wd) + bd), in double. zd: scratch of y's length. */
static double loss_d(const double *xd, const double *wd, const double *bd, const float *r, double *zd,
                     const nnk_conv2d_shape *s, nnk_act act, double alpha) {
    conv_d(zd, xd, wd, bd, s);
    const size_t n = sizes_of(s).y;
    double l = 0;
    for (size_t i = 0; i < n; i++) l += r[i] * check_act_d(act, alpha, zd[i]);
    return l;
}

/* Largest |got - want| over n. */
static double max_err_d(const float *got, const double *want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    return worst;
}

static double max_err_f(const float *got, const float *want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    return worst;
}

static double *to_double(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Central difference of L in parameter v[i] (v is xd, wd or bd), h = 1e-6. */
static double central(double *v, size_t i, const double *xd, const double *wd, const double *bd, const float *r,
                      double *zd, const nnk_conv2d_shape *s, nnk_act act, double alpha) {
    const double h = 1e-6, v0 = v[i];
    v[i] = v0 + h;
    const double lp = loss_d(xd, wd, bd, r, zd, s, act, alpha);
    v[i] = v0 - h;
    const double lm = loss_d(xd, wd, bd, r, zd, s, act, alpha);
    v[i] = v0;
    return (lp - lm) / (2 * h);
}

static float alpha_for(nnk_act act) { return act == NNK_ACT_ELU ? 1.0f : 0.1f; }

/* One shape and activation on the active ISA. fd: also the finite differences. */
static void check_case(nnk_check *c, const char *isa, size_t ci, nnk_act act, int fd, check_rng *rng) {
    const nnk_conv2d_shape *s = &cases[ci].s;
    const conv_sizes z = sizes_of(s);
    const float alpha = alpha_for(act);
    const char *an = nnk_act_name(act);
    float *x = check_alloc(z.x), *w = check_alloc(z.w), *b = cases[ci].bias ? check_alloc(s->out_channels) : NULL;
    float *y = check_alloc(z.y), *zz = check_alloc(z.y), *yr = check_alloc(z.y), *zr = check_alloc(z.y);
    float *y2 = check_alloc(z.y), *r = check_alloc(z.y), *dz = check_alloc(z.y), *dzr = check_alloc(z.y);
    float *dx = check_alloc(z.x), *dw = check_alloc(z.w), *db = check_alloc(s->out_channels);
    float *dxr = check_alloc(z.x), *dwr = check_alloc(z.w), *dbr = check_alloc(s->out_channels);
    float *dx2 = check_alloc(z.x), *dw2 = check_alloc(z.w), *db2 = check_alloc(s->out_channels);
    float *dw0 = check_alloc(z.w), *db0 = check_alloc(s->out_channels);
    double *zd = calloc(z.y, sizeof(double)), *dwd = calloc(z.w, sizeof(double));
    double *dxd = calloc(z.x, sizeof(double)), *dbd = calloc(s->out_channels, sizeof(double));
    check_fill(rng, x, z.x, -1, 1), check_fill(rng, w, z.w, -0.5f, 0.5f), check_fill(rng, r, z.y, -1, 1);
    if (b) check_fill(rng, b, s->out_channels, -0.5f, 0.5f);
    check_fill(rng, dw0, z.w, -1, 1), check_fill(rng, db0, s->out_channels, -1, 1);
    const int threads = nnk_get_num_threads();
    const size_t wl = MAXZ(nnk_conv2d_forward_work_size(s, threads), nnk_conv2d_backward_work_size(s, threads));
    float *work = check_alloc(wl);
    const float *zarg = nnk_act_needs_input(act) ? zz : NULL;
    char tag[160];
    snprintf(tag, sizeof tag, "conv[%s] case %zu (%zux%zux%zux%zu -> %zu, k%zux%zu s%zu,%zu p%zu,%zu d%zu,%zu g%zu) %s", isa,
             ci, s->batch, s->in_channels, s->in_h, s->in_w, s->out_channels, s->kernel_h, s->kernel_w, s->stride_h,
             s->stride_w, s->pad_h, s->pad_w, s->dilation_h, s->dilation_w, s->groups, an);

    /* Forward: the kernel, its twin, the definition; z == NULL leaves y as it was. */
    nnk_conv2d_forward(NNK_PRECISION_FP32, y, zz, x, w, b, s, act, alpha, work, wl);
    nnk_conv2d_forward(NNK_PRECISION_FP32, y2, NULL, x, w, b, s, act, alpha, work, wl);
    nnk_conv2d_forward_ref(yr, zr, x, w, b, s, act, alpha);
    double *xd = to_double(x, z.x), *wd = to_double(w, z.w), *bd = b ? to_double(b, s->out_channels) : NULL;
    conv_d(zd, xd, wd, bd, s);
    const double tol_f = 4e-6 * (double)(z.k + 4);
    check_record(c, max_err_d(zz, zd, z.y) <= tol_f, "%s: z off the definition by %g", tag, max_err_d(zz, zd, z.y));
    check_record(c, max_err_d(zr, zd, z.y) <= tol_f, "%s: twin's z off the definition by %g", tag, max_err_d(zr, zd, z.y));
    double worst = 0, worst_r = 0;
    for (size_t i = 0; i < z.y; i++) {
        const double want = check_act_d(act, alpha, zd[i]);
        worst = fmax(worst, fabs(y[i] - want) / (2 * tol_f + 1e-5 * fabs(want)));
        worst_r = fmax(worst_r, fabs(yr[i] - want) / (2 * tol_f + 1e-5 * fabs(want)));
    }
    check_record(c, worst <= 1, "%s: y off the definition (%.2f of the tolerance)", tag, worst);
    check_record(c, worst_r <= 1, "%s: twin's y off the definition (%.2f of the tolerance)", tag, worst_r);
    check_record(c, max_err_f(y, yr, z.y) <= 2 * tol_f, "%s: y off the twin by %g", tag, max_err_f(y, yr, z.y));
    check_record(c, memcmp(y, y2, z.y * sizeof(float)) == 0, "%s: y changes when z is NULL", tag);

    /* Backward, overwriting: dz against the twin's; dw, dx, db against the twin and double. */
    check_fill(rng, dx, z.x, -9, 9), check_fill(rng, dw, z.w, -9, 9), check_fill(rng, db, s->out_channels, -9, 9);
    memcpy(dz, r, z.y * sizeof(float)), memcpy(dzr, r, z.y * sizeof(float));
    nnk_conv2d_backward(NNK_PRECISION_FP32, dx, dw, b ? db : NULL, dz, x, w, zarg, y, s, act, alpha, 0, work, wl);
    nnk_conv2d_backward_ref(dxr, dwr, b ? dbr : NULL, dzr, x, w, nnk_act_needs_input(act) ? zr : NULL, yr, s, act,
                            alpha, 0);
    check_record(c, max_err_f(dz, dzr, z.y) <= 1e-6, "%s: dz off the twin by %g", tag, max_err_f(dz, dzr, z.y));
    conv_grads_d(dwd, dxd, dbd, dzr, x, w, s);
    const double tol_w = 4e-6 * (double)(s->batch * z.p + 4), tol_x = 4e-6 * (double)(z.og * s->kernel_h * s->kernel_w + 4);
    check_record(c, max_err_d(dw, dwd, z.w) <= tol_w, "%s: dw off by %g", tag, max_err_d(dw, dwd, z.w));
    check_record(c, max_err_d(dwr, dwd, z.w) <= tol_w, "%s: twin's dw off by %g", tag, max_err_d(dwr, dwd, z.w));
    check_record(c, max_err_d(dx, dxd, z.x) <= tol_x, "%s: dx off by %g", tag, max_err_d(dx, dxd, z.x));
    check_record(c, max_err_d(dxr, dxd, z.x) <= tol_x, "%s: twin's dx off by %g", tag, max_err_d(dxr, dxd, z.x));
    if (b) {
        check_record(c, max_err_d(db, dbd, s->out_channels) <= tol_w, "%s: db off by %g", tag,
                     max_err_d(db, dbd, s->out_channels));
        check_record(c, max_err_d(dbr, dbd, s->out_channels) <= tol_w, "%s: twin's db off by %g", tag,
                     max_err_d(dbr, dbd, s->out_channels));
    }

    /* Central differences of L at a few x, w and b, against the kernel's gradients. */
    if (fd) {
        double *zs = calloc(z.y, sizeof(double));
        int bad = 0;
        for (int t = 0; t < 12; t++) {
            const int which = t % 3;
            if (which == 2 && !b) continue;
            const size_t len = which == 0 ? z.x : which == 1 ? z.w : s->out_channels;
            const size_t i = (size_t)(check_rng_next(rng) % len);
            double *v = which == 0 ? xd : which == 1 ? wd : bd;
            const double want = central(v, i, xd, wd, bd, r, zs, s, act, alpha);
            const float got = which == 0 ? dx[i] : which == 1 ? dw[i] : db[i];
            bad += !check_record(c, check_close(got, want, 1e-3, 1e-3), "%s: d%s[%zu] = %g, central difference %g", tag,
                                 which == 0 ? "x" : which == 1 ? "w" : "b", i, got, want);
            if (bad > 2) break;
        }
        free(zs);
    }

    /* accumulate = 1 adds to dw and db and leaves dx as without it; NULL outputs change nothing. */
    memcpy(dw2, dw0, z.w * sizeof(float)), memcpy(db2, db0, s->out_channels * sizeof(float));
    memcpy(dz, r, z.y * sizeof(float));
    nnk_conv2d_backward(NNK_PRECISION_FP32, dx2, dw2, db2, dz, x, w, zarg, y, s, act, alpha, 1, work, wl);
    for (size_t i = 0; i < z.w; i++) dwd[i] += dw0[i];
    for (size_t i = 0; i < s->out_channels; i++) dbd[i] += db0[i];
    check_record(c, max_err_d(dw2, dwd, z.w) <= tol_w + 1e-6, "%s: accumulated dw off by %g", tag, max_err_d(dw2, dwd, z.w));
    check_record(c, max_err_d(db2, dbd, s->out_channels) <= tol_w + 1e-6, "%s: accumulated db off by %g", tag,
                 max_err_d(db2, dbd, s->out_channels));
    check_record(c, memcmp(dx2, dx, z.x * sizeof(float)) == 0, "%s: dx changes with accumulate", tag);
    memcpy(dw2, dw0, z.w * sizeof(float)), memcpy(db2, db0, s->out_channels * sizeof(float));
    memcpy(dzr, r, z.y * sizeof(float));
    nnk_conv2d_backward_ref(NULL, dw2, db2, dzr, x, w, nnk_act_needs_input(act) ? zr : NULL, yr, s, act, alpha, 1);
    check_record(c, max_err_d(dw2, dwd, z.w) <= tol_w + 1e-6, "%s: twin's accumulated dw off by %g", tag,
                 max_err_d(dw2, dwd, z.w));
    check_record(c, max_err_d(db2, dbd, s->out_channels) <= tol_w + 1e-6, "%s: twin's accumulated db off by %g", tag,
                 max_err_d(db2, dbd, s->out_channels));
    memcpy(dz, r, z.y * sizeof(float));
    nnk_conv2d_backward(NNK_PRECISION_FP32, NULL, dw2, NULL, dz, x, w, zarg, y, s, act, alpha, 0, work, wl);
    check_record(c, memcmp(dw2, dw, z.w * sizeof(float)) == 0, "%s: dw changes when dx and db are NULL", tag);
    memcpy(dz, r, z.y * sizeof(float));
    nnk_conv2d_backward(NNK_PRECISION_FP32, dx2, NULL, NULL, dz, x, w, zarg, y, s, act, alpha, 0, work, wl);
    check_record(c, memcmp(dx2, dx, z.x * sizeof(float)) == 0, "%s: dx changes when dw and db are NULL", tag);

    check_free(x), check_free(w), check_free(b), check_free(y), check_free(zz), check_free(yr), check_free(zr);
    check_free(y2), check_free(r), check_free(dz), check_free(dzr), check_free(dx), check_free(dw), check_free(db);
    check_free(dxr), check_free(dwr), check_free(dbr), check_free(dx2), check_free(dw2), check_free(db2);
    check_free(dw0), check_free(db0), check_free(work);
    free(zd), free(dwd), free(dxd), free(dbd), free(xd), free(wd), free(bd);
}

/* Every output of one forward + backward, for bitwise comparisons. */
typedef struct conv_run {
    float *y, *z, *dz, *dx, *dw, *db;
} conv_run;

static void run_once(conv_run *o, const nnk_conv2d_shape *s, const float *x, const float *w, const float *b,
                     const float *r, nnk_act act, float *work, size_t wl) {
    const conv_sizes z = sizes_of(s);
    nnk_conv2d_forward(NNK_PRECISION_FP32, o->y, o->z, x, w, b, s, act, 0.1f, work, wl);
    memcpy(o->dz, r, z.y * sizeof(float));
    nnk_conv2d_backward(NNK_PRECISION_FP32, o->dx, o->dw, o->db, o->dz, x, w, o->z, o->y, s, act, 0.1f, 0, work, wl);
}

static int same_run(const conv_run *a, const conv_run *b, const nnk_conv2d_shape *s) {
    const conv_sizes z = sizes_of(s);
    return !memcmp(a->y, b->y, z.y * 4) && !memcmp(a->z, b->z, z.y * 4) && !memcmp(a->dz, b->dz, z.y * 4) &&
           !memcmp(a->dx, b->dx, z.x * 4) && !memcmp(a->dw, b->dw, z.w * 4) && !memcmp(a->db, b->db, s->out_channels * 4);
}

static conv_run run_alloc(const nnk_conv2d_shape *s) {
    const conv_sizes z = sizes_of(s);
    return (conv_run){check_alloc(z.y), check_alloc(z.y), check_alloc(z.y), check_alloc(z.x), check_alloc(z.w),
                      check_alloc(s->out_channels)};
}

static void run_free(conv_run *o) {
    check_free(o->y), check_free(o->z), check_free(o->dz), check_free(o->dx), check_free(o->dw), check_free(o->db);
}

/* 1 thread against 3 and 4 (the samples in parallel, or in order with threaded GEMMs when there
 * are too few), and 4 threads with work for only 1: bitwise. No work at all: the twin's bits. */
static void check_threads(nnk_check *c, const char *isa, check_rng *rng) {
    static const nnk_conv2d_shape shapes[] = {
        {5, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* samples in parallel */
        {1, 16, 20, 20, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* batch 1: threaded GEMMs */
        {2, 16, 20, 20, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* 2 units for 4 threads: threaded GEMMs */
        {5, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 32}, /* depthwise: 2 dW chunks of 2 and 3 samples */
        {3, 32, 20, 20, 48, 1, 1, 1, 1, 0, 0, 1, 1, 4},  /* 1x1 direct, groups 4 */
        {6, 3, 30, 30, 8, 5, 5, 2, 2, 2, 2, 1, 1, 1},    /* 5x5 stride 2 */
        {2, 1, 64, 64, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* 65536 outputs a unit: act after the units */
        {5, 127, 3, 3, 130, 1, 1, 1, 1, 0, 0, 1, 1, 1},  /* 4 x 16510 partial dW: summed on threads */
        {9, 16, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* blocks of 6 and 3 samples in parallel */
    };
    const int saved = nnk_get_num_threads();
    const nnk_act acts[] = {NNK_ACT_GELU_ERF, NNK_ACT_RELU};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const nnk_conv2d_shape *s = &shapes[k];
        const conv_sizes z = sizes_of(s);
        float *x = check_alloc(z.x), *w = check_alloc(z.w), *b = check_alloc(s->out_channels), *r = check_alloc(z.y);
        check_fill(rng, x, z.x, -1, 1), check_fill(rng, w, z.w, -0.5f, 0.5f), check_fill(rng, r, z.y, -1, 1);
        check_fill(rng, b, s->out_channels, -0.5f, 0.5f);
        const size_t wl4 = MAXZ(nnk_conv2d_forward_work_size(s, 4), nnk_conv2d_backward_work_size(s, 4));
        const size_t wl1 = MAXZ(nnk_conv2d_forward_work_size(s, 1), nnk_conv2d_backward_work_size(s, 1));
        check_record(c, wl1 > 0 && wl1 <= wl4, "conv[%s] threads shape %zu: work for 1 thread %zu, for 4 %zu", isa, k,
                     wl1, wl4);
        float *work = check_alloc(wl4);
        conv_run one = run_alloc(s), many = run_alloc(s);
        for (size_t a = 0; a < 2; a++) {
            nnk_set_num_threads(1);
            run_once(&one, s, x, w, b, r, acts[a], work, wl1);
            const int counts[] = {4, 3};
            for (int t = 0; t < 2; t++) {
                nnk_set_num_threads(counts[t]);
                run_once(&many, s, x, w, b, r, acts[a], work, wl4);
                check_record(c, same_run(&one, &many, s), "conv[%s] threads shape %zu %s: 1 vs %d threads differ", isa, k,
                             nnk_act_name(acts[a]), nnk_get_num_threads());
            }
            run_once(&many, s, x, w, b, r, acts[a], work, wl1);
            check_record(c, same_run(&one, &many, s), "conv[%s] threads shape %zu %s: 3 threads, work for 1, differ",
                         isa, k, nnk_act_name(acts[a]));
            /* No work: the twin, bit for bit (its dz, dx, dw, db from the twin's own y and z). */
            if (a > 0) continue; /* the twin is slow; once a shape is enough */
            conv_run ref = run_alloc(s);
            run_once(&many, s, x, w, b, r, acts[a], NULL, 0);
            nnk_conv2d_forward_ref(ref.y, ref.z, x, w, b, s, acts[a], 0.1f);
            memcpy(ref.dz, r, z.y * sizeof(float));
            nnk_conv2d_backward_ref(ref.dx, ref.dw, ref.db, ref.dz, x, w, ref.z, ref.y, s, acts[a], 0.1f, 0);
            check_record(c, same_run(&ref, &many, s), "conv[%s] threads shape %zu %s: no work is not the twin", isa, k,
                         nnk_act_name(acts[a]));
            run_free(&ref);
        }
        nnk_set_num_threads(saved);
        run_free(&one), run_free(&many);
        check_free(x), check_free(w), check_free(b), check_free(r), check_free(work);
    }
}

/* A case worked by hand: x = 1..9 (3x3), w = [[1, 0], [0, -1]], b = 0.5, stride 1: each output
 * is x[i][j] - x[i+1][j+1] + 0.5 = -3.5. With pad 1 and stride 2 the windows start at rows and
 * columns -1 and 1: [0 - 1, 0 - 3; 0 - 7, 5 - 9] + 0.5. */
static void check_by_hand(nnk_check *c) {
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 0, 0, -1}, b[1] = {0.5f};
    float y[4], work[4096];
    nnk_conv2d_shape s = {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1};
    size_t wl = nnk_conv2d_forward_work_size(&s, nnk_get_num_threads());
    check_record(c, wl <= 4096, "conv by hand: work %zu > 4096", wl);
    nnk_conv2d_forward(NNK_PRECISION_FP32, y, NULL, x, w, b, &s, NNK_ACT_IDENTITY, 0, work, MINZ(wl, 4096));
    check_record(c, y[0] == -3.5f && y[1] == -3.5f && y[2] == -3.5f && y[3] == -3.5f,
                 "conv by hand: want -3.5 x4, got [%g %g %g %g]", y[0], y[1], y[2], y[3]);
    s.pad_h = s.pad_w = 1, s.stride_h = s.stride_w = 2;
    wl = nnk_conv2d_forward_work_size(&s, nnk_get_num_threads());
    nnk_conv2d_forward(NNK_PRECISION_FP32, y, NULL, x, w, b, &s, NNK_ACT_IDENTITY, 0, work, MINZ(wl, 4096));
    check_record(c, y[0] == -0.5f && y[1] == -2.5f && y[2] == -6.5f && y[3] == -3.5f,
                 "conv by hand, pad 1 stride 2: want [-0.5 -2.5 -6.5 -3.5], got [%g %g %g %g]", y[0], y[1], y[2], y[3]);
}

/* nnk_conv2d_output_size: PyTorch's formula where it accepts, -1 where it must refuse. */
static void check_output_size(nnk_check *c) {
    static const struct {
        nnk_conv2d_shape s;
        int rc;
        size_t oh, ow;
        const char *what;
    } t[] = {
        {{1, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 0, 28, 28, "28x28 k3 p1"},
        {{1, 1, 7, 9, 1, 3, 5, 2, 3, 0, 0, 1, 1, 1}, 0, 3, 2, "7x9 k3x5 s(2,3)"},
        {{1, 1, 7, 7, 1, 3, 3, 1, 1, 0, 0, 2, 2, 1}, 0, 3, 3, "7x7 k3 d2"},
        {{1, 1, 5, 5, 1, 5, 5, 1, 1, 0, 0, 1, 1, 1}, 0, 1, 1, "kernel == input"},
        {{1, 1, 4, 4, 1, 7, 7, 1, 1, 2, 2, 1, 1, 1}, 0, 2, 2, "k7 on 4 + 2 pad 2"},
        {{1, 1, 3, 3, 1, 1, 1, 1, 1, 5, 5, 1, 1, 1}, 0, 13, 13, "pad 5 on 3x3, k1"},
        {{2, 6, 10, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 3}, 0, 10, 10, "groups 3"},
        {{1, 1, 4, 4, 1, 7, 7, 1, 1, 1, 1, 1, 1, 1}, -1, 0, 0, "k7 larger than 4 + 2 pad 1"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 3, 3, 1}, -1, 0, 0, "dilated k3 d3 (7) larger than 5"},
        {{1, 1, 5, 5, 1, 3, 3, 0, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "stride_h 0"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 0, 0, 0, 1, 1, 1}, -1, 0, 0, "stride_w 0"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 1, 1}, -1, 0, 0, "dilation_h 0"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 1, 0, 1}, -1, 0, 0, "dilation_w 0"},
        {{1, 4, 5, 5, 6, 3, 3, 1, 1, 0, 0, 1, 1, 3}, -1, 0, 0, "in 4 not divisible by groups 3"},
        {{1, 4, 5, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1, 2}, -1, 0, 0, "out 5 not divisible by groups 2"},
        {{1, 4, 5, 5, 4, 3, 3, 1, 1, 0, 0, 1, 1, 0}, -1, 0, 0, "groups 0"},
        {{0, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "batch 0"},
        {{1, 0, 5, 5, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "in_channels 0"},
        {{1, 1, 0, 5, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "in_h 0"},
        {{1, 1, 5, 5, 0, 3, 3, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "out_channels 0"},
        {{1, 1, 5, 5, 1, 0, 3, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "kernel_h 0"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 1, SIZE_MAX / 4 + 1, 0, 1, 1, 1}, -1, 0, 0, "padded height overflows"},
        {{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, SIZE_MAX / 2, 1, 1}, -1, 0, 0, "dilated kernel overflows"},
        {{SIZE_MAX / 8, 4, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "x bytes overflow"},
        {{SIZE_MAX / 2, 1, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "x elements overflow"},
        {{1, 1, 1, 1, SIZE_MAX / 2, 1, 1, 1, 1, 0, 0, 1, 1, 1}, -1, 0, 0, "w (and y) overflow"},
        {{1, 1024, 1, 1, 1, 1, 1, 1, 1, 1u << 25, 1u << 25, 1, 1, 1}, -1, 0, 0, "col (K x P) overflows"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t oh = 12345, ow = 12345;
        const int rc = nnk_conv2d_output_size(&t[i].s, &oh, &ow);
        if (t[i].rc == 0)
            check_record(c, rc == 0 && oh == t[i].oh && ow == t[i].ow, "conv output_size %s: want %zux%zu, got rc %d %zux%zu",
                         t[i].what, t[i].oh, t[i].ow, rc, oh, ow);
        else
            check_record(c, rc == -1 && oh == 12345 && ow == 12345, "conv output_size %s: want -1 and no sizes, got %d", t[i].what, rc);
        if (t[i].rc != 0)
            check_record(c, nnk_conv2d_forward_work_size(&t[i].s, 4) == 0 && nnk_conv2d_backward_work_size(&t[i].s, 4) == 0,
                         "conv work size %s: want 0 for a refused shape", t[i].what);
    }
    /* Large but representable on 64 bits: accepted, sizes from the formula. */
    if (SIZE_MAX > ((size_t)1 << 62)) {
        const nnk_conv2d_shape s = {1, 1, 1, 1, 1, 1, 1, 1, 1, (size_t)1 << 25, (size_t)1 << 25, 1, 1, 1};
        size_t oh = 0, ow = 0;
        check_record(c, nnk_conv2d_output_size(&s, &oh, &ow) == 0 && oh == ((size_t)1 << 26) + 1 && ow == oh,
                     "conv output_size pad 2^25 on 1x1: want accepted, 2^26 + 1 square, got %zux%zu", oh, ow);
    }
    check_record(c, nnk_conv2d_output_size(NULL, NULL, NULL) == -1, "conv output_size NULL shape: want -1");
}

void nnk_check_conv(nnk_check *c) {
    nnk_isa isas[4];
    const int n_isa = check_isas(isas);
    const nnk_isa saved = nnk_isa_active();
    check_output_size(c);
    for (int k = 0; k < n_isa; k++) {
        nnk_set_isa(isas[k]);
        const char *isa = nnk_isa_name(isas[k]);
        check_rng rng = {31 + (uint64_t)k};
        check_by_hand(c);
        /* Every case with identity, relu and one activation that needs z (a different one from
         * case to case), with finite differences; every activation on a few of them. */
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const int with_z = NNK_ACT_LEAKY_RELU + (int)(ci % (NNK_ACT_COUNT_ - NNK_ACT_LEAKY_RELU));
            const int all = ci == 4 || ci == 11 || ci == 18;
            for (int a = 0; a < NNK_ACT_COUNT_; a++) {
                const int fd = a == NNK_ACT_IDENTITY || a == NNK_ACT_RELU || a == with_z;
                if (fd || all) check_case(c, isa, ci, (nnk_act)a, fd, &rng);
            }
        }
        check_threads(c, isa, &rng);
    }
    nnk_set_isa(saved);
}
