/*
 * Batch and layer normalization, on every ISA path this CPU supports: the kernels and their
 * reference twins against definitions evaluated here in double (two-pass statistics, written from
 * PyTorch's documentation, independently of the kernels); every gradient (dx, dgamma, dbeta)
 * against central differences of the scalar loss sum(w * y) of those definitions, batch
 * statistics included; running statistics against the PyTorch update with the unbiased variance,
 * in double and on a case worked by hand; the refusal of N * S == 1; accumulate, dx == NULL,
 * in-place calls; 1 thread against 4, bitwise. Shapes: odd sizes, a batch of 1, channels 1 and 5,
 * N * S == 2, S == 1 (BatchNorm1d) across more than one channel tile, cols 1 and 1000, and
 * affine on, off, and gamma without beta.
 *
 * Tolerances, relative to the sum of the magnitudes of each result's terms (so that a result
 * near 0 after cancellation is held to the size of what cancelled). The saved statistics are
 * floats, so xhat = (x - mean) invstd carries an error of about ULP32 (|x| + |mean|) invstd, which
 * matters where x sits close to a large mean; X = (|x| + |mean|) invstd stands for |xhat| below:
 *   y       FWD_RTOL (X |gamma| + |beta|)
 *   dx      BWD_RTOL |gamma| invstd (|dy| + mean |dy| + X mean |dy| X)   (layer norm: g = dy gamma for dy)
 *   dgamma  BWD_RTOL sum |dy| X, dbeta BWD_RTOL sum |dy|
 * Finite differences of the double definitions carry about 1e-9 of those terms; the float
 * kernels a few ULP32.
 */
#include "check_util.h"

#include <stdio.h>
#include <string.h>

#define ULP32 (1.0 / 8388608.0) /* 2^-23 */
#define FWD_RTOL (4 * ULP32)
#define BWD_RTOL (4 * ULP32)
#define EPS 1e-5f
#define MOMENTUM 0.1f
#define FD_STEP 1e-4
#define PARALLEL_MIN 65536 /* NNK_ELEMWISE_PARALLEL_MIN (CKernels/internal.h): more values run on threads */

typedef enum affine { AFFINE_OFF, AFFINE_ON, AFFINE_GAMMA_ONLY } affine;
static const char *const affine_name[] = {"affine off", "affine on", "gamma only"};

typedef struct worst { double ratio; size_t at; double got, want; } worst;

static void note(worst *w, size_t i, double got, double want, double tol) {
    const double ratio = isnan(got) ? INFINITY : fabs(got - want) / tol;
    if (ratio > w->ratio) *w = (worst){ratio, i, got, want};
}

/* Records w against tolerance 1 with a message naming what and where. */
static void verdict(nnk_check *c, const worst *w, const char *what, const char *label) {
    check_record(c, w->ratio <= 1, "%s %s: [%zu] got %.9g want %.9g (%.2f x tol)", what, label, w->at, w->got, w->want,
                 w->ratio);
}

static double *dalloc(size_t n) { return (double *)check_alloc(2 * n); }

static int same_bits(const float *a, const float *b, size_t n) { return n == 0 || memcmp(a, b, n * sizeof(float)) == 0; }

/* gamma / beta for an affine mode: random in [0.5, 2] and [-1, 1], or NULL. */
static void fill_affine(check_rng *r, affine a, float *gamma, float *beta, size_t n, const float **g, const float **b) {
    check_fill(r, gamma, n, 0.5f, 2.0f);
    check_fill(r, beta, n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i += 3) gamma[i] = -gamma[i]; /* negative scales too */
    *g = a == AFFINE_OFF ? NULL : gamma;
    *b = a == AFFINE_ON ? beta : NULL;
}

/* ================================ batch norm ================================================ */

typedef struct bn_case { size_t N, C, S; } bn_case;

static const bn_case bn_cases[] = {
    {2, 1, 1}, {1, 5, 2}, {2, 5, 1}, {3, 5, 7}, {4, 1, 9}, {1, 3, 17}, {16, 5, 1}, {7, 70, 1}, {5, 3, 33}, {2, 2, 64},
};

#define BN_AT(n, c, s) (((n) * C + (c)) * S + (s))

/* Mean and biased variance of channel c of x (N, C, S), two passes in double. */
static void bn_stats_def(const double *x, size_t N, size_t C, size_t S, size_t c, double *mean, double *var) {
    double m = 0, v = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t s = 0; s < S; s++) m += x[BN_AT(n, c, s)];
    m /= (double)(N * S);
    for (size_t n = 0; n < N; n++)
        for (size_t s = 0; s < S; s++) v += (x[BN_AT(n, c, s)] - m) * (x[BN_AT(n, c, s)] - m);
    *mean = m, *var = v / (double)(N * S);
}

/* sum over channel c of w * y, y = (x - mean) / sqrt(var + eps) g + b with the batch statistics. */
static double bn_loss_def(const double *x, const float *w, size_t N, size_t C, size_t S, size_t c, double g, double b) {
    double mean, var, l = 0;
    bn_stats_def(x, N, C, S, c, &mean, &var);
    const double invstd = 1 / sqrt(var + EPS);
    for (size_t n = 0; n < N; n++)
        for (size_t s = 0; s < S; s++) l += w[BN_AT(n, c, s)] * ((x[BN_AT(n, c, s)] - mean) * invstd * g + b);
    return l;
}

/* Everything one case needs, allocated once. */
typedef struct bn_bufs {
    float *x, *y, *y2, *dy, *dx, *dx2, *gamma, *beta, *mean, *invstd, *rm, *rv, *rm0, *rv0;
    float *dgamma, *dbeta, *dgamma2, *dbeta2;
    double *xd;
} bn_bufs;

static bn_bufs bn_alloc(size_t n, size_t C) {
    bn_bufs b;
    float **f[] = {&b.x, &b.y, &b.y2, &b.dy, &b.dx, &b.dx2};
    float **p[] = {&b.gamma, &b.beta, &b.mean, &b.invstd, &b.rm, &b.rv, &b.rm0, &b.rv0,
                   &b.dgamma, &b.dbeta, &b.dgamma2, &b.dbeta2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = check_alloc(n + 1);
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) *p[i] = check_alloc(C + 1);
    b.xd = dalloc(n);
    return b;
}

static void bn_free(bn_bufs *b) {
    float *all[] = {b->x, b->y, b->y2, b->dy, b->dx, b->dx2, b->gamma, b->beta, b->mean, b->invstd, b->rm,
                    b->rv, b->rm0, b->rv0, b->dgamma, b->dbeta, b->dgamma2, b->dbeta2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) check_free(all[i]);
    check_free(b->xd);
}

/* x: uniform in [-2, 3] plus a per-channel offset in [-4, 4]; running statistics to update. */
static void bn_fill(check_rng *r, bn_bufs *b, size_t N, size_t C, size_t S) {
    for (size_t c = 0; c < C; c++) {
        const float off = check_uniform(r, -4.0f, 4.0f);
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) b->x[BN_AT(n, c, s)] = check_uniform(r, -2.0f, 3.0f) + off;
    }
    for (size_t i = 0; i < N * C * S; i++) b->xd[i] = b->x[i];
    check_fill(r, b->dy, N * C * S, -1.0f, 1.0f);
    check_fill(r, b->rm0, C, -1.0f, 1.0f);
    check_fill(r, b->rv0, C, 0.5f, 2.0f);
}

typedef int (*bn_train_fn)(float *, float *, float *, float *, float *, const float *, const float *, const float *,
                           size_t, size_t, size_t, float, float);
typedef void (*bn_eval_fn)(float *, const float *, const float *, const float *, const float *, const float *, size_t,
                           size_t, size_t, float);
typedef void (*bn_backward_fn)(float *, float *, float *, const float *, const float *, const float *, const float *,
                               const float *, size_t, size_t, size_t, int);

/* Training forward: y, saved and running statistics against the definitions; the in-place call bit for bit. */
static void bn_check_train(nnk_check *c, bn_train_fn train, bn_bufs *b, const float *g, const float *be, size_t N,
                           size_t C, size_t S, const char *label) {
    const size_t n = N * C * S;
    memcpy(b->rm, b->rm0, C * sizeof(float));
    memcpy(b->rv, b->rv0, C * sizeof(float));
    b->y[n] = b->mean[C] = b->invstd[C] = 777.0f;
    const int rc = train(b->y, b->mean, b->invstd, b->rm, b->rv, b->x, g, be, N, C, S, MOMENTUM, EPS);
    check_record(c, rc == 0 && b->y[n] == 777.0f && b->mean[C] == 777.0f && b->invstd[C] == 777.0f,
                 "batchnorm train %s: rc %d or a write past the end", label, rc);
    worst wy = {0}, wm = {0}, wi = {0}, wrm = {0}, wrv = {0};
    const double count = (double)(N * S);
    for (size_t ch = 0; ch < C; ch++) {
        double mean, var;
        bn_stats_def(b->xd, N, C, S, ch, &mean, &var);
        const double invstd = 1 / sqrt(var + EPS), gc = g ? g[ch] : 1, bc = be ? be[ch] : 0;
        for (size_t k = 0; k < N; k++)
            for (size_t s = 0; s < S; s++) {
                const size_t i = BN_AT(k, ch, s);
                const double want = (b->xd[i] - mean) * invstd * gc + bc;
                note(&wy, i, b->y[i], want, FWD_RTOL * ((fabs(b->xd[i]) + fabs(mean)) * invstd * fabs(gc) + fabs(bc)));
            }
        note(&wm, ch, b->mean[ch], mean, ULP32 * fabs(mean) + 1e-12);
        note(&wi, ch, b->invstd[ch], invstd, 2 * ULP32 * invstd);
        const double rm = (1 - (double)MOMENTUM) * b->rm0[ch] + (double)MOMENTUM * mean;
        const double rv = (1 - (double)MOMENTUM) * b->rv0[ch] + (double)MOMENTUM * var * count / (count - 1);
        note(&wrm, ch, b->rm[ch], rm, 2 * ULP32 * (fabs(b->rm0[ch]) + fabs(mean)) + 1e-12);
        note(&wrv, ch, b->rv[ch], rv, 2 * ULP32 * (b->rv0[ch] + var * count / (count - 1)));
    }
    verdict(c, &wy, "batchnorm train y", label);
    verdict(c, &wm, "batchnorm train save_mean", label);
    verdict(c, &wi, "batchnorm train save_invstd", label);
    verdict(c, &wrm, "batchnorm train running_mean", label);
    verdict(c, &wrv, "batchnorm train running_var (unbiased)", label);
    memcpy(b->y2, b->x, n * sizeof(float));
    memcpy(b->rm, b->rm0, C * sizeof(float));
    memcpy(b->rv, b->rv0, C * sizeof(float));
    train(b->y2, b->dgamma2, b->dbeta2, NULL, NULL, b->y2, g, be, N, C, S, MOMENTUM, EPS);
    check_record(c, same_bits(b->y, b->y2, n) && same_bits(b->mean, b->dgamma2, C) && same_bits(b->invstd, b->dbeta2, C),
                 "batchnorm train %s: in place (or without running statistics) differs", label);
}

/* Eval forward against the definition with the running statistics rv0 / rm0. */
static void bn_check_eval(nnk_check *c, bn_eval_fn eval, bn_bufs *b, const float *g, const float *be, size_t N,
                          size_t C, size_t S, const char *label) {
    const size_t n = N * C * S;
    b->y[n] = 777.0f;
    eval(b->y, b->x, g, be, b->rm0, b->rv0, N, C, S, EPS);
    worst w = {0};
    for (size_t ch = 0; ch < C; ch++) {
        const double invstd = 1 / sqrt((double)b->rv0[ch] + EPS), gc = g ? g[ch] : 1, bc = be ? be[ch] : 0;
        for (size_t k = 0; k < N; k++)
            for (size_t s = 0; s < S; s++) {
                const size_t i = BN_AT(k, ch, s);
                const double want = (b->xd[i] - b->rm0[ch]) * invstd * gc + bc;
                note(&w, i, b->y[i], want, FWD_RTOL * ((fabs(b->xd[i]) + fabs(b->rm0[ch])) * invstd * fabs(gc) + fabs(bc)));
            }
    }
    check_record(c, b->y[n] == 777.0f, "batchnorm eval %s: wrote past the end", label);
    verdict(c, &w, "batchnorm eval y", label);
    memcpy(b->y2, b->x, n * sizeof(float));
    eval(b->y2, b->y2, g, be, b->rm0, b->rv0, N, C, S, EPS);
    check_record(c, same_bits(b->y, b->y2, n), "batchnorm eval %s: in place differs", label);
}

/* Backward (after train filled mean / invstd): dx, dgamma, dbeta against central differences of
 * bn_loss_def; dx == NULL, accumulate and dx == dy bit for bit. */
static void bn_check_backward(nnk_check *c, bn_backward_fn backward, bn_bufs *b, const float *g, const float *be,
                              size_t N, size_t C, size_t S, const char *label) {
    const size_t n = N * C * S;
    const int params = g != NULL;
    float *dg = params ? b->dgamma : NULL, *db = params ? b->dbeta : NULL;
    b->dx[n] = b->dgamma[C] = b->dbeta[C] = 777.0f;
    backward(b->dx, dg, db, b->dy, b->x, b->mean, b->invstd, g, N, C, S, 0);
    check_record(c, b->dx[n] == 777.0f && b->dgamma[C] == 777.0f && b->dbeta[C] == 777.0f,
                 "batchnorm backward %s: wrote past the end", label);
    worst wx = {0}, wg = {0}, wb = {0};
    for (size_t ch = 0; ch < C; ch++) {
        double mean, var, mdy = 0, mdyx = 0, sdyx = 0, sdy = 0;
        bn_stats_def(b->xd, N, C, S, ch, &mean, &var);
        const double invstd = 1 / sqrt(var + EPS), gc = g ? g[ch] : 1, bc = be ? be[ch] : 0;
        for (size_t k = 0; k < N; k++)
            for (size_t s = 0; s < S; s++) {
                const size_t i = BN_AT(k, ch, s);
                mdy += fabs(b->dy[i]), mdyx += fabs(b->dy[i]) * (fabs(b->xd[i]) + fabs(mean)) * invstd;
            }
        sdy = mdy, sdyx = mdyx, mdy /= (double)(N * S), mdyx /= (double)(N * S);
        for (size_t k = 0; k < N; k++)
            for (size_t s = 0; s < S; s++) {
                const size_t i = BN_AT(k, ch, s);
                const double x0 = b->xd[i];
                b->xd[i] = x0 + FD_STEP;
                const double lp = bn_loss_def(b->xd, b->dy, N, C, S, ch, gc, bc);
                b->xd[i] = x0 - FD_STEP;
                const double lm = bn_loss_def(b->xd, b->dy, N, C, S, ch, gc, bc);
                b->xd[i] = x0;
                const double terms = fabs(gc) * invstd * (fabs(b->dy[i]) + mdy + (fabs(x0) + fabs(mean)) * invstd * mdyx);
                note(&wx, i, b->dx[i], (lp - lm) / (2 * FD_STEP), BWD_RTOL * terms + 1e-9);
            }
        if (!params) continue;
        const double h = FD_STEP;
        const double dgamma = (bn_loss_def(b->xd, b->dy, N, C, S, ch, gc + h, bc) -
                               bn_loss_def(b->xd, b->dy, N, C, S, ch, gc - h, bc)) / (2 * h);
        const double dbeta = (bn_loss_def(b->xd, b->dy, N, C, S, ch, gc, bc + h) -
                              bn_loss_def(b->xd, b->dy, N, C, S, ch, gc, bc - h)) / (2 * h);
        note(&wg, ch, b->dgamma[ch], dgamma, BWD_RTOL * sdyx + 1e-9);
        note(&wb, ch, b->dbeta[ch], dbeta, BWD_RTOL * sdy + 1e-9);
    }
    verdict(c, &wx, "batchnorm dx vs finite differences", label);
    if (params) {
        verdict(c, &wg, "batchnorm dgamma vs finite differences", label);
        verdict(c, &wb, "batchnorm dbeta vs finite differences", label);
        /* dx == NULL: the same parameter gradients; accumulate: old + new, in float. */
        backward(NULL, b->dgamma2, b->dbeta2, b->dy, b->x, b->mean, b->invstd, g, N, C, S, 0);
        check_record(c, same_bits(b->dgamma, b->dgamma2, C) && same_bits(b->dbeta, b->dbeta2, C),
                     "batchnorm backward %s: dx == NULL changes dgamma / dbeta", label);
        float acc_g[128], acc_b[128];
        for (size_t ch = 0; ch < C && ch < 128; ch++) {
            acc_g[ch] = b->dgamma2[ch] = 0.25f + (float)ch;
            acc_b[ch] = b->dbeta2[ch] = -1.5f + (float)ch;
        }
        backward(NULL, b->dgamma2, b->dbeta2, b->dy, b->x, b->mean, b->invstd, g, N, C, S, 1);
        int ok = 1;
        for (size_t ch = 0; ch < C && ch < 128; ch++)
            ok &= b->dgamma2[ch] == acc_g[ch] + b->dgamma[ch] && b->dbeta2[ch] == acc_b[ch] + b->dbeta[ch];
        check_record(c, ok, "batchnorm backward %s: accumulate must add this call's sums", label);
    }
    memcpy(b->dx2, b->dy, n * sizeof(float));
    backward(b->dx2, NULL, NULL, b->dx2, b->x, b->mean, b->invstd, g, N, C, S, 0);
    check_record(c, same_bits(b->dx, b->dx2, n), "batchnorm backward %s: dx == dy (in place) differs", label);
}

/* N * S <= 1 is refused before anything is written. */
static void bn_check_refusal(nnk_check *c, bn_train_fn train, const char *name) {
    static const bn_case refused[] = {{1, 3, 1}, {0, 3, 4}, {3, 2, 0}};
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        float y[12], mean[3], invstd[3], rm[3], rv[3], x[12];
        for (int i = 0; i < 12; i++) y[i] = 777.0f, x[i] = (float)i;
        for (int i = 0; i < 3; i++) mean[i] = invstd[i] = rm[i] = rv[i] = 777.0f;
        const int rc = train(y, mean, invstd, rm, rv, x, NULL, NULL, refused[k].N, refused[k].C, refused[k].S, 0.1f, EPS);
        int untouched = 1;
        for (int i = 0; i < 12; i++) untouched &= y[i] == 777.0f;
        for (int i = 0; i < 3; i++) untouched &= mean[i] == 777.0f && invstd[i] == 777.0f && rm[i] == 777.0f && rv[i] == 777.0f;
        check_record(c, rc == -1 && untouched, "%s must refuse N=%zu S=%zu (rc %d) and write nothing", name,
                     refused[k].N, refused[k].S, rc);
    }
}

/* A case worked by hand: x (2, 2, 2), channel 0 holds {1, 2, 3, 6} (mean 3, biased variance 3.5,
 * unbiased 14/3), channel 1 holds -1 four times (variance 0). */
static void bn_check_by_hand(nnk_check *c, bn_train_fn train, const char *name) {
    const float x[8] = {1, 2, -1, -1, 3, 6, -1, -1}, gamma[2] = {2, 1}, beta[2] = {0.5f, -3};
    const double want_y[8] = {-1.638086880891747, -0.5690434404458736, -3, -3, 0.5, 3.7071303213376204, -3, -3};
    const double want_mean[2] = {3, -1}, want_invstd[2] = {0.5345217202229368, 316.2277660168379};
    const double want_rm[2] = {0.9 * 0.5 + 0.1 * 3, 0.9 * 2 + 0.1 * -1}; /* 0.75, 1.7 */
    const double want_rv[2] = {1.3666666666666667, 2.7};                 /* 0.9 + 0.1 * 14/3, 0.9 * 3 */
    float y[8], mean[2], invstd[2], rm[2] = {0.5f, 2.0f}, rv[2] = {1.0f, 3.0f};
    const int rc = train(y, mean, invstd, rm, rv, x, gamma, beta, 2, 2, 2, 0.1f, EPS);
    int ok = rc == 0;
    for (int i = 0; i < 8; i++) ok &= check_close(y[i], want_y[i], 4 * ULP32, 1e-6);
    for (int i = 0; i < 2; i++)
        ok &= check_close(mean[i], want_mean[i], ULP32, 0) && check_close(invstd[i], want_invstd[i], 2 * ULP32, 0) &&
              check_close(rm[i], want_rm[i], 2 * ULP32, 0) && check_close(rv[i], want_rv[i], 2 * ULP32, 0);
    check_record(c, ok, "%s by hand: y %.9g %.9g %.9g, mean %.9g %.9g, running %.9g %.9g / %.9g %.9g", name, y[0],
                 y[1], y[5], mean[0], mean[1], rm[0], rm[1], rv[0], rv[1]);
}

/* The optimized kernels (isa_label) and, when with_ref, the twins, on every case and affine mode. */
static void bn_check_cases(nnk_check *c, check_rng *r, const char *isa, int with_ref) {
    for (size_t k = 0; k < sizeof bn_cases / sizeof bn_cases[0]; k++) {
        const size_t N = bn_cases[k].N, C = bn_cases[k].C, S = bn_cases[k].S;
        bn_bufs b = bn_alloc(N * C * S, C);
        bn_fill(r, &b, N, C, S);
        for (int a = 0; a < 3; a++) {
            const float *g, *be;
            fill_affine(r, (affine)a, b.gamma, b.beta, C, &g, &be);
            for (int twin = 0; twin <= with_ref; twin++) {
                char label[128];
                snprintf(label, sizeof label, "%s N%zu C%zu S%zu %s", twin ? "ref" : isa, N, C, S, affine_name[a]);
                bn_check_train(c, twin ? nnk_batchnorm_forward_train_ref : nnk_batchnorm_forward_train, &b, g, be, N,
                               C, S, label);
                bn_check_backward(c, twin ? nnk_batchnorm_backward_ref : nnk_batchnorm_backward, &b, g, be, N, C, S,
                                  label);
                bn_check_eval(c, twin ? nnk_batchnorm_forward_eval_ref : nnk_batchnorm_forward_eval, &b, g, be, N, C,
                              S, label);
            }
        }
        bn_free(&b);
    }
}

/* Large shapes (split across threads): 1 thread against 4 bitwise, and the kernels against the
 * twins (same tolerances, terms taken from the twin's own statistics). */
static void bn_check_threads(nnk_check *c, check_rng *r, const char *isa) {
    static const bn_case big[] = {{8, 16, 1031}, {1024, 130, 1}};
    const int saved = nnk_get_num_threads();
    for (size_t k = 0; k < 2; k++) {
        const size_t N = big[k].N, C = big[k].C, S = big[k].S, n = N * C * S;
        bn_bufs b = bn_alloc(n, C);
        bn_fill(r, &b, N, C, S);
        const float *g, *be;
        fill_affine(r, AFFINE_ON, b.gamma, b.beta, C, &g, &be);
        float *out[2][3];
        for (int t = 0; t < 2; t++) {
            nnk_set_num_threads(t ? 4 : 1);
            for (int j = 0; j < 3; j++) out[t][j] = check_alloc(n + 2 * C);
            nnk_batchnorm_forward_train(out[t][0], out[t][0] + n, out[t][0] + n + C, NULL, NULL, b.x, g, be, N, C, S,
                                        MOMENTUM, EPS);
            nnk_batchnorm_backward(out[t][1], out[t][1] + n, out[t][1] + n + C, b.dy, b.x, out[t][0] + n,
                                   out[t][0] + n + C, g, N, C, S, 0);
            nnk_batchnorm_forward_eval(out[t][2], b.x, g, be, b.rm0, b.rv0, N, C, S, EPS);
        }
        nnk_set_num_threads(saved);
        int same = 1;
        for (int j = 0; j < 3; j++) same &= same_bits(out[0][j], out[1][j], n + 2 * C);
        check_record(c, same, "batchnorm %s N%zu C%zu S%zu: 4 threads differ from 1", isa, N, C, S);
        /* against the twins */
        nnk_batchnorm_forward_train_ref(b.y, b.mean, b.invstd, NULL, NULL, b.x, g, be, N, C, S, MOMENTUM, EPS);
        nnk_batchnorm_backward_ref(b.dx, b.dgamma, b.dbeta, b.dy, b.x, b.mean, b.invstd, g, N, C, S, 0);
        worst wy = {0}, wx = {0}, wg = {0};
        for (size_t ch = 0; ch < C; ch++) {
            const double m = b.mean[ch], is = b.invstd[ch], gc = g[ch];
            double mdy = 0, mdyx = 0;
            for (size_t q = 0; q < N; q++)
                for (size_t s = 0; s < S; s++) {
                    const size_t i = BN_AT(q, ch, s);
                    mdy += fabs(b.dy[i]), mdyx += fabs(b.dy[i]) * (fabs(b.x[i]) + fabs(m)) * is;
                }
            note(&wg, ch, out[0][1][n + ch], b.dgamma[ch], BWD_RTOL * mdyx + 1e-9);
            mdy /= (double)(N * S), mdyx /= (double)(N * S);
            for (size_t q = 0; q < N; q++)
                for (size_t s = 0; s < S; s++) {
                    const size_t i = BN_AT(q, ch, s);
                    note(&wy, i, out[0][0][i], b.y[i], FWD_RTOL * ((fabs(b.x[i]) + fabs(m)) * is * fabs(gc) + fabs(be[ch])));
                    const double terms = fabs(gc) * is * (fabs(b.dy[i]) + mdy + (fabs(b.x[i]) + fabs(m)) * is * mdyx);
                    note(&wx, i, out[0][1][i], b.dx[i], BWD_RTOL * terms + 1e-9);
                }
        }
        char label[96];
        snprintf(label, sizeof label, "%s N%zu C%zu S%zu vs the twin", isa, N, C, S);
        verdict(c, &wy, "batchnorm train y", label);
        verdict(c, &wx, "batchnorm dx", label);
        verdict(c, &wg, "batchnorm dgamma", label);
        for (int t = 0; t < 2; t++)
            for (int j = 0; j < 3; j++) check_free(out[t][j]);
        bn_free(&b);
    }
}

/* ================================ layer norm ================================================ */

typedef struct ln_case { size_t rows, cols; } ln_case;

static const ln_case ln_cases[] = {{1, 1}, {3, 1}, {1, 1000}, {2, 1000}, {5, 17}, {4, 8}, {2, 33}, {7, 3}, {3, 300}};

/* Mean and biased variance of x (n), two passes in double. */
static void ln_stats_def(const double *x, size_t n, double *mean, double *var) {
    double m = 0, v = 0;
    for (size_t j = 0; j < n; j++) m += x[j];
    m /= (double)n;
    for (size_t j = 0; j < n; j++) v += (x[j] - m) * (x[j] - m);
    *mean = m, *var = v / (double)n;
}

/* sum over the row of w * y, y = (x - mean) / sqrt(var + eps) gamma + beta (gamma (n) or NULL, beta (n)). */
static double ln_loss_row(const double *x, const float *w, const double *gamma, const double *beta, size_t n) {
    double mean, var, l = 0;
    ln_stats_def(x, n, &mean, &var);
    const double invstd = 1 / sqrt(var + EPS);
    for (size_t j = 0; j < n; j++) l += w[j] * ((x[j] - mean) * invstd * (gamma ? gamma[j] : 1) + beta[j]);
    return l;
}

typedef void (*ln_forward_fn)(float *, float *, float *, const float *, const float *, const float *, size_t, size_t,
                              float);
typedef void (*ln_backward_fn)(float *, float *, float *, const float *, const float *, const float *, const float *,
                               const float *, size_t, size_t, int);

/* One case of one implementation: forward against the definition, in place bit for bit; backward
 * against central differences; dx == NULL, accumulate, dx == dy. */
static void ln_check_case(nnk_check *c, check_rng *r, ln_forward_fn fwd, ln_backward_fn bwd, size_t rows, size_t cols,
                          affine a, const char *label) {
    const size_t n = rows * cols;
    float *x = check_alloc(n), *y = check_alloc(n + 1), *y2 = check_alloc(n), *dy = check_alloc(n);
    float *dx = check_alloc(n + 1), *dx2 = check_alloc(n), *mean = check_alloc(rows + 1), *invstd = check_alloc(rows + 1);
    float *gamma = check_alloc(cols), *beta = check_alloc(cols), *dg = check_alloc(cols + 1), *db = check_alloc(cols + 1);
    float *dg2 = check_alloc(cols), *db2 = check_alloc(cols), *acc_g = check_alloc(cols), *acc_b = check_alloc(cols);
    double *xd = dalloc(n), *gd = dalloc(cols), *bd = dalloc(cols);
    for (size_t i = 0; i < rows; i++) {
        const float off = check_uniform(r, -4.0f, 4.0f);
        for (size_t j = 0; j < cols; j++) x[i * cols + j] = check_uniform(r, -2.0f, 3.0f) + off;
    }
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    check_fill(r, dy, n, -1.0f, 1.0f);
    const float *g, *be;
    fill_affine(r, a, gamma, beta, cols, &g, &be);
    for (size_t j = 0; j < cols; j++) gd[j] = gamma[j], bd[j] = be ? beta[j] : 0; /* no beta: beta = 0 */
    const double *gdp = g ? gd : NULL;

    y[n] = mean[rows] = invstd[rows] = 777.0f;
    fwd(y, mean, invstd, x, g, be, rows, cols, EPS);
    worst wy = {0}, wm = {0}, wi = {0};
    for (size_t i = 0; i < rows; i++) {
        double m, var;
        ln_stats_def(xd + i * cols, cols, &m, &var);
        const double is = 1 / sqrt(var + EPS);
        for (size_t j = 0; j < cols; j++) {
            const double gj = g ? gamma[j] : 1, bj = be ? beta[j] : 0, xv = xd[i * cols + j];
            note(&wy, i * cols + j, y[i * cols + j], (xv - m) * is * gj + bj,
                 FWD_RTOL * ((fabs(xv) + fabs(m)) * is * fabs(gj) + fabs(bj)));
        }
        note(&wm, i, mean[i], m, ULP32 * fabs(m) + 1e-12);
        note(&wi, i, invstd[i], is, 2 * ULP32 * is);
    }
    check_record(c, y[n] == 777.0f && mean[rows] == 777.0f && invstd[rows] == 777.0f,
                 "layernorm %s: wrote past the end", label);
    verdict(c, &wy, "layernorm y", label);
    verdict(c, &wm, "layernorm save_mean", label);
    verdict(c, &wi, "layernorm save_invstd", label);
    memcpy(y2, x, n * sizeof(float));
    fwd(y2, NULL, NULL, y2, g, be, rows, cols, EPS);
    check_record(c, same_bits(y, y2, n), "layernorm %s: in place (or without saved statistics) differs", label);

    const int params = g != NULL;
    dx[n] = dg[cols] = db[cols] = 777.0f;
    bwd(dx, params ? dg : NULL, params ? db : NULL, dy, x, mean, invstd, g, rows, cols, 0);
    check_record(c, dx[n] == 777.0f && dg[cols] == 777.0f && db[cols] == 777.0f, "layernorm backward %s: wrote past the end",
                 label);
    worst wx = {0}, wg = {0}, wb = {0};
    for (size_t i = 0; i < rows; i++) {
        double m, var, mg = 0, mgx = 0;
        double *xr = xd + i * cols;
        ln_stats_def(xr, cols, &m, &var);
        const double is = 1 / sqrt(var + EPS);
        for (size_t j = 0; j < cols; j++) {
            const double gj = dy[i * cols + j] * (g ? gamma[j] : 1);
            mg += fabs(gj), mgx += fabs(gj) * (fabs(xr[j]) + fabs(m)) * is;
        }
        mg /= (double)cols, mgx /= (double)cols;
        for (size_t j = 0; j < cols; j++) {
            const double x0 = xr[j];
            xr[j] = x0 + FD_STEP;
            const double lp = ln_loss_row(xr, dy + i * cols, gdp, bd, cols);
            xr[j] = x0 - FD_STEP;
            const double lm = ln_loss_row(xr, dy + i * cols, gdp, bd, cols);
            xr[j] = x0;
            const double gj = fabs(dy[i * cols + j] * (g ? gamma[j] : 1));
            note(&wx, i * cols + j, dx[i * cols + j], (lp - lm) / (2 * FD_STEP),
                 BWD_RTOL * is * (gj + mg + (fabs(x0) + fabs(m)) * is * mgx) + 1e-9);
        }
    }
    verdict(c, &wx, "layernorm dx vs finite differences", label);
    if (params) {
        for (size_t j = 0; j < cols; j++) {
            double sg = 0, sb = 0, lg[2], lb[2];
            for (int side = 0; side < 2; side++) {
                const double h = side ? -FD_STEP : FD_STEP, g0 = gd[j], b0 = bd[j];
                lg[side] = lb[side] = 0;
                gd[j] = g0 + h;
                for (size_t i = 0; i < rows; i++) lg[side] += ln_loss_row(xd + i * cols, dy + i * cols, gd, bd, cols);
                gd[j] = g0, bd[j] = b0 + h;
                for (size_t i = 0; i < rows; i++) lb[side] += ln_loss_row(xd + i * cols, dy + i * cols, gd, bd, cols);
                bd[j] = b0;
            }
            for (size_t i = 0; i < rows; i++) {
                double m, var;
                ln_stats_def(xd + i * cols, cols, &m, &var);
                sg += fabs(dy[i * cols + j]) * (fabs(xd[i * cols + j]) + fabs(m)) / sqrt(var + EPS);
                sb += fabs(dy[i * cols + j]);
            }
            note(&wg, j, dg[j], (lg[0] - lg[1]) / (2 * FD_STEP), BWD_RTOL * sg + 1e-9);
            note(&wb, j, db[j], (lb[0] - lb[1]) / (2 * FD_STEP), BWD_RTOL * sb + 1e-9);
        }
        verdict(c, &wg, "layernorm dgamma vs finite differences", label);
        verdict(c, &wb, "layernorm dbeta vs finite differences", label);
        bwd(NULL, dg2, db2, dy, x, mean, invstd, g, rows, cols, 0);
        check_record(c, same_bits(dg, dg2, cols) && same_bits(db, db2, cols),
                     "layernorm backward %s: dx == NULL changes dgamma / dbeta", label);
        check_fill(r, acc_g, cols, -1.0f, 1.0f);
        check_fill(r, acc_b, cols, -1.0f, 1.0f);
        memcpy(dg2, acc_g, cols * sizeof(float));
        memcpy(db2, acc_b, cols * sizeof(float));
        bwd(NULL, dg2, db2, dy, x, mean, invstd, g, rows, cols, 1);
        int ok = 1;
        for (size_t j = 0; j < cols; j++) ok &= dg2[j] == acc_g[j] + dg[j] && db2[j] == acc_b[j] + db[j];
        check_record(c, ok, "layernorm backward %s: accumulate must add this call's sums", label);
    }
    memcpy(dx2, dy, n * sizeof(float));
    memcpy(dg2, dg, cols * sizeof(float));
    bwd(dx2, params ? dg2 : NULL, NULL, dx2, x, mean, invstd, g, rows, cols, 0);
    check_record(c, same_bits(dx, dx2, n) && (!params || same_bits(dg, dg2, cols)),
                 "layernorm backward %s: dx == dy (in place) differs", label);
    float *all[] = {x, y, y2, dy, dx, dx2, mean, invstd, gamma, beta, dg, db, dg2, db2, acc_g, acc_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) check_free(all[i]);
    check_free(xd), check_free(gd), check_free(bd);
}

static void ln_check_cases(nnk_check *c, check_rng *r, const char *isa, int with_ref) {
    for (size_t k = 0; k < sizeof ln_cases / sizeof ln_cases[0]; k++)
        for (int a = 0; a < 3; a++)
            for (int twin = 0; twin <= with_ref; twin++) {
                char label[128];
                snprintf(label, sizeof label, "%s %zux%zu %s", twin ? "ref" : isa, ln_cases[k].rows, ln_cases[k].cols,
                         affine_name[a]);
                ln_check_case(c, r, twin ? nnk_layernorm_forward_ref : nnk_layernorm_forward,
                              twin ? nnk_layernorm_backward_ref : nnk_layernorm_backward, ln_cases[k].rows,
                              ln_cases[k].cols, (affine)a, label);
            }
}

/* Large shapes: 1 thread against 4 bitwise, and against the twins. */
static void ln_check_threads(nnk_check *c, check_rng *r, const char *isa) {
    static const ln_case big[] = {{130, 1000}, {600, 129}};
    const int saved = nnk_get_num_threads();
    for (size_t k = 0; k < 2; k++) {
        const size_t rows = big[k].rows, cols = big[k].cols, n = rows * cols;
        float *x = check_alloc(n), *dy = check_alloc(n), *gamma = check_alloc(cols), *beta = check_alloc(cols);
        float *ref = check_alloc(2 * n + 2 * rows + 2 * cols), *out[2];
        for (size_t i = 0; i < n; i++) x[i] = check_uniform(r, -2.0f, 3.0f) + (float)(i / cols % 7);
        check_fill(r, dy, n, -1.0f, 1.0f);
        const float *g, *be;
        fill_affine(r, AFFINE_ON, gamma, beta, cols, &g, &be);
        for (int t = 0; t < 2; t++) {
            nnk_set_num_threads(t ? 4 : 1);
            float *o = out[t] = check_alloc(2 * n + 2 * rows + 2 * cols);
            nnk_layernorm_forward(o, o + 2 * n, o + 2 * n + rows, x, g, be, rows, cols, EPS);
            nnk_layernorm_backward(o + n, o + 2 * n + 2 * rows, o + 2 * n + 2 * rows + cols, dy, x, o + 2 * n,
                                   o + 2 * n + rows, g, rows, cols, 0);
        }
        nnk_set_num_threads(saved);
        check_record(c, same_bits(out[0], out[1], 2 * n + 2 * rows + 2 * cols),
                     "layernorm %s %zux%zu: 4 threads differ from 1", isa, rows, cols);
        nnk_layernorm_forward_ref(ref, ref + 2 * n, ref + 2 * n + rows, x, g, be, rows, cols, EPS);
        nnk_layernorm_backward_ref(ref + n, ref + 2 * n + 2 * rows, ref + 2 * n + 2 * rows + cols, dy, x, ref + 2 * n,
                                   ref + 2 * n + rows, g, rows, cols, 0);
        worst wy = {0}, wx = {0}, wg = {0};
        const float *o = out[0];
        for (size_t i = 0; i < rows; i++) {
            const double m = ref[2 * n + i], is = ref[2 * n + rows + i];
            double mg = 0, mgx = 0;
            for (size_t j = 0; j < cols; j++) {
                const double gj = dy[i * cols + j] * gamma[j];
                mg += fabs(gj), mgx += fabs(gj) * (fabs(x[i * cols + j]) + fabs(m)) * is;
            }
            mg /= (double)cols, mgx /= (double)cols;
            for (size_t j = 0; j < cols; j++) {
                const size_t e = i * cols + j;
                note(&wy, e, o[e], ref[e], FWD_RTOL * ((fabs(x[e]) + fabs(m)) * is * fabs(gamma[j]) + fabs(beta[j])));
                note(&wx, e, o[n + e], ref[n + e],
                     BWD_RTOL * is * (fabs(dy[e] * gamma[j]) + mg + (fabs(x[e]) + fabs(m)) * is * mgx) + 1e-9);
            }
        }
        for (size_t j = 0; j < cols; j++) {
            double sg = 0;
            for (size_t i = 0; i < rows; i++)
                sg += fabs(dy[i * cols + j]) * (fabs(x[i * cols + j]) + fabs(ref[2 * n + i])) * ref[2 * n + rows + i];
            note(&wg, j, o[2 * n + 2 * rows + j], ref[2 * n + 2 * rows + j], BWD_RTOL * sg + 1e-9);
        }
        char label[96];
        snprintf(label, sizeof label, "%s %zux%zu vs the twin", isa, rows, cols);
        verdict(c, &wy, "layernorm y", label);
        verdict(c, &wx, "layernorm dx", label);
        verdict(c, &wg, "layernorm dgamma", label);
        check_free(x), check_free(dy), check_free(gamma), check_free(beta), check_free(ref);
        check_free(out[0]), check_free(out[1]);
    }
}

void nnk_check_norm(nnk_check *c) {
    const nnk_isa saved = nnk_isa_active();
    nnk_isa isas[4];
    const int nisa = check_isas(isas);
    bn_check_refusal(c, nnk_batchnorm_forward_train_ref, "batchnorm_forward_train_ref");
    bn_check_by_hand(c, nnk_batchnorm_forward_train_ref, "batchnorm_forward_train_ref");
    for (int i = 0; i < nisa; i++) {
        check_rng r = {0x40e0u + (uint64_t)i};
        const char *isa = nnk_isa_name(isas[i]);
        check_record(c, nnk_set_isa(isas[i]) == 0, "norm: set_isa(%s)", isa);
        bn_check_refusal(c, nnk_batchnorm_forward_train, isa);
        bn_check_by_hand(c, nnk_batchnorm_forward_train, isa);
        bn_check_cases(c, &r, isa, i == 0); /* the twins do not depend on the path: once */
        bn_check_threads(c, &r, isa);
        ln_check_cases(c, &r, isa, i == 0);
        ln_check_threads(c, &r, isa);
    }
    nnk_set_isa(saved);
}
