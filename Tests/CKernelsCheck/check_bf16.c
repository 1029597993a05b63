/*
 * bf16 products (NNK_PRECISION_BF16): the rounding against IEEE round-to-nearest-even worked out
 * by hand; nnk_gemm in bf16 on every path against a double-precision sum of the bf16-rounded
 * inputs (the definition, computed here), over the fp32 group's awkward shapes and transposes;
 * proof that the kernel really rounds (a product fp32 would get differently); 1 and 4 threads
 * bitwise; the dense and conv2d steps in bf16 against their fp32 reference twins fed with
 * pre-rounded inputs (a product of two bf16 values is exact in fp32, so only the order of the
 * sums differs). Paths without a bf16 kernel report so and run the reference twin.
 *
 * Tolerance: the fp32 group's dot-product bound, 2 (K + 2) 2^-23 sum |alpha a b| + |beta c|,
 * over the rounded inputs; inputs are drawn from [-1, 1), far from the subnormals that
 * vdpbf16ps flushes.
 */
#include "check_util.h"

#include <stdio.h>
#include <string.h>

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Round to nearest, ties to even, at bit 16: the IEEE rule on hand-made bit patterns. */
static void check_rounding(nnk_check *c) {
    static const struct { uint32_t in; uint16_t want; } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 exact */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: a tie, even stays down */
        {0x3f818000u, 0x3f82}, /* 1 + 3 * 2^-8: a tie, odd goes up */
        {0x3f808001u, 0x3f81}, /* just above the tie */
        {0x3f807fffu, 0x3f80}, /* just below */
        {0xbf80c000u, 0xbf81}, /* negative, above the tie */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX rounds to infinity */
        {0x7f800000u, 0x7f80}, /* +inf */
        {0x80000000u, 0x8000}, /* -0 */
        {0x00000001u, 0x0000}, /* the smallest subnormal rounds to 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint16_t got = nnk_bf16_from_float(from_bits(cases[i].in));
        check_record(c, got == cases[i].want, "bf16: 0x%08x rounds to 0x%04x, want 0x%04x", cases[i].in, got,
                     cases[i].want);
    }
    const uint16_t nan = nnk_bf16_from_float(from_bits(0x7f800001u)); /* a signalling NaN whose payload is below bit 16 */
    check_record(c, (nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0, "bf16: NaN must stay NaN, got 0x%04x", nan);
    check_record(c, bits(nnk_bf16_to_float(0x4049)) == 0x40490000u, "bf16: 0x4049 widens to 0x40490000");
    check_record(c, nnk_bf16_round(3.14159265f) == 3.140625f, "bf16: pi rounds to 3.140625, got %.9g",
                 nnk_bf16_round(3.14159265f));
}

/* op(A) (M, K) and op(B) (K, N) element access, for any transpose. */
static float at(nnk_trans t, const float *X, size_t ld, size_t r, size_t col) {
    return t == NNK_NO_TRANS ? X[r * ld + col] : X[col * ld + r];
}

static float same(float x) { return x; }

/* One product in bf16 on the active path against the definition; 1 when within the bound. */
static int run_case(nnk_check *c, check_rng *rng, const char *isa, nnk_trans ta, nnk_trans tb, size_t M, size_t N,
                    size_t K, size_t pad, float alpha, float beta) {
    const size_t lda = (ta == NNK_NO_TRANS ? K : M) + pad, ldb = (tb == NNK_NO_TRANS ? N : K) + pad, ldc = N + pad;
    const size_t arows = ta == NNK_NO_TRANS ? M : K, brows = tb == NNK_NO_TRANS ? K : N;
    float *A = check_alloc(arows * lda + 1), *B = check_alloc(brows * ldb + 1), *C = check_alloc(M * ldc + 1);
    float *C0 = check_alloc(M * ldc + 1);
    check_fill(rng, A, arows * lda, -1, 1), check_fill(rng, B, brows * ldb, -1, 1), check_fill(rng, C0, M * ldc, -1, 1);
    memcpy(C, C0, (M * ldc + 1) * sizeof(float));
    const size_t wl = nnk_sgemm_work_size(M, N, K, nnk_get_num_threads());
    float *work = check_alloc(wl);
    nnk_gemm(NNK_PRECISION_BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, work, wl);
    /* The shapes the fp32 path runs unpacked stay fp32 (nnk_gemm_precision): then no rounding. */
    const int rounded = nnk_gemm_precision(NNK_PRECISION_BF16, ta, tb, M, N, K) == NNK_PRECISION_BF16;
    float (*r)(float) = rounded ? nnk_bf16_round : same;
    int ok = 1;
    for (size_t i = 0; i < M && ok; i++)
        for (size_t j = 0; j < N && ok; j++) {
            double want = 0, mag = 0;
            for (size_t p = 0; p < K; p++) {
                const double t = (double)r(at(ta, A, lda, i, p)) * r(at(tb, B, ldb, p, j));
                want += t, mag += fabs(t);
            }
            const double cin = beta == 0.0f ? 0.0 : (double)beta * C0[i * ldc + j];
            want = alpha * want + cin;
            const double bound = 2.0 * ((double)K + 2.0) * 0x1.0p-23 * (fabs(alpha) * mag + fabs(cin)) + 1e-30;
            ok = check_close(C[i * ldc + j], want, 0.0, bound);
            if (!ok)
                check_record(c, 0, "gemm bf16[%s] %c%c M=%zu N=%zu K=%zu pad=%zu (%s): C[%zu,%zu]=%.9g want %.9g", isa,
                             ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, pad, rounded ? "bf16" : "fp32", i, j,
                             C[i * ldc + j], want);
        }
    for (size_t i = 0; i < M && ok; i++) /* padding between rows and the element after C untouched */
        for (size_t j = N; j < ldc && ok; j++) ok = memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float)) == 0;
    if (ok) ok = memcmp(&C[M * ldc], &C0[M * ldc], sizeof(float)) == 0;
    check_record(c, ok, "gemm bf16[%s] M=%zu N=%zu K=%zu: padding and the element after C untouched", isa, M, N, K);
    check_free(A), check_free(B), check_free(C), check_free(C0), check_free(work);
    return ok;
}

/* A = 1 + 2^-9 everywhere rounds to 1 in bf16, so C = K exactly (fp32 would give K (1 + 2^-9)). */
static void check_really_rounds(nnk_check *c, const char *isa) {
    const size_t M = 19, N = 37, K = 301;
    float *A = check_alloc(M * K), *B = check_alloc(K * N), *C = check_alloc(M * N);
    for (size_t i = 0; i < M * K; i++) A[i] = 1.0f + 0x1.0p-9f;
    for (size_t i = 0; i < K * N; i++) B[i] = 1.0f;
    const size_t wl = nnk_sgemm_work_size(M, N, K, nnk_get_num_threads());
    float *w = check_alloc(wl);
    nnk_gemm(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_NO_TRANS, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, w, wl);
    int ok = 1;
    for (size_t i = 0; i < M * N; i++) ok &= C[i] == (float)K;
    check_record(c, ok, "gemm bf16[%s]: (1 + 2^-9) * 1 summed %zu times must be %zu exactly, got %.9g", isa, K, K, C[0]);
    check_free(A), check_free(B), check_free(C), check_free(w);
}

static void check_threads(nnk_check *c, check_rng *rng, const char *isa) {
    const size_t M = 97, N = 131, K = 1543; /* K crosses the 768-depth block and is odd */
    float *A = check_alloc(M * K), *B = check_alloc(N * K), *C1 = check_alloc(M * N), *C2 = check_alloc(M * N);
    check_fill(rng, A, M * K, -1, 1), check_fill(rng, B, N * K, -1, 1);
    const int saved = nnk_get_num_threads();
    for (int tr = 0; tr < 4; tr++) {
        const nnk_trans ta = tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tb = tr & 2 ? NNK_TRANS : NNK_NO_TRANS;
        const size_t lda = ta == NNK_NO_TRANS ? K : M, ldb = tb == NNK_NO_TRANS ? N : K;
        nnk_set_num_threads(4);
        const size_t wl = nnk_sgemm_work_size(M, N, K, 4);
        float *w = check_alloc(wl);
        nnk_gemm(NNK_PRECISION_BF16, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N, w, wl);
        nnk_set_num_threads(1);
        nnk_gemm(NNK_PRECISION_BF16, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N, w, nnk_sgemm_work_size(M, N, K, 1));
        check_record(c, memcmp(C1, C2, M * N * sizeof(float)) == 0, "gemm bf16[%s] %d%d: 1 and 4 threads bitwise equal",
                     isa, ta, tb);
        check_free(w);
    }
    nnk_set_num_threads(saved);
    check_free(A), check_free(B), check_free(C1), check_free(C2);
}

static float max_abs_diff(const float *x, const float *y, size_t n, double *scale) {
    double worst = 0, big = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)x[i] - y[i])), big = fmax(big, fabs((double)y[i]));
    *scale = big;
    return (float)worst;
}

static void round_all(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = nnk_bf16_round(src[i]);
}

/* Dense forward and backward in bf16 against the fp32 reference twin on pre-rounded inputs. */
static void check_dense_bf16(nnk_check *c, check_rng *rng, const char *isa, size_t M) {
    const size_t N = 53, K = 301;
    float *X = check_alloc(M * K), *W = check_alloc(N * K), *b = check_alloc(N), *Y = check_alloc(M * N);
    float *Xr = check_alloc(M * K), *Wr = check_alloc(N * K), *R = check_alloc(M * N);
    check_fill(rng, X, M * K, -1, 1), check_fill(rng, W, N * K, -1, 1), check_fill(rng, b, N, -1, 1);
    round_all(Xr, X, M * K), round_all(Wr, W, N * K);
    const size_t wl = nnk_dense_backward_work_size(M, N, K, nnk_get_num_threads()) + nnk_sgemm_work_size(M, N, K, nnk_get_num_threads());
    float *w = check_alloc(wl);
    nnk_dense_forward(NNK_PRECISION_BF16, Y, NULL, N, X, K, W, K, b, M, N, K, NNK_ACT_IDENTITY, 0, w, wl);
    const int fwd_bf16 = nnk_gemm_precision(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_TRANS, M, N, K) == NNK_PRECISION_BF16;
    nnk_sgemm_ref(NNK_NO_TRANS, NNK_TRANS, M, N, K, 1.0f, fwd_bf16 ? Xr : X, K, fwd_bf16 ? Wr : W, K, 0.0f, R, N);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) R[i * N + j] += b[j];
    double scale;
    float d = max_abs_diff(Y, R, M * N, &scale);
    check_record(c, d <= 1e-5 * (scale + 1), "dense bf16[%s] M=%zu forward differs from the %s reference by %g", isa, M,
                 fwd_bf16 ? "rounded" : "fp32", d);
    /* Backward: dW = dZ^T X and dX = dZ W with dZ, X and W rounded. */
    float *dY = check_alloc(M * N), *dYr = check_alloc(M * N), *dW = check_alloc(N * K), *dX = check_alloc(M * K);
    float *rW = check_alloc(N * K), *rX = check_alloc(M * K), *db = check_alloc(N);
    check_fill(rng, dY, M * N, -1, 1);
    round_all(dYr, dY, M * N);
    nnk_dense_backward(NNK_PRECISION_BF16, dX, dW, db, dY, N, X, K, W, K, NULL, Y, M, N, K, NNK_ACT_IDENTITY, 0, 0, w, wl);
    nnk_sgemm_ref(NNK_TRANS, NNK_NO_TRANS, N, K, M, 1.0f, dYr, N, Xr, K, 0.0f, rW, K);
    nnk_sgemm_ref(NNK_NO_TRANS, NNK_NO_TRANS, M, K, N, 1.0f, dYr, N, Wr, K, 0.0f, rX, K);
    d = max_abs_diff(dW, rW, N * K, &scale);
    check_record(c, d <= 1e-5 * (scale + 1), "dense bf16[%s] dW differs from the rounded reference by %g", isa, d);
    d = max_abs_diff(dX, rX, M * K, &scale);
    check_record(c, d <= 1e-5 * (scale + 1), "dense bf16[%s] dX differs from the rounded reference by %g", isa, d);
    double dbw = 0; /* the bias gradient stays fp32: sums of the unrounded dY */
    for (size_t j = 0; j < N; j++) {
        double s = 0;
        for (size_t i = 0; i < M; i++) s += dY[i * N + j];
        dbw = fmax(dbw, fabs(s - db[j]));
    }
    check_record(c, dbw <= 1e-4, "dense bf16[%s] db must be the fp32 column sums of dY, off by %g", isa, dbw);
    check_free(X), check_free(W), check_free(b), check_free(Y), check_free(Xr), check_free(Wr), check_free(R);
    check_free(dY), check_free(dYr), check_free(dW), check_free(dX), check_free(rW), check_free(rX), check_free(db);
    check_free(w);
}

/* Convolution forward and backward in bf16 against the direct-loop twins on pre-rounded inputs. */
static void check_conv_bf16(nnk_check *c, check_rng *rng, const char *isa) {
    static const nnk_conv2d_shape shapes[] = {
        {5, 3, 11, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* K 27: odd depth */
        {4, 16, 8, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2},  /* grouped, samples blocked */
        {3, 6, 9, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1},   /* 1x1 direct */
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const nnk_conv2d_shape *s = &shapes[si];
        size_t oh, ow;
        nnk_conv2d_output_size(s, &oh, &ow);
        const size_t xn = s->batch * s->in_channels * s->in_h * s->in_w, yn = s->batch * s->out_channels * oh * ow;
        const size_t wn = s->out_channels * (s->in_channels / s->groups) * s->kernel_h * s->kernel_w;
        float *x = check_alloc(xn), *xr = check_alloc(xn), *wt = check_alloc(wn), *wr = check_alloc(wn);
        float *b = check_alloc(s->out_channels), *y = check_alloc(yn), *ry = check_alloc(yn);
        float *dy = check_alloc(yn), *dyr = check_alloc(yn), *dx = check_alloc(xn), *rdx = check_alloc(xn);
        float *dw = check_alloc(wn), *rdw = check_alloc(wn);
        check_fill(rng, x, xn, -1, 1), check_fill(rng, wt, wn, -1, 1), check_fill(rng, b, s->out_channels, -1, 1);
        check_fill(rng, dy, yn, -1, 1);
        round_all(xr, x, xn), round_all(wr, wt, wn), round_all(dyr, dy, yn);
        const int th = nnk_get_num_threads();
        const size_t wl = nnk_conv2d_forward_work_size(s, th) + nnk_conv2d_backward_work_size(s, th);
        float *work = check_alloc(wl);
        nnk_conv2d_forward(NNK_PRECISION_BF16, y, NULL, x, wt, b, s, NNK_ACT_IDENTITY, 0, work, wl);
        nnk_conv2d_forward_ref(ry, NULL, xr, wr, b, s, NNK_ACT_IDENTITY, 0);
        double scale;
        float d = max_abs_diff(y, ry, yn, &scale);
        check_record(c, d <= 1e-5 * (scale + 1), "conv bf16[%s] case %zu forward differs by %g", isa, si, d);
        nnk_conv2d_backward(NNK_PRECISION_BF16, dx, dw, NULL, dy, x, wt, NULL, y, s, NNK_ACT_IDENTITY, 0, 0, work, wl);
        nnk_conv2d_backward_ref(rdx, rdw, NULL, dyr, xr, wr, NULL, ry, s, NNK_ACT_IDENTITY, 0, 0);
        /* dw = dz col^T is an X * W^T product with out_channels / groups rows: fp32 when that
         * is few (nnk_gemm_precision decides on the rows alone there), so compare with the
         * unrounded twin then. */
        const size_t og = s->out_channels / s->groups, kk = (s->in_channels / s->groups) * s->kernel_h * s->kernel_w;
        if (nnk_gemm_precision(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_TRANS, og, kk, oh * ow) == NNK_PRECISION_FP32)
            nnk_conv2d_backward_ref(NULL, rdw, NULL, dy, x, wt, NULL, ry, s, NNK_ACT_IDENTITY, 0, 0);
        d = max_abs_diff(dw, rdw, wn, &scale);
        check_record(c, d <= 1e-5 * (scale + 1), "conv bf16[%s] case %zu dw differs by %g", isa, si, d);
        d = max_abs_diff(dx, rdx, xn, &scale);
        check_record(c, d <= 1e-5 * (scale + 1), "conv bf16[%s] case %zu dx differs by %g", isa, si, d);
        check_free(x), check_free(xr), check_free(wt), check_free(wr), check_free(b), check_free(y), check_free(ry);
        check_free(dy), check_free(dyr), check_free(dx), check_free(rdx), check_free(dw), check_free(rdw);
        check_free(work);
    }
}

void nnk_check_bf16(nnk_check *c) {
    check_rounding(c);
    /* The reference twin by hand: 1 + 2^-9 rounds to 1, 3 and 5 are exact. */
    const float A[] = {1.0f + 0x1.0p-9f, 3.0f}, B[] = {5.0f, 1.0f};
    float C[1] = {1.0f};
    nnk_sbgemm_ref(NNK_NO_TRANS, NNK_NO_TRANS, 1, 1, 2, 1.0f, A, 2, B, 1, 2.0f, C, 1);
    check_record(c, C[0] == 10.0f, "sbgemm_ref: [1 + 2^-9, 3] . [5, 1] + 2 * 1 = 5 + 3 + 2 = 10, got %.9g", C[0]);

    nnk_isa isas[4];
    const int n_isa = check_isas(isas);
    const nnk_isa saved = nnk_isa_active();
    const size_t dims[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 65};
    const size_t nd = sizeof dims / sizeof dims[0];
    int with_kernel = 0;
    for (int s = 0; s < n_isa; s++) {
        nnk_set_isa(isas[s]);
        const char *isa = nnk_isa_name(isas[s]);
        const int has = nnk_precision_supported(NNK_PRECISION_BF16);
        with_kernel += has;
        printf("    bf16 on %s: %s\n", isa, has ? "vdpbf16ps kernel" : "no kernel (reference twin)");
        check_rng rng = {77 + (uint64_t)s};
        int failures = 0;
        /* Without a kernel every product is the reference twin, the same code on every path:
         * a few shapes show the fallback is taken; the sweep is for the kernel. */
        const size_t sweep = has ? nd : 3;
        for (size_t mi = 0; mi < sweep && failures < 5; mi++)
            for (size_t ni = 0; ni < sweep && failures < 5; ni++)
                for (size_t ki = 0; ki < sweep; ki += 2)
                    for (int tr = 0; tr < 4; tr++)
                        failures += !run_case(c, &rng, isa, tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tr & 2 ? NNK_TRANS : NNK_NO_TRANS,
                                              dims[mi], dims[ni], dims[ki], (mi + ni + tr) % 3 == 0 ? 0 : 5,
                                              (mi + tr) % 2 ? -0.75f : 1.0f, (ni + ki) % 3 == 0 ? 0.0f : 0.5f);
        const size_t big[][3] = {{257, 31, 7}, {7, 257, 31}, {131, 263, 1543}, {32, 256, 784}, {256, 784, 32},
                                 {129, 1030, 260}, {4, 10, 128}};
        for (size_t b = 0; b < (has ? sizeof big / sizeof big[0] : 1); b++)
            for (int tr = 0; tr < 4; tr++)
                run_case(c, &rng, isa, tr & 1 ? NNK_TRANS : NNK_NO_TRANS, tr & 2 ? NNK_TRANS : NNK_NO_TRANS, big[b][0],
                         big[b][1], big[b][2], b % 2 ? 3 : 0, 1.0f, b % 3 == 0 ? 0.0f : 1.0f);
        check_really_rounds(c, isa);
        if (has) {
            check_threads(c, &rng, isa);
            check_record(c, nnk_gemm_precision(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_TRANS, 32, 256, 784) == NNK_PRECISION_FP32 &&
                             nnk_gemm_precision(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_TRANS, 128, 256, 784) == NNK_PRECISION_BF16 &&
                             nnk_gemm_precision(NNK_PRECISION_BF16, NNK_TRANS, NNK_NO_TRANS, 32, 256, 784) == NNK_PRECISION_BF16,
                         "gemm bf16[%s]: X * W^T with 32 rows stays fp32, with 128 rows and other transposes bf16", isa);
        } else {
            check_record(c, nnk_gemm_precision(NNK_PRECISION_BF16, NNK_NO_TRANS, NNK_TRANS, 32, 256, 784) == NNK_PRECISION_BF16,
                         "gemm bf16[%s]: without a kernel every bf16 product is the reference twin's", isa);
        }
        check_record(c, nnk_gemm_precision(NNK_PRECISION_FP32, NNK_NO_TRANS, NNK_NO_TRANS, 64, 64, 64) == NNK_PRECISION_FP32,
                     "gemm[%s]: fp32 stays fp32", isa);
        check_dense_bf16(c, &rng, isa, 37); /* forward unpacked in fp32 where the path has the kernel */
        check_dense_bf16(c, &rng, isa, 97);
        check_conv_bf16(c, &rng, isa);
    }
    nnk_set_isa(saved);
    /* Only the avx512 path can have the kernel, and it has it exactly when the CPU has AVX512_BF16. */
    check_record(c, nnk_precision_supported(NNK_PRECISION_FP32) == 1, "fp32 is always supported");
    check_record(c, nnk_precision_supported((nnk_precision)7) == 0, "an unknown precision is not supported");
    check_record(c, with_kernel <= 1, "at most one path (avx512) has a bf16 kernel, %d do", with_kernel);
}
