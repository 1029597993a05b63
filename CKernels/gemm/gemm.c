/*
 * nnk_sgemm: partitions C over threads, then runs the blocked Goto/BLIS loop on each part with
 * that thread's own packing buffers (no barriers, no shared scratch), with the blocking and
 * micro-kernels of the active kernel table's gemm entry. Every element of C is
 * produced by one thread with the same K blocking whatever the thread count, so results are
 * bitwise identical for 1 and N threads.
 */
#include "gemm_internal.h"
#include "../dispatch/table.h"

#include <string.h>

#ifdef NNK_HAVE_OPENMP
#include <omp.h>
#endif

/* The installed GEMM override, published whole with one atomic store (overrides are kept for
 * the life of the process, so a reader never sees a freed record). */
typedef struct sgemm_override {
    nnk_sgemm_fn fn;
    void *ctx;
} sgemm_override;
static sgemm_override *sgemm_override_;

void nnk_set_sgemm_override(nnk_sgemm_fn fn, void *ctx) {
    sgemm_override *o = NULL;
    if (fn != NULL) {
        static sgemm_override slots[64]; /* installs beyond 64 reuse the last slot */
        static unsigned used;
        o = &slots[used < 63 ? used++ : 63];
        o->fn = fn;
        o->ctx = ctx;
    }
    __atomic_store_n(&sgemm_override_, o, __ATOMIC_RELEASE);
}

int nnk_sgemm_overridden(void) { return __atomic_load_n(&sgemm_override_, __ATOMIC_ACQUIRE) != NULL; }

/* Below this many flops per thread a product stays on the calling thread. */
#define GEMM_MIN_FLOPS_PER_THREAD 4.0e5

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* The unpacked path: both operands contiguous along K (X * W^T) and few rows, so packing W
 * would cost more than it saves. The choice depends on the shape only, never on threads. */
static int use_dot_rows(const nnk_gemm_arch *g, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K) {
    if (ta != NNK_NO_TRANS || tb != NNK_TRANS) return 0;
    if (M <= 4) return 1;
    if (g->dot_max_m == 0 || K < 64) return 0;
    /* Measured on Zen 5 (nnb-kernels bench): the dot path wins up to 64 rows, and up to 256
     * when N is narrower than a micro-tile or K is long enough to amortise its reductions. */
    return M <= g->dot_max_m || (M <= 4 * g->dot_max_m && (N < g->nr || K >= 512));
}

/* Floats one thread packs into: an (mc, kc) block of A and a (kc, nc) panel of B. */
static size_t per_thread_work(const nnk_gemm_arch *g, size_t M, size_t N, size_t K) {
    const size_t kc = NNK_MIN(g->kc, K);
    const size_t mc = NNK_MIN(g->mc, round_up(M, g->mr));
    const size_t nc = NNK_MIN(g->nc, round_up(N, g->nr));
    return round_up(mc * kc, 16) + round_up(kc * nc, 16);
}

/* Floats of the same two blocks packed as bf16 pairs (depth in slots of two). */
static size_t per_thread_work_bf16(const nnk_gemm_arch *g, size_t M, size_t N, size_t K) {
    const size_t slots = (NNK_MIN(g->kc, K) + 1) / 2;
    const size_t mc = NNK_MIN(g->mc, round_up(M, g->mr));
    const size_t nc = NNK_MIN(g->nc, round_up(N, g->nr));
    return round_up(mc * slots, 16) + round_up(slots * nc, 16);
}

/* bf16 where it is asked for and the path has a kernel, except for the products the fp32 path
 * runs unpacked with at most dot_max_m rows (X * W^T at batch <= 64): there the weights would
 * have to be packed, which costs more than the bf16 kernel saves (nnb-kernels bench on Zen 5:
 * b32 784->256 forward 0.66x of fp32; at b128 1.03x and b256 1.43x, so those stay bf16). */
nnk_precision nnk_gemm_precision(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K) {
    const nnk_kernel_table *t = nnk_active_table();
    if (prec != NNK_PRECISION_BF16 || t->gemm_bf16 == NULL) return prec == NNK_PRECISION_BF16 ? prec : NNK_PRECISION_FP32;
    const size_t few = t->gemm->dot_max_m ? t->gemm->dot_max_m : 4;
    return M <= few && use_dot_rows(t->gemm, ta, tb, M, N, K) ? NNK_PRECISION_FP32 : NNK_PRECISION_BF16;
}

size_t nnk_sgemm_work_size(size_t M, size_t N, size_t K, int threads) {
    const nnk_kernel_table *t = nnk_active_table();
    if (M == 0 || N == 0 || K == 0) return 0;
    size_t per = per_thread_work(t->gemm, M, N, K);
    if (t->gemm_bf16) per = NNK_MAX(per, per_thread_work_bf16(t->gemm_bf16, M, N, K));
    return per * (size_t)(threads < 1 ? 1 : threads);
}

int nnk_precision_supported(nnk_precision prec) {
    switch (prec) {
    case NNK_PRECISION_FP32: return 1;
    case NNK_PRECISION_BF16: return nnk_active_table()->gemm_bf16 != NULL;
    default: return 0;
    }
}

void nnk_gemm_apply_epilogue(const nnk_epilogue *ep, float *C, size_t ldc, size_t i0, size_t j0, size_t m,
                             size_t n) {
    for (size_t i = 0; i < m; i++) {
        float *row = C + (i0 + i) * ldc + j0;
        if (ep->bias)
            for (size_t j = 0; j < n; j++) row[j] += ep->bias[j0 + j];
        if (ep->Z) memcpy(ep->Z + (i0 + i) * ldc + j0, row, n * sizeof(float));
        if (ep->act != NNK_ACT_IDENTITY) nnk_act_forward(ep->act, ep->alpha, row, row, n);
    }
}

typedef struct gemm_args {
    nnk_trans ta, tb;
    size_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    size_t lda, ldb, ldc;
    float *C;
    const nnk_epilogue *ep;
} gemm_args;

/* Rows [m0, m1) x columns [n0, n1) of C by the blocked loop; work: per_thread_work floats
 * (per_thread_work_bf16 when `bf16`: the panels then hold depth pairs, `slots` per row). */
static void gemm_block(const nnk_gemm_arch *g, int bf16, const gemm_args *a, size_t m0, size_t m1, size_t n0,
                       size_t n1, float *work) {
    const size_t mr = g->mr, nr = g->nr;
    const size_t slots_max = bf16 ? (NNK_MIN(g->kc, a->K) + 1) / 2 : NNK_MIN(g->kc, a->K);
    float *pa = work;
    float *pb = work + round_up(NNK_MIN(g->mc, round_up(a->M, mr)) * slots_max, 16);
    const nnk_pack_a_fn pack_a = g->pack_a ? g->pack_a : nnk_pack_a;
    const nnk_pack_b_fn pack_b = g->pack_b ? g->pack_b : nnk_pack_b;
    for (size_t jc = n0; jc < n1; jc += g->nc) {
        const size_t ncb = NNK_MIN(g->nc, n1 - jc);
        for (size_t pc = 0; pc < a->K; pc += g->kc) {
            const size_t kcb = NNK_MIN(g->kc, a->K - pc), slots = bf16 ? (kcb + 1) / 2 : kcb;
            const float beta = pc == 0 ? a->beta : 1.0f;
            const int last = pc + kcb == a->K;
            pack_b(pb, a->tb, a->B, a->ldb, pc, kcb, jc, ncb, nr);
            for (size_t ic = m0; ic < m1; ic += g->mc) {
                const size_t mcb = NNK_MIN(g->mc, m1 - ic);
                pack_a(pa, a->ta, a->A, a->lda, ic, mcb, pc, kcb, mr);
                for (size_t jr = 0; jr < ncb; jr += nr) {
                    const size_t nb = NNK_MIN(nr, ncb - jr);
                    for (size_t ir = 0; ir < mcb; ir += mr) {
                        const size_t mb = NNK_MIN(mr, mcb - ir);
                        float *c = a->C + (ic + ir) * a->ldc + jc + jr;
                        g->ukernel(slots, pa + ir * slots, pb + jr * slots, c, a->ldc, a->alpha, beta, mb, nb);
                        if (last && a->ep) nnk_gemm_apply_epilogue(a->ep, a->C, a->ldc, ic + ir, jc + jr, mb, nb);
                    }
                }
            }
        }
    }
}

/* Split the tile grid into tm x tn thread blocks (tm * tn == nt), as square in work as possible. */
static void choose_grid(size_t mt, size_t nt_tiles, int nt, int *tm, int *tn) {
    size_t best = (size_t)-1;
    for (int d = 1; d <= nt; d++) {
        if (nt % d) continue;
        const size_t rows = (mt + (size_t)(nt / d) - 1) / (size_t)(nt / d);
        const size_t cols = (nt_tiles + (size_t)d - 1) / (size_t)d;
        const size_t cost = rows * cols * 4 + rows + cols; /* tiles per thread, then packing */
        if (cost < best) best = cost, *tm = nt / d, *tn = d;
    }
}

static void scale_c(float *C, size_t ldc, size_t M, size_t N, float beta) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

/* The dot path: 4-column strips of C (4 rows of W, kept in L1) against 4-row blocks of A,
 * strips split across threads. */
/* Strips [s0, s1) of the dot path: 4-column strips of C (4 rows of W, kept in L1) against
 * 4-row blocks of A. */
static void dot_strips(const nnk_gemm_arch *g, const gemm_args *a, size_t s0, size_t s1) {
    for (size_t s = s0; s < s1; s++) {
        const size_t j = s * 4, nb = NNK_MIN(4, a->N - j);
        for (size_t i = 0; i < a->M; i += 4) {
            const size_t mb = NNK_MIN(4, a->M - i);
            float *c = a->C + i * a->ldc + j;
            g->dot_rows(mb, nb, a->K, a->alpha, a->A + i * a->lda, a->lda, a->B + j * a->ldb, a->ldb, a->beta, c, a->ldc);
            if (a->ep) nnk_gemm_apply_epilogue(a->ep, a->C, a->ldc, i, j, mb, nb);
        }
    }
}

/* The dot path, strips split across threads. A product too small to share runs on the calling
 * thread without entering OpenMP at all (even a serialized region allocates in libomp). */
static void gemm_dot_rows(const nnk_gemm_arch *g, const gemm_args *a, int max_threads) {
    const size_t strips = (a->N + 3) / 4;
    int nt = nnk_threads_for(2.0 * (double)a->M * (double)a->N * (double)a->K, GEMM_MIN_FLOPS_PER_THREAD);
    /* A few rows stream all of B for few FMAs: the product is bound by each core's cache
     * bandwidth, so a large B is split over threads by its bytes, whatever the flops (a
     * one-sample predict through the 784->256 layer: each core then streams half the weights,
     * from its own L2 on later calls since the split is the same each time). */
    if (a->M <= 4) {
        const int by_bytes = nnk_threads_for_stream(4.0 * (double)a->N * (double)a->K, NNK_STREAM_MIN_BYTES_PER_THREAD);
        if (by_bytes > nt) nt = by_bytes;
    }
    if (nt > max_threads) nt = max_threads;
    NNK_PARALLEL_FOR(nt, strips, s, dot_strips(g, a, s, s + 1));
}

void nnk_gemm_capped(nnk_precision prec, int max_threads, nnk_trans ta, nnk_trans tb, size_t M, size_t N,
                     size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb, float beta,
                     float *C, size_t ldc, const nnk_epilogue *ep, float *work, size_t work_len) {
    assert(ldc >= N);
    assert(ta == NNK_NO_TRANS ? lda >= K : lda >= M);
    assert(tb == NNK_NO_TRANS ? ldb >= N : ldb >= K);
    if (M == 0 || N == 0) return;
    const int bf16 = nnk_gemm_precision(prec, ta, tb, M, N, K) == NNK_PRECISION_BF16;
    const sgemm_override *o = bf16 ? NULL : __atomic_load_n(&sgemm_override_, __ATOMIC_ACQUIRE);
    if (o != NULL) {
        o->fn(o->ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (ep) nnk_gemm_apply_epilogue(ep, C, ldc, 0, 0, M, N);
        return;
    }
    const gemm_args a = {ta, tb, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, ep};
    if (K == 0) {
        scale_c(C, ldc, M, N, beta);
        if (ep) nnk_gemm_apply_epilogue(ep, C, ldc, 0, 0, M, N);
        return;
    }
    const nnk_gemm_arch *g = bf16 ? nnk_active_table()->gemm_bf16 : nnk_active_table()->gemm;
    if (!bf16 && use_dot_rows(g, ta, tb, M, N, K)) {
        gemm_dot_rows(g, &a, max_threads);
        return;
    }
    const size_t per = g == NULL ? 0 : bf16 ? per_thread_work_bf16(g, M, N, K) : per_thread_work(g, M, N, K);
    int nt = nnk_threads_for(2.0 * (double)M * (double)N * (double)K, GEMM_MIN_FLOPS_PER_THREAD);
    if (nt > max_threads) nt = max_threads;
    if (per == 0 || (size_t)nt > work_len / per) nt = per == 0 ? 0 : (int)(work_len / per);
    if (nt == 0 || work == NULL) {
        /* No room to pack, or no kernel for the precision: the reference loop, still correct. */
        (bf16 ? nnk_sbgemm_ref : nnk_sgemm_ref)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (ep) nnk_gemm_apply_epilogue(ep, C, ldc, 0, 0, M, N);
        return;
    }
    if (nt == 1) {
        gemm_block(g, bf16, &a, 0, M, 0, N, work);
        return;
    }
    const size_t mt = (M + g->mr - 1) / g->mr, ntl = (N + g->nr - 1) / g->nr;
    int tm = 1, tn = nt;
    choose_grid(mt, ntl, nt, &tm, &tn);
    /* The region may get fewer threads than nt (called from inside a caller's parallel region,
     * where OpenMP nests with a team of one): each thread then takes blocks t, t + team, ...,
     * so every block is computed, the same way whatever the team. */
    NNK_PRAGMA(omp parallel num_threads(nt))
    {
#ifdef NNK_HAVE_OPENMP
        const int first = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int first = 0, team = 1;
#endif
        for (int t = first; t < nt; t += team) {
            const size_t r = (size_t)(t / tn), s = (size_t)(t % tn);
            const size_t m0 = NNK_MIN(M, mt * r / (size_t)tm * g->mr), m1 = NNK_MIN(M, mt * (r + 1) / (size_t)tm * g->mr);
            const size_t n0 = NNK_MIN(N, ntl * s / (size_t)tn * g->nr), n1 = NNK_MIN(N, ntl * (s + 1) / (size_t)tn * g->nr);
            if (m0 < m1 && n0 < n1) gemm_block(g, bf16, &a, m0, m1, n0, n1, work + (size_t)t * per);
        }
    }
}

void nnk_sgemm_capped(int max_threads, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                      const nnk_epilogue *ep, float *work, size_t work_len) {
    nnk_gemm_capped(NNK_PRECISION_FP32, max_threads, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep,
                    work, work_len);
}

void nnk_gemm_ex(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                 const nnk_epilogue *ep, float *work, size_t work_len) {
    nnk_gemm_capped(prec, nnk_get_num_threads(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, work,
                    work_len);
}

void nnk_sgemm_ex(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc, const nnk_epilogue *ep, float *work, size_t work_len) {
    nnk_gemm_ex(NNK_PRECISION_FP32, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, work, work_len);
}

void nnk_gemm(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
              float *work, size_t work_len) {
    nnk_gemm_ex(prec, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, work, work_len);
}

void nnk_sgemm(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
               size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc, float *work,
               size_t work_len) {
    nnk_sgemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, work, work_len);
}
