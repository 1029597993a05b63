/*
 * Row-wise softmax and log-softmax, forward and backward.
 *
 * Forward: the row max is subtracted before exp, so logits of +-1e4 stay finite; the exps are
 * summed in double. The max and the exps are the active kernel table's vec_max and vec_exp_sum
 * (an ISA's vector exp, act_simd.h, or the scalar reference in double, act_ref.c). Backward:
 * row reductions in double, elementwise in double, rounded once. Rows are split across threads
 * only when rows * cols is large, one row per thread at a time, so results do not depend on the
 * thread count.
 */
#include "../dispatch/table.h"

#include <math.h>

/* ---- row reductions in double ------------------------------------------------------------ */

/* sum of a[j] b[j] over j < n in double, in four interleaved partial sums: a fixed order, and
 * four add chains instead of one. */
static double row_dot(const float *a, const float *b, size_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += (double)a[j] * b[j];
        s1 += (double)a[j + 1] * b[j + 1];
        s2 += (double)a[j + 2] * b[j + 2];
        s3 += (double)a[j + 3] * b[j + 3];
    }
    for (; j < n; j++) s0 += (double)a[j] * b[j];
    return (s0 + s1) + (s2 + s3);
}

/* sum of a[j] over j < n in double, as row_dot. */
static double row_sum(const float *a, size_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += a[j];
        s1 += a[j + 1];
        s2 += a[j + 2];
        s3 += a[j + 3];
    }
    for (; j < n; j++) s0 += a[j];
    return (s0 + s1) + (s2 + s3);
}

/* ---- one row of each op ------------------------------------------------------------------ */

/* One call's arguments: out (rows, cols) ld_out from a (and b), each with its own leading dim. */
typedef struct rows_call {
    float *out;
    const float *a, *b;
    size_t ld_out, ld_a, ld_b, cols;
} rows_call;

/* y = softmax(x) for row r: a = x. */
static void softmax_row(const rows_call *c, size_t r) {
    float *y = c->out + r * c->ld_out;
    const float *x = c->a + r * c->ld_a;
    const nnk_kernel_table *k = nnk_active_table();
    const double sum = k->vec_exp_sum(y, x, k->vec_max(x, c->cols), c->cols); /* >= 1: the max gives e^0 */
    const float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < c->cols; j++) y[j] *= inv;
}

/* y = x - max - log(sum exp(x - max)) for row r: a = x. */
static void log_softmax_row(const rows_call *c, size_t r) {
    float *y = c->out + r * c->ld_out;
    const float *x = c->a + r * c->ld_a;
    const nnk_kernel_table *k = nnk_active_table();
    const float m = k->vec_max(x, c->cols);
    const double log_sum = log(k->vec_exp_sum(NULL, x, m, c->cols));
    for (size_t j = 0; j < c->cols; j++) y[j] = (float)(((double)x[j] - m) - log_sum);
}

/* dx = y (dy - sum(dy y)) for row r: a = dy, b = y (softmax output). */
static void softmax_backward_row(const rows_call *c, size_t r) {
    float *dx = c->out + r * c->ld_out;
    const float *dy = c->a + r * c->ld_a, *y = c->b + r * c->ld_b;
    const double dot = row_dot(dy, y, c->cols);
    for (size_t j = 0; j < c->cols; j++) dx[j] = (float)(y[j] * ((double)dy[j] - dot));
}

/* dx = dy - exp(y) sum(dy) for row r: a = dy, b = y (log-softmax output). The exps go through a
 * small buffer, so dx may equal dy. */
static void log_softmax_backward_row(const rows_call *c, size_t r) {
    enum { BLOCK = 256 };
    float *dx = c->out + r * c->ld_out;
    const float *dy = c->a + r * c->ld_a, *y = c->b + r * c->ld_b;
    const double sum = row_sum(dy, c->cols);
    const nnk_kernel_table *k = nnk_active_table();
    float p[BLOCK];
    for (size_t j0 = 0; j0 < c->cols; j0 += BLOCK) {
        const size_t len = NNK_MIN((size_t)BLOCK, c->cols - j0);
        k->vec_exp_sum(p, y + j0, 0.0f, len);
        for (size_t j = 0; j < len; j++) dx[j0 + j] = (float)(dy[j0 + j] - p[j] * sum);
    }
}

/* Runs row(c, r) for r < rows: on the calling thread unless rows * cols is large. */
static void run_rows(void (*row)(const rows_call *, size_t), const rows_call *c, size_t rows) {
    if (rows == 0 || c->cols == 0) return;
    const int nthreads = nnk_threads_for((double)rows * (double)c->cols, NNK_ELEMWISE_PARALLEL_MIN / 2.0);
    if (nthreads <= 1 || rows == 1) {
        for (size_t r = 0; r < rows; r++) row(c, r);
        return;
    }
    NNK_PARALLEL_FOR(nthreads, rows, r, row(c, r));
}

/* ---- the public calls -------------------------------------------------------------------- */

/* y (rows, cols) ldy = row-wise softmax of x (rows, cols) ldx; y may equal x when ldy == ldx. */
void nnk_softmax_forward(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols) {
    assert(ldy >= cols && ldx >= cols && (rows * cols == 0 || (y != NULL && x != NULL)));
    const rows_call c = {y, x, NULL, ldy, ldx, 0, cols};
    run_rows(softmax_row, &c, rows);
}

/* y (rows, cols) ldy = row-wise log-softmax of x (rows, cols) ldx; y may equal x when ldy == ldx. */
void nnk_log_softmax_forward(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols) {
    assert(ldy >= cols && ldx >= cols && (rows * cols == 0 || (y != NULL && x != NULL)));
    const rows_call c = {y, x, NULL, ldy, ldx, 0, cols};
    run_rows(log_softmax_row, &c, rows);
}

/* dx = y (.) (dy - rowsum(dy (.) y)); dx, dy, y (rows, cols) ld. dx may equal dy. */
void nnk_softmax_backward(float *dx, const float *dy, const float *y, size_t ld, size_t rows, size_t cols) {
    assert(ld >= cols && (rows * cols == 0 || (dx != NULL && dy != NULL && y != NULL)));
    const rows_call c = {dx, dy, y, ld, ld, ld, cols};
    run_rows(softmax_backward_row, &c, rows);
}

/* dx = dy - exp(y) rowsum(dy); dx, dy, y (rows, cols) ld, y the log-softmax output. dx may equal dy. */
void nnk_log_softmax_backward(float *dx, const float *dy, const float *y, size_t ld, size_t rows, size_t cols) {
    assert(ld >= cols && (rows * cols == 0 || (dx != NULL && dy != NULL && y != NULL)));
    const rows_call c = {dx, dy, y, ld, ld, ld, cols};
    run_rows(log_softmax_backward_row, &c, rows);
}
