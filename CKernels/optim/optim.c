/*
 * Optimizer-step entry points: run the active kernel table's span kernel and, for long buffers,
 * hand NNK_ELEMWISE_CHUNK-sized spans to OpenMP threads. Every element is updated by exactly
 * one call with the same operations, so results do not depend on the thread count.
 */
#include "../dispatch/table.h"

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

/* param, grad are (n); velocity (n) or NULL when momentum == 0. */
void nnk_sgd_step(float *param, float *velocity, const float *grad, size_t n,
                  const nnk_sgd_params *p, int first_step) {
    assert(p != NULL && (n == 0 || (param != NULL && grad != NULL)));
    const nnk_kernel_table *k = nnk_active_table();
    FOR_EACH_CHUNK(n, off, len,
                   k->sgd_step(param + off, velocity != NULL ? velocity + off : NULL, grad + off, len, p,
                               first_step));
}

/* param, m, v, grad are (n). */
void nnk_adam_step(float *param, float *m, float *v, const float *grad, size_t n,
                   const nnk_adam_params *p, int64_t step) {
    assert(p != NULL && step >= 1 && (n == 0 || (param && m && v && grad)));
    const nnk_kernel_table *k = nnk_active_table();
    FOR_EACH_CHUNK(n, off, len, k->adam_step(param + off, m + off, v + off, grad + off, len, p, step));
}

/* param, sq, grad are (n); buf (n) or NULL when momentum == 0; gavg (n) or NULL unless centered. */
void nnk_rmsprop_step(float *param, float *sq, float *buf, float *gavg, const float *grad, size_t n,
                      const nnk_rmsprop_params *p) {
    assert(p != NULL && (n == 0 || (param && sq && grad)));
    const nnk_kernel_table *k = nnk_active_table();
    FOR_EACH_CHUNK(n, off, len,
                   k->rmsprop_step(param + off, sq + off, buf != NULL ? buf + off : NULL,
                                   gavg != NULL ? gavg + off : NULL, grad + off, len, p));
}

/* param, sum, grad are (n). */
void nnk_adagrad_step(float *param, float *sum, const float *grad, size_t n,
                      const nnk_adagrad_params *p, int64_t step) {
    assert(p != NULL && step >= 1 && (n == 0 || (param && sum && grad)));
    const nnk_kernel_table *k = nnk_active_table();
    FOR_EACH_CHUNK(n, off, len, k->adagrad_step(param + off, sum + off, grad + off, len, p, step));
}

/* x is (n). x *= s. */
void nnk_scale(float *x, size_t n, float s) {
    assert(n == 0 || x != NULL);
    const nnk_kernel_table *k = nnk_active_table();
    FOR_EACH_CHUNK(n, off, len, k->scale(x + off, len, s));
}

/* Chunks summed per parallel pass (so also the most threads it uses); their partial sums wait
 * on the stack to be added in order. */
#define SUMSQ_BATCH 64

/* x is (n). The chunk sums (each in the 16-lane order of optim_kernels.h) are added in chunk
 * order, so the result does not depend on the thread count. */
double nnk_sum_squares(const float *x, size_t n) {
    assert(n == 0 || x != NULL);
    const nnk_kernel_table *k = nnk_active_table();
    const size_t chunks = (n + NNK_ELEMWISE_CHUNK - 1) / NNK_ELEMWISE_CHUNK;
    const int threads = NNK_MIN(elementwise_threads(n), SUMSQ_BATCH);
    double total = 0.0;
    if (threads == 1) {
        for (size_t c = 0; c < chunks; c++) {
            const size_t off = c * NNK_ELEMWISE_CHUNK;
            total += k->sum_squares_chunk(x + off, NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, n - off));
        }
        return total;
    }
    for (size_t b = 0; b < chunks; b += SUMSQ_BATCH) {
        const size_t nb = NNK_MIN((size_t)SUMSQ_BATCH, chunks - b);
        double part[SUMSQ_BATCH];
        NNK_PARALLEL_FOR(threads, nb, c, {
            const size_t off = (b + c) * NNK_ELEMWISE_CHUNK;
            part[c] = k->sum_squares_chunk(x + off, NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, n - off));
        });
        for (size_t c = 0; c < nb; c++) total += part[c];
    }
    return total;
}
