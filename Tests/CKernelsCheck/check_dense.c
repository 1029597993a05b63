/*
 * Fused dense steps against their unfused definition computed in double: forward
 * Y = act(X W^T + b) with the activation's reference twin; backward dZ = dY act'(Z),
 * dW = dZ^T X, db = colsum dZ, dX = dZ W. Every ISA, every activation, odd shapes.
 */
#include "check_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct dense_shape { size_t M, N, K, pad; } dense_shape;

static double max_abs_diff(const float *got, const double *want, size_t rows, size_t cols, size_t ld) {
    double worst = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) worst = fmax(worst, fabs(got[i * ld + j] - want[i * cols + j]));
    return worst;
}

static void check_one(nnk_check *c, const char *isa, nnk_act act, dense_shape s, check_rng *rng) {
    const size_t M = s.M, N = s.N, K = s.K, ldx = K + s.pad, ldw = K + s.pad, ldy = N + s.pad;
    const float alpha = act == NNK_ACT_ELU ? 1.0f : 0.1f;
    float *X = check_alloc(M * ldx), *W = check_alloc(N * ldw), *b = check_alloc(N);
    float *Y = check_alloc(M * ldy), *Z = check_alloc(M * ldy), *dY = check_alloc(M * ldy), *dZ = check_alloc(M * ldy);
    float *dW = check_alloc(N * ldw), *db = check_alloc(N), *dX = check_alloc(M * ldx);
    double *z = calloc(M * N + 1, sizeof(double)), *want = calloc((M + N) * (K + N) + 1, sizeof(double));
    float *zr = check_alloc(M * N), *yr = check_alloc(M * N), *dzr = check_alloc(M * N);
    check_fill(rng, X, M * ldx, -1, 1), check_fill(rng, W, N * ldw, -0.5f, 0.5f), check_fill(rng, b, N, -0.5f, 0.5f);
    check_fill(rng, dY, M * ldy, -1, 1), check_fill(rng, dW, N * ldw, -1, 1), check_fill(rng, db, N, -1, 1);
    memcpy(dZ, dY, M * ldy * sizeof(float));
    const int threads = nnk_get_num_threads();
    const size_t wl = nnk_dense_backward_work_size(M, N, K, threads) + nnk_sgemm_work_size(M, N, K, threads);
    float *work = check_alloc(wl);

    /* Forward: Z = X W^T + b in double; Y = act(Z) by the activation's reference twin. */
    nnk_dense_forward(NNK_PRECISION_FP32, Y, Z, ldy, X, ldx, W, ldw, b, M, N, K, act, alpha, work, wl);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double t = b[j];
            for (size_t p = 0; p < K; p++) t += (double)X[i * ldx + p] * W[j * ldw + p];
            z[i * N + j] = t;
            zr[i * N + j] = (float)t;
        }
    nnk_act_forward_ref(act, alpha, yr, zr, M * N);
    const double tol = 4e-6 * (double)(K + 4);
    check_record(c, max_abs_diff(Z, z, M, N, ldy) <= tol, "dense[%s] %s M=%zu N=%zu K=%zu: Z off by %g", isa,
                 nnk_act_name(act), M, N, K, max_abs_diff(Z, z, M, N, ldy));
    for (size_t i = 0; i < M * N; i++) want[i] = yr[i];
    check_record(c, max_abs_diff(Y, want, M, N, ldy) <= tol * 2, "dense[%s] %s M=%zu N=%zu K=%zu: Y off by %g", isa,
                 nnk_act_name(act), M, N, K, max_abs_diff(Y, want, M, N, ldy));

    /* Backward with accumulation into dW, db: dZ by the reference twin, products in double. */
    float *dW0 = check_alloc(N * ldw), *db0 = check_alloc(N);
    memcpy(dW0, dW, N * ldw * sizeof(float)), memcpy(db0, db, N * sizeof(float));
    for (size_t i = 0; i < M; i++) memcpy(dzr + i * N, dY + i * ldy, N * sizeof(float));
    for (size_t i = 0; i < M; i++) memcpy(yr + i * N, Y + i * ldy, N * sizeof(float));
    for (size_t i = 0; i < M; i++) memcpy(zr + i * N, Z + i * ldy, N * sizeof(float));
    nnk_act_backward_ref(act, alpha, dzr, dzr, zr, yr, M * N);
    nnk_dense_backward(NNK_PRECISION_FP32, dX, dW, db, dZ, ldy, X, ldx, W, ldw, nnk_act_needs_input(act) ? Z : NULL, Y, M, N, K, act,
                       alpha, 1, work, wl);
    for (size_t i = 0; i < M * N; i++) want[i] = dzr[i];
    check_record(c, max_abs_diff(dZ, want, M, N, ldy) <= 1e-6, "dense[%s] %s: dZ off by %g", isa, nnk_act_name(act),
                 max_abs_diff(dZ, want, M, N, ldy));
    for (size_t j = 0; j < N; j++)
        for (size_t p = 0; p < K; p++) {
            double t = dW0[j * ldw + p];
            for (size_t i = 0; i < M; i++) t += (double)dzr[i * N + j] * X[i * ldx + p];
            want[j * K + p] = t;
        }
    const double tol_b = 4e-6 * (double)(M + 4) * 2;
    check_record(c, max_abs_diff(dW, want, N, K, ldw) <= tol_b, "dense[%s] %s M=%zu N=%zu K=%zu: dW off by %g", isa,
                 nnk_act_name(act), M, N, K, max_abs_diff(dW, want, N, K, ldw));
    for (size_t j = 0; j < N; j++) {
        double t = db0[j];
        for (size_t i = 0; i < M; i++) t += dzr[i * N + j];
        want[j] = t;
    }
    check_record(c, max_abs_diff(db, want, 1, N, N) <= tol_b, "dense[%s] %s: db off by %g", isa, nnk_act_name(act),
                 max_abs_diff(db, want, 1, N, N));
    for (size_t i = 0; i < M; i++)
        for (size_t p = 0; p < K; p++) {
            double t = 0;
            for (size_t j = 0; j < N; j++) t += (double)dzr[i * N + j] * W[j * ldw + p];
            want[i * K + p] = t;
        }
    check_record(c, max_abs_diff(dX, want, M, K, ldx) <= 4e-6 * (double)(N + 4), "dense[%s] %s: dX off by %g", isa,
                 nnk_act_name(act), max_abs_diff(dX, want, M, K, ldx));

    check_free(X), check_free(W), check_free(b), check_free(Y), check_free(Z), check_free(dY), check_free(dZ);
    check_free(dW), check_free(db), check_free(dX), check_free(dW0), check_free(db0), check_free(work);
    check_free(zr), check_free(yr), check_free(dzr), free(z), free(want);
}

/* nnk_dense_chain_forward_row against nnk_dense_forward layer by layer (M = 1), bitwise, on
 * 1 to 4 threads: chains small enough for one thread and large enough to split. */
static void check_chain(nnk_check *c, const char *isa, const size_t *widths, size_t n, check_rng *rng) {
    nnk_dense_link links[8];
    size_t widest = 1, wl = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t in = widths[i], out = widths[i + 1];
        float *W = check_alloc(in * out), *b = check_alloc(out);
        check_fill(rng, W, in * out, -0.5f, 0.5f), check_fill(rng, b, out, -0.5f, 0.5f);
        const nnk_act act = (nnk_act)((i * 3 + widths[0]) % NNK_ACT_COUNT_);
        links[i] = (nnk_dense_link){W, b, in, out, act, act == NNK_ACT_ELU ? 1.0f : 0.1f};
        if (out > widest) widest = out;
        if (nnk_sgemm_work_size(1, out, in, 4) > wl) wl = nnk_sgemm_work_size(1, out, in, 4);
    }
    float *x = check_alloc(widths[0]), *ping = check_alloc(widest), *pong = check_alloc(widest);
    float *want = check_alloc(widest), *tmp = check_alloc(widest), *got = check_alloc(widest), *work = check_alloc(wl);
    check_fill(rng, x, widths[0], -1, 1);
    const float *in = x;
    for (size_t i = 0; i < n; i++) {
        float *out = i + 1 == n ? want : (i % 2 == 0 ? ping : tmp);
        const nnk_dense_link *l = &links[i];
        nnk_dense_forward(NNK_PRECISION_FP32, out, NULL, l->out, in, l->in, l->W, l->in, l->b, 1, l->out, l->in,
                          l->act, l->alpha, work, wl);
        in = out;
    }
    const int saved = nnk_get_num_threads();
    for (int t = 1; t <= 4; t++) {
        nnk_set_num_threads(t);
        memset(got, 0xff, widest * sizeof(float));
        const int rc = nnk_dense_chain_forward_row(got, x, links, n, ping, pong);
        check_record(c, rc == 0 && memcmp(got, want, widths[n] * sizeof(float)) == 0,
                     "dense chain[%s] %zu links from %zu, %d threads: rc %d, not bitwise the layers", isa, n,
                     widths[0], t, rc);
    }
    nnk_set_num_threads(saved);
    for (size_t i = 0; i < n; i++) check_free((float *)links[i].W), check_free((float *)links[i].b);
    check_free(x), check_free(ping), check_free(pong), check_free(want), check_free(tmp), check_free(got);
    check_free(work);
}

static void check_chain_refusals(nnk_check *c) {
    float W[6] = {0}, b[3] = {0}, x[2] = {1, 2}, y[3], p[3], q[3];
    nnk_dense_link bad[2] = {{W, b, 2, 3, NNK_ACT_IDENTITY, 0}, {W, b, 2, 3, NNK_ACT_IDENTITY, 0}};
    check_record(c, nnk_dense_chain_forward_row(y, x, bad, 0, p, q) == -1, "dense chain: no links accepted");
    check_record(c, nnk_dense_chain_forward_row(y, x, bad, 2, p, q) == -1, "dense chain: 3 outputs into 2 inputs accepted");
    bad[0].out = 0;
    check_record(c, nnk_dense_chain_forward_row(y, x, bad, 1, p, q) == -1, "dense chain: 0 outputs accepted");
}

void nnk_check_dense(nnk_check *c) {
    nnk_isa isas[4];
    const int n_isa = check_isas(isas);
    const nnk_isa saved = nnk_isa_active();
    const dense_shape shapes[] = {{1, 1, 1, 0}, {1, 10, 784, 0}, {3, 7, 5, 2}, {32, 256, 784, 0},
                                  {33, 17, 65, 3}, {128, 10, 128, 0}, {4, 129, 31, 1}};
    for (int s = 0; s < n_isa; s++) {
        nnk_set_isa(isas[s]);
        check_rng rng = {7 + (uint64_t)s};
        for (int a = 0; a < NNK_ACT_COUNT_; a++)
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
                check_one(c, nnk_isa_name(isas[s]), (nnk_act)a, shapes[k], &rng);
        const size_t mlp[] = {784, 256, 128, 10}, wide[] = {300, 700, 9}, odd[] = {33, 17, 65, 7, 1}, one[] = {5, 3};
        check_chain(c, nnk_isa_name(isas[s]), mlp, 3, &rng);
        check_chain(c, nnk_isa_name(isas[s]), wide, 2, &rng);
        check_chain(c, nnk_isa_name(isas[s]), odd, 4, &rng);
        check_chain(c, nnk_isa_name(isas[s]), one, 1, &rng);
    }
    nnk_set_isa(saved);
    check_chain_refusals(c);

    /* bias_grad by hand: column sums of [[1, 2], [3, 4], [5, 6]] = [9, 12]; accumulate adds. */
    const float dz[] = {1, 2, 3, 4, 5, 6};
    float db[2] = {100, 100};
    nnk_bias_grad(db, dz, 2, 3, 2, 0);
    check_record(c, db[0] == 9 && db[1] == 12, "bias_grad: want [9, 12], got [%g, %g]", db[0], db[1]);
    nnk_bias_grad(db, dz, 2, 3, 2, 1);
    check_record(c, db[0] == 18 && db[1] == 24, "bias_grad accumulate: want [18, 24], got [%g, %g]", db[0], db[1]);
}
