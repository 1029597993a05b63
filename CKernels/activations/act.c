/*
 * Activations: names, and the public forward/backward entry points. Each call runs the active
 * kernel table's span kernel (an ISA's own, act_simd.h, or the scalar reference, act_ref.c) and
 * splits a large n across OpenMP threads in fixed NNK_ELEMWISE_CHUNK pieces. Every kernel
 * computes an element from that element alone, so the split never changes a bit of the result.
 */
#include "../dispatch/table.h"

#include <string.h>

static const char *const act_names[NNK_ACT_COUNT_] = {
    "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus",
};

/* The name, or "unknown" for a value outside nnk_act. */
const char *nnk_act_name(nnk_act act) {
    return (unsigned)act < NNK_ACT_COUNT_ ? act_names[act] : "unknown";
}

int nnk_act_from_name(const char *name) {
    if (name == NULL) return -1;
    for (int i = 0; i < NNK_ACT_COUNT_; i++)
        if (strcmp(name, act_names[i]) == 0) return i;
    return -1;
}

int nnk_act_needs_input(nnk_act act) {
    switch (act) {
    case NNK_ACT_IDENTITY:
    case NNK_ACT_SIGMOID:
    case NNK_ACT_TANH:
    case NNK_ACT_RELU: return 0;
    default: return 1;
    }
}

/* One call's arguments, so a chunk of it can run on any thread. */
typedef struct act_call {
    nnk_act act;
    float alpha;
    float *out;                   /* y, or dx */
    const float *in, *x, *y;      /* forward: in = x; backward: in = dy, x (maybe NULL), y */
} act_call;

/* Elements [off, off + len) of a forward call, on the active ISA. */
static void forward_span(const act_call *c, size_t off, size_t len) {
    nnk_active_table()->act_forward(c->act, c->alpha, c->out + off, c->in + off, len);
}

/* Elements [off, off + len) of a backward call, on the active ISA. */
static void backward_span(const act_call *c, size_t off, size_t len) {
    const float *x = c->x != NULL ? c->x + off : NULL, *y = c->y != NULL ? c->y + off : NULL;
    nnk_active_table()->act_backward(c->act, c->alpha, c->out + off, c->in + off, x, y, len);
}

/* Runs span over [0, n): on the calling thread below NNK_ELEMWISE_PARALLEL_MIN elements, else
 * in NNK_ELEMWISE_CHUNK pieces shared statically among the threads. */
static void run_spans(void (*span)(const act_call *, size_t, size_t), const act_call *c, size_t n) {
    const int nthreads = nnk_threads_for((double)n, NNK_ELEMWISE_PARALLEL_MIN / 2.0);
    if (nthreads <= 1) {
        span(c, 0, n);
        return;
    }
    const ptrdiff_t nchunks = (ptrdiff_t)((n + NNK_ELEMWISE_CHUNK - 1) / NNK_ELEMWISE_CHUNK);
    NNK_PARALLEL_FOR(nthreads, nchunks, i, {
        const size_t off = i * NNK_ELEMWISE_CHUNK;
        span(c, off, NNK_MIN((size_t)NNK_ELEMWISE_CHUNK, n - off));
    });
}

/* y (n) = f(x (n)); y may equal x. */
/* Per-activation overrides (nnk_set_act_override), each published with one atomic store;
 * records live for the process so a reader never sees a freed one. */
typedef struct act_override {
    nnk_act_forward_fn fwd;
    nnk_act_backward_fn bwd;
    void *ctx;
} act_override;
static act_override *act_overrides_[NNK_ACT_COUNT_];

int nnk_set_act_override(nnk_act act, nnk_act_forward_fn fwd, nnk_act_backward_fn bwd, void *ctx) {
    if ((unsigned)act >= NNK_ACT_COUNT_ || (fwd == NULL) != (bwd == NULL)) return -1;
    act_override *o = NULL;
    if (fwd != NULL) {
        static act_override slots[NNK_ACT_COUNT_][8]; /* installs beyond 8 per act reuse the last */
        static unsigned used[NNK_ACT_COUNT_];
        o = &slots[act][used[act] < 7 ? used[act]++ : 7];
        o->fwd = fwd, o->bwd = bwd, o->ctx = ctx;
    }
    __atomic_store_n(&act_overrides_[act], o, __ATOMIC_RELEASE);
    return 0;
}

void nnk_act_forward(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    assert((unsigned)act < NNK_ACT_COUNT_);
    if (n == 0) return;
    assert(y != NULL && x != NULL);
    const act_override *o = __atomic_load_n(&act_overrides_[act], __ATOMIC_ACQUIRE);
    if (o != NULL) {
        o->fwd(o->ctx, y, x, n);
        return;
    }
    const act_call c = {act, alpha, y, x, NULL, NULL};
    run_spans(forward_span, &c, n);
}

/* dx (n) = dy (n) * f'(x (n)), x the input and y (n) the output of the forward. x may be NULL when
 * !nnk_act_needs_input(act) (f' then comes from y); y is not read when x is needed. dx may equal dy. */
void nnk_act_backward(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                      const float *y, size_t n) {
    assert((unsigned)act < NNK_ACT_COUNT_);
    if (n == 0) return;
    assert(dx != NULL && dy != NULL);
    assert(nnk_act_needs_input(act) ? x != NULL : (y != NULL || act == NNK_ACT_IDENTITY));
    const act_override *o = __atomic_load_n(&act_overrides_[act], __ATOMIC_ACQUIRE);
    if (o != NULL) {
        o->bwd(o->ctx, dx, dy, x, y, n);
        return;
    }
    const act_call c = {act, alpha, dx, dy, x, y};
    run_spans(backward_span, &c, n);
}
