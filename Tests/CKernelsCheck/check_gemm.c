/*
 * GEMM: every ISA path against a double-precision reference, over awkward shapes (0, 1, primes,
 * non-multiples of the vector width, padded leading dimensions), all four transpose cases and
 * alpha/beta in {0, 1, other}. The tolerance is the classical float dot-product error bound,
 * (K + 2) * 2^-23 * sum |alpha a_ik b_kj| + |beta c_ij|, doubled for FMA reassociation.
 */
#include "check_util.h"

#ifdef NNK_HAVE_OPENMP
#include <omp.h>
#endif

#include <stdlib.h>
#include <string.h>

typedef struct gemm_case {
    nnk_trans ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
} gemm_case;

static float a_at(const gemm_case *g, const float *A, size_t i, size_t p) {
    return g->ta == NNK_NO_TRANS ? A[i * g->lda + p] : A[p * g->lda + i];
}
static float b_at(const gemm_case *g, const float *B, size_t p, size_t j) {
    return g->tb == NNK_NO_TRANS ? B[p * g->ldb + j] : B[j * g->ldb + p];
}

/* Runs one case on the active path; returns 1 when every element is within the bound. */
static int run_case(nnk_check *c, const gemm_case *g, check_rng *rng, const char *isa) {
    const size_t arows = g->ta == NNK_NO_TRANS ? g->M : g->K, brows = g->tb == NNK_NO_TRANS ? g->K : g->N;
    float *A = check_alloc(arows * g->lda + 1), *B = check_alloc(brows * g->ldb + 1);
    float *C = check_alloc(g->M * g->ldc + 1), *C0 = check_alloc(g->M * g->ldc + 1);
    check_fill(rng, A, arows * g->lda, -1.0f, 1.0f);
    check_fill(rng, B, brows * g->ldb, -1.0f, 1.0f);
    check_fill(rng, C0, g->M * g->ldc, -1.0f, 1.0f);
    if (g->beta == 0.0f && g->M > 0 && g->N > 0) C0[0] = NAN; /* beta == 0 must not read C */
    memcpy(C, C0, (g->M * g->ldc + 1) * sizeof(float));
    const size_t wl = nnk_sgemm_work_size(g->M, g->N, g->K, nnk_get_num_threads());
    float *work = check_alloc(wl);
    nnk_sgemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc, work, wl);
    int ok = 1;
    for (size_t i = 0; i < g->M && ok; i++)
        for (size_t j = 0; j < g->ldc && ok; j++) {
            const size_t at = i * g->ldc + j;
            if (j >= g->N) { /* padding between rows is never written */
                ok = memcmp(&C[at], &C0[at], sizeof(float)) == 0;
                continue;
            }
            double want = 0.0, mag = 0.0;
            for (size_t p = 0; p < g->K; p++) {
                const double t = (double)a_at(g, A, i, p) * (double)b_at(g, B, p, j);
                want += t;
                mag += fabs(t);
            }
            const double cin = g->beta == 0.0f ? 0.0 : (double)g->beta * C0[at];
            want = g->alpha * want + cin;
            const double bound = 2.0 * ((double)g->K + 2.0) * 0x1.0p-23 * (fabs(g->alpha) * mag + fabs(cin)) + 1e-30;
            ok = check_close(C[at], want, 0.0, bound);
            if (!ok)
                check_record(c, 0, "gemm[%s] %c%c M=%zu N=%zu K=%zu ld=%zu,%zu,%zu alpha=%g beta=%g: C[%zu,%zu]=%.9g want %.9g",
                             isa, g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N, g->K, g->lda, g->ldb, g->ldc,
                             g->alpha, g->beta, i, j, C[at], want);
        }
    /* The element after the last row is never written. */
    if (ok) ok = memcmp(&C[g->M * g->ldc], &C0[g->M * g->ldc], sizeof(float)) == 0;
    if (ok) check_record(c, 1, "gemm");
    check_free(A), check_free(B), check_free(C), check_free(C0), check_free(work);
    return ok;
}

static gemm_case make_case(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, size_t pad, float alpha,
                           float beta) {
    gemm_case g = {ta, tb, M, N, K, 0, 0, 0, alpha, beta};
    g.lda = (ta == NNK_NO_TRANS ? K : M) + pad;
    g.ldb = (tb == NNK_NO_TRANS ? N : K) + pad;
    g.ldc = N + pad;
    if (g.lda == 0) g.lda = 1;
    if (g.ldb == 0) g.ldb = 1;
    if (g.ldc == 0) g.ldc = 1;
    return g;
}

/* 1 thread against N threads, and a work buffer too small to pack against a full one: bitwise
 * for threads (same per-element order), within the bound for the unpacked fallback. */
static void check_threads(nnk_check *c, check_rng *rng, const char *isa) {
    const size_t M = 97, N = 131, K = 300;
    float *A = check_alloc(M * K), *B = check_alloc(N * K), *C1 = check_alloc(M * N), *C2 = check_alloc(M * N);
    check_fill(rng, A, M * K, -1, 1);
    check_fill(rng, B, N * K, -1, 1);
    const int saved = nnk_get_num_threads();
    for (int tr = 0; tr < 4; tr++) {
        const nnk_trans ta = tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tb = tr & 2 ? NNK_TRANS : NNK_NO_TRANS;
        const size_t lda = ta == NNK_NO_TRANS ? K : M, ldb = tb == NNK_NO_TRANS ? N : K;
        nnk_set_num_threads(1);
        size_t wl = nnk_sgemm_work_size(M, N, K, 1);
        float *w = check_alloc(wl * 4);
        nnk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N, w, wl);
        nnk_set_num_threads(4);
        wl = nnk_sgemm_work_size(M, N, K, 4);
        nnk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N, w, wl);
        check_record(c, memcmp(C1, C2, M * N * sizeof(float)) == 0, "gemm[%s] %d%d: 1 thread vs 4 threads must be bitwise equal",
                     isa, ta, tb);
        nnk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N, NULL, 0); /* no scratch: unpacked */
        double worst = 0;
        for (size_t i = 0; i < M * N; i++) worst = fmax(worst, fabs((double)C1[i] - C2[i]));
        check_record(c, worst < 1e-4, "gemm[%s] %d%d: unpacked fallback differs by %g", isa, ta, tb, worst);
        /* Called from a caller's own parallel region (OpenMP gives the nested region a team of
         * one): every block must still be computed. It used to compute only thread 0's. */
        int nested_ok = 1;
#ifdef NNK_HAVE_OPENMP
        float *C3 = check_alloc(2 * M * N), *w2 = check_alloc(2 * wl);
#pragma omp parallel num_threads(2)
        {
            const int t = omp_get_thread_num();
            if (t < 2) nnk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C3 + (size_t)t * M * N, N, w2 + (size_t)t * wl, wl);
        }
        nested_ok = memcmp(C1, C3, M * N * sizeof(float)) == 0 && memcmp(C1, C3 + M * N, M * N * sizeof(float)) == 0;
        check_free(C3), check_free(w2);
#endif
        check_record(c, nested_ok, "gemm[%s] %d%d: called inside a parallel region, bitwise equal to 1 thread", isa, ta, tb);
        check_free(w);
    }
    nnk_set_num_threads(saved);
    check_free(A), check_free(B), check_free(C1), check_free(C2);
}

void nnk_check_gemm(nnk_check *c) {
    nnk_isa isas[4];
    const int n_isa = check_isas(isas);
    const nnk_isa saved = nnk_isa_active();
    const size_t dims[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 65};
    const size_t nd = sizeof dims / sizeof dims[0];
    const float alphas[] = {1.0f, 0.0f, -0.75f}, betas[] = {0.0f, 1.0f, 0.5f};
    for (int s = 0; s < n_isa; s++) {
        nnk_set_isa(isas[s]);
        const char *isa = nnk_isa_name(isas[s]);
        check_rng rng = {42 + (uint64_t)s};
        int failures = 0;
        /* Every small shape, every transpose, with and without padding. */
        for (size_t mi = 0; mi < nd && failures < 5; mi++)
            for (size_t ni = 0; ni < nd && failures < 5; ni++)
                for (size_t ki = 0; ki < nd; ki += 3)
                    for (int tr = 0; tr < 4; tr++) {
                        const gemm_case g = make_case(tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tr & 2 ? NNK_TRANS : NNK_NO_TRANS,
                                                      dims[mi], dims[ni], dims[ki], (mi + ni + tr) % 3 == 0 ? 0 : 5,
                                                      alphas[(mi + tr) % 3], betas[(ni + ki) % 3]);
                        failures += !run_case(c, &g, &rng, isa);
                    }
        /* Larger shapes that cross the K, M and N cache blocks, primes included. */
        const size_t big[][3] = {{257, 31, 7}, {7, 257, 31}, {131, 263, 300}, {300, 45, 513},
                                 {1, 784, 256}, {4, 10, 128}, {32, 256, 784}, {129, 1030, 260}};
        for (size_t b = 0; b < sizeof big / sizeof big[0]; b++)
            for (int tr = 0; tr < 4; tr++) {
                const gemm_case g = make_case(tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tr & 2 ? NNK_TRANS : NNK_NO_TRANS,
                                              big[b][0], big[b][1], big[b][2], b % 2 ? 3 : 0, alphas[b % 3], betas[(b + tr) % 3]);
                run_case(c, &g, &rng, isa);
            }
        check_threads(c, &rng, isa);
    }
    nnk_set_isa(saved);

    /* The reference itself, on a product small enough to write out by hand. */
    const float A[] = {1, 2, 3, 4, 5, 6};       /* (2, 3) */
    const float B[] = {7, 8, 9, 10, 11, 12};    /* (3, 2) */
    float C[4] = {1, 1, 1, 1};
    nnk_sgemm_ref(NNK_NO_TRANS, NNK_NO_TRANS, 2, 2, 3, 1.0f, A, 3, B, 2, 2.0f, C, 2);
    check_record(c, C[0] == 60 && C[1] == 66 && C[2] == 141 && C[3] == 156,
                 "gemm_ref: [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]] + 2 = [[60,66],[141,156]], got [[%g,%g],[%g,%g]]",
                 C[0], C[1], C[2], C[3]);
}

/* ---- Kernel overrides: a replaced GEMM / activation is what every caller gets; removing it
 * restores the built-in kernels. ---- */

static int override_calls;

static void counting_sgemm(void *ctx, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    (*(int *)ctx)++;
    nnk_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void fill_forward(void *ctx, float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * *(const float *)ctx;
}
static void fill_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)x, (void)y;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * *(const float *)ctx;
}

void nnk_check_overrides(nnk_check *c) {
    const size_t M = 9, N = 37, K = 70;
    check_rng rng = {5};
    float *A = check_alloc(M * K), *B = check_alloc(N * K), *C = check_alloc(M * N), *R = check_alloc(M * N);
    float *bias = check_alloc(N), *Z = check_alloc(M * N);
    check_fill(&rng, A, M * K, -1, 1), check_fill(&rng, B, N * K, -1, 1), check_fill(&rng, bias, N, -1, 1);
    const size_t wl = nnk_sgemm_work_size(M, N, K, nnk_get_num_threads());
    float *w = check_alloc(wl);

    override_calls = 0;
    nnk_set_sgemm_override(counting_sgemm, &override_calls);
    check_record(c, nnk_sgemm_overridden() == 1, "override: nnk_sgemm_overridden after install");
    nnk_sgemm(NNK_NO_TRANS, NNK_TRANS, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N, w, wl);
    nnk_sgemm_ref(NNK_NO_TRANS, NNK_TRANS, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);
    check_record(c, override_calls == 1 && memcmp(C, R, M * N * sizeof(float)) == 0,
                 "override: nnk_sgemm must call the installed GEMM (calls %d) and return its result", override_calls);
    /* The fused dense forward still adds the bias and applies the activation after it. */
    nnk_dense_forward(NNK_PRECISION_FP32, C, Z, N, A, K, B, K, bias, M, N, K, NNK_ACT_RELU, 0.0f, w, wl);
    int ok = override_calls == 2;
    for (size_t i = 0; i < M * N && ok; i++) {
        const float z = R[i] + bias[i % N];
        ok = Z[i] == z && C[i] == (z > 0 ? z : 0.0f);
    }
    check_record(c, ok, "override: dense forward through a replaced GEMM must still add bias and apply relu");
    nnk_set_sgemm_override(NULL, NULL);
    nnk_sgemm(NNK_NO_TRANS, NNK_TRANS, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N, w, wl);
    check_record(c, override_calls == 2 && nnk_sgemm_overridden() == 0, "override: removing it restores the built-in GEMM");

    /* Activation kernels. */
    float scale = 3.0f, x[5] = {-2, -1, 0, 1, 2}, y[5], dy[5] = {1, 1, 1, 1, 1}, dx[5];
    check_record(c, nnk_set_act_override(NNK_ACT_TANH, fill_forward, NULL, &scale) == -1,
                 "override: a forward without a backward is refused");
    check_record(c, nnk_set_act_override((nnk_act)99, fill_forward, fill_backward, &scale) == -1,
                 "override: an unknown activation is refused");
    check_record(c, nnk_set_act_override(NNK_ACT_TANH, fill_forward, fill_backward, &scale) == 0, "override: install tanh");
    nnk_act_forward(NNK_ACT_TANH, 0, y, x, 5);
    nnk_act_backward(NNK_ACT_TANH, 0, dx, dy, x, y, 5);
    check_record(c, y[0] == -6 && y[4] == 6 && dx[2] == 3, "override: tanh must run the installed kernels (y[0] %g, dx[2] %g)",
                 y[0], dx[2]);
    nnk_act_forward(NNK_ACT_SIGMOID, 0, y, x, 5);
    check_record(c, fabs(y[2] - 0.5) < 1e-7, "override: other activations are untouched");
    nnk_set_act_override(NNK_ACT_TANH, NULL, NULL, NULL);
    nnk_act_forward(NNK_ACT_TANH, 0, y, x, 5);
    check_record(c, fabs(y[4] - tanh(2.0)) < 1e-6, "override: removing it restores tanh, got %g", y[4]);
    check_free(A), check_free(B), check_free(C), check_free(R), check_free(bias), check_free(Z), check_free(w);
}
