/*
 * Optimizer steps: for every ISA path this CPU supports, several consecutive steps of SGD,
 * Adam/AdamW, RMSprop and Adagrad against a double-precision reference written here from the
 * torch.optim formulas, over awkward lengths and every option; each path bitwise against the
 * reference twin (the kernels are built to match it exactly); 1 thread against several, bitwise.
 * Then nnk_sum_squares against a double sum and nnk_scale against x * s.
 */
#include "check_util.h"

#include <stdio.h>
#include <string.h>

/* Above NNK_ELEMWISE_PARALLEL_MIN (65536, CKernels/internal.h), not a multiple of any width. */
#define BIG_N (65536 + 4 * 16384 + 37)
#define STEPS 3

static const size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 257, BIG_N};
#define NSIZES (sizeof sizes / sizeof sizes[0])

typedef enum opt_kind { OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD } opt_kind;

typedef struct opt_case {
    const char *name;
    opt_kind kind;
    nnk_sgd_params sgd;
    nnk_adam_params adam;
    nnk_rmsprop_params rms;
    nnk_adagrad_params ada;
    float acc0; /* Adagrad's initial_accumulator_value */
    int big;    /* also run at BIG_N (the threaded split); the options themselves are split-blind */
} opt_case;

static const opt_case cases[] = {
    {"sgd", OPT_SGD, .sgd = {.lr = 0.1f}, .big = 1},
    {"sgd-wd", OPT_SGD, .sgd = {.lr = 0.1f, .weight_decay = 0.05f}},
    {"sgd-momentum", OPT_SGD, .sgd = {.lr = 0.1f, .momentum = 0.9f}},
    {"sgd-dampening", OPT_SGD, .sgd = {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.3f}, .big = 1},
    {"sgd-nesterov", OPT_SGD, .sgd = {.lr = 0.1f, .momentum = 0.9f, .nesterov = 1}},
    {"sgd-nesterov-wd", OPT_SGD, .sgd = {.lr = 0.05f, .momentum = 0.8f, .weight_decay = 0.1f, .nesterov = 1}, .big = 1},
    {"adam", OPT_ADAM, .adam = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f}},
    {"adam-l2", OPT_ADAM,
     .adam = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f}, .big = 1},
    {"adamw", OPT_ADAM,
     .adam = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f, .decoupled = 1},
     .big = 1},
    {"adamw-no-decay", OPT_ADAM, .adam = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .decoupled = 1}},
    {"adam-betas-eps", OPT_ADAM, .adam = {.lr = 0.02f, .beta1 = 0.5f, .beta2 = 0.9f, .eps = 1e-3f}},
    {"rmsprop", OPT_RMSPROP, .rms = {.lr = 0.01f, .alpha = 0.99f, .eps = 1e-8f}, .big = 1},
    {"rmsprop-wd", OPT_RMSPROP, .rms = {.lr = 0.01f, .alpha = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f}},
    {"rmsprop-momentum", OPT_RMSPROP, .rms = {.lr = 0.01f, .alpha = 0.9f, .eps = 1e-8f, .momentum = 0.9f}},
    {"rmsprop-centered", OPT_RMSPROP, .rms = {.lr = 0.01f, .alpha = 0.99f, .eps = 1e-8f, .centered = 1}},
    {"rmsprop-centered-momentum-wd", OPT_RMSPROP,
     .rms = {.lr = 0.01f, .alpha = 0.9f, .eps = 1e-6f, .weight_decay = 0.05f, .momentum = 0.5f, .centered = 1},
     .big = 1},
    {"adagrad", OPT_ADAGRAD, .ada = {.lr = 0.1f, .eps = 1e-10f}},
    {"adagrad-lr-decay", OPT_ADAGRAD, .ada = {.lr = 0.1f, .lr_decay = 0.5f, .eps = 1e-10f}, .big = 1},
    {"adagrad-wd", OPT_ADAGRAD, .ada = {.lr = 0.1f, .weight_decay = 0.1f, .eps = 1e-10f}},
    {"adagrad-eps-init", OPT_ADAGRAD, .ada = {.lr = 0.1f, .eps = 1e-3f}, .acc0 = 0.5f, .big = 1},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Which of the three state buffers a case uses (unused ones are passed as NULL where allowed). */
static int state_used(const opt_case *oc, int k) {
    switch (oc->kind) {
    case OPT_SGD: return k == 0 && oc->sgd.momentum != 0.0f;
    case OPT_ADAM: return k < 2;
    case OPT_RMSPROP: return k == 0 || (k == 1 && oc->rms.momentum > 0.0f) || (k == 2 && oc->rms.centered);
    default: return k == 0;
    }
}

static const char *const state_names[4][3] = {
    {"velocity", "-", "-"}, {"m", "v", "-"}, {"square_avg", "momentum_buffer", "grad_avg"}, {"sum", "-", "-"}};

/* param and three state buffers, in float (the kernels) or double (the reference). */
typedef struct fstate { float *w, *s[3]; } fstate;
typedef struct dstate { double *w, *s[3]; } dstate;

/* ---- the double reference: torch.optim's formulas, g the gradient after L2 weight decay ---- */

static void ref_sgd(dstate *d, const float *grad, size_t n, const nnk_sgd_params *p, int t) {
    const double lr = p->lr, mu = p->momentum, damp = p->dampening, wd = p->weight_decay;
    for (size_t i = 0; i < n; i++) {
        double g = (double)grad[i] + wd * d->w[i];
        if (mu != 0.0) {
            d->s[0][i] = t == 1 ? g : mu * d->s[0][i] + (1.0 - damp) * g;
            g = p->nesterov ? g + mu * d->s[0][i] : d->s[0][i];
        }
        d->w[i] -= lr * g;
    }
}

static void ref_adam(dstate *d, const float *grad, size_t n, const nnk_adam_params *p, int t) {
    const double lr = p->lr, b1 = p->beta1, b2 = p->beta2, wd = p->weight_decay;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        double g = grad[i];
        if (p->decoupled)
            d->w[i] *= 1.0 - lr * wd;
        else
            g += wd * d->w[i];
        double *m = &d->s[0][i], *v = &d->s[1][i];
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        d->w[i] -= lr / bc1 * *m / (sqrt(*v) / sqrt(bc2) + p->eps);
    }
}

static void ref_rmsprop(dstate *d, const float *grad, size_t n, const nnk_rmsprop_params *p) {
    const double lr = p->lr, a = p->alpha, mu = p->momentum, wd = p->weight_decay;
    for (size_t i = 0; i < n; i++) {
        const double g = (double)grad[i] + wd * d->w[i];
        double *sq = &d->s[0][i];
        *sq = a * *sq + (1.0 - a) * g * g;
        double avg = *sq;
        if (p->centered) {
            d->s[2][i] = a * d->s[2][i] + (1.0 - a) * g;
            avg -= d->s[2][i] * d->s[2][i];
        }
        avg = sqrt(avg) + p->eps;
        if (mu > 0.0) {
            d->s[1][i] = mu * d->s[1][i] + g / avg;
            d->w[i] -= lr * d->s[1][i];
        } else {
            d->w[i] -= lr * g / avg;
        }
    }
}

static void ref_adagrad(dstate *d, const float *grad, size_t n, const nnk_adagrad_params *p, int t) {
    const double clr = p->lr / (1.0 + (t - 1) * (double)p->lr_decay), wd = p->weight_decay;
    for (size_t i = 0; i < n; i++) {
        const double g = (double)grad[i] + wd * d->w[i];
        d->s[0][i] += g * g;
        d->w[i] -= clr * g / (sqrt(d->s[0][i]) + p->eps);
    }
}

static void ref_step(const opt_case *oc, dstate *d, const float *grad, size_t n, int t) {
    switch (oc->kind) {
    case OPT_SGD: ref_sgd(d, grad, n, &oc->sgd, t); break;
    case OPT_ADAM: ref_adam(d, grad, n, &oc->adam, t); break;
    case OPT_RMSPROP: ref_rmsprop(d, grad, n, &oc->rms); break;
    default: ref_adagrad(d, grad, n, &oc->ada, t); break;
    }
}

/* ---- the kernels ---- */

/* Step t (1-based) through the public entry point, or through the reference twin when `twin`
 * (nnk_*_ref for SGD and Adam; the scalar path for RMSprop and Adagrad, which have no SIMD). */
static void kernel_step(const opt_case *oc, fstate *f, const float *grad, size_t n, int t, int twin) {
    float *s0 = state_used(oc, 0) ? f->s[0] : NULL, *s1 = state_used(oc, 1) ? f->s[1] : NULL;
    float *s2 = state_used(oc, 2) ? f->s[2] : NULL;
    const nnk_isa saved = nnk_isa_active();
    switch (oc->kind) {
    case OPT_SGD: (twin ? nnk_sgd_step_ref : nnk_sgd_step)(f->w, s0, grad, n, &oc->sgd, t == 1); break;
    case OPT_ADAM: (twin ? nnk_adam_step_ref : nnk_adam_step)(f->w, s0, s1, grad, n, &oc->adam, t); break;
    case OPT_RMSPROP:
        if (twin) nnk_set_isa(NNK_ISA_SCALAR);
        nnk_rmsprop_step(f->w, s0, s1, s2, grad, n, &oc->rms);
        break;
    default:
        if (twin) nnk_set_isa(NNK_ISA_SCALAR);
        nnk_adagrad_step(f->w, s0, grad, n, &oc->ada, t);
        break;
    }
    nnk_set_isa(saved);
}

/* ---- one case over one length on one path ---- */

typedef struct run_ctx {
    nnk_check *c;
    const opt_case *oc;
    size_t n;
    uint64_t seed;
    char tag[96];
} run_ctx;

static void fstate_init(fstate *f, const run_ctx *x) {
    check_rng rng = {x->seed};
    f->w = check_alloc(x->n);
    check_fill(&rng, f->w, x->n, -1.0f, 1.0f);
    for (int k = 0; k < 3; k++) {
        f->s[k] = check_alloc(x->n);
        for (size_t i = 0; i < x->n; i++) f->s[k][i] = x->oc->kind == OPT_ADAGRAD ? x->oc->acc0 : 0.0f;
    }
}

static void fstate_free(fstate *f) {
    check_free(f->w);
    for (int k = 0; k < 3; k++) check_free(f->s[k]);
}

/* Runs STEPS steps from the seeded start with the given thread count (0: leave it). */
static void run_kernel(const run_ctx *x, fstate *f, int twin, int threads) {
    const int saved = nnk_get_num_threads();
    if (threads > 0) nnk_set_num_threads(threads);
    fstate_init(f, x);
    float *grad = check_alloc(x->n);
    for (int t = 1; t <= STEPS; t++) {
        check_rng rng = {x->seed * 31 + (uint64_t)t};
        check_fill(&rng, grad, x->n, -1.0f, 1.0f);
        kernel_step(x->oc, f, grad, x->n, t, twin);
    }
    check_free(grad);
    nnk_set_num_threads(saved);
}

/* The same steps in double; returns the state in d (freed by the caller). */
static void run_reference(const run_ctx *x, dstate *d) {
    fstate f0;
    fstate_init(&f0, x); /* the same start, widened */
    d->w = (double *)check_alloc(2 * x->n);
    for (int k = 0; k < 3; k++) d->s[k] = (double *)check_alloc(2 * x->n);
    for (size_t i = 0; i < x->n; i++) {
        d->w[i] = f0.w[i];
        for (int k = 0; k < 3; k++) d->s[k][i] = f0.s[k][i];
    }
    fstate_free(&f0);
    float *grad = check_alloc(x->n);
    for (int t = 1; t <= STEPS; t++) {
        check_rng rng = {x->seed * 31 + (uint64_t)t};
        check_fill(&rng, grad, x->n, -1.0f, 1.0f);
        ref_step(x->oc, d, grad, x->n, t);
    }
    check_free(grad);
}

/* One assertion: |got - want| <= rtol |want| + atol max|want| everywhere (the second term
 * allows for cancellation: a state like m = beta1 m + (1 - beta1) g can be far smaller than
 * the terms it was rounded from); names the worst element. */
static void expect_close(const run_ctx *x, const char *what, const float *got, const double *want, double rtol,
                         double atol) {
    double worst = 0.0, scale = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < x->n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < x->n; i++) {
        const double err = fabs((double)got[i] - want[i]) / (atol * scale + rtol * fabs(want[i]) + 1e-30);
        if (!(err <= worst)) worst = err, bad = i;
    }
    check_record(x->c, worst <= 1.0, "%s %s vs double reference: element %zu is %.9g, want %.9g (%.3g tolerances)",
                 x->tag, what, bad, x->n ? got[bad] : 0.0, x->n ? want[bad] : 0.0, worst);
}

static int fstate_equal(const fstate *a, const fstate *b, size_t n) {
    int eq = memcmp(a->w, b->w, n * sizeof(float)) == 0;
    for (int k = 0; k < 3; k++) eq &= memcmp(a->s[k], b->s[k], n * sizeof(float)) == 0;
    return eq;
}

static void check_case(nnk_check *c, const opt_case *oc, size_t n, nnk_isa isa, uint64_t seed) {
    run_ctx x = {c, oc, n, seed, ""};
    snprintf(x.tag, sizeof x.tag, "optim[%s] %s n=%zu", nnk_isa_name(isa), oc->name, n);
    fstate f, twin;
    dstate d;
    const int threads = nnk_get_num_threads() < 2 ? 2 : nnk_get_num_threads();
    run_kernel(&x, &f, 0, threads);
    run_reference(&x, &d);
    expect_close(&x, "param", f.w, d.w, 1e-5, 1e-6);
    for (int k = 0; k < 3; k++)
        if (state_used(oc, k)) expect_close(&x, state_names[oc->kind][k], f.s[k], d.s[k], 1e-5, 1e-6);
    run_kernel(&x, &twin, 1, 1);
    check_record(c, fstate_equal(&f, &twin, n), "%s differs from the scalar reference twin", x.tag);
    fstate_free(&twin);
    if (n >= 65536) { /* the threaded split must not change a bit */
        fstate one;
        run_kernel(&x, &one, 0, 1);
        check_record(c, fstate_equal(&f, &one, n), "%s differs between 1 and %d threads", x.tag, threads);
        fstate_free(&one);
    }
    fstate_free(&f);
    check_free(d.w);
    for (int k = 0; k < 3; k++) check_free(d.s[k]);
}

/* ---- sum of squares and scale ---- */

static void check_sum_squares(nnk_check *c, const nnk_isa *isas, int nisa) {
    static const size_t lens[] = {0, 1, 7, 15, 16, 17, 33, 257, 16384, 16385, BIG_N, 67 * 16384 + 7};
    const int saved_threads = nnk_get_num_threads();
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li];
        float *x = check_alloc(n);
        check_rng rng = {0x55 + n};
        check_fill(&rng, x, n, -2.0f, 2.0f);
        double want = 0.0, first = 0.0;
        for (size_t i = 0; i < n; i++) want += (double)x[i] * (double)x[i];
        for (int k = 0; k < nisa; k++) {
            nnk_set_isa(isas[k]);
            nnk_set_num_threads(1);
            const double one = nnk_sum_squares(x, n);
            nnk_set_num_threads(2);
            const double two = nnk_sum_squares(x, n);
            nnk_set_num_threads(saved_threads);
            if (k == 0) first = one;
            check_record(c, check_close(one, want, 1e-12, 0), "sum_squares[%s] n=%zu: %.17g, double sum %.17g",
                         nnk_isa_name(isas[k]), n, one, want);
            check_record(c, memcmp(&one, &two, sizeof one) == 0,
                         "sum_squares[%s] n=%zu: 1 thread %.17g, 2 threads %.17g", nnk_isa_name(isas[k]), n, one, two);
            /* every path folds the same 16 lanes in the same order */
            check_record(c, memcmp(&one, &first, sizeof one) == 0, "sum_squares[%s] n=%zu: %.17g, scalar path %.17g",
                         nnk_isa_name(isas[k]), n, one, first);
        }
        check_free(x);
    }
    /* Exact cases: 3^2 + 4^2, and squares past FLT_MAX that a float sum would lose to inf. */
    const float a[2] = {3.0f, 4.0f}, big[3] = {1e30f, -1e30f, 2e30f};
    const double want_big = 2.0 * (double)1e30f * (double)1e30f + (double)2e30f * (double)2e30f;
    for (int k = 0; k < nisa; k++) {
        nnk_set_isa(isas[k]);
        check_record(c, nnk_sum_squares(a, 2) == 25.0 && nnk_sum_squares(NULL, 0) == 0.0,
                     "sum_squares[%s] exact small cases", nnk_isa_name(isas[k]));
        const double s = nnk_sum_squares(big, 3);
        check_record(c, check_close(s, want_big, 1e-15, 0), "sum_squares[%s] of 1e30s: %.17g, want %.17g",
                     nnk_isa_name(isas[k]), s, want_big);
    }
}

static void check_scale(nnk_check *c, const nnk_isa *isas, int nisa) {
    const float scales[] = {0.37f, -2.0f, 0.0f};
    const int saved_threads = nnk_get_num_threads();
    for (int k = 0; k < nisa; k++) {
        nnk_set_isa(isas[k]);
        for (size_t si = 0; si < NSIZES; si++)
            for (int sc = 0; sc < 3; sc++) {
                const size_t n = sizes[si];
                float *x = check_alloc(n), *want = check_alloc(n);
                check_rng rng = {0x5ca1e + n};
                check_fill(&rng, x, n, -3.0f, 3.0f);
                for (size_t i = 0; i < n; i++) want[i] = x[i] * scales[sc];
                nnk_set_num_threads(n >= 65536 ? 2 : saved_threads);
                nnk_scale(x, n, scales[sc]);
                nnk_set_num_threads(saved_threads);
                check_record(c, memcmp(x, want, n * sizeof(float)) == 0, "scale[%s] n=%zu s=%g differs from x * s",
                             nnk_isa_name(isas[k]), n, scales[sc]);
                check_free(x);
                check_free(want);
            }
    }
}

/* n == 0 touches nothing, so every buffer may be NULL (run it under the sanitizers too). */
static void check_empty(nnk_check *c, const nnk_isa *isas, int nisa) {
    for (int k = 0; k < nisa; k++) {
        nnk_set_isa(isas[k]);
        for (size_t ci = 0; ci < NCASES; ci++) {
            fstate none = {NULL, {NULL, NULL, NULL}};
            kernel_step(&cases[ci], &none, NULL, 0, 1, 0);
            kernel_step(&cases[ci], &none, NULL, 0, 1, 1);
        }
        nnk_scale(NULL, 0, 2.0f);
        check_record(c, nnk_sum_squares(NULL, 0) == 0.0, "optim[%s] steps and scale over n == 0 with NULL buffers",
                     nnk_isa_name(isas[k]));
    }
}

void nnk_check_optim(nnk_check *c) {
    const nnk_isa saved = nnk_isa_active();
    nnk_isa isas[4];
    const int nisa = check_isas(isas);
    for (int k = 0; k < nisa; k++) {
        nnk_set_isa(isas[k]);
        for (size_t ci = 0; ci < NCASES; ci++)
            for (size_t si = 0; si < NSIZES; si++)
                if (sizes[si] != BIG_N || cases[ci].big)
                    check_case(c, &cases[ci], sizes[si], isas[k], 1000 * ci + si + 1);
    }
    check_sum_squares(c, isas, nisa);
    check_scale(c, isas, nisa);
    check_empty(c, isas, nisa);
    nnk_set_isa(saved);
}
