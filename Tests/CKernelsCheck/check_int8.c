/*
 * int8 inference: the quantizer against IEEE round-to-nearest-even and clamping worked out by
 * hand; the int8 GEMM on every path against the plain int32 triple loop, bitwise (integer sums
 * are exact), over awkward shapes, the extreme bytes (0, 255, -128, 127) and padding; the dense
 * layer against its reference twin, bitwise, with and without bias and activation, across the
 * row-block boundary; 1 and 4 threads bitwise.
 */
#include "check_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill_bytes(check_rng *r, uint8_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(check_rng_next(r) >> 56);
}
static void fill_weights(check_rng *r, int8_t *w, size_t n) {
    for (size_t i = 0; i < n; i++) w[i] = (int8_t)(uint8_t)(check_rng_next(r) >> 56);
}

static void check_quantizer(nnk_check *c, const char *isa) {
    /* inv_scale 2, zero point 10: q = clamp(round(2x + 10), 0, 255). */
    const float x[] = {0.0f, 1.25f, 1.75f, -2.25f, -10.0f, 200.0f, NAN, INFINITY, -INFINITY, 0.2499f, 122.5f, 122.75f};
    const uint8_t want[] = {10, 12, 14, 6, 0, 255, 0, 255, 0, 10, 255, 255};
    enum { K = sizeof x / sizeof x[0], REP = 3 };
    float xs[K * REP];
    uint8_t q[K * REP];
    for (int r = 0; r < REP; r++) memcpy(xs + r * K, x, sizeof x); /* 36 values: full vectors and a tail */
    nnk_quantize_u8(q, xs, K * REP, 2.0f, 10.0f);
    int ok = 1;
    for (int i = 0; i < K * REP; i++) ok &= q[i] == want[i % K];
    check_record(c, ok, "int8[%s]: quantize 2x + 10 rounds to nearest even and clamps (12.5 -> 12, 13.5 -> 14, NaN -> 0)", isa);
}

static int run_qgemm(nnk_check *c, check_rng *rng, const char *isa, size_t M, size_t N, size_t K, int extreme) {
    const size_t k4 = (K + 3) / 4 * 4, lda = k4 + (M % 3) * 4;
    uint8_t *A = malloc(M * lda + 1);
    int8_t *W = malloc(N * K + 1), *P = malloc(nnk_qweights_packed_size(N, K));
    int32_t *C = malloc(sizeof(int32_t) * M * (N + 3)), *R = malloc(sizeof(int32_t) * M * N);
    fill_bytes(rng, A, M * lda);
    fill_weights(rng, W, N * K);
    if (extreme) { /* every product at its largest magnitude */
        memset(A, 255, M * lda);
        for (size_t i = 0; i < N * K; i++) W[i] = i % 2 ? 127 : -128;
    }
    nnk_qweights_pack(P, W, K, N, K);
    for (size_t i = 0; i < M * (N + 3); i++) C[i] = 0x5a5a5a5a;
    nnk_qgemm(C, N + 3, A, lda, P, M, N, K);
    nnk_qgemm_ref(R, N, A, lda, W, K, M, N, K);
    int ok = 1;
    for (size_t i = 0; i < M && ok; i++) {
        ok = memcmp(C + i * (N + 3), R + i * N, N * sizeof(int32_t)) == 0;
        for (size_t j = N; j < N + 3 && ok; j++) ok = C[i * (N + 3) + j] == 0x5a5a5a5a;
    }
    check_record(c, ok, "int8[%s]: qgemm M=%zu N=%zu K=%zu%s equals the int32 triple loop, padding untouched", isa, M, N,
                 K, extreme ? " (extreme bytes)" : "");
    free(A), free(W), free(P), free(C), free(R);
    return ok;
}

static void check_qdense(nnk_check *c, check_rng *rng, const char *isa, size_t M, size_t N, size_t K, nnk_act act,
                         int bias) {
    float *X = check_alloc(M * K), *Y = check_alloc(M * N), *R = check_alloc(M * N), *scale = check_alloc(N);
    float *b = check_alloc(N);
    int8_t *W = malloc(N * K), *P = malloc(nnk_qweights_packed_size(N, K));
    int32_t *colsum = malloc(sizeof(int32_t) * N), *acc = malloc(sizeof(int32_t) * M * N);
    uint8_t *aq = malloc(M * K);
    check_fill(rng, X, M * K, -1.5f, 2.5f);
    check_fill(rng, b, N, -1, 1);
    fill_weights(rng, W, N * K);
    for (size_t j = 0; j < N; j++) {
        int32_t s = 0;
        for (size_t k = 0; k < K; k++) s += W[j * K + k];
        colsum[j] = s;
        scale[j] = 0.0157f * (0.001f + 0.01f * (float)(j % 7)) * 0.5f;
    }
    nnk_qweights_pack(P, W, K, N, K);
    const size_t wl = nnk_qdense_work_size(M, N, K);
    void *work = malloc(wl);
    const float in_scale = 4.0f / 255.0f;
    const int32_t zp = 96;
    nnk_qdense_forward(Y, N, X, K, M, N, K, P, colsum, scale, bias ? b : NULL, in_scale, zp, act, 0.1f, work, wl);
    nnk_qdense_forward_ref(R, N, X, K, M, N, K, W, colsum, scale, bias ? b : NULL, in_scale, zp, act, 0.1f, aq, acc);
    check_record(c, memcmp(Y, R, M * N * sizeof(float)) == 0, "int8[%s]: qdense M=%zu N=%zu K=%zu act %d bias %d bitwise the twin",
                 isa, M, N, K, (int)act, bias);
    /* And close to the fp32 layer it stands for (the quantization error: half a step of each). */
    double worst = 0;
    for (size_t i = 0; i < M && act == NNK_ACT_IDENTITY; i++)
        for (size_t j = 0; j < N; j++) {
            double s = bias ? b[j] : 0;
            for (size_t k = 0; k < K; k++) s += (double)X[i * K + k] * (scale[j] / in_scale) * W[j * K + k];
            const double clip = 0; /* inputs in [-1.5, 2.5] fit the range [-96, 159] * in_scale exactly */
            worst = fmax(worst, fabs(s - R[i * N + j]) - clip);
        }
    double bound = 0;
    for (size_t j = 0; j < N; j++) {
        double wsum = 0;
        for (size_t k = 0; k < K; k++) wsum += fabs((double)(scale[j] / in_scale) * W[j * K + k]);
        bound = fmax(bound, 0.5 * in_scale * wsum * 1.001 + 1e-4);
    }
    if (act == NNK_ACT_IDENTITY)
        check_record(c, worst <= bound, "int8[%s]: qdense within the input rounding of the exact layer (%g > %g)", isa, worst, bound);
    check_free(X), check_free(Y), check_free(R), check_free(scale), check_free(b);
    free(W), free(P), free(colsum), free(acc), free(aq), free(work);
}

static void check_threads(nnk_check *c, check_rng *rng, const char *isa) {
    const size_t M = 301, N = 97, K = 255;
    uint8_t *A = malloc(M * 256);
    int8_t *W = malloc(N * K), *P = malloc(nnk_qweights_packed_size(N, K));
    int32_t *C1 = malloc(sizeof(int32_t) * M * N), *C4 = malloc(sizeof(int32_t) * M * N);
    fill_bytes(rng, A, M * 256), fill_weights(rng, W, N * K);
    nnk_qweights_pack(P, W, K, N, K);
    const int saved = nnk_get_num_threads();
    nnk_set_num_threads(1);
    nnk_qgemm(C1, N, A, 256, P, M, N, K);
    nnk_set_num_threads(4);
    nnk_qgemm(C4, N, A, 256, P, M, N, K);
    nnk_set_num_threads(saved);
    check_record(c, memcmp(C1, C4, sizeof(int32_t) * M * N) == 0, "int8[%s]: 1 and 4 threads bitwise", isa);
    free(A), free(W), free(P), free(C1), free(C4);
}

void nnk_check_int8(nnk_check *c) {
    /* The twin by hand: [1 2 3 4 5] . [1 -1 2 -2 3] = 1 - 2 + 6 - 8 + 15 = 12. */
    const uint8_t a[] = {1, 2, 3, 4, 5};
    const int8_t w[] = {1, -1, 2, -2, 3};
    int32_t r = 0;
    nnk_qgemm_ref(&r, 1, a, 5, w, 5, 1, 1, 5);
    check_record(c, r == 12, "qgemm_ref: [1 2 3 4 5] . [1 -1 2 -2 3] = 12, got %d", r);

    nnk_isa isas[4];
    const int n_isa = check_isas(isas);
    const nnk_isa saved = nnk_isa_active();
    for (int s = 0; s < n_isa; s++) {
        nnk_set_isa(isas[s]);
        const char *isa = nnk_isa_name(isas[s]);
        printf("    int8 on %s: %s\n", isa, nnk_int8_accelerated() ? "SIMD kernel" : "portable loop");
        check_rng rng = {91 + (uint64_t)s};
        check_quantizer(c, isa);
        const size_t ms[] = {1, 2, 7, 8, 9, 33}, ns[] = {1, 5, 31, 32, 33, 70}, ks[] = {1, 3, 4, 5, 17, 64, 255, 784};
        int failures = 0;
        for (size_t i = 0; i < 6 && failures < 3; i++)
            for (size_t j = 0; j < 6; j++)
                for (size_t k = 0; k < 8; k += (i + j) % 2 + 1) failures += !run_qgemm(c, &rng, isa, ms[i], ns[j], ks[k], 0);
        run_qgemm(c, &rng, isa, 9, 33, 784, 1);
        run_qgemm(c, &rng, isa, 130, 256, 784, 0);
        const nnk_act acts[] = {NNK_ACT_IDENTITY, NNK_ACT_RELU, NNK_ACT_TANH};
        for (int ai = 0; ai < 3; ai++) {
            check_qdense(c, &rng, isa, 1, 37, 29, acts[ai], ai != 1);
            check_qdense(c, &rng, isa, 300, 45, 70, acts[ai], ai != 2); /* three row blocks, the last short */
        }
        check_threads(c, &rng, isa);
    }
    nnk_set_isa(saved);
}
