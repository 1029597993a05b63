#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include "check_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int check_record(nnk_check *c, int ok, const char *fmt, ...) {
    if (ok) {
        c->passed++;
        return 1;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->failed == 0) snprintf(c->first_failure, sizeof c->first_failure, "%s", msg);
    c->failed++;
    fprintf(stderr, "FAIL %s\n", msg);
    return 0;
}

const char *nnk_check_first_failure(const nnk_check *c) { return c->first_failure; }

int nnk_check_run(const char *only) {
    static const struct {
        const char *name;
        void (*run)(nnk_check *);
    } groups[] = {
        {"dispatch", nnk_check_dispatch},       {"gemm", nnk_check_gemm},     {"dense", nnk_check_dense},
        {"activations", nnk_check_activations}, {"losses", nnk_check_losses}, {"optim", nnk_check_optim},
        {"pool", nnk_check_pool},               {"norm", nnk_check_norm},     {"conv", nnk_check_conv},
        {"overrides", nnk_check_overrides},     {"bf16", nnk_check_bf16},
        {"int8", nnk_check_int8},
    };
    int passed = 0, failed = 0;
    printf("CKernels check: ISA %s, OpenMP %s, %d threads (every supported path is exercised)\n",
           nnk_isa_name(nnk_isa_active()), nnk_openmp_enabled() ? "on" : "off", nnk_get_num_threads());
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (only != NULL && strcmp(only, groups[g].name) != 0) continue;
        nnk_check c = {0};
        groups[g].run(&c);
        printf("  %-12s %6d passed, %d failed\n", groups[g].name, c.passed, c.failed);
        passed += c.passed;
        failed += c.failed;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}

uint64_t check_rng_next(check_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float check_uniform(check_rng *r, float lo, float hi) {
    const double u = (double)(check_rng_next(r) >> 11) * 0x1.0p-53;
    return (float)(lo + (hi - lo) * u);
}

void check_fill(check_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = check_uniform(r, lo, hi);
}

int check_close(double got, double want, double rtol, double atol) {
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

int check_isas(nnk_isa out[4]) {
    int n = 0;
    const nnk_isa all[] = {NNK_ISA_SCALAR, NNK_ISA_AVX2, NNK_ISA_AVX512, NNK_ISA_NEON};
    for (int i = 0; i < 4; i++)
        if (nnk_isa_supported(all[i])) out[n++] = all[i];
    return n;
}

double check_sigmoid_d(double x) {
    const double e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/* 2u in GELU-tanh = 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
double check_gelu_2u_d(double x) { return 2 * sqrt(2 / CHECK_PI) * (x + 0.044715 * x * x * x); }

double check_act_d(nnk_act act, double a, double x) {
    switch (act) {
    case NNK_ACT_IDENTITY: return x;
    case NNK_ACT_SIGMOID: return check_sigmoid_d(x);
    case NNK_ACT_TANH: return tanh(x);
    case NNK_ACT_RELU: return x > 0 ? x : 0;
    case NNK_ACT_LEAKY_RELU: return x > 0 ? x : a * x;
    case NNK_ACT_ELU: return x > 0 ? x : a * expm1(x);
    case NNK_ACT_GELU_ERF: return x * 0.5 * erfc(-x / CHECK_SQRT2);
    case NNK_ACT_GELU_TANH: return x * check_sigmoid_d(check_gelu_2u_d(x));
    case NNK_ACT_SILU: return x * check_sigmoid_d(x);
    case NNK_ACT_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    default: return NAN;
    }
}

float *check_alloc(size_t n) {
    void *p = NULL;
    const size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

void check_free(void *p) { free(p); }
