/*
 * 2-D convolution (NCHW, PyTorch nn.Conv2d) as im2col + the packed GEMM. Per sample n and group g,
 * with Cg = in_channels / groups, Og = out_channels / groups, K = Cg * kernel_h * kernel_w (one
 * patch) and P = out_h * out_w (output pixels):
 *
 *   col (K, P)     the patches of x[n, g] (Cg, in_h, in_w); a 1x1 kernel with stride 1 and no
 *                  padding reads x[n, g] (Cg, P) as it is
 *   forward        y[n, g] (Og, P) = W_g (Og, K) * col, then bias, z copy, activation   (NN)
 *   weight grad    dW_g (Og, K) += dz[n, g] (Og, P) * col^T                             (NT)
 *   input grad     dcol (K, P) = W_g^T * dz[n, g] (TN), summed back into dx[n, g] (col2im)
 *
 * A layer with few pixels and long patches multiplies a block of samples side by side instead
 * (col (K, spb * P); see CONV_BLOCK_COLS).
 *
 * Threads. The work is cut into units that write disjoint outputs: (block, group) for the
 * forward, (chunk of blocks, group) for the backward. Either the units run in parallel, each
 * thread with its own slice of `work` (a col, a stage, a GEMM packing buffer) and GEMMs kept on
 * that thread (nnk_sgemm_capped(1, ...)), or, when that would use fewer threads than the GEMM
 * could on one unit (batch 1 with a large layer), the units run in order and each GEMM uses
 * every thread. The choice depends on the thread count; the arithmetic of a unit does not (the
 * blocks and chunks are functions of the shape alone, the GEMM gives the same bits on any
 * number of threads), so every result is bitwise the same for any thread count.
 *
 * The weight gradient is the one sum across samples: each chunk sums its blocks in order (GEMMs
 * with beta = 1) into its own partial dW (chunk 0 into dw itself), and the partials are then
 * added to dw in chunk order, each element by one thread. Why not one GEMM over the whole batch,
 * col (K, batch * P), threaded by the GEMM: it needs every sample's col at once (7 MB for batch
 * 32 of 32->64 14x14 k3, gigabytes for larger layers) plus a copy of dz; and a small layer's dW
 * (32 x 9 for 1->32 k3) is one or two GEMM tiles, so one thread would do it all. Per-sample
 * products keep a col in L2 and parallelise over samples; the partials cost (chunks - 1) * |dW|
 * floats, capped by CONV_PARTIAL_BUDGET.
 *
 * Measured (nnb-kernels bench-conv, release, AVX2 Zen, one thread, GFLOP/s, batch 32; beside one
 * nnk_sgemm of the same flops): 32->64 14x14 k3 p1 forward 50, backward 51, GEMM 70; 1->32 28x28
 * k3 p1 25 / 16 / 43; 64->64 7x7 k3 p1 36 / 41 / 61-80; the direct-loop twin about 1. Short
 * patches (K 9, 25) leave the GEMM little work for each element im2col writes and it packs again.
 * Thread scaling could not be measured on the shared 2-core machine these were taken on (the
 * GEMM peer did not scale there either).
 */
#include "../gemm/gemm_internal.h"

#include <string.h>

/* A GEMM's columns: when a sample has fewer output pixels than CONV_BLOCK_COLS and a patch is at
 * least CONV_BLOCK_MIN_K long, samples are grouped into blocks of at least CONV_BLOCK_COLS pixels,
 * so a 7x7 layer still gets a product wide enough to amortise packing W; the block then copies
 * its product out by sample (and gathers dz in), which a short patch cannot pay for. Measured
 * (nnb-kernels bench-conv, one thread, AVX2, batch 32): 64->64 7x7 k3 (K 576) forward 31 -> 35
 * GFLOP/s, backward 33 -> 41 with blocks of 6; but 64->128 7x7 1x1 (K 64) 47 -> 40 and depthwise
 * 14x14 k3 (K 9) 1.5 -> 1.2 forward, hence the floor on K. */
#define CONV_BLOCK_COLS 256
#define CONV_BLOCK_MIN_K 128
/* The weight gradient's batch chunks: enough units (chunks x groups) to share among this many
 * threads, and no more partial floats than the budget (16 MiB). */
#define CONV_TARGET_UNITS 64
#define CONV_PARTIAL_BUDGET ((size_t)1 << 22)
/* Work sizes are checked for overflow up to this many threads: above nnk_max_threads(), which
 * stays below 2^20 (dispatch/threads.c), and a constant, so no kernel asks the OS for its CPUs. */
#define CONV_THREADS_BOUND (1 << 20)
/* Below this many flops per thread a GEMM stays on one thread (the GEMM's own threshold). */
#define CONV_MIN_FLOPS_PER_THREAD 4.0e5

/* What the kernels derive from a shape, every size checked against overflow. */
typedef struct conv_plan {
    size_t out_h, out_w;
    size_t cg, og, k, p;        /* channels per group in / out, patch length, output pixels */
    size_t x_len, y_len, w_len; /* elements of x (dx), y (z, dy), w (dw) */
    size_t spb, blocks, cols;   /* samples a block, blocks, GEMM columns spb * P (last block: fewer) */
    int direct;                 /* 1x1, stride 1, no padding, one sample a block: col is x[n, g] */
    size_t col;                 /* floats of one col buffer (K, cols), a multiple of 16; 0 when direct */
    size_t stage;               /* floats of one (Og, cols) buffer, for blocks of several samples: the
                                   forward's product, the backward's dz gathered; 0 when spb == 1 */
    size_t chunks;              /* block chunks of the weight gradient */
    size_t partials;            /* floats of the partial weight gradients, a multiple of 16 */
} conv_plan;

static int mul_ovf(size_t a, size_t b, size_t *r) { return __builtin_mul_overflow(a, b, r); }
static int add_ovf(size_t a, size_t b, size_t *r) { return __builtin_add_overflow(a, b, r); }
/* n rounded up to 16 floats (64 bytes), so every slice of the work buffer stays aligned. */
static int round16_ovf(size_t n, size_t *r) {
    if (add_ovf(n, 15, r)) return -1;
    *r &= ~(size_t)15;
    return 0;
}

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

/* A count of floats that is also a valid byte count. */
static int floats_ovf(size_t a, size_t b, size_t c, size_t d, size_t *r) {
    size_t bytes;
    return mul_ovf(a, b, r) || mul_ovf(*r, c, r) || mul_ovf(*r, d, r) || mul_ovf(*r, sizeof(float), &bytes);
}

/* Padded input length and dilated kernel extent along one axis; -1 when it does not fit. */
static int axis_out(size_t in, size_t pad, size_t kernel, size_t dilation, size_t stride, size_t *out) {
    size_t padded, extent;
    if (mul_ovf(pad, 2, &padded) || add_ovf(padded, in, &padded)) return -1;
    if (mul_ovf(dilation, kernel - 1, &extent) || add_ovf(extent, 1, &extent)) return -1;
    if (extent > padded) return -1;
    *out = (padded - extent) / stride + 1;
    return 0;
}

static int conv_plan_make(const nnk_conv2d_shape *s, conv_plan *p) {
    if (s == NULL || !s->batch || !s->in_channels || !s->in_h || !s->in_w || !s->out_channels || !s->kernel_h ||
        !s->kernel_w || !s->stride_h || !s->stride_w || !s->dilation_h || !s->dilation_w || !s->groups)
        return -1;
    if (s->in_channels % s->groups || s->out_channels % s->groups) return -1;
    if (axis_out(s->in_h, s->pad_h, s->kernel_h, s->dilation_h, s->stride_h, &p->out_h) ||
        axis_out(s->in_w, s->pad_w, s->kernel_w, s->dilation_w, s->stride_w, &p->out_w))
        return -1;
    p->cg = s->in_channels / s->groups;
    p->og = s->out_channels / s->groups;
    if (floats_ovf(p->cg, s->kernel_h, s->kernel_w, 1, &p->k) || floats_ovf(p->out_h, p->out_w, 1, 1, &p->p) ||
        floats_ovf(s->batch, s->in_channels, s->in_h, s->in_w, &p->x_len) ||
        floats_ovf(s->batch, s->out_channels, p->out_h, p->out_w, &p->y_len) ||
        floats_ovf(s->out_channels, p->k, 1, 1, &p->w_len))
        return -1;
    p->spb = p->k < CONV_BLOCK_MIN_K ? 1 : NNK_MIN(s->batch, ceil_div(CONV_BLOCK_COLS, p->p));
    p->blocks = ceil_div(s->batch, p->spb);
    p->cols = p->spb * p->p; /* <= y_len */
    p->direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
                s->pad_w == 0 && p->spb == 1;
    p->col = p->stage = 0;
    if (!p->direct && (floats_ovf(p->k, p->cols, 1, 1, &p->col) || round16_ovf(p->col, &p->col))) return -1;
    if (p->spb > 1 && round16_ovf(p->og * p->cols, &p->stage)) return -1; /* og * cols <= y_len */
    size_t chunks = NNK_MIN(p->blocks, NNK_MAX(1, CONV_TARGET_UNITS / s->groups));
    chunks = NNK_MIN(chunks, NNK_MAX(1, CONV_PARTIAL_BUDGET / p->w_len));
    p->chunks = chunks;
    return round16_ovf((chunks - 1) * p->w_len, &p->partials) ? -1 : 0; /* <= the budget: no overflow */
}

/* GEMM scratch of one forward product, and of the larger of the two backward products. */
static size_t fwd_gemm_work(const conv_plan *p, int threads) {
    return nnk_sgemm_work_size(p->og, p->cols, p->k, threads);
}
static size_t bwd_gemm_work(const conv_plan *p, int threads) {
    const size_t dw = nnk_sgemm_work_size(p->og, p->k, p->cols, threads);
    const size_t dx = p->direct ? nnk_sgemm_work_size(p->cg, p->cols, p->og, threads)
                                : nnk_sgemm_work_size(p->k, p->cols, p->og, threads);
    return NNK_MAX(dw, dx);
}

/* Floats of work for `threads` threads: room for the units in parallel (a col, a stage and a
 * one-thread GEMM buffer each) and for the units in order (the same with an all-thread GEMM
 * buffer), after the partials in the backward. Returns -1 on overflow. */
static int conv_work(const conv_plan *p, size_t units, int backward, int threads, size_t *out) {
    const size_t gemm1 = backward ? bwd_gemm_work(p, 1) : fwd_gemm_work(p, 1);
    const size_t gemmt = backward ? bwd_gemm_work(p, threads) : fwd_gemm_work(p, threads);
    size_t base, par, ser;
    if (add_ovf(p->col, p->stage, &base) || add_ovf(base, gemm1, &par) ||
        mul_ovf(par, NNK_MIN((size_t)threads, units), &par) || add_ovf(base, gemmt, &ser))
        return -1;
    return add_ovf(backward ? p->partials : 0, NNK_MAX(par, ser), out);
}

static size_t fwd_units(const nnk_conv2d_shape *s, const conv_plan *p) { return p->blocks * s->groups; }
static size_t bwd_units(const nnk_conv2d_shape *s, const conv_plan *p) { return p->chunks * s->groups; }

int nnk_conv2d_output_size(const nnk_conv2d_shape *s, size_t *out_h, size_t *out_w) {
    conv_plan p;
    size_t f, b;
    if (conv_plan_make(s, &p) != 0 || conv_work(&p, fwd_units(s, &p), 0, CONV_THREADS_BOUND, &f) ||
        conv_work(&p, bwd_units(s, &p), 1, CONV_THREADS_BOUND, &b))
        return -1;
    if (out_h) *out_h = p.out_h;
    if (out_w) *out_w = p.out_w;
    return 0;
}

static int clamp_threads(int threads) { return threads < 1 ? 1 : NNK_MIN(threads, CONV_THREADS_BOUND); }

size_t nnk_conv2d_forward_work_size(const nnk_conv2d_shape *s, int threads) {
    conv_plan p;
    size_t n;
    if (nnk_conv2d_output_size(s, NULL, NULL) != 0 || conv_plan_make(s, &p) != 0) return 0;
    return conv_work(&p, fwd_units(s, &p), 0, clamp_threads(threads), &n) ? 0 : n;
}

size_t nnk_conv2d_backward_work_size(const nnk_conv2d_shape *s, int threads) {
    conv_plan p;
    size_t n;
    if (nnk_conv2d_output_size(s, NULL, NULL) != 0 || conv_plan_make(s, &p) != 0) return 0;
    return conv_work(&p, bwd_units(s, &p), 1, clamp_threads(threads), &n) ? 0 : n;
}

/* Output positions [*lo, *hi) along one axis whose input coordinate o * stride + off - pad lies
 * in [0, in) (off = kernel tap * dilation); unsigned throughout, so no position goes negative. */
static void valid_span(size_t n_out, size_t stride, size_t off, size_t pad, size_t in, size_t *lo, size_t *hi) {
    const size_t first = off >= pad ? 0 : ceil_div(pad - off, stride);
    const size_t past = off >= pad + in ? 0 : ceil_div(pad + in - off, stride);
    *lo = NNK_MIN(first, n_out);
    *hi = NNK_MAX(*lo, NNK_MIN(past, n_out));
}

/* One sample's patches between x (Cg, in_h, in_w) and col (K rows ld apart, P columns):
 * dx == NULL: col <- the patches of x, zero where they reach into the padding (im2col);
 * else:       dx += the patches in col, in a fixed order: patch row, then position (col2im).
 * Inlined into im2col and col2im, so each gets its own loop without the test. */
static inline __attribute__((always_inline)) void patches(float *col, size_t ld, const float *x, float *dx,
                                                          const nnk_conv2d_shape *s, const conv_plan *p) {
    const size_t ow_n = p->out_w;
    for (size_t c = 0; c < p->cg; c++)
        for (size_t ki = 0; ki < s->kernel_h; ki++) {
            size_t r0, r1;
            valid_span(p->out_h, s->stride_h, ki * s->dilation_h, s->pad_h, s->in_h, &r0, &r1);
            for (size_t kj = 0; kj < s->kernel_w; kj++) {
                size_t c0, c1;
                valid_span(ow_n, s->stride_w, kj * s->dilation_w, s->pad_w, s->in_w, &c0, &c1);
                float *row = col + ((c * s->kernel_h + ki) * s->kernel_w + kj) * ld;
                if (!dx) {
                    memset(row, 0, r0 * ow_n * sizeof(float));
                    memset(row + r1 * ow_n, 0, (p->out_h - r1) * ow_n * sizeof(float));
                }
                for (size_t oh = r0; oh < r1; oh++) {
                    const size_t ih = oh * s->stride_h + ki * s->dilation_h - s->pad_h;
                    const size_t at = (c * s->in_h + ih) * s->in_w + c0 * s->stride_w + kj * s->dilation_w - s->pad_w;
                    float *cr = row + oh * ow_n;
                    if (dx) {
                        for (size_t ow = c0; ow < c1; ow++) dx[at + (ow - c0) * s->stride_w] += cr[ow];
                        continue;
                    }
                    memset(cr, 0, c0 * sizeof(float));
                    if (s->stride_w == 1) {
                        memcpy(cr + c0, x + at, (c1 - c0) * sizeof(float));
                    } else {
                        for (size_t ow = c0; ow < c1; ow++) cr[ow] = x[at + (ow - c0) * s->stride_w];
                    }
                    memset(cr + c1, 0, (ow_n - c1) * sizeof(float));
                }
            }
        }
}

static void im2col(float *col, size_t ld, const float *x, const nnk_conv2d_shape *s, const conv_plan *p) {
    patches(col, ld, x, NULL, s, p);
}

static void col2im(float *dx, float *col, size_t ld, const nnk_conv2d_shape *s, const conv_plan *p) {
    patches(col, ld, NULL, dx, s, p);
}

static int thread_num(void) {
#ifdef NNK_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* One call's arguments, so any thread can run any unit of it. */
typedef struct conv_call {
    const nnk_conv2d_shape *s;
    const conv_plan *p;
    float *y, *z, *dx, *dw, *dy, *partials;
    const float *x, *w, *b;
    nnk_act act;
    float alpha;
    int accumulate;
    nnk_precision prec;
} conv_call;

/* Forward unit u = (block, group): for the block's samples n, y[n, g] (Og, P) = act(W_g * col + b)
 * and z[n, g] the pre-activation; the activation is left out when `with_act` is 0 (the caller
 * runs it). A block of several samples multiplies into the stage, then copies out by sample. */
static void forward_unit(const conv_call *a, size_t u, float *work, size_t work_len, int threads, int with_act) {
    const nnk_conv2d_shape *s = a->s;
    const conv_plan *p = a->p;
    const size_t blk = u / s->groups, g = u % s->groups, n0 = blk * p->spb;
    const size_t ns = NNK_MIN(p->spb, s->batch - n0), cols = ns * p->p, xs = s->in_channels * s->in_h * s->in_w;
    const float *xg = a->x + (n0 * s->in_channels + g * p->cg) * s->in_h * s->in_w, *col = xg;
    float *out = p->spb == 1 ? a->y + (n0 * s->out_channels + g * p->og) * p->p : work + p->col;
    if (!p->direct) {
        for (size_t i = 0; i < ns; i++) im2col(work + i * p->p, cols, xg + i * xs, s, p);
        col = work;
    }
    nnk_gemm_capped(a->prec, threads, NNK_NO_TRANS, NNK_NO_TRANS, p->og, cols, p->k, 1.0f, a->w + g * p->og * p->k, p->k,
                     col, cols, 0.0f, out, cols, NULL, work + p->col + p->stage, work_len - p->col - p->stage);
    for (size_t i = 0; i < ns; i++) {
        float *yg = a->y + ((n0 + i) * s->out_channels + g * p->og) * p->p;
        for (size_t o = 0; o < p->og; o++) {
            float *row = yg + o * p->p;
            if (out != yg) memcpy(row, out + o * cols + i * p->p, p->p * sizeof(float));
            if (a->b)
                for (size_t j = 0; j < p->p; j++) row[j] += a->b[g * p->og + o];
        }
        if (a->z) memcpy(a->z + (yg - a->y), yg, p->og * p->p * sizeof(float));
        if (with_act && a->act != NNK_ACT_IDENTITY) nnk_act_forward(a->act, a->alpha, yg, yg, p->og * p->p);
    }
}

/* Backward unit u = (chunk, group), over the chunk's blocks in order: the chunk's partial dW_g
 * (chunk 0: dw itself) and dx[n, g]. dy already holds dz; a block of several samples gathers
 * its dz[n, g] side by side into the stage first. */
static void backward_unit(const conv_call *a, size_t u, float *work, size_t work_len, int threads) {
    const nnk_conv2d_shape *s = a->s;
    const conv_plan *p = a->p;
    const size_t c = u / s->groups, g = u % s->groups;
    const size_t b0 = p->blocks * c / p->chunks, b1 = p->blocks * (c + 1) / p->chunks;
    const size_t xs = s->in_channels * s->in_h * s->in_w, ys = s->out_channels * p->p;
    const float *wg = a->w + g * p->og * p->k;
    float *buf = work, *stage = work + p->col, *gw = stage + p->stage;
    const size_t gl = work_len - p->col - p->stage;
    for (size_t blk = b0; blk < b1; blk++) {
        const size_t n0 = blk * p->spb, ns = NNK_MIN(p->spb, s->batch - n0), cols = ns * p->p;
        const float *xg = a->x + n0 * xs + g * p->cg * s->in_h * s->in_w;
        const float *dz = a->dy + n0 * ys + g * p->og * p->p;
        if (p->spb > 1) {
            for (size_t o = 0; o < p->og; o++)
                for (size_t i = 0; i < ns; i++)
                    memcpy(stage + o * cols + i * p->p, dz + i * ys + o * p->p, p->p * sizeof(float));
            dz = stage;
        }
        if (a->dw) {
            const float *col = xg;
            if (!p->direct) {
                for (size_t i = 0; i < ns; i++) im2col(buf + i * p->p, cols, xg + i * xs, s, p);
                col = buf;
            }
            float *dst = (c == 0 ? a->dw : a->partials + (c - 1) * p->w_len) + g * p->og * p->k;
            const float beta = blk > b0 || (c == 0 && a->accumulate) ? 1.0f : 0.0f;
            nnk_gemm_capped(a->prec, threads, NNK_NO_TRANS, NNK_TRANS, p->og, p->k, cols, 1.0f, dz, cols, col, cols, beta, dst,
                             p->k, NULL, gw, gl);
        }
        if (a->dx) {
            float *dxg = a->dx + (xg - a->x);
            if (p->direct) {
                nnk_gemm_capped(a->prec, threads, NNK_TRANS, NNK_NO_TRANS, p->cg, cols, p->og, 1.0f, wg, p->k, dz, cols, 0.0f,
                                 dxg, cols, NULL, gw, gl);
                continue;
            }
            nnk_gemm_capped(a->prec, threads, NNK_TRANS, NNK_NO_TRANS, p->k, cols, p->og, 1.0f, wg, p->k, dz, cols, 0.0f, buf,
                             cols, NULL, gw, gl);
            for (size_t i = 0; i < ns; i++) {
                memset(dxg + i * xs, 0, p->cg * s->in_h * s->in_w * sizeof(float));
                col2im(dxg + i * xs, buf + i * p->p, cols, s, p);
            }
        }
    }
}

/* Runs units [0, units) of a forward (backward = 0) or backward call: in parallel when that
 * uses at least as many threads as the GEMM would on one unit, else in order with threaded
 * GEMMs (a call too small to share runs on the calling thread either way). work: `slice`
 * floats per parallel thread. Returns 1 when the units ran in parallel. */
static int run_units(const conv_call *a, int backward, size_t units, double unit_flops, float *work,
                     size_t work_len, size_t slice, int with_act_in_parallel) {
    const int threads = nnk_get_num_threads();
    const size_t fit = work_len / slice;
    const int by_flops = nnk_threads_for(unit_flops * (double)units, CONV_MIN_FLOPS_PER_THREAD);
    const int par = (int)NNK_MIN((size_t)by_flops, NNK_MIN(units, fit));
    const int gemm_threads = nnk_threads_for(unit_flops, CONV_MIN_FLOPS_PER_THREAD);
    if (par >= 2 && par >= gemm_threads) {
        NNK_PRAGMA(omp parallel num_threads(par))
        {
            size_t u0, u1;
            nnk_thread_share(units, &u0, &u1);
            float *mine = work + (size_t)thread_num() * slice;
            for (size_t u = u0; u < u1; u++) {
                if (backward)
                    backward_unit(a, u, mine, slice, 1);
                else
                    forward_unit(a, u, mine, slice, 1, with_act_in_parallel);
            }
        }
        return 1;
    }
    for (size_t u = 0; u < units; u++) {
        if (backward)
            backward_unit(a, u, work, work_len, threads);
        else
            forward_unit(a, u, work, work_len, threads, 1);
    }
    return 0;
}

void nnk_conv2d_forward(nnk_precision prec, float *y, float *z, const float *x, const float *w, const float *b,
                        const nnk_conv2d_shape *s, nnk_act act, float alpha, float *work, size_t work_len) {
    conv_plan p;
    size_t need;
    const int ok = conv_plan_make(s, &p) == 0 && conv_work(&p, fwd_units(s, &p), 0, 1, &need) == 0;
    assert(ok && "nnk_conv2d_output_size refuses this shape");
    if (!ok) return;
    if (work == NULL || work_len < need) {
        nnk_conv2d_forward_ref(y, z, x, w, b, s, act, alpha);
        return;
    }
    const conv_call a = {s, &p, y, z, NULL, NULL, NULL, NULL, x, w, b, act, alpha, 0, prec};
    /* A unit's activation runs on its thread unless it is large enough for nnk_act_forward to
     * open a parallel region of its own; then it runs once over all of y after the units. */
    const int act_in_unit = p.og * p.p < NNK_ELEMWISE_PARALLEL_MIN;
    const double flops = 2.0 * (double)p.og * (double)p.cols * (double)p.k;
    const size_t slice = p.col + p.stage + fwd_gemm_work(&p, 1);
    if (run_units(&a, 0, fwd_units(s, &p), flops, work, work_len, slice, act_in_unit) &&
        !act_in_unit && act != NNK_ACT_IDENTITY)
        nnk_act_forward(act, alpha, y, y, p.y_len);
}

/* Sum of x (n): eight interleaved float sums (so the compiler can vectorise it; a double chain
 * ran at one add per four cycles, a third of the backward of 1->32 28x28 k3), added in double. */
static double row_sum(const float *x, size_t n) {
    float lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++) lane[j] += x[i + j];
    double t = 0;
    for (size_t j = 0; j < 8; j++) t += lane[j];
    for (; i < n; i++) t += x[i];
    return t;
}

/* db (Cout) (+)= sums of dz over batch and space, row by row into double, one channel per thread. */
static void conv_bias_grad(float *db, const float *dz, const nnk_conv2d_shape *s, const conv_plan *p,
                           int accumulate) {
    const size_t oc = s->out_channels;
    const int nt = (int)NNK_MIN((size_t)nnk_threads_for((double)p->y_len, NNK_ELEMWISE_PARALLEL_MIN / 2.0), oc);
    NNK_PARALLEL_FOR(nt, oc, o, {
        double acc = accumulate ? db[o] : 0.0;
        for (size_t n = 0; n < s->batch; n++) acc += row_sum(dz + (n * oc + o) * p->p, p->p);
        db[o] = (float)acc;
    });
}

/* dw (n) += partials[0] + partials[1] + ... (chunks - 1 of them, n floats apart), in that order
 * for every element, in fixed blocks of elements across threads. */
static void add_partials(float *dw, const float *partials, size_t count, size_t n) {
    const size_t blocks = (n + NNK_ELEMWISE_CHUNK - 1) / NNK_ELEMWISE_CHUNK;
    const int nt = nnk_threads_for((double)n * (double)count, NNK_ELEMWISE_PARALLEL_MIN / 2.0);
    NNK_PARALLEL_FOR(nt, blocks, bi, {
        const size_t i0 = bi * NNK_ELEMWISE_CHUNK;
        const size_t i1 = NNK_MIN(n, i0 + NNK_ELEMWISE_CHUNK);
        for (size_t c = 0; c < count; c++) {
            const float *part = partials + c * n;
            for (size_t i = i0; i < i1; i++) dw[i] += part[i];
        }
    });
}

void nnk_conv2d_backward(nnk_precision prec, float *dx, float *dw, float *db, float *dy, const float *x,
                         const float *w, const float *z, const float *y, const nnk_conv2d_shape *s, nnk_act act,
                         float alpha, int accumulate, float *work, size_t work_len) {
    conv_plan p;
    size_t need;
    const int ok = conv_plan_make(s, &p) == 0 && conv_work(&p, bwd_units(s, &p), 1, 1, &need) == 0;
    assert(ok && "nnk_conv2d_output_size refuses this shape");
    if (!ok) return;
    assert(z != NULL || !nnk_act_needs_input(act));
    if (work == NULL || work_len < need) {
        nnk_conv2d_backward_ref(dx, dw, db, dy, x, w, z, y, s, act, alpha, accumulate);
        return;
    }
    if (act != NNK_ACT_IDENTITY) nnk_act_backward(act, alpha, dy, dy, z, y, p.y_len);
    if (db) conv_bias_grad(db, dy, s, &p, accumulate);
    if (dw == NULL && dx == NULL) return;
    const conv_call a = {s, &p, NULL, NULL, dx, dw, dy, work, x, w, NULL, act, alpha, accumulate, prec};
    const double flops = 2.0 * (double)p.og * (double)p.cols * (double)p.k; /* per product */
    run_units(&a, 1, bwd_units(s, &p), flops, work + p.partials, work_len - p.partials,
              p.col + p.stage + bwd_gemm_work(&p, 1), 1);
    if (dw && p.chunks > 1) add_partials(dw, work, p.chunks - 1, p.w_len);
}
