/*
 * Losses: values against double references written here from PyTorch's definitions (MSELoss,
 * L1Loss, HuberLoss, CrossEntropyLoss with label_smoothing, BCEWithLogitsLoss, all with
 * reduction='mean'), gradients against central finite differences of those references,
 * hand-computed cases, logits of +-1e4, and soft one-hot targets against class indices.
 */
#include "check_util.h"

#include <stdio.h>
#include <string.h>

typedef enum loss_kind { L_MSE, L_MAE, L_HUBER, L_BCE, L_CE_INDEX, L_CE_SOFT, L_COUNT } loss_kind;

static const char *const loss_names[L_COUNT] = {"mse", "mae", "huber", "bce_logits", "ce_index", "ce_soft"};

/* log(1 + e^z) in double without overflow: -log(sigmoid(-z)). */
static double softplus(double z) { return z > 0.0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* One element's loss term, from the textbook definitions. */
static double ref_term(loss_kind kind, double x, double t, double delta) {
    const double d = x - t;
    switch (kind) {
    case L_MSE: return d * d;
    case L_MAE: return fabs(d);
    case L_HUBER: return fabs(d) <= delta ? 0.5 * d * d : delta * (fabs(d) - 0.5 * delta);
    default: /* L_BCE: -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) */
        return t * softplus(-x) + (1.0 - t) * softplus(x);
    }
}

/* x, q are (cols): -sum_j q_j log_softmax(x)_j, log_softmax by max-subtracted log-sum-exp. */
static double ref_ce_row(const double *x, const double *q, size_t cols) {
    double mx = x[0], sum = 0.0, loss = 0.0;
    for (size_t j = 1; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    for (size_t j = 0; j < cols; j++) sum += exp(x[j] - mx);
    const double lse = mx + log(sum);
    for (size_t j = 0; j < cols; j++) loss -= q[j] * (x[j] - lse);
    return loss;
}

/* One row's summed contribution (before the mean). x, t are (cols); for the cross-entropies t
 * is the smoothed target distribution q. */
static double ref_row(loss_kind kind, const double *x, const double *t, size_t cols, double delta) {
    if (kind == L_CE_INDEX || kind == L_CE_SOFT) return ref_ce_row(x, t, cols);
    double s = 0.0;
    for (size_t j = 0; j < cols; j++) s += ref_term(kind, x[j], t[j], delta);
    return s;
}

/* The mean divides by rows * cols for elementwise losses, by rows for the cross-entropies. */
static double ref_divisor(loss_kind kind, size_t rows, size_t cols) {
    return kind == L_CE_INDEX || kind == L_CE_SOFT ? (double)rows : (double)(rows * cols);
}

static double *alloc_doubles(size_t n) { return (double *)check_alloc(2 * n); }

/* A problem: inputs x (rows, cols) and targets; for CE the kernel's targets (labels or target
 * rows) plus the smoothed distribution q that the reference uses, for the others q = target. */
typedef struct loss_problem {
    loss_kind kind;
    size_t rows, cols;
    float param; /* Huber delta or label smoothing */
    float *x, *target;
    int32_t *labels;
    double *q;
} loss_problem;

static float run_kernel(const loss_problem *pb, float *grad) {
    const size_t r = pb->rows, c = pb->cols;
    switch (pb->kind) {
    case L_MSE: return nnk_loss_mse(grad, pb->x, pb->target, r, c);
    case L_MAE: return nnk_loss_mae(grad, pb->x, pb->target, r, c);
    case L_HUBER: return nnk_loss_huber(grad, pb->x, pb->target, r, c, pb->param);
    case L_BCE: return nnk_loss_bce_logits(grad, pb->x, pb->target, r, c);
    case L_CE_INDEX: return nnk_loss_softmax_ce_index(grad, pb->x, pb->labels, r, c, pb->param);
    default: return nnk_loss_softmax_ce_soft(grad, pb->x, pb->target, r, c, pb->param);
    }
}

/* q for the reference: PyTorch's smoothing (1 - s) target + s / cols for the cross-entropies. */
static void fill_q(loss_problem *pb) {
    const size_t n = pb->rows * pb->cols;
    const double s = pb->param, off = s / (double)pb->cols;
    for (size_t i = 0; i < n; i++) {
        if (pb->kind == L_CE_INDEX)
            pb->q[i] = (1.0 - s) * ((int32_t)(i % pb->cols) == pb->labels[i / pb->cols]) + off;
        else if (pb->kind == L_CE_SOFT)
            pb->q[i] = (1.0 - s) * pb->target[i] + off;
        else
            pb->q[i] = pb->target[i];
    }
}

/* Random inputs. Regression targets keep |x - t| (and for Huber ||x - t| - delta|) at least
 * 1e-3 from the kinks, so finite differences see a smooth function. */
static void fill_problem(loss_problem *pb, check_rng *rng) {
    const size_t n = pb->rows * pb->cols;
    for (size_t i = 0; i < n; i++) {
        if (pb->kind == L_BCE) {
            pb->x[i] = check_uniform(rng, -6.0f, 6.0f);
            pb->target[i] = check_uniform(rng, 0.0f, 1.0f);
        } else if (pb->kind == L_CE_INDEX || pb->kind == L_CE_SOFT) {
            pb->x[i] = check_uniform(rng, -4.0f, 4.0f);
            pb->target[i] = check_uniform(rng, 0.01f, 1.0f);
        } else {
            pb->x[i] = check_uniform(rng, -2.0f, 2.0f);
            double d;
            do {
                pb->target[i] = check_uniform(rng, -2.0f, 2.0f);
                d = fabs((double)pb->x[i] - pb->target[i]);
            } while (d < 1e-3 || (pb->kind == L_HUBER && fabs(d - pb->param) < 1e-3));
        }
    }
    for (size_t r = 0; r < pb->rows; r++) {
        pb->labels[r] = (int32_t)(check_rng_next(rng) % pb->cols);
        if (pb->kind != L_CE_SOFT) continue;
        float *t = pb->target + r * pb->cols; /* soft target rows: normalized to a distribution */
        double s = 0.0;
        for (size_t j = 0; j < pb->cols; j++) s += t[j];
        for (size_t j = 0; j < pb->cols; j++) t[j] = (float)(t[j] / s);
    }
    fill_q(pb);
}

/* Value against the reference, gradient against central differences of the reference (only row
 * r depends on x[r, j], so the difference is taken of that row's term), grad == NULL agreement. */
static void check_problem(nnk_check *c, const loss_problem *pb, const char *tag) {
    const size_t rows = pb->rows, cols = pb->cols, n = rows * cols;
    const double div = ref_divisor(pb->kind, rows, cols), h = 1e-5;
    float *grad = check_alloc(n);
    double *xr = alloc_doubles(cols);
    const float got = run_kernel(pb, grad), got_nograd = run_kernel(pb, NULL);
    double want = 0.0, worst = 0.0;
    size_t bad = n;
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) xr[j] = pb->x[r * cols + j];
        const double *q = pb->q + r * cols;
        want += ref_row(pb->kind, xr, q, cols, pb->param);
        for (size_t j = 0; j < cols; j++) {
            xr[j] = (double)pb->x[r * cols + j] + h;
            const double fp = ref_row(pb->kind, xr, q, cols, pb->param);
            xr[j] = (double)pb->x[r * cols + j] - h;
            const double fm = ref_row(pb->kind, xr, q, cols, pb->param);
            xr[j] = pb->x[r * cols + j];
            const double fd = (fp - fm) / (2.0 * h), g = (double)grad[r * cols + j] * div;
            const double err = fabs(g - fd) / (1e-6 + 1e-5 * fabs(fd));
            if (!(err <= worst)) worst = err, bad = r * cols + j;
        }
    }
    want /= div;
    check_record(c, check_close(got, want, 2e-6, 1e-7), "%s %s value %.9g, reference %.9g", loss_names[pb->kind],
                 tag, got, want);
    check_record(c, worst <= 1.0, "%s %s gradient vs finite differences: element %zu off by %.3g tolerances",
                 loss_names[pb->kind], tag, bad, worst);
    check_record(c, memcmp(&got, &got_nograd, sizeof got) == 0, "%s %s value with grad NULL %.9g != %.9g",
                 loss_names[pb->kind], tag, got_nograd, got);
    check_free(grad);
    check_free(xr);
}

static loss_problem problem_alloc(loss_kind kind, size_t rows, size_t cols, float param) {
    loss_problem pb = {kind, rows, cols, param, NULL, NULL, NULL, NULL};
    pb.x = check_alloc(rows * cols);
    pb.target = check_alloc(rows * cols);
    pb.labels = (int32_t *)check_alloc(rows);
    pb.q = alloc_doubles(rows * cols);
    return pb;
}

static void problem_free(loss_problem *pb) {
    check_free(pb->x);
    check_free(pb->target);
    check_free(pb->labels);
    check_free(pb->q);
}

/* Every loss over rows {1, 3, 17, 128} x cols {1, 2, 10, 33}, with several deltas / smoothings. */
static void check_random(nnk_check *c) {
    static const size_t rows_list[] = {1, 3, 17, 128}, cols_list[] = {1, 2, 10, 33};
    static const float huber_deltas[] = {1.0f, 0.3f}, smoothings[] = {0.0f, 0.1f, 0.25f};
    check_rng rng = {0x1055};
    for (int kind = 0; kind < L_COUNT; kind++) {
        const float *params = kind == L_HUBER ? huber_deltas : smoothings;
        const int nparams = kind == L_HUBER ? 2 : kind >= L_CE_INDEX ? 3 : 1;
        for (size_t ri = 0; ri < 4; ri++)
            for (size_t ci = 0; ci < 4; ci++)
                for (int pi = 0; pi < nparams; pi++) {
                    const float param = kind == L_HUBER || kind >= L_CE_INDEX ? params[pi] : 0.0f;
                    loss_problem pb = problem_alloc((loss_kind)kind, rows_list[ri], cols_list[ci], param);
                    fill_problem(&pb, &rng);
                    char tag[64];
                    snprintf(tag, sizeof tag, "(%zu x %zu, param %g)", pb.rows, pb.cols, param);
                    check_problem(c, &pb, tag);
                    problem_free(&pb);
                }
    }
}

/* grad may be the logits / pred buffer itself. */
static void check_in_place(nnk_check *c) {
    check_rng rng = {0x1a9};
    for (int kind = 0; kind < L_COUNT; kind++) {
        loss_problem pb = problem_alloc((loss_kind)kind, 17, 10, kind == L_HUBER ? 0.5f : 0.1f);
        fill_problem(&pb, &rng);
        float *grad = check_alloc(17 * 10), *x = pb.x;
        const float want = run_kernel(&pb, grad);
        float *inplace = check_alloc(17 * 10);
        memcpy(inplace, x, 17 * 10 * sizeof(float));
        pb.x = inplace;
        const float got = run_kernel(&pb, inplace);
        check_record(c, got == want && memcmp(inplace, grad, 17 * 10 * sizeof(float)) == 0,
                     "%s with grad == logits differs from a separate grad", loss_names[kind]);
        pb.x = x;
        check_free(grad);
        check_free(inplace);
        problem_free(&pb);
    }
}

/* Soft target rows need not sum to 1 for the value and its gradient to agree (the gradient is
 * then softmax * sum(q) - q, not softmax - q). */
static void check_soft_unnormalized(nnk_check *c) {
    check_rng rng = {0x50f};
    loss_problem pb = problem_alloc(L_CE_SOFT, 5, 10, 0.1f);
    fill_problem(&pb, &rng);
    check_fill(&rng, pb.target, 5 * 10, 0.0f, 0.5f);
    fill_q(&pb);
    check_problem(c, &pb, "(5 x 10, rows not summing to 1)");
    problem_free(&pb);
}

/* Soft targets that are one-hot rows must give the index loss, with and without smoothing. */
static void check_soft_equals_index(nnk_check *c) {
    static const size_t rows_list[] = {1, 3, 17, 128}, cols_list[] = {1, 2, 10, 33};
    check_rng rng = {0x50f7};
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t ci = 0; ci < 4; ci++)
            for (int si = 0; si < 2; si++) {
                const size_t rows = rows_list[ri], cols = cols_list[ci], n = rows * cols;
                const float s = si ? 0.1f : 0.0f;
                float *x = check_alloc(n), *onehot = check_alloc(n), *gi = check_alloc(n), *gs = check_alloc(n);
                int32_t *labels = (int32_t *)check_alloc(rows);
                check_fill(&rng, x, n, -5.0f, 5.0f);
                for (size_t r = 0; r < rows; r++) {
                    labels[r] = (int32_t)(check_rng_next(&rng) % cols);
                    onehot[r * cols + (size_t)labels[r]] = 1.0f;
                }
                const float li = nnk_loss_softmax_ce_index(gi, x, labels, rows, cols, s);
                const float ls = nnk_loss_softmax_ce_soft(gs, x, onehot, rows, cols, s);
                size_t bad = n;
                for (size_t i = 0; i < n && bad == n; i++)
                    if (!check_close(gs[i], gi[i], 1e-6, 1e-9)) bad = i;
                check_record(c, check_close(ls, li, 1e-6, 1e-9) && bad == n,
                             "ce soft one-hot vs index (%zu x %zu, s %g): loss %.9g vs %.9g, grad element %zu differs",
                             rows, cols, s, ls, li, bad);
                check_free(x), check_free(onehot), check_free(gi), check_free(gs), check_free(labels);
            }
}

static int all_close(const float *got, const double *want, size_t n, double rtol, double atol) {
    for (size_t i = 0; i < n; i++)
        if (!check_close(got[i], want[i], rtol, atol)) return 0;
    return 1;
}

/* Cases worked out by hand. */
static void check_exact(nnk_check *c) {
    float g[8];
    { /* MSE: d = (1, 2, 3) -> 14 / 3, grad 2 d / 3 */
        const float p[3] = {1, 2, 3}, t[3] = {0, 0, 0};
        const double wg[3] = {2.0 / 3, 4.0 / 3, 2.0};
        const float l = nnk_loss_mse(g, p, t, 1, 3);
        check_record(c, check_close(l, 14.0 / 3, 1e-7, 0) && all_close(g, wg, 3, 1e-7, 0), "mse exact: %.9g", l);
    }
    { /* MAE: d = (0, -2, 3, 4) -> 9 / 4, grad (0, -1, 1, 1) / 4 (0 where p == t) */
        const float p[4] = {1, -2, 3, 4}, t[4] = {1, 0, 0, 0};
        const double wg[4] = {0, -0.25, 0.25, 0.25};
        const float l = nnk_loss_mae(g, p, t, 2, 2);
        check_record(c, l == 2.25f && all_close(g, wg, 4, 0, 0), "mae exact: %.9g, grad %g %g %g %g", l, g[0], g[1],
                     g[2], g[3]);
    }
    { /* Huber delta 1: d = (0.5, 2, -3, 1) -> (0.125 + 1.5 + 2.5 + 0.5) / 4, grad (0.5, 1, -1, 1) / 4 */
        const float p[4] = {0.5f, 2, -3, 1}, t[4] = {0, 0, 0, 0};
        const double wg[4] = {0.125, 0.25, -0.25, 0.25};
        const float l = nnk_loss_huber(g, p, t, 4, 1, 1.0f);
        check_record(c, check_close(l, 4.625 / 4, 1e-7, 0) && all_close(g, wg, 4, 0, 0), "huber exact: %.9g", l);
    }
    { /* CE of equal logits is log(C) for any label and smoothing; grad (1/C - q) / rows */
        const float x[8] = {3, 3, 3, 3, -1, -1, -1, -1};
        const int32_t y[2] = {2, 0};
        const double wg[8] = {0.125, 0.125, -0.375, 0.125, -0.375, 0.125, 0.125, 0.125};
        float l = nnk_loss_softmax_ce_index(g, x, y, 2, 4, 0.0f);
        check_record(c, check_close(l, log(4.0), 1e-7, 0) && all_close(g, wg, 8, 1e-7, 1e-9), "ce uniform: %.9g", l);
        l = nnk_loss_softmax_ce_index(g, x, y, 2, 4, 0.3f);
        check_record(c, check_close(l, log(4.0), 1e-7, 0), "ce uniform smoothed: %.9g", l);
    }
    { /* CE, C = 2, logits (0, ln 3): softmax (1/4, 3/4); label 1, s = 0.2: q = (0.1, 0.9) */
        const float x[2] = {0.0f, (float)log(3.0)};
        const int32_t y[1] = {1};
        const double wg[2] = {0.15, -0.15}, want = 0.1 * log(4.0) + 0.9 * log(4.0 / 3.0);
        const float l = nnk_loss_softmax_ce_index(g, x, y, 1, 2, 0.2f);
        check_record(c, check_close(l, want, 1e-6, 0) && all_close(g, wg, 2, 1e-6, 1e-7), "ce smoothed exact: %.9g",
                     l);
    }
    { /* BCE at logit 0 is log 2 for any target; grad (1/2 - t) / n */
        const float x[3] = {0, 0, 0}, t[3] = {0, 0.25f, 1};
        const double wg[3] = {0.5 / 3, 0.25 / 3, -0.5 / 3};
        const float l = nnk_loss_bce_logits(g, x, t, 3, 1);
        check_record(c, check_close(l, log(2.0), 1e-7, 0) && all_close(g, wg, 3, 1e-7, 0), "bce at 0: %.9g", l);
    }
}

/* Logits of +-1e4: saturated softmax / sigmoid, so the values and gradients are known exactly. */
static void check_extreme(nnk_check *c) {
    float g[8];
    const float x[8] = {1e4f, -1e4f, 0.0f, 5e3f, -1e4f, 1e4f, -1e4f, 1e4f};
    { /* row 0 label 0 costs ~0; row 1 label 0 costs 2e4 (its max is 1e4, two of them: + log 2) */
        const int32_t y[2] = {0, 0};
        const float l = nnk_loss_softmax_ce_index(g, x, y, 2, 4, 0.0f);
        const double want = (0.0 + 2e4 + log(2.0)) / 2;
        const double wg[8] = {0, 0, 0, 0, -0.5, 0.25, 0, 0.25};
        check_record(c, isfinite(l) && check_close(l, want, 1e-6, 0) && all_close(g, wg, 8, 1e-6, 1e-7),
                     "ce index at +-1e4: %.9g, want %.9g", l, want);
        const float t[8] = {1, 0, 0, 0, 1, 0, 0, 0};
        const float ls = nnk_loss_softmax_ce_soft(g, x, t, 2, 4, 0.0f);
        check_record(c, isfinite(ls) && check_close(ls, want, 1e-6, 0) && all_close(g, wg, 8, 1e-6, 1e-7),
                     "ce soft at +-1e4: %.9g, want %.9g", ls, want);
    }
    { /* BCE: (x, t) = (1e4, 1) -> 0, (1e4, 0) -> 1e4, (-1e4, 0) -> 0, (-1e4, 1) -> 1e4, (-1e4, .5) -> 5e3 */
        const float xb[5] = {1e4f, 1e4f, -1e4f, -1e4f, -1e4f}, t[5] = {1, 0, 0, 1, 0.5f};
        const double wg[5] = {0, 0.2, 0, -0.2, -0.1};
        const float l = nnk_loss_bce_logits(g, xb, t, 5, 1);
        check_record(c, isfinite(l) && check_close(l, 2.5e4 / 5, 1e-7, 0) && all_close(g, wg, 5, 1e-7, 0),
                     "bce at +-1e4: %.9g", l);
    }
    /* Random +-1e4 logits over the test shapes: value matches the reference, all finite. */
    check_rng rng = {0xe47};
    const loss_kind kinds[3] = {L_BCE, L_CE_INDEX, L_CE_SOFT};
    for (int k = 0; k < 3; k++) {
        loss_problem pb = problem_alloc(kinds[k], 17, 33, 0.1f);
        fill_problem(&pb, &rng);
        for (size_t i = 0; i < 17 * 33; i++) pb.x[i] = (check_rng_next(&rng) & 1) ? 1e4f : -1e4f;
        float *grad = check_alloc(17 * 33);
        const float l = run_kernel(&pb, grad);
        double want = 0.0, xr[33];
        for (size_t r = 0; r < 17; r++) {
            for (size_t j = 0; j < 33; j++) xr[j] = pb.x[r * 33 + j];
            want += ref_row(pb.kind, xr, pb.q + r * 33, 33, pb.param);
        }
        want /= ref_divisor(pb.kind, 17, 33);
        int finite = isfinite(l);
        for (size_t i = 0; i < 17 * 33; i++) finite &= isfinite(grad[i]) != 0;
        check_record(c, finite && check_close(l, want, 1e-6, 0), "%s random +-1e4: %.9g, reference %.9g, finite %d",
                     loss_names[pb.kind], l, want, finite);
        check_free(grad);
        problem_free(&pb);
    }
}

/* rows == 0 returns 0 and writes nothing. */
static void check_empty(nnk_check *c) {
    float g[2] = {7.0f, 7.0f};
    const float x[2] = {1, 2}, t[2] = {0, 1};
    const int32_t y[1] = {0};
    const float l[6] = {
        nnk_loss_mse(g, x, t, 0, 2), nnk_loss_mae(g, x, t, 0, 2), nnk_loss_huber(g, x, t, 0, 2, 1.0f),
        nnk_loss_bce_logits(g, x, t, 0, 2), nnk_loss_softmax_ce_index(g, x, y, 0, 2, 0.1f),
        nnk_loss_softmax_ce_soft(g, x, t, 0, 2, 0.1f),
    };
    for (int k = 0; k < 6; k++)
        check_record(c, l[k] == 0.0f, "%s with rows == 0 returned %g", loss_names[k], l[k]);
    check_record(c, g[0] == 7.0f && g[1] == 7.0f, "losses with rows == 0 wrote the gradient");
}

void nnk_check_losses(nnk_check *c) {
    check_random(c);
    check_soft_unnormalized(c);
    check_in_place(c);
    check_soft_equals_index(c);
    check_exact(c);
    check_extreme(c);
    check_empty(c);
}
