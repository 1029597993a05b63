/*
 * Optimizer-step entry points: pick the span kernel for the active ISA and, for long buffers,
 * hand NNK_ELEMWISE_CHUNK-sized spans to OpenMP threads. Every element is updated by exactly
 * one call with the same operations, so results do not depend on the thread count.
 */
#include "optim_kernels.h"

/* Threads for an elementwise pass over n floats: 1 below NNK_ELEMWISE_PARALLEL_MIN, else at
 * most one per chunk. */
static int elementwise_threads(size_t n) {
    if (n < NNK_ELEMWISE_PARALLEL_MIN) return 1;
    return nnk_threads_for((double)n, (double)NNK_ELEMWISE_CHUNK);
}

/* Runs `span` for each chunk [off, off + len) of n elements: on the calling thread in one piece
 * when n is small, else chunk by chunk across threads; not at all when n == 0 (the buffers
 * may then be NULL, and NULL + 0 is undefined in C). */
#define FOR_EACH_CHUNK(n, off, len, span)                                                     \
    do {                                                                                      \
        const int threads_ = elementwise_threads(n);                                          \
        if ((n) == 0) {                                                                       \
        } else if (threads_ == 1) {                                                           \
            const size_t off = 0, len = (n);                                                  \
            span;                                                                             \
        } else {                                                                              \
            const size_t chunks_ = ((n) + NNK_ELEMWISE_CHUNK - 1) / NNK_ELEMWISE_CHUNK;       \
            NNK_PARALLEL_FOR(threads_, chunks_, c_, {                                         \
                const size_t off = c_ * NNK_ELEMWISE_CHUNK;                                   \
                const size_t len = NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, (n) - off);            \
                span;                                                                         \
            });                                                                               \
        }                                                                                     \
    } while (0)

typedef void (*sgd_fn)(float *, float *, const float *, size_t, const nnk_sgd_params *, int);
typedef void (*adam_fn)(float *, float *, float *, const float *, size_t, const nnk_adam_params *, int64_t);
typedef double (*sumsq_fn)(const float *, size_t);
typedef void (*scale_fn)(float *, size_t, float);

static sgd_fn sgd_kernel(void) {
    switch (nnk_isa_fast()) {
#if NNK_X86_64
    case NNK_ISA_AVX512: return nnk_sgd_step_avx512;
    case NNK_ISA_AVX2: return nnk_sgd_step_avx2;
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return nnk_sgd_step_neon;
#endif
    default: return nnk_sgd_step_ref;
    }
}

static adam_fn adam_kernel(void) {
    switch (nnk_isa_fast()) {
#if NNK_X86_64
    case NNK_ISA_AVX512: return nnk_adam_step_avx512;
    case NNK_ISA_AVX2: return nnk_adam_step_avx2;
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return nnk_adam_step_neon;
#endif
    default: return nnk_adam_step_ref;
    }
}

static sumsq_fn sumsq_kernel(void) {
    switch (nnk_isa_fast()) {
#if NNK_X86_64
    case NNK_ISA_AVX512: return nnk_sum_squares_chunk_avx512;
    case NNK_ISA_AVX2: return nnk_sum_squares_chunk_avx2;
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return nnk_sum_squares_chunk_neon;
#endif
    default: return nnk_sum_squares_chunk_ref;
    }
}

static scale_fn scale_kernel(void) {
    switch (nnk_isa_fast()) {
#if NNK_X86_64
    case NNK_ISA_AVX512: return nnk_scale_avx512;
    case NNK_ISA_AVX2: return nnk_scale_avx2;
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return nnk_scale_neon;
#endif
    default: return nnk_scale_ref;
    }
}

/* param, grad are (n); velocity (n) or NULL when momentum == 0. */
void nnk_sgd_step(float *param, float *velocity, const float *grad, size_t n,
                  const nnk_sgd_params *p, int first_step) {
    assert(p != NULL && (n == 0 || (param != NULL && grad != NULL)));
    const sgd_fn f = sgd_kernel();
    FOR_EACH_CHUNK(n, off, len,
                   f(param + off, velocity != NULL ? velocity + off : NULL, grad + off, len, p, first_step));
}

/* param, m, v, grad are (n). */
void nnk_adam_step(float *param, float *m, float *v, const float *grad, size_t n,
                   const nnk_adam_params *p, int64_t step) {
    assert(p != NULL && step >= 1 && (n == 0 || (param && m && v && grad)));
    const adam_fn f = adam_kernel();
    FOR_EACH_CHUNK(n, off, len, f(param + off, m + off, v + off, grad + off, len, p, step));
}

/* param, sq, grad are (n); buf (n) or NULL when momentum == 0; gavg (n) or NULL unless centered. */
void nnk_rmsprop_step(float *param, float *sq, float *buf, float *gavg, const float *grad, size_t n,
                      const nnk_rmsprop_params *p) {
    assert(p != NULL && (n == 0 || (param && sq && grad)));
    FOR_EACH_CHUNK(n, off, len,
                   nnk_rmsprop_step_ref(param + off, sq + off, buf != NULL ? buf + off : NULL,
                                        gavg != NULL ? gavg + off : NULL, grad + off, len, p));
}

/* param, sum, grad are (n). */
void nnk_adagrad_step(float *param, float *sum, const float *grad, size_t n,
                      const nnk_adagrad_params *p, int64_t step) {
    assert(p != NULL && step >= 1 && (n == 0 || (param && sum && grad)));
    FOR_EACH_CHUNK(n, off, len, nnk_adagrad_step_ref(param + off, sum + off, grad + off, len, p, step));
}

/* x is (n). x *= s. */
void nnk_scale(float *x, size_t n, float s) {
    assert(n == 0 || x != NULL);
    const scale_fn f = scale_kernel();
    FOR_EACH_CHUNK(n, off, len, f(x + off, len, s));
}

/* Chunks summed per parallel pass (so also the most threads it uses); their partial sums wait
 * on the stack to be added in order. */
#define SUMSQ_BATCH 64

/* x is (n). The chunk sums (each in the 16-lane order of optim_kernels.h) are added in chunk
 * order, so the result does not depend on the thread count. */
double nnk_sum_squares(const float *x, size_t n) {
    assert(n == 0 || x != NULL);
    const sumsq_fn f = sumsq_kernel();
    const size_t chunks = (n + NNK_ELEMWISE_CHUNK - 1) / NNK_ELEMWISE_CHUNK;
    const int threads = NNK_MIN(elementwise_threads(n), SUMSQ_BATCH);
    double total = 0.0;
    if (threads == 1) {
        for (size_t c = 0; c < chunks; c++) {
            const size_t off = c * NNK_ELEMWISE_CHUNK;
            total += f(x + off, NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, n - off));
        }
        return total;
    }
    for (size_t b = 0; b < chunks; b += SUMSQ_BATCH) {
        const size_t nb = NNK_MIN((size_t)SUMSQ_BATCH, chunks - b);
        double part[SUMSQ_BATCH];
        NNK_PARALLEL_FOR(threads, nb, c, {
            const size_t off = (b + c) * NNK_ELEMWISE_CHUNK;
            part[c] = f(x + off, NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, n - off));
        });
        for (size_t c = 0; c < nb; c++) total += part[c];
    }
    return total;
}
