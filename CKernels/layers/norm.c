/*
 * Batch and layer normalization, forward and backward (CKernels.h), two passes over the data each:
 * the statistics (or the backward's two sums), then the elementwise normalise (or dx) pass.
 *
 * The reductions run through the active kernel table (norm_kernels.h: lanes accumulating in
 * double); the elementwise passes are portable float loops, y = (x - mean) k + b and
 * dx = a dy + b (x - mean) + c with per-channel or per-row constants, which clang vectorises at
 * -O2 (see norm_kernels.h for why the split falls there).
 *
 * Threads and order. Batch norm's unit is a channel: its sums over (n, s) in n order, each (n, c)
 * segment of S floats one table call, then its normalise pass, all on one thread. For S == 1
 * (BatchNorm1d on (N, C)) a segment is one float, so the unit is a tile of BN_TILE channels and
 * the sums run across the tile, n by n, in double on the stack: the same n order per channel, in
 * loops that vectorise across channels. Layer norm's unit is a row; its dgamma / dbeta are column
 * sums taken in row order over blocks of LN_COL_BLOCK columns, one block per unit. So every result
 * is computed in one fixed order whatever the thread count, and no kernel allocates.
 */
#include "../dispatch/table.h"
#include "norm_kernels.h"

#include <math.h>

#define BN_TILE 64       /* channels per unit when S == 1 */
#define LN_COL_BLOCK 64  /* columns per unit of layer norm's dgamma / dbeta (any width gives the same sums) */

/* Threads for an elementwise pass over `n` floats split into `units` (as the softmax rows). */
static int norm_threads(double n, size_t units) {
    const int t = nnk_threads_for(n, NNK_ELEMWISE_PARALLEL_MIN / 2.0);
    return units < (size_t)t ? (int)units : t;
}

/* 1 / sqrt(var + eps) and the biased variance from the one-pass sums over `count` values. */
static double invstd_of(double sum, double sumsq, double count, float eps, double *mean, double *var) {
    *mean = sum / count;
    *var = fmax(sumsq / count - *mean * *mean, 0.0); /* rounding may leave a tiny negative */
    return 1.0 / sqrt(*var + eps);
}

/* ---- batch norm: the per-unit passes ----------------------------------------------------- */

/* One call's arrays and sizes. Unit u covers channels [u tile, min(C, (u + 1) tile)). */
typedef struct bn_call {
    float *y;                  /* y (forward) or dx (backward), (N, C, S) */
    float *save_mean, *save_invstd, *running_mean, *running_var, *dgamma, *dbeta; /* (C) */
    const float *x, *dy;       /* (N, C, S) */
    const float *gamma, *beta; /* (C) or NULL */
    const float *mean, *invstd, *var; /* (C): the saved or running statistics read */
    size_t N, C, S, tile;
    float momentum, eps;
    int accumulate;
} bn_call;

/* sum[j] = sum of a (n, c0 + j, s) and sumsq[j] = sum of its squares, over n and s, j < c1 - c0;
 * or with dy: sum[j] = sum of dy, sumsq[j] = sum of dy (x - mean[j]). */
static void bn_sums(double *sum, double *sumsq, const bn_call *a, const float *dy, const float *mean, size_t c0,
                    size_t c1) {
    const size_t N = a->N, C = a->C, S = a->S, w = c1 - c0;
    for (size_t j = 0; j < w; j++) sum[j] = 0.0, sumsq[j] = 0.0;
    if (S == 1) {
        for (size_t n = 0; n < N; n++) {
            const float *xr = a->x + n * C + c0;
            if (dy) {
                const float *dr = dy + n * C + c0;
                for (size_t j = 0; j < w; j++) sum[j] += dr[j], sumsq[j] += (double)dr[j] * ((double)xr[j] - mean[j]);
            } else {
                for (size_t j = 0; j < w; j++) sum[j] += xr[j], sumsq[j] += (double)xr[j] * xr[j];
            }
        }
        return;
    }
    const nnk_kernel_table *k = nnk_active_table();
    for (size_t j = 0; j < w; j++) {
        double acc[2] = {0.0, 0.0};
        for (size_t n = 0; n < N; n++) {
            const size_t off = (n * C + c0 + j) * S;
            if (dy)
                k->norm_dot(dy + off, NULL, a->x + off, mean[j], S, acc);
            else
                k->norm_moments(a->x + off, S, acc);
        }
        sum[j] = acc[0], sumsq[j] = acc[1];
    }
}

/* out = (x - mean[j]) k[j] + b[j] over channels c0 + j of (N, C, S): the normalise pass.
 * out may equal x. */
static void bn_apply(float *out, const float *x, const float *mean, const float *k, const float *b,
                     const bn_call *a, size_t c0, size_t c1) {
    const size_t N = a->N, C = a->C, S = a->S, w = c1 - c0;
    for (size_t n = 0; n < N; n++) {
        if (S == 1) {
            const float *xr = x + n * C + c0;
            float *yr = out + n * C + c0;
            for (size_t j = 0; j < w; j++) yr[j] = (xr[j] - mean[j]) * k[j] + b[j];
            continue;
        }
        for (size_t j = 0; j < w; j++) {
            const float *xs = x + (n * C + c0 + j) * S;
            float *ys = out + (n * C + c0 + j) * S;
            const float m = mean[j], kj = k[j], bj = b[j];
            for (size_t s = 0; s < S; s++) ys[s] = (xs[s] - m) * kj + bj;
        }
    }
}

/* Training forward of channels [c0, c1): statistics, saves, running update, normalise. */
static void bn_train_unit(const bn_call *a, size_t c0, size_t c1) {
    double sum[BN_TILE], sumsq[BN_TILE];
    float mean[BN_TILE], k[BN_TILE], b[BN_TILE];
    bn_sums(sum, sumsq, a, NULL, NULL, c0, c1);
    const double count = (double)(a->N * a->S), mom = a->momentum;
    for (size_t c = c0; c < c1; c++) {
        const size_t j = c - c0;
        double mu, var;
        const double invstd = invstd_of(sum[j], sumsq[j], count, a->eps, &mu, &var);
        mean[j] = (float)mu;
        k[j] = (float)(invstd * (a->gamma ? a->gamma[c] : 1.0f));
        b[j] = a->beta ? a->beta[c] : 0.0f;
        if (a->save_mean) a->save_mean[c] = mean[j];
        if (a->save_invstd) a->save_invstd[c] = (float)invstd;
        if (a->running_mean) a->running_mean[c] = (float)((1.0 - mom) * a->running_mean[c] + mom * mu);
        if (a->running_var)
            a->running_var[c] = (float)((1.0 - mom) * a->running_var[c] + mom * var * count / (count - 1.0));
    }
    bn_apply(a->y, a->x, mean, k, b, a, c0, c1);
}

/* Eval forward of channels [c0, c1), from the running statistics (a->mean, a->var). */
static void bn_eval_unit(const bn_call *a, size_t c0, size_t c1) {
    float k[BN_TILE], b[BN_TILE];
    for (size_t c = c0; c < c1; c++) {
        const double invstd = 1.0 / sqrt((double)a->var[c] + a->eps);
        k[c - c0] = (float)(invstd * (a->gamma ? a->gamma[c] : 1.0f));
        b[c - c0] = a->beta ? a->beta[c] : 0.0f;
    }
    bn_apply(a->y, a->x, a->mean + c0, k, b, a, c0, c1);
}

/* Backward of channels [c0, c1): the sums, dgamma / dbeta, then dx = ka dy + kb (x - mean) + kc,
 * the expanded form of gamma invstd (dy - mean(dy) - xhat mean(dy xhat)). */
static void bn_backward_unit(const bn_call *a, size_t c0, size_t c1) {
    const size_t N = a->N, C = a->C, S = a->S;
    double sum_dy[BN_TILE], sum_dyxc[BN_TILE]; /* sum dy, sum dy (x - mean) */
    float ka[BN_TILE], kb[BN_TILE], kc[BN_TILE];
    const float *mean = a->mean + c0;
    bn_sums(sum_dy, sum_dyxc, a, a->dy, mean, c0, c1);
    const double count = (double)(N * S);
    for (size_t c = c0; c < c1; c++) {
        const size_t j = c - c0;
        const double invstd = a->invstd[c], g = a->gamma ? a->gamma[c] : 1.0f;
        if (a->dgamma) a->dgamma[c] = (a->accumulate ? a->dgamma[c] : 0.0f) + (float)(sum_dyxc[j] * invstd);
        if (a->dbeta) a->dbeta[c] = (a->accumulate ? a->dbeta[c] : 0.0f) + (float)sum_dy[j];
        ka[j] = (float)(g * invstd);
        kb[j] = (float)(-g * invstd * invstd * invstd * sum_dyxc[j] / count);
        kc[j] = (float)(-g * invstd * sum_dy[j] / count);
    }
    if (!a->y) return;
    const size_t w = c1 - c0;
    for (size_t n = 0; n < N; n++) {
        if (S == 1) {
            const float *dr = a->dy + n * C + c0, *xr = a->x + n * C + c0;
            float *out = a->y + n * C + c0;
            for (size_t i = 0; i < w; i++) out[i] = ka[i] * dr[i] + kb[i] * (xr[i] - mean[i]) + kc[i];
            continue;
        }
        for (size_t i = 0; i < w; i++) {
            const size_t off = (n * C + c0 + i) * S;
            const float *ds = a->dy + off, *xs = a->x + off;
            float *out = a->y + off;
            const float m = mean[i], ai = ka[i], bi = kb[i], ci = kc[i];
            for (size_t s = 0; s < S; s++) out[s] = ai * ds[s] + bi * (xs[s] - m) + ci;
        }
    }
}

/* Runs unit(a, c0, c1) over the channel units of a, across threads when N C S is large. */
static void bn_run(void (*unit)(const bn_call *, size_t, size_t), const bn_call *a) {
    const size_t units = (a->C + a->tile - 1) / a->tile;
    const int threads = norm_threads((double)a->N * (double)a->C * (double)a->S, units);
    NNK_PARALLEL_FOR(threads, units, u, unit(a, u * a->tile, NNK_MIN(a->C, (u + 1) * a->tile)));
}

/* ---- batch norm: the public calls -------------------------------------------------------- */

/* y (N, C, S) = batch-normalised x (N, C, S); statistics (C). */
int nnk_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd, float *running_mean,
                                float *running_var, const float *x, const float *gamma, const float *beta, size_t N,
                                size_t C, size_t S, float momentum, float eps) {
    if (N * S <= 1) return -1;
    assert(C == 0 || (y != NULL && x != NULL));
    const bn_call a = {.y = y, .save_mean = save_mean, .save_invstd = save_invstd, .running_mean = running_mean,
                       .running_var = running_var, .x = x, .gamma = gamma, .beta = beta, .N = N, .C = C, .S = S,
                       .tile = S == 1 ? BN_TILE : 1, .momentum = momentum, .eps = eps};
    bn_run(bn_train_unit, &a);
    return 0;
}

/* y (N, C, S) from x (N, C, S) and the running statistics (C). */
void nnk_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                const float *running_mean, const float *running_var, size_t N, size_t C, size_t S,
                                float eps) {
    if (N * C * S == 0) return;
    assert(y && x && running_mean && running_var);
    const bn_call a = {.y = y, .x = x, .gamma = gamma, .beta = beta, .mean = running_mean, .var = running_var,
                       .N = N, .C = C, .S = S, .tile = S == 1 ? BN_TILE : 1, .eps = eps};
    bn_run(bn_eval_unit, &a);
}

/* dx (N, C, S) or NULL, dgamma / dbeta (C) or NULL, from dy, x (N, C, S) and the saved statistics (C). */
void nnk_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma, size_t N, size_t C,
                            size_t S, int accumulate) {
    assert(C == 0 || (dy && x && save_mean && save_invstd));
    if (N * S == 0) { /* nothing to sum: the gradients of the parameters are 0 */
        for (size_t c = 0; c < C; c++) {
            if (dgamma) dgamma[c] = accumulate ? dgamma[c] : 0.0f;
            if (dbeta) dbeta[c] = accumulate ? dbeta[c] : 0.0f;
        }
        return;
    }
    const bn_call a = {.y = dx, .dgamma = dgamma, .dbeta = dbeta, .x = x, .dy = dy, .gamma = gamma,
                       .mean = save_mean, .invstd = save_invstd, .N = N, .C = C, .S = S,
                       .tile = S == 1 ? BN_TILE : 1, .accumulate = accumulate};
    bn_run(bn_backward_unit, &a);
}

/* ---- layer norm -------------------------------------------------------------------------- */

typedef struct ln_call {
    float *out;                       /* y (forward) or dx (backward), (rows, cols) */
    float *save_mean, *save_invstd;   /* (rows), forward */
    float *dgamma, *dbeta;            /* (cols), backward */
    const float *x, *dy;              /* (rows, cols) */
    const float *gamma, *beta;        /* (cols) or NULL */
    const float *mean, *invstd;       /* (rows), backward */
    size_t rows, cols;
    float eps;
    int accumulate;
} ln_call;

/* Row r: statistics, then y = ((x - mean) invstd) gamma + beta, one factor at a time. */
static void ln_forward_row(const ln_call *a, size_t r) {
    const size_t n = a->cols;
    const float *x = a->x + r * n;
    float *y = a->out + r * n;
    double acc[2] = {0.0, 0.0}, mu, var;
    nnk_active_table()->norm_moments(x, n, acc);
    const double invstd = invstd_of(acc[0], acc[1], (double)n, a->eps, &mu, &var);
    const float m = (float)mu, is = (float)invstd;
    if (a->save_mean) a->save_mean[r] = m;
    if (a->save_invstd) a->save_invstd[r] = is;
    for (size_t j = 0; j < n; j++) y[j] = (x[j] - m) * is;
    if (a->gamma)
        for (size_t j = 0; j < n; j++) y[j] *= a->gamma[j];
    if (a->beta)
        for (size_t j = 0; j < n; j++) y[j] += a->beta[j];
}

/* dx of row r = ka g + kb (x - mean) + kc, g = dy gamma: the expanded form of
 * invstd (g - mean(g) - xhat mean(g xhat)). */
static void ln_dx_row(const ln_call *a, size_t r) {
    const size_t n = a->cols;
    const float *x = a->x + r * n, *dy = a->dy + r * n, *gamma = a->gamma;
    float *dx = a->out + r * n;
    const float m = a->mean[r];
    const double is = a->invstd[r];
    double acc[2] = {0.0, 0.0};
    nnk_active_table()->norm_dot(dy, gamma, x, m, n, acc);
    const float ka = (float)is, kb = (float)(-is * is * is * acc[1] / (double)n), kc = (float)(-is * acc[0] / (double)n);
    if (gamma)
        for (size_t j = 0; j < n; j++) dx[j] = ka * (dy[j] * gamma[j]) + kb * (x[j] - m) + kc;
    else
        for (size_t j = 0; j < n; j++) dx[j] = ka * dy[j] + kb * (x[j] - m) + kc;
}

/* dgamma / dbeta of columns [LN_COL_BLOCK b, ...): sums over the rows in order, in double. */
static void ln_param_block(const ln_call *a, size_t b) {
    const size_t j0 = b * LN_COL_BLOCK, w = NNK_MIN((size_t)LN_COL_BLOCK, a->cols - j0);
    double sg[LN_COL_BLOCK], sb[LN_COL_BLOCK];
    for (size_t j = 0; j < w; j++) sg[j] = 0.0, sb[j] = 0.0;
    for (size_t r = 0; r < a->rows; r++) {
        const float *dy = a->dy + r * a->cols + j0, *x = a->x + r * a->cols + j0;
        const double m = a->mean[r], is = a->invstd[r];
        for (size_t j = 0; j < w; j++) {
            sb[j] += dy[j];
            sg[j] += dy[j] * ((x[j] - m) * is);
        }
    }
    for (size_t j = 0; j < w; j++) {
        if (a->dgamma) a->dgamma[j0 + j] = (a->accumulate ? a->dgamma[j0 + j] : 0.0f) + (float)sg[j];
        if (a->dbeta) a->dbeta[j0 + j] = (a->accumulate ? a->dbeta[j0 + j] : 0.0f) + (float)sb[j];
    }
}

/* y (rows, cols) = layer-normalised x (rows, cols); statistics (rows). */
void nnk_layernorm_forward(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                           const float *beta, size_t rows, size_t cols, float eps) {
    if (rows == 0 || cols == 0) return;
    assert(y != NULL && x != NULL);
    const ln_call a = {.out = y, .save_mean = save_mean, .save_invstd = save_invstd, .x = x, .gamma = gamma,
                       .beta = beta, .rows = rows, .cols = cols, .eps = eps};
    const int threads = norm_threads((double)rows * (double)cols, rows);
    NNK_PARALLEL_FOR(threads, rows, r, ln_forward_row(&a, r));
}

/* dgamma / dbeta (cols) first, from dy before dx overwrites it (dx may equal dy), then dx
 * (rows, cols), each pass split across threads on its own units. */
void nnk_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma, size_t rows,
                            size_t cols, int accumulate) {
    if (cols == 0) return;
    assert(rows == 0 || (dy && x && save_mean && save_invstd));
    const ln_call a = {.out = dx, .dgamma = dgamma, .dbeta = dbeta, .x = x, .dy = dy, .gamma = gamma,
                       .mean = save_mean, .invstd = save_invstd, .rows = rows, .cols = cols,
                       .accumulate = accumulate};
    const double n = (double)rows * (double)cols;
    if (dgamma || dbeta) {
        const size_t blocks = (cols + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
        const int threads = norm_threads(n, blocks);
        NNK_PARALLEL_FOR(threads, blocks, b, ln_param_block(&a, b));
    }
    if (dx) {
        const int threads = norm_threads(n, rows);
        NNK_PARALLEL_FOR(threads, rows, r, ln_dx_row(&a, r));
    }
}
