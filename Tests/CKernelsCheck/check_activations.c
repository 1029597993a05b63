/*
 * Activations and softmax, on every ISA path this CPU supports, against formulas evaluated in
 * double (here and in check_util.c's check_act_d; written from the definitions, independently
 * of the kernels), and every derivative against central finite differences of those double
 * functions.
 *
 * Tolerances (measured errors are about a third of these or less on every path):
 *   forward       |got - f(x)| <= FWD_RTOL |f(x)| + TINY (1 + |x|)
 *   backward (x)  |got - dy f'(x)| <= BWD_RTOL |dy| T(x) + TINY (1 + |x|), T the sum of the
 *                 magnitudes of the terms of f' (|Phi| + |x phi| for GELU), which is |f'| away from
 *                 the roots of f' (GELU' at -0.75, SiLU' at -1.28), where no float evaluation has
 *                 relative accuracy
 *   backward (y)  identity, sigmoid, tanh, relu: against the formula in y evaluated exactly at
 *                 the float y, YB_RTOL relative (a few roundings)
 * TINY (1 + |x|) admits denormal intermediates, which carry few bits and may be scaled by x;
 * check_denormals holds the exp path itself to its last denormal bit.
 *   [-100, 100]   check_range: forward and backward against the exact values, 1e-5 relative
 *                 wherever those are normal floats (the roots of f' included), 1e-5 FLT_MIN
 *                 absolute where they are denormal or below; the derivatives taken from y
 *                 also get what rounding y to float lost.
 * Softmax: 4 ULP32 relative; log-softmax adds 2e-7 absolute (the log of a sum of float exps).
 * Their backward: against the formula at the float y, 2 ULP32 relative plus 4 ULP32 |p sum(dy)|
 * (p = exp(y) in float for log-softmax); against finite differences, 1e-5 relative + 2e-6.
 */
#include "check_util.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define ULP32 (1.0 / 8388608.0) /* 2^-23, the spacing of floats in [1, 2) */
#define FWD_RTOL (8 * ULP32)     /* ~1e-6 */
#define BWD_RTOL (8 * ULP32)
#define YB_RTOL (3 * ULP32)
#define TINY 0x1p-140 /* 512 x the smallest denormal */

#define PARALLEL_MIN 65536 /* NNK_ELEMWISE_PARALLEL_MIN (CKernels/internal.h): larger n run on threads */

/* ---- the double references ---------------------------------------------------------------- */

/* f(x) is check_act_d (check_util.c), shared with the convolution group. */

/* f'(x), analytically. */
static double df_d(nnk_act act, double a, double x) {
    const double s = check_sigmoid_d(x), sn = check_sigmoid_d(-x);
    switch (act) {
    case NNK_ACT_IDENTITY: return 1;
    case NNK_ACT_SIGMOID: return s * sn;
    case NNK_ACT_TANH: { /* sech^2 x = 4 e^-2|x| / (1 + e^-2|x|)^2 */
        const double e = exp(-2 * fabs(x));
        return 4 * e / ((1 + e) * (1 + e));
    }
    case NNK_ACT_RELU: return x > 0 ? 1 : 0;
    case NNK_ACT_LEAKY_RELU: return x > 0 ? 1 : a;
    case NNK_ACT_ELU: return x > 0 ? 1 : a * exp(x);
    case NNK_ACT_GELU_ERF: return 0.5 * erfc(-x / CHECK_SQRT2) + x * exp(-x * x / 2) / sqrt(2 * CHECK_PI);
    case NNK_ACT_GELU_TANH: {
        const double u2 = check_gelu_2u_d(x), d2u = 2 * sqrt(2 / CHECK_PI) * (1 + 3 * 0.044715 * x * x);
        return check_sigmoid_d(u2) + x * check_sigmoid_d(u2) * check_sigmoid_d(-u2) * d2u;
    }
    case NNK_ACT_SILU: return s + x * s * sn;
    case NNK_ACT_SOFTPLUS: return s;
    default: return NAN;
    }
}

/* The sum of the magnitudes of the terms of f'(x) as written above: |f'| but near a root. */
static double df_terms(nnk_act act, double a, double x) {
    const double s = check_sigmoid_d(x), sn = check_sigmoid_d(-x);
    switch (act) {
    case NNK_ACT_GELU_ERF: return 0.5 * erfc(-x / CHECK_SQRT2) + fabs(x) * exp(-x * x / 2) / sqrt(2 * CHECK_PI);
    case NNK_ACT_GELU_TANH: {
        const double u2 = check_gelu_2u_d(x), d2u = 2 * sqrt(2 / CHECK_PI) * (1 + 3 * 0.044715 * x * x);
        return check_sigmoid_d(u2) + fabs(x) * check_sigmoid_d(u2) * check_sigmoid_d(-u2) * d2u;
    }
    case NNK_ACT_SILU: return s + fabs(x) * s * sn;
    default: return fabs(df_d(act, a, x));
    }
}

/* f' in terms of y = f(x), for the activations that need no input. */
static double dfy_d(nnk_act act, double y) {
    switch (act) {
    case NNK_ACT_SIGMOID: return y * (1 - y);
    case NNK_ACT_TANH: return 1 - y * y;
    case NNK_ACT_RELU: return y > 0 ? 1 : 0;
    default: return 1;
    }
}

/* Central difference of f (order 0) or f' (order 1) at x, step h relative to max(1, |x|). */
static double central_diff(nnk_act act, double a, double x, int order, double h) {
    const double xp = x + h * fmax(1, fabs(x)), xm = x - h * fmax(1, fabs(x));
    if (order == 0) return (check_act_d(act, a, xp) - check_act_d(act, a, xm)) / (xp - xm);
    return (df_d(act, a, xp) - df_d(act, a, xm)) / (xp - xm);
}

static int has_kink_at_0(nnk_act act) {
    return act == NNK_ACT_RELU || act == NNK_ACT_LEAKY_RELU || act == NNK_ACT_ELU;
}

/* alpha for each activation; the ones that take none get 7, which they must ignore. */
static float alpha_for(nnk_act act) {
    return act == NNK_ACT_LEAKY_RELU ? 0.1f : act == NNK_ACT_ELU ? 1.3f : 7.0f;
}

/* ---- inputs ------------------------------------------------------------------------------ */

static const float extremes[] = {
    1e4f, -1e4f, 88.0f, -88.0f, 100.0f, -100.0f, 0.0f, -0.0f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX,
    20.0f, -20.0f, 14.5f, -14.5f, 9.5f, -9.5f, 1e-30f, -1e-30f, 3e-4f, -3e-4f, -0.75f, -1.28f,
};
#define N_EXTREMES (sizeof extremes / sizeof extremes[0])

/* Uniform in [-10, 10], every fifth element (from the third) replaced by an extreme. */
static void fill_inputs(check_rng *r, float *x, size_t n) {
    check_fill(r, x, n, -10.0f, 10.0f);
    for (size_t i = 2; i < n; i += 5) x[i] = extremes[(i / 5) % N_EXTREMES];
}

/* ---- activation checks ------------------------------------------------------------------- */

typedef struct worst { double ratio; size_t at; double got, want; } worst;

static void note(worst *w, size_t i, double got, double want, double tol) {
    const double ratio = (isnan(got) || isinf(got)) ? INFINITY : fabs(got - want) / tol;
    if (ratio > w->ratio || (i == 0 && w->ratio == 0)) *w = (worst){ratio, i, got, want};
}

/* The forward against check_act_d, finiteness, a guard past n, and the in-place call bit for bit. */
static void check_forward(nnk_check *c, const char *isa, nnk_act act, const float *x, size_t n) {
    const float alpha = alpha_for(act);
    float *y = check_alloc(n + 1), *yy = check_alloc(n + 1);
    y[n] = 12345.0f;
    nnk_act_forward(act, alpha, y, x, n);
    worst w = {0};
    for (size_t i = 0; i < n; i++) {
        const double want = check_act_d(act, alpha, x[i]);
        note(&w, i, y[i], want, FWD_RTOL * fabs(want) + TINY * (1 + fabs(x[i])));
    }
    check_record(c, w.ratio <= 1, "act %s %s forward n=%zu: x=%.9g got %.9g want %.9g (%.2f x tol)", isa,
                 nnk_act_name(act), n, n ? x[w.at] : 0.0, w.got, w.want, w.ratio);
    check_record(c, y[n] == 12345.0f, "act %s %s forward n=%zu wrote past n", isa, nnk_act_name(act), n);
    memcpy(yy, x, n * sizeof(float));
    nnk_act_forward(act, alpha, yy, yy, n);
    check_record(c, memcmp(y, yy, n * sizeof(float)) == 0, "act %s %s forward n=%zu in place differs", isa,
                 nnk_act_name(act), n);
    check_free(y);
    check_free(yy);
}

/* The backward against dy f'(x) (or the formula in y), the in-place and x == NULL calls bit for bit. */
static void check_backward(nnk_check *c, check_rng *r, const char *isa, nnk_act act, const float *x, size_t n) {
    const float alpha = alpha_for(act);
    const int from_y = !nnk_act_needs_input(act);
    float *dy = check_alloc(n), *y = check_alloc(n), *dx = check_alloc(n + 1), *dd = check_alloc(n);
    check_fill(r, dy, n, -2.0f, 2.0f);
    for (size_t i = 0; i < n; i++) y[i] = (float)check_act_d(act, alpha, x[i]);
    dx[n] = 12345.0f;
    nnk_act_backward(act, alpha, dx, dy, x, y, n);
    worst w = {0};
    for (size_t i = 0; i < n; i++) {
        const double want = dy[i] * (from_y ? dfy_d(act, y[i]) : df_d(act, alpha, x[i]));
        const double rel = from_y ? YB_RTOL * fabs(want) : BWD_RTOL * fabs(dy[i]) * df_terms(act, alpha, x[i]);
        note(&w, i, dx[i], want, rel + TINY * (1 + fabs(x[i])));
    }
    check_record(c, w.ratio <= 1 && dx[n] == 12345.0f, "act %s %s backward n=%zu: x=%.9g got %.9g want %.9g (%.2f x tol)",
                 isa, nnk_act_name(act), n, n ? x[w.at] : 0.0, w.got, w.want, w.ratio);
    memcpy(dd, dy, n * sizeof(float));
    nnk_act_backward(act, alpha, dd, dd, x, y, n);
    check_record(c, memcmp(dx, dd, n * sizeof(float)) == 0, "act %s %s backward n=%zu in place differs", isa,
                 nnk_act_name(act), n);
    if (from_y) {
        nnk_act_backward(act, alpha, dd, dy, NULL, y, n);
        check_record(c, memcmp(dx, dd, n * sizeof(float)) == 0, "act %s %s backward n=%zu with x == NULL differs",
                     isa, nnk_act_name(act), n);
    }
    check_free(dy); check_free(y); check_free(dx); check_free(dd);
}

/* The kernel's backward against dy times a central difference of check_act_d, on [-3, 3] away from kinks
 * (there, y-based derivatives lose little to the rounding of y). */
static void check_backward_fd(nnk_check *c, check_rng *r, const char *isa, nnk_act act) {
    enum { N = 101 };
    const float alpha = alpha_for(act);
    float x[N], y[N], dy[N], dx[N];
    check_fill(r, x, N, -3.0f, 3.0f);
    check_fill(r, dy, N, -2.0f, 2.0f);
    for (size_t i = 0; i < N; i++) {
        if (has_kink_at_0(act) && fabsf(x[i]) < 1e-3f) x[i] = 0.5f;
        y[i] = (float)check_act_d(act, alpha, x[i]);
    }
    nnk_act_backward(act, alpha, dx, dy, x, y, N);
    worst w = {0};
    for (size_t i = 0; i < N; i++) {
        const double want = dy[i] * central_diff(act, alpha, x[i], 0, 1e-6);
        note(&w, i, dx[i], want, 1e-5 * fabs(dy[i]) * df_terms(act, alpha, x[i]) + 1e-9 * fabs(dy[i]));
    }
    check_record(c, w.ratio <= 1, "act %s %s backward vs finite differences: x=%.9g got %.9g want %.9g (%.2f x tol)",
                 isa, nnk_act_name(act), x[w.at], w.got, w.want, w.ratio);
}

/* The double derivative formulas against central differences of the double functions. */
static void check_formulas_fd(nnk_check *c, nnk_act act) {
    const float alpha = alpha_for(act);
    worst w = {0};
    size_t i = 0;
    for (double x = -10.0; x <= 10.0; x += 0.0625, i++) {
        if (has_kink_at_0(act) && fabs(x) < 1e-3) continue;
        const double want = central_diff(act, alpha, x, 0, 1e-6), got = df_d(act, alpha, x);
        note(&w, i, got, want, 1e-7 * (1 + fabs(want)));
    }
    check_record(c, w.ratio <= 1, "act %s: f' formula vs finite differences at sample %zu: %.12g vs %.12g",
                 nnk_act_name(act), w.at, w.got, w.want);
}

/* Results in the denormal range, where nothing scales the exp: sigmoid and softplus at x <= -88
 * are e^x within one denormal step (plus a few ulp where still normal), and 0 beyond -104. */
static void check_denormals(nnk_check *c, const char *isa) {
    static const float x[] = {-87.0f, -88.0f, -90.0f, -95.0f, -100.0f, -102.0f, -103.5f, -104.5f, -120.0f, -1e4f};
    enum { N = sizeof x / sizeof x[0] };
    const nnk_act acts[] = {NNK_ACT_SIGMOID, NNK_ACT_SOFTPLUS};
    for (int a = 0; a < 2; a++) {
        float y[N];
        nnk_act_forward(acts[a], 0.0f, y, x, N);
        worst w = {0};
        for (size_t i = 0; i < N; i++) {
            const double want = check_act_d(acts[a], 0.0, x[i]);
            note(&w, i, y[i], want, 4 * ULP32 * fabs(want) + 0x1p-149);
        }
        check_record(c, w.ratio <= 1, "act %s %s denormal results: x=%.9g got %.9g want %.9g (%.2f x tol)", isa,
                     nnk_act_name(acts[a]), x[w.at], w.got, w.want, w.ratio);
    }
}

/* ---- [-100, 100] against the exact values ------------------------------------------------ */

#define RANGE_RTOL 1e-5
#define RANGE_MAX_INPUTS (204801 + 9 * 33 + 3 * 129) /* range_inputs: the grid, 9 centers, 3 roots */

/* The float nearest the root of f' in [lo, hi], where f' changes sign once: bisection in double. */
static float derivative_root(nnk_act act, double lo, double hi) {
    const double alpha = alpha_for(act), at_lo = df_d(act, alpha, lo);
    for (int i = 0; i < 80; i++) {
        const double mid = 0.5 * (lo + hi);
        if ((df_d(act, alpha, mid) < 0) == (at_lo < 0)) lo = mid;
        else hi = mid;
    }
    return (float)(0.5 * (lo + hi));
}

/* The floats from `ulps` below v to `ulps` above it, appended at x + n; returns the new n. */
static size_t add_around(float *x, size_t n, float v, int ulps) {
    for (int i = 0; i < ulps; i++) v = nextafterf(v, -INFINITY);
    for (int i = 0; i <= 2 * ulps; i++, v = nextafterf(v, INFINITY)) x[n++] = v;
    return n;
}

/* [-100, 100] in steps of 2^-10; 16 floats either side of -7, -20, -28, -88, -100 and of where
 * float e^x overflows (ln FLT_MAX), turns denormal (ln FLT_MIN), reaches its last denormal
 * (ln 2^-149) and 0 (ln 2^-150, past -100 on purpose); and 64 floats either side of the roots of
 * the SiLU and the two GELU derivatives, where a float evaluation of f' has no relative accuracy
 * left. Returns how many (RANGE_MAX_INPUTS). */
static size_t range_inputs(float *x) {
    static const float centers[] = {-7.0f, -20.0f, -28.0f, -88.0f, -100.0f, 88.7228394f, -87.3365479f,
                                    -103.278931f, -103.972076f};
    size_t n = 0;
    for (int i = -102400; i <= 102400; i++) x[n++] = (float)i / 1024.0f;
    for (size_t k = 0; k < sizeof centers / sizeof centers[0]; k++) n = add_around(x, n, centers[k], 16);
    n = add_around(x, n, derivative_root(NNK_ACT_SILU, -2.0, -1.0), 64);
    n = add_around(x, n, derivative_root(NNK_ACT_GELU_ERF, -1.0, -0.5), 64);
    n = add_around(x, n, derivative_root(NNK_ACT_GELU_TANH, -1.0, -0.5), 64);
    return n;
}

/* Forward and backward on range_inputs against check_act_d and dy df_d at each float x:
 *   |got - want| <= RANGE_RTOL max(|want|, FLT_MIN),
 * 1e-5 relative wherever the exact value is a normal float, and 1e-5 FLT_MIN (~84 denormal steps)
 * absolute where it is denormal or below (so flushing a denormal result to zero fails). The
 * derivatives taken from y (identity, sigmoid, tanh, relu) also get what the rounding of y to
 * float already lost, |dy| |f'(as a function of the float y) - f'(x)|: that part no kernel can
 * recover from y (past 1e-5 for sigmoid' above x = 5.8 and tanh' above |x| = 3.3). dy is +-[0.5, 2). */
static void check_range(nnk_check *c, check_rng *r, const char *isa, nnk_act act, const float *x, size_t n) {
    const float alpha = alpha_for(act);
    const int from_y = !nnk_act_needs_input(act);
    float *y = check_alloc(n), *yk = check_alloc(n), *dy = check_alloc(n), *dx = check_alloc(n);
    for (size_t i = 0; i < n; i++) {
        y[i] = (float)check_act_d(act, alpha, x[i]);
        dy[i] = (i % 2 ? -1.0f : 1.0f) * check_uniform(r, 0.5f, 2.0f);
    }
    nnk_act_forward(act, alpha, yk, x, n);
    nnk_act_backward(act, alpha, dx, dy, x, y, n);
    worst wf = {0}, wb = {0};
    for (size_t i = 0; i < n; i++) {
        const double f = check_act_d(act, alpha, x[i]), d = df_d(act, alpha, x[i]), want = dy[i] * d;
        const double lost = from_y ? fabs(dy[i]) * fabs(dfy_d(act, y[i]) - d) : 0;
        note(&wf, i, yk[i], f, RANGE_RTOL * fmax(fabs(f), FLT_MIN));
        note(&wb, i, dx[i], want, RANGE_RTOL * fmax(fabs(want), FLT_MIN) + lost);
    }
    const double relf = fabs(wf.got - wf.want) / fmax(fabs(wf.want), FLT_MIN);
    const double relb = fabs(wb.got - wb.want) / fmax(fabs(wb.want), FLT_MIN);
    check_record(c, wf.ratio <= 1, "act %s %s forward on [-100, 100]: x=%.9g got %.9g want %.9g, %.3g relative (%.2f x tol)",
                 isa, nnk_act_name(act), x[wf.at], wf.got, wf.want, relf, wf.ratio);
    check_record(c, wb.ratio <= 1, "act %s %s backward on [-100, 100]: x=%.9g dy=%.3g got %.9g want %.9g, %.3g relative (%.2f x tol)",
                 isa, nnk_act_name(act), x[wb.at], dy[wb.at], wb.got, wb.want, relb, wb.ratio);
    check_free(y); check_free(yk); check_free(dy); check_free(dx);
}

/* 1 thread and 2, 3 threads give the same bits, forward and backward, above the parallel cutoff. */
static void check_threads(nnk_check *c, check_rng *r, const char *isa, nnk_act act) {
    const size_t n = PARALLEL_MIN + 34467; /* several chunks and a ragged end */
    const float alpha = alpha_for(act);
    const int saved = nnk_get_num_threads();
    float *x = check_alloc(n), *dy = check_alloc(n), *y1 = check_alloc(n), *d1 = check_alloc(n);
    float *yt = check_alloc(n), *dt = check_alloc(n);
    fill_inputs(r, x, n);
    check_fill(r, dy, n, -2.0f, 2.0f);
    nnk_set_num_threads(1);
    nnk_act_forward(act, alpha, y1, x, n);
    nnk_act_backward(act, alpha, d1, dy, x, y1, n);
    for (int t = 2; t <= 3; t++) {
        nnk_set_num_threads(t);
        nnk_act_forward(act, alpha, yt, x, n);
        nnk_act_backward(act, alpha, dt, dy, x, y1, n);
        check_record(c, memcmp(y1, yt, n * sizeof(float)) == 0 && memcmp(d1, dt, n * sizeof(float)) == 0,
                     "act %s %s: %d threads differ from 1", isa, nnk_act_name(act), t);
    }
    nnk_set_num_threads(saved);
    check_free(x); check_free(dy); check_free(y1); check_free(d1); check_free(yt); check_free(dt);
}

static void check_names(nnk_check *c) {
    for (int a = 0; a < NNK_ACT_COUNT_; a++)
        check_record(c, nnk_act_from_name(nnk_act_name((nnk_act)a)) == a, "act name round trip %d (%s)", a,
                     nnk_act_name((nnk_act)a));
    check_record(c, nnk_act_from_name("gelu") == NNK_ACT_GELU_ERF && nnk_act_from_name("leaky_relu") == NNK_ACT_LEAKY_RELU,
                 "act names: gelu and leaky_relu must parse to their enums");
    check_record(c, nnk_act_from_name("swish") == -1 && nnk_act_from_name("") == -1 && nnk_act_from_name("ReLU") == -1 &&
                     nnk_act_from_name(NULL) == -1,
                 "act names: unknown names must parse to -1");
    check_record(c, strcmp(nnk_act_name(NNK_ACT_COUNT_), "unknown") == 0, "act name of an invalid value");
    for (int a = 0; a < NNK_ACT_COUNT_; a++) {
        const int want = !(a == NNK_ACT_IDENTITY || a == NNK_ACT_SIGMOID || a == NNK_ACT_TANH || a == NNK_ACT_RELU);
        check_record(c, nnk_act_needs_input((nnk_act)a) == want, "act %s needs_input must be %d",
                     nnk_act_name((nnk_act)a), want);
    }
}

static void check_activations_on(nnk_check *c, check_rng *r, const char *isa) {
    static const size_t sizes[] = {0, 1, 7, 15, 16, 17, 31, 33, 257, 1000, PARALLEL_MIN + 4465};
    enum { SWEEP = 4001 };
    float *x = check_alloc(PARALLEL_MIN + 4465), sweep[SWEEP], *range = check_alloc(RANGE_MAX_INPUTS);
    for (size_t i = 0; i < SWEEP; i++) sweep[i] = -20.0f + 40.0f * (float)i / (SWEEP - 1);
    const size_t nrange = range_inputs(range);
    check_record(c, nrange == RANGE_MAX_INPUTS, "act %s: %zu range inputs, %d expected", isa, nrange, RANGE_MAX_INPUTS);
    for (int a = 0; a < NNK_ACT_COUNT_; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            fill_inputs(r, x, sizes[s]);
            check_forward(c, isa, (nnk_act)a, x, sizes[s]);
            check_backward(c, r, isa, (nnk_act)a, x, sizes[s]);
        }
        check_forward(c, isa, (nnk_act)a, sweep, SWEEP);
        check_backward(c, r, isa, (nnk_act)a, sweep, SWEEP);
        check_forward(c, isa, (nnk_act)a, extremes, N_EXTREMES);
        check_backward(c, r, isa, (nnk_act)a, extremes, N_EXTREMES);
        check_range(c, r, isa, (nnk_act)a, range, nrange);
        check_backward_fd(c, r, isa, (nnk_act)a);
        check_threads(c, r, isa, (nnk_act)a);
    }
    check_denormals(c, isa);
    check_free(x);
    check_free(range);
}

/* ---- softmax ----------------------------------------------------------------------------- */

/* softmax (log_form 0) or log-softmax (1) of one row, in double. */
static void softmax_d(double *out, const float *x, size_t cols, int log_form) {
    double m = -INFINITY, sum = 0;
    for (size_t j = 0; j < cols; j++) m = fmax(m, x[j]);
    for (size_t j = 0; j < cols; j++) sum += exp(x[j] - m);
    for (size_t j = 0; j < cols; j++) out[j] = log_form ? (x[j] - m) - log(sum) : exp(x[j] - m) / sum;
}

/* sum_j w_j g(x)_j, g = softmax or log-softmax, x (cols) in double. */
static double softmax_loss_d(const double *x, const float *w, size_t cols, int log_form) {
    double m = -INFINITY, sum = 0, loss = 0;
    for (size_t j = 0; j < cols; j++) m = fmax(m, x[j]);
    for (size_t j = 0; j < cols; j++) sum += exp(x[j] - m);
    for (size_t j = 0; j < cols; j++) loss += w[j] * (log_form ? (x[j] - m) - log(sum) : exp(x[j] - m) / sum);
    return loss;
}

/* Row r of a test matrix: random logits, except row 1 (+-1e4, near ties), row 2 (all equal) and
 * row 3 (around -1e4, spacing 0.01). */
static void fill_logits(check_rng *r, float *x, size_t row, size_t cols) {
    check_fill(r, x, cols, -10.0f, 10.0f);
    for (size_t j = 0; j < cols; j++) {
        if (row == 1) x[j] = j % 2 ? -1e4f : 1e4f - (float)j;
        if (row == 2) x[j] = 3.0f;
        if (row == 3) x[j] = -1e4f + 0.01f * (float)(j % 50);
    }
}

typedef struct shape { size_t rows, cols, ld; } shape;

/* forward vs softmax_d, rows sum to 1, finite, padding untouched, in place bit for bit. */
static void check_softmax_forward(nnk_check *c, const char *isa, const float *x, shape s, int log_form) {
    const char *name = log_form ? "log_softmax" : "softmax";
    const size_t len = s.rows * s.ld;
    float *y = check_alloc(len), *yy = check_alloc(len);
    double *want = malloc(s.cols * sizeof(double));
    for (size_t i = 0; i < len; i++) y[i] = -777.0f;
    (log_form ? nnk_log_softmax_forward : nnk_softmax_forward)(y, s.ld, x, s.ld, s.rows, s.cols);
    worst w = {0};
    double worst_sum = 0;
    int pad_ok = 1;
    for (size_t r = 0; r < s.rows; r++) {
        softmax_d(want, x + r * s.ld, s.cols, log_form);
        double total = 0;
        for (size_t j = 0; j < s.cols; j++) {
            const double got = y[r * s.ld + j];
            note(&w, r * s.ld + j, got, want[j], log_form ? 4 * ULP32 * fabs(want[j]) + 2e-7 : 4 * ULP32 * fabs(want[j]) + TINY);
            total += log_form ? exp(got) : got;
        }
        worst_sum = fmax(worst_sum, fabs(total - 1));
        for (size_t j = s.cols; j < s.ld; j++) pad_ok &= y[r * s.ld + j] == -777.0f;
    }
    check_record(c, w.ratio <= 1, "%s %s %zux%zu ld %zu: [%zu] got %.9g want %.9g (%.2f x tol)", name, isa, s.rows,
                 s.cols, s.ld, w.at, w.got, w.want, w.ratio);
    check_record(c, worst_sum <= 1e-6 && pad_ok, "%s %s %zux%zu: rows sum to 1 within %.3g, padding kept %d", name,
                 isa, s.rows, s.cols, worst_sum, pad_ok);
    memcpy(yy, x, len * sizeof(float));
    (log_form ? nnk_log_softmax_forward : nnk_softmax_forward)(yy, s.ld, yy, s.ld, s.rows, s.cols);
    int same = 1;
    for (size_t r = 0; r < s.rows; r++) same &= memcmp(y + r * s.ld, yy + r * s.ld, s.cols * sizeof(float)) == 0;
    check_record(c, same, "%s %s %zux%zu: in place differs", name, isa, s.rows, s.cols);
    check_free(y); check_free(yy); free(want);
}

/* dx, the backward for dy = w, against central differences of sum(w (.) g(x)) in double. */
static void check_softmax_fd(nnk_check *c, const char *isa, const float *x, const float *w, const float *dx, shape s,
                             int log_form) {
    double *xd = malloc(s.cols * sizeof(double));
    worst wst = {0};
    for (size_t i = 0; i < s.rows; i++) {
        for (size_t j = 0; j < s.cols; j++) xd[j] = x[i * s.ld + j];
        for (size_t k = 0; k < s.cols; k++) {
            const double h = 1e-5, x0 = xd[k]; /* softmax is shift-invariant: h need not grow with x */
            xd[k] = x0 + h;
            const double lp = softmax_loss_d(xd, w + i * s.ld, s.cols, log_form);
            xd[k] = x0 - h;
            const double lm = softmax_loss_d(xd, w + i * s.ld, s.cols, log_form);
            xd[k] = x0;
            const double fd = (lp - lm) / (2 * h);
            note(&wst, i * s.ld + k, dx[i * s.ld + k], fd, 1e-5 * fabs(fd) + 2e-6);
        }
    }
    check_record(c, wst.ratio <= 1, "%s backward %s %zux%zu vs finite differences: [%zu] got %.9g want %.9g (%.2f x tol)",
                 log_form ? "log_softmax" : "softmax", isa, s.rows, s.cols, wst.at, wst.got, wst.want, wst.ratio);
    free(xd);
}

/* backward vs the formula at the float y (every shape) and vs central differences of
 * sum(w (.) g(x)), g = softmax or log-softmax, with dy = w (small shapes); in place bit for bit. */
static void check_softmax_backward(nnk_check *c, check_rng *r, const char *isa, const float *x, shape s, int log_form) {
    const char *name = log_form ? "log_softmax" : "softmax";
    const size_t len = s.rows * s.ld;
    float *y = check_alloc(len), *dy = check_alloc(len), *dx = check_alloc(len), *dd = check_alloc(len);
    check_fill(r, dy, len, -1.0f, 1.0f);
    (log_form ? nnk_log_softmax_forward : nnk_softmax_forward)(y, s.ld, x, s.ld, s.rows, s.cols);
    (log_form ? nnk_log_softmax_backward : nnk_softmax_backward)(dx, dy, y, s.ld, s.rows, s.cols);
    worst w = {0};
    for (size_t i = 0; i < s.rows; i++) {
        const float *yr = y + i * s.ld, *dyr = dy + i * s.ld;
        double sum = 0;
        for (size_t j = 0; j < s.cols; j++) sum += log_form ? dyr[j] : (double)dyr[j] * yr[j];
        for (size_t j = 0; j < s.cols; j++) {
            const double p = log_form ? exp(yr[j]) : yr[j];
            const double want = log_form ? dyr[j] - p * sum : p * (dyr[j] - sum);
            note(&w, i * s.ld + j, dx[i * s.ld + j], want, 2 * ULP32 * fabs(want) + 4 * ULP32 * fabs(p * sum) + TINY);
        }
    }
    check_record(c, w.ratio <= 1, "%s backward %s %zux%zu: [%zu] got %.9g want %.9g (%.2f x tol)", name, isa,
                 s.rows, s.cols, w.at, w.got, w.want, w.ratio);
    if (s.rows * s.cols <= 1000) check_softmax_fd(c, isa, x, dy, dx, s, log_form);
    memcpy(dd, dy, len * sizeof(float));
    (log_form ? nnk_log_softmax_backward : nnk_softmax_backward)(dd, dd, y, s.ld, s.rows, s.cols);
    int same = 1;
    for (size_t i = 0; i < s.rows; i++) same &= memcmp(dx + i * s.ld, dd + i * s.ld, s.cols * sizeof(float)) == 0;
    check_record(c, same, "%s backward %s %zux%zu: in place differs", name, isa, s.rows, s.cols);
    check_free(y); check_free(dy); check_free(dx); check_free(dd);
}

/* 1 thread and 3 threads give the same bits for all four calls on x (s), which is large enough to
 * be split across threads. */
static void check_softmax_threads(nnk_check *c, check_rng *r, const char *isa, const float *x, shape s) {
    const size_t len = s.rows * s.ld;
    const int saved = nnk_get_num_threads();
    float *dy = check_alloc(len), *out[2][4];
    check_fill(r, dy, len, -1.0f, 1.0f);
    for (int t = 0; t < 2; t++) {
        nnk_set_num_threads(t == 0 ? 1 : 3);
        for (int k = 0; k < 4; k++) out[t][k] = check_alloc(len);
        nnk_softmax_forward(out[t][0], s.ld, x, s.ld, s.rows, s.cols);
        nnk_log_softmax_forward(out[t][1], s.ld, x, s.ld, s.rows, s.cols);
        nnk_softmax_backward(out[t][2], dy, out[t][0], s.ld, s.rows, s.cols);
        nnk_log_softmax_backward(out[t][3], dy, out[t][1], s.ld, s.rows, s.cols);
    }
    nnk_set_num_threads(saved);
    int same = 1;
    for (int k = 0; k < 4; k++) {
        same &= memcmp(out[0][k], out[1][k], len * sizeof(float)) == 0;
        check_free(out[0][k]);
        check_free(out[1][k]);
    }
    check_record(c, same, "softmax family %s %zux%zu: 3 threads differ from 1", isa, s.rows, s.cols);
    check_free(dy);
}

static void check_softmax_on(nnk_check *c, check_rng *r, const char *isa) {
    static const shape shapes[] = {{1, 1, 1}, {3, 7, 9}, {4, 16, 16}, {5, 17, 20}, {4, 33, 40}, {6, 1000, 1003}, {70, 1000, 1001}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape sh = shapes[s];
        float *x = check_alloc(sh.rows * sh.ld);
        for (size_t i = 0; i < sh.rows; i++) fill_logits(r, x + i * sh.ld, i, sh.cols);
        for (int log_form = 0; log_form <= 1; log_form++) {
            check_softmax_forward(c, isa, x, sh, log_form);
            check_softmax_backward(c, r, isa, x, sh, log_form);
        }
        if (sh.rows * sh.cols > PARALLEL_MIN) check_softmax_threads(c, r, isa, x, sh);
        check_free(x);
    }
}

void nnk_check_activations(nnk_check *c) {
    const nnk_isa saved = nnk_isa_active();
    nnk_isa isas[4];
    const int nisa = check_isas(isas);
    check_names(c);
    for (int a = 0; a < NNK_ACT_COUNT_; a++) check_formulas_fd(c, (nnk_act)a);
    for (int i = 0; i < nisa; i++) {
        check_rng r = {0x5eed0000u + (uint64_t)i};
        check_record(c, nnk_set_isa(isas[i]) == 0, "act: set_isa(%s)", nnk_isa_name(isas[i]));
        check_activations_on(c, &r, nnk_isa_name(isas[i]));
        check_softmax_on(c, &r, nnk_isa_name(isas[i]));
    }
    nnk_set_isa(saved);
}
