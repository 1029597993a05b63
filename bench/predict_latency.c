/*
 * predict_latency.c: one-sample predict latency of a 784-256-128-10 network through the C API
 * (nnb_predict), fp32 and quantized to int8 (nnb_model_quantize_int8), beside fann_run on a FANN
 * network of the same size; then the time of one batch-1000 nnb_predict, fp32 and int8.
 *
 * Run by bench/predict_latency.sh, which builds it and adds numpy and PyTorch. On its own:
 *   predict_latency [calls per round] [rounds]
 * Prints one line per method: "RESULT <name> <median us> <p10 us> <p90 us> <calls>", and
 * "BATCH <name> <median us per call> <calls>" for the batch of 1000.
 *
 * Each call is timed on its own (clock_gettime, ~20 ns); the two libraries alternate in rounds
 * so that frequency changes and noise hit both alike; the inputs rotate through 64 random rows.
 */
#define _POSIX_C_SOURCE 200809L

#include "nnbackprop.h"

#include <floatfann.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IN = 784, H1 = 256, H2 = 128, OUT = 10, INPUTS = 64, BATCH = 1000, BATCH_CALLS = 200 };

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_result(const char *name, double *t, size_t n) {
    qsort(t, n, sizeof *t, cmp_double);
    printf("RESULT %s %.3f %.3f %.3f %zu\n", name, t[n / 2], t[n / 10], t[n * 9 / 10], n);
}

static volatile float g_sink;

int main(int argc, char **argv) {
    size_t per_round = argc > 1 ? (size_t)atol(argv[1]) : 2000;
    size_t rounds = argc > 2 ? (size_t)atol(argv[2]) : 10;
    if (per_round == 0 || rounds == 0) {
        fprintf(stderr, "usage: %s [calls per round] [rounds]\n", argv[0]);
        return 2;
    }

    float *x = malloc(sizeof(float) * BATCH * IN);
    srand(1);
    for (size_t i = 0; i < (size_t)BATCH * IN; i++) x[i] = (float)rand() / (float)RAND_MAX;

    nnb_model *model = NULL, *int8 = NULL;
    if (nnb_model_create_from_string(&model, "784-256:relu-128:relu-10", 1) != NNB_OK ||
        nnb_model_create_from_string(&int8, "784-256:relu-128:relu-10", 1) != NNB_OK ||
        nnb_model_quantize_int8(int8, x, BATCH, IN, BATCH) != NNB_OK) {
        fprintf(stderr, "predict_latency: %s\n", nnb_last_error());
        return 1;
    }
    /* FANN 2.2 has no ReLU; its bounded linear piece is the nearest and as cheap. */
    struct fann *ann = fann_create_standard(4, IN, H1, H2, OUT);
    if (!ann) {
        fprintf(stderr, "predict_latency: fann_create_standard failed\n");
        return 1;
    }
    fann_set_activation_function_hidden(ann, FANN_LINEAR_PIECE);
    fann_set_activation_function_output(ann, FANN_LINEAR);
    fann_randomize_weights(ann, -0.05f, 0.05f);

    size_t total = per_round * rounds;
    double *t_nnb = malloc(sizeof(double) * total), *t_fann = malloc(sizeof(double) * total);
    double *t_int8 = malloc(sizeof(double) * total);
    float out[OUT];

    /* Warm-up: page in the weights, let the kernels pick their paths. */
    for (int i = 0; i < 2000; i++) {
        nnb_predict(model, x + (size_t)(i % INPUTS) * IN, 1, IN, out, OUT);
        nnb_predict(int8, x + (size_t)(i % INPUTS) * IN, 1, IN, out, OUT);
        g_sink = fann_run(ann, x + (size_t)(i % INPUTS) * IN)[0];
    }

    size_t k_nnb = 0, k_fann = 0, k_int8 = 0;
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < per_round; i++) {
            const float *row = x + (i % INPUTS) * IN;
            double t0 = now_us();
            nnb_status s = nnb_predict(model, row, 1, IN, out, OUT);
            double t1 = now_us();
            if (s != NNB_OK) {
                fprintf(stderr, "predict_latency: nnb_predict: %s\n", nnb_last_error());
                return 1;
            }
            g_sink = out[0];
            t_nnb[k_nnb++] = t1 - t0;
        }
        for (size_t i = 0; i < per_round; i++) {
            const float *row = x + (i % INPUTS) * IN;
            double t0 = now_us();
            nnb_predict(int8, row, 1, IN, out, OUT);
            t_int8[k_int8++] = now_us() - t0;
            g_sink = out[0];
        }
        for (size_t i = 0; i < per_round; i++) {
            float *row = x + (i % INPUTS) * IN;
            double t0 = now_us();
            fann_type *o = fann_run(ann, row);
            double t1 = now_us();
            g_sink = o[0];
            t_fann[k_fann++] = t1 - t0;
        }
    }
    printf("# nnbackprop %s, ISA %s, OpenMP %s, %d threads; FANN %s\n", nnb_version_string(), nnb_isa(),
           nnb_openmp_enabled() ? "on" : "off", nnb_get_num_threads(), "2.2 (floatfann)");
    print_result("nnb_predict (C API)", t_nnb, k_nnb);
    print_result("nnb_predict int8 (C API)", t_int8, k_int8);
    print_result("fann_run (FANN)", t_fann, k_fann);

    /* One batch of 1000 rows a call, the two models alternating. */
    float *y = malloc(sizeof(float) * BATCH * OUT);
    double *b_fp32 = malloc(sizeof(double) * BATCH_CALLS), *b_int8 = malloc(sizeof(double) * BATCH_CALLS);
    for (int i = 0; i < 10; i++) nnb_predict(model, x, BATCH, IN, y, BATCH * OUT), nnb_predict(int8, x, BATCH, IN, y, BATCH * OUT);
    for (int i = 0; i < BATCH_CALLS; i++) {
        double t0 = now_us();
        nnb_predict(model, x, BATCH, IN, y, BATCH * OUT);
        double t1 = now_us();
        nnb_predict(int8, x, BATCH, IN, y, BATCH * OUT);
        double t2 = now_us();
        b_fp32[i] = t1 - t0;
        b_int8[i] = t2 - t1;
    }
    qsort(b_fp32, BATCH_CALLS, sizeof(double), cmp_double);
    qsort(b_int8, BATCH_CALLS, sizeof(double), cmp_double);
    printf("BATCH nnb_predict (C API) %.3f %d\n", b_fp32[BATCH_CALLS / 2], BATCH_CALLS);
    printf("BATCH nnb_predict int8 (C API) %.3f %d\n", b_int8[BATCH_CALLS / 2], BATCH_CALLS);
    free(y), free(b_fp32), free(b_int8), free(t_int8);
    nnb_model_free(int8);

    free(t_nnb);
    free(t_fann);
    free(x);
    fann_destroy(ann);
    nnb_model_free(model);
    return 0;
}
