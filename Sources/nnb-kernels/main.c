#define _POSIX_C_SOURCE 200809L /* posix_memalign, clock_gettime, popen, mkstemp */
/*
 * nnb-kernels: the CKernels self-check and GEMM benchmark.
 *
 *   nnb-kernels info             ISA in use, OpenMP, threads
 *   nnb-kernels check [GROUP]    run the kernel test suite on every ISA path this CPU has
 *   nnb-kernels bench [--quick]  GFLOP/s of square GEMMs and of the 784-256-128-10 network's
 *                                products, beside numpy (float32 @, OpenBLAS) timed in the same run
 *   nnb-kernels bench-conv [--quick]  GFLOP/s of conv2d forward and backward on LeNet- and
 *                                small-CNN-sized layers, on all threads and on one, beside the
 *                                direct-loop twin and one GEMM of the same flops
 *
 * Build it in release mode for figures: swift run -c release nnb-kernels bench
 */
#include "CKernels.h"
#include "CKernelsCheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench_shape {
    const char *label;
    nnk_trans ta, tb;
    size_t M, N, K;
} bench_shape;

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    return p;
}

/* Median seconds of one product in `prec` over `samples` samples of enough calls to last ~20 ms. */
static double time_gemm(const bench_shape *s, nnk_precision prec, int samples) {
    const size_t arows = s->ta == NNK_NO_TRANS ? s->M : s->K, acols = s->ta == NNK_NO_TRANS ? s->K : s->M;
    const size_t brows = s->tb == NNK_NO_TRANS ? s->K : s->N, bcols = s->tb == NNK_NO_TRANS ? s->N : s->K;
    float *A = alloc_floats(arows * acols), *B = alloc_floats(brows * bcols), *C = alloc_floats(s->M * s->N);
    const size_t wl = nnk_sgemm_work_size(s->M, s->N, s->K, nnk_get_num_threads());
    float *W = alloc_floats(wl);
    if (!A || !B || !C || !W) {
        free(A), free(B), free(C), free(W);
        return NAN;
    }
    for (size_t i = 0; i < arows * acols; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < brows * bcols; i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    const double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    int reps = (int)(0.02 * 100e9 / (flops + 1));
    if (reps < 1) reps = 1;
    double *t = malloc(sizeof(double) * (size_t)samples);
    nnk_gemm(prec, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, acols, B, bcols, 0.0f, C, s->N, W, wl); /* warm up */
    for (int k = 0; k < samples; k++) {
        const double t0 = now_s();
        for (int r = 0; r < reps; r++)
            nnk_gemm(prec, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, acols, B, bcols, 0.0f, C, s->N, W, wl);
        t[k] = (now_s() - t0) / reps;
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    const double median = t[samples / 2];
    free(t), free(A), free(B), free(C), free(W);
    return median;
}

/* The peer: numpy times the same product (A.T / B.T are views, so OpenBLAS gets transpose
 * flags, not copies) and prints its median. It runs right after our own timing of the same
 * shape so both see the same machine load. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are cleared
 * for the peer alone so OpenBLAS picks its best kernel for this CPU. */
static const char *numpy_script =
    "import sys, time\n"
    "import numpy as np\n"
    "ta, tb, M, N, K, samples = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])\n"
    "a = np.random.rand(*((K, M) if ta == 'T' else (M, K))).astype(np.float32)\n"
    "b = np.random.rand(*((N, K) if tb == 'T' else (K, N))).astype(np.float32)\n"
    "a = a.T if ta == 'T' else a\n"
    "b = b.T if tb == 'T' else b\n"
    "reps = max(1, int(0.02 * 100e9 / (2.0 * M * N * K + 1)))\n"
    "a @ b\n"
    "ts = []\n"
    "for _ in range(samples):\n"
    "    t0 = time.perf_counter()\n"
    "    for _ in range(reps): a @ b\n"
    "    ts.append((time.perf_counter() - t0) / reps)\n"
    "ts.sort(); print(ts[len(ts) // 2], flush=True)\n";

/* Writes the peer script to a temporary file; returns 0 on success. */
static int write_numpy_script(char *path) {
    const int fd = mkstemp(path);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) return -1;
    fputs(numpy_script, f);
    return fclose(f);
}

/* numpy's median seconds for one product; NaN when python3 or numpy is unavailable. */
static double time_numpy(const char *script, const bench_shape *s, int samples, int threads) {
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d "
             "python3 %s %c %c %zu %zu %zu %d 2>/dev/null",
             threads, threads, script, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K, samples);
    FILE *p = popen(cmd, "r");
    if (!p) return NAN;
    char line[128];
    const double t = fgets(line, sizeof line, p) ? strtod(line, NULL) : NAN;
    pclose(p);
    return t > 0 ? t : NAN;
}

static int bench(int quick) {
    enum { MAX_SHAPES = 64 };
    bench_shape shapes[MAX_SHAPES];
    size_t n = 0;
    static char labels[MAX_SHAPES][48];
    const size_t squares[] = {64, 128, 256, 512, 1024, 2048};
    for (size_t i = 0; i < sizeof squares / sizeof squares[0]; i++) {
        if (quick && squares[i] > 1024) continue;
        snprintf(labels[n], sizeof labels[n], "square %zu^3 (NN)", squares[i]);
        shapes[n] = (bench_shape){labels[n], NNK_NO_TRANS, NNK_NO_TRANS, squares[i], squares[i], squares[i]};
        n++;
    }
    const size_t batches[] = {32, 128, 256}, layers[][2] = {{784, 256}, {256, 128}, {128, 10}};
    for (size_t b = 0; b < 3; b++)
        for (size_t l = 0; l < 3; l++) {
            const size_t B = batches[b], in = layers[l][0], out = layers[l][1];
            snprintf(labels[n], sizeof labels[n], "b%zu %zu->%zu fwd X*W^T", B, in, out);
            shapes[n] = (bench_shape){labels[n], NNK_NO_TRANS, NNK_TRANS, B, out, in};
            n++;
            snprintf(labels[n], sizeof labels[n], "b%zu %zu->%zu dW=dY^T*X", B, in, out);
            shapes[n] = (bench_shape){labels[n], NNK_TRANS, NNK_NO_TRANS, out, in, B};
            n++;
            snprintf(labels[n], sizeof labels[n], "b%zu %zu->%zu dX=dY*W", B, in, out);
            shapes[n] = (bench_shape){labels[n], NNK_NO_TRANS, NNK_NO_TRANS, B, in, out};
            n++;
        }
    const int samples = quick ? 5 : 11, threads = nnk_get_num_threads();
    printf("CKernels GEMM benchmark: ISA %s, OpenMP %s, %d thread%s; median of %d samples; "
           "peer numpy (float32 @, OpenBLAS, %d thread%s)\n",
           nnk_isa_name(nnk_isa_active()), nnk_openmp_enabled() ? "on" : "off", threads, threads == 1 ? "" : "s",
           samples, threads, threads == 1 ? "" : "s");
    const double peak = nnk_fma_peak_gflops(threads, 0.5);
    const int bf16 = nnk_precision_supported(NNK_PRECISION_BF16);
    printf("measured FP32 FMA peak %.1f GFLOP/s on %d thread%s; bf16 (vdpbf16ps, fp32 accumulation): %s\n", peak, threads,
           threads == 1 ? "" : "s", bf16 ? "measured beside fp32" : "not on this path");
    char script[] = "/tmp/nnb-numpy-peer-XXXXXX";
    const int have_script = write_numpy_script(script) == 0;
    printf("%-30s %12s %6s %12s %8s", "product (M x N x K)", "nnb GFLOP/s", "peak", "numpy", "ratio");
    if (bf16) printf(" %12s %9s", "bf16 GFLOP/s", "bf16/fp32");
    printf("\n");
    double ratios[MAX_SHAPES];
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        const double flops = 2.0 * (double)shapes[i].M * (double)shapes[i].N * (double)shapes[i].K;
        const double ours = flops / time_gemm(&shapes[i], NNK_PRECISION_FP32, samples) / 1e9;
        const double theirs = have_script ? flops / time_numpy(script, &shapes[i], samples, threads) / 1e9 : NAN;
        printf("%-30s %12.1f %5.0f%% %12.1f %7.2fx", shapes[i].label, ours, 100 * ours / peak, theirs, ours / theirs);
        if (bf16) {
            const double half = flops / time_gemm(&shapes[i], NNK_PRECISION_BF16, samples) / 1e9;
            printf(" %12.1f %8.2fx", half, half / ours);
        }
        printf("\n");
        if (theirs > 0) ratios[nr++] = ours / theirs;
        fflush(stdout);
    }
    if (have_script) remove(script);
    if (nr > 0) {
        qsort(ratios, nr, sizeof(double), cmp_double);
        printf("median ratio over %zu products: %.2fx (min %.2fx, max %.2fx)\n", nr, ratios[nr / 2], ratios[0], ratios[nr - 1]);
    } else {
        printf("numpy peer unavailable (python3 with numpy not found): no ratios\n");
    }
    return 0;
}

typedef struct conv_bench {
    const char *label;
    nnk_conv2d_shape s;
} conv_bench;

/* Median seconds of fn(ctx) over `samples` (at most 16) samples of enough calls to last ~20 ms,
 * after one call that warms up and sets that count. */
static double median_time(void (*fn)(void *), void *ctx, int samples) {
    const double t0 = now_s();
    fn(ctx); /* warm up, and the estimate */
    const double once = now_s() - t0;
    int reps = once > 0 ? (int)(0.02 / once) : 1;
    if (reps < 1) reps = 1;
    double t[16];
    if (samples > 16) samples = 16;
    for (int k = 0; k < samples; k++) {
        const double a = now_s();
        for (int r = 0; r < reps; r++) fn(ctx);
        t[k] = (now_s() - a) / reps;
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    return t[samples / 2];
}

typedef struct conv_ctx {
    const nnk_conv2d_shape *s;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *work, *A, *B, *C;
    size_t wl, y_len, gm, gn, gk, gwl;
} conv_ctx;

static void conv_fwd(void *p) {
    conv_ctx *c = p;
    nnk_conv2d_forward(NNK_PRECISION_FP32, c->y, NULL, c->x, c->w, c->b, c->s, NNK_ACT_RELU, 0, c->work, c->wl);
}

static void conv_bwd(void *p) {
    conv_ctx *c = p;
    memcpy(c->dy, c->y, c->y_len * sizeof(float)); /* a fresh dy each call (the backward overwrites it) */
    nnk_conv2d_backward(NNK_PRECISION_FP32, c->dx, c->dw, c->db, c->dy, c->x, c->w, NULL, c->y, c->s, NNK_ACT_RELU, 0, 0, c->work, c->wl);
}

static void conv_ref(void *p) {
    conv_ctx *c = p;
    nnk_conv2d_forward_ref(c->y, NULL, c->x, c->w, c->b, c->s, NNK_ACT_RELU, 0);
}

static void conv_gemm(void *p) {
    conv_ctx *c = p;
    nnk_sgemm(NNK_NO_TRANS, NNK_NO_TRANS, c->gm, c->gn, c->gk, 1.0f, c->A, c->gk, c->B, c->gn, 0.0f, c->C, c->gn,
              c->work, c->gwl);
}

/* Forward flops 2 B Cout OH OW (Cin / G) KH KW; the backward counts its two products (dw, dx),
 * twice that. The GEMM peer is one (Cout / G, B OH OW G, Cin / G KH KW) product of the same flops
 * without im2col. */
static int bench_conv(int quick) {
    const conv_bench layers[] = {
        {"LeNet c1 b32 1->6 28 k5 p2", {32, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1, 1}},
        {"LeNet c2 b32 6->16 14 k5", {32, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1, 1}},
        {"CNN c1 b32 1->32 28 k3 p1", {32, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
        {"CNN c2 b32 32->64 14 k3 p1", {32, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
        {"b32 64->64 7 k3 p1", {32, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
        {"b32 64->128 7 1x1", {32, 64, 7, 7, 128, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
        {"b32 dw 64 14 k3 p1 g64", {32, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 64}},
        {"b1 32->64 14 k3 p1", {1, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
    };
    const int samples = quick ? 3 : 7, threads = nnk_get_num_threads();
    printf("CKernels conv2d benchmark: ISA %s, OpenMP %s, %d thread%s; median of %d samples; GFLOP/s\n",
           nnk_isa_name(nnk_isa_active()), nnk_openmp_enabled() ? "on" : "off", threads, threads == 1 ? "" : "s",
           samples);
    printf("%-28s %21s %21s %6s\n", "", "-- all threads --", "--- one thread ---", "");
    printf("%-28s %6s %6s %7s %6s %6s %7s %6s\n", "layer", "fwd", "bwd", "gemm", "fwd", "bwd", "gemm", "twin");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const nnk_conv2d_shape *s = &layers[i].s;
        size_t oh, ow;
        if (nnk_conv2d_output_size(s, &oh, &ow) != 0) continue;
        const size_t cg = s->in_channels / s->groups, k = cg * s->kernel_h * s->kernel_w;
        const size_t x_len = s->batch * s->in_channels * s->in_h * s->in_w, y_len = s->batch * s->out_channels * oh * ow;
        const size_t w_len = s->out_channels * k;
        conv_ctx c = {.s = s};
        c.gm = s->out_channels / s->groups, c.gn = s->batch * oh * ow * s->groups, c.gk = k;
        c.wl = nnk_conv2d_forward_work_size(s, threads);
        if (nnk_conv2d_backward_work_size(s, threads) > c.wl) c.wl = nnk_conv2d_backward_work_size(s, threads);
        c.gwl = nnk_sgemm_work_size(c.gm, c.gn, c.gk, threads);
        const size_t work = c.wl > c.gwl ? c.wl : c.gwl;
        c.x = alloc_floats(x_len), c.w = alloc_floats(w_len), c.b = alloc_floats(s->out_channels);
        c.y = alloc_floats(y_len), c.dy = alloc_floats(y_len), c.dx = alloc_floats(x_len), c.dw = alloc_floats(w_len);
        c.db = alloc_floats(s->out_channels), c.work = alloc_floats(work), c.y_len = y_len;
        c.A = alloc_floats(c.gm * c.gk), c.B = alloc_floats(c.gk * c.gn), c.C = alloc_floats(c.gm * c.gn);
        for (size_t j = 0; j < x_len; j++) c.x[j] = (float)((j * 7919) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < w_len; j++) c.w[j] = (float)((j * 104729) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < s->out_channels; j++) c.b[j] = 0.01f * (float)j;
        for (size_t j = 0; j < c.gm * c.gk; j++) c.A[j] = c.w[j % w_len];
        for (size_t j = 0; j < c.gk * c.gn; j++) c.B[j] = (float)((j * 7919) % 1000) * 1e-3f - 0.5f;
        const double flops = 2.0 * (double)y_len * (double)k;
        const double fwd = flops / median_time(conv_fwd, &c, samples) / 1e9;
        const double bwd = 2 * flops / median_time(conv_bwd, &c, samples) / 1e9;
        const double gemm = flops / median_time(conv_gemm, &c, samples) / 1e9;
        nnk_set_num_threads(1);
        const double fwd1 = flops / median_time(conv_fwd, &c, samples) / 1e9;
        const double bwd1 = 2 * flops / median_time(conv_bwd, &c, samples) / 1e9;
        const double gemm1 = flops / median_time(conv_gemm, &c, samples) / 1e9;
        const double twin = flops / median_time(conv_ref, &c, quick ? 1 : 3) / 1e9;
        nnk_set_num_threads(threads);
        printf("%-28s %6.1f %6.1f %7.1f %6.1f %6.1f %7.1f %6.2f\n", layers[i].label, fwd, bwd, gemm, fwd1, bwd1, gemm1,
               twin);
        fflush(stdout);
        free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx), free(c.dw), free(c.db), free(c.work);
        free(c.A), free(c.B), free(c.C);
    }
    return 0;
}

static void info(void) {
    printf("ISA: %s\n", nnk_isa_name(nnk_isa_active()));
    printf("supported:");
    for (int i = 0; i <= NNK_ISA_NEON; i++)
        if (nnk_isa_supported((nnk_isa)i)) printf(" %s", nnk_isa_name((nnk_isa)i));
    printf("\nOpenMP: %s\nthreads: %d\n", nnk_openmp_enabled() ? "on" : "off", nnk_get_num_threads());
    if (nnk_isa_env_note()) printf("note: %s\n", nnk_isa_env_note());
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "info";
    if (nnk_isa_env_note()) fprintf(stderr, "nnb-kernels: %s\n", nnk_isa_env_note());
    if (strcmp(cmd, "info") == 0) {
        info();
        return 0;
    }
    if (strcmp(cmd, "check") == 0) return nnk_check_run(argc > 2 ? argv[2] : NULL) == 0 ? 0 : 1;
    if (strcmp(cmd, "bench") == 0) return bench(argc > 2 && strcmp(argv[2], "--quick") == 0);
    if (strcmp(cmd, "bench-conv") == 0) return bench_conv(argc > 2 && strcmp(argv[2], "--quick") == 0);
    fprintf(stderr, "usage: nnb-kernels [info | check [GROUP] | bench [--quick] | bench-conv [--quick]]\n");
    return 2;
}
