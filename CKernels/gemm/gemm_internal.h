/*
 * The blocked GEMM (Goto/BLIS scheme): C is cut into MR x NR micro-tiles; op(A) is packed into
 * MR-row micro-panels (a[k * MR + i]) and op(B) into NR-column micro-panels (b[k * NR + j]),
 * zero-padded, so one register-tiled micro-kernel per ISA serves all four transpose cases.
 * Packing reads A and B in whichever layout they come, so no transposed copy is ever made.
 */
#ifndef NNK_GEMM_INTERNAL_H
#define NNK_GEMM_INTERNAL_H

#include "../internal.h"

/* acc = sum_k a[k*MR + i] * b[k*NR + j] over kc; then for i < m, j < n:
 * C[i, j] = alpha * acc + beta * C[i, j] (beta == 0: C is not read). a, b are packed panels. */
typedef void (*nnk_ukernel_fn)(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               float alpha, float beta, size_t m, size_t n);

/* C[i, j] = alpha * dot(A row i, B row j) + beta * C[i, j] for i < m (m <= 4), j < n: the
 * unpacked path for few rows with both operands contiguous along K (X * W^T at predict time). */
typedef void (*nnk_dot_rows_fn)(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                                const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* Packs op(A) / op(B) blocks into the ukernel's micro-panels (nnk_pack_a / nnk_pack_b below). */
typedef void (*nnk_pack_a_fn)(float *dst, nnk_trans ta, const float *A, size_t lda, size_t i0, size_t mc,
                              size_t p0, size_t kc, size_t mr);
typedef void (*nnk_pack_b_fn)(float *dst, nnk_trans tb, const float *B, size_t ldb, size_t p0, size_t kc,
                              size_t j0, size_t nc, size_t nr);

typedef struct nnk_gemm_arch {
    size_t mr, nr;  /* micro-tile */
    size_t kc, mc, nc; /* cache blocks: kc along K, mc rows of A packed, nc columns of B packed */
    nnk_ukernel_fn ukernel;
    nnk_dot_rows_fn dot_rows;
    size_t dot_max_m; /* X * W^T with M up to this (and K >= 64) takes the unpacked dot path;
                         0 means 4 (the dot path is then only for predict-sized M) */
    nnk_pack_a_fn pack_a; /* NULL: nnk_pack_a (a bf16 arch names its own) */
    nnk_pack_b_fn pack_b; /* NULL: nnk_pack_b */
} nnk_gemm_arch;

/* Each ISA's blocking and kernels; the kernel tables (dispatch/table.h) point at them. */
extern const nnk_gemm_arch nnk_gemm_arch_scalar;
#if NNK_X86_64
extern const nnk_gemm_arch nnk_gemm_arch_avx2;
extern const nnk_gemm_arch nnk_gemm_arch_avx512;
/* bf16 (gemm_avx512_bf16.c): kc counts depths; its ukernel's kc argument counts depth pairs. */
extern const nnk_gemm_arch nnk_gemm_arch_avx512_bf16;
#endif
#if NNK_ARM64
extern const nnk_gemm_arch nnk_gemm_arch_neon;
#endif

/* Pack rows [i0, i0 + mc) x depth [p0, p0 + kc) of op(A) into ceil(mc / mr) micro-panels. */
void nnk_pack_a(float *dst, nnk_trans ta, const float *A, size_t lda, size_t i0, size_t mc,
                size_t p0, size_t kc, size_t mr);
/* Pack depth [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into ceil(nc / nr) micro-panels. */
void nnk_pack_b(float *dst, nnk_trans tb, const float *B, size_t ldb, size_t p0, size_t kc,
                size_t j0, size_t nc, size_t nr);

#if NNK_X86_64
/* The bf16 packers (gemm_pack_avx512_bf16.c; only where the CPU has AVX512_BF16): the fp32
 * panels' layout with depth in pairs. For depth pair q, row (or column) i holds one 32-bit slot
 * (lo = depth 2q, hi = depth 2q + 1), so panel[q * mr + i] is what the micro-kernel broadcasts
 * (A) or loads as a vector (B); an odd depth's partner is zero. A slot is the size of a float,
 * so the panels live in the same float work buffers and are addressed in floats. */
void nnk_pack_a_bf16_avx512(float *dst, nnk_trans ta, const float *A, size_t lda, size_t i0, size_t mc,
                            size_t p0, size_t kc, size_t mr);
void nnk_pack_b_bf16_avx512(float *dst, nnk_trans tb, const float *B, size_t ldb, size_t p0, size_t kc,
                            size_t j0, size_t nc, size_t nr);
#endif

/* What nnk_dense_forward asks the GEMM to finish on each tile after its last K block. */
typedef struct nnk_epilogue {
    const float *bias; /* (N) or NULL */
    float *Z;          /* pre-activation copy, same ld as C, or NULL */
    nnk_act act;
    float alpha;
} nnk_epilogue;

/* A few-row product streams B through the caches for few FMAs: below this many bytes of B per
 * thread it stays on one thread (nnk_threads_for_stream). */
#define NNK_STREAM_MIN_BYTES_PER_THREAD 2.0e5

/* Bias, pre-activation copy and activation on the (m, n) tile of C (ld ldc) at (i0, j0): what
 * every GEMM path runs on a tile after its last K block. */
void nnk_gemm_apply_epilogue(const nnk_epilogue *ep, float *C, size_t ldc, size_t i0, size_t j0, size_t m,
                             size_t n);

void nnk_gemm_ex(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                 const nnk_epilogue *ep, float *work, size_t work_len);
void nnk_sgemm_ex(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc, const nnk_epilogue *ep, float *work, size_t work_len);

/* nnk_sgemm_ex on at most max_threads threads, with the same bits for any max_threads. A kernel
 * that runs several products at once on its own threads (conv2d: one sample per thread) passes 1,
 * which keeps each product on the calling thread without entering OpenMP: a nested region would
 * run serialised anyway, and the blocked loop's thread grid assumes it gets every thread it asks for. */
void nnk_gemm_capped(nnk_precision prec, int max_threads, nnk_trans ta, nnk_trans tb, size_t M, size_t N,
                     size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb, float beta,
                     float *C, size_t ldc, const nnk_epilogue *ep, float *work, size_t work_len);
void nnk_sgemm_capped(int max_threads, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                      const nnk_epilogue *ep, float *work, size_t work_len);

/* Store helper for partial tiles: C[i, j] = alpha * t[i * nr + j] + beta * C[i, j]. */
static inline void nnk_tile_store(const float *t, size_t nr, float *c, size_t ldc, float alpha, float beta,
                                  size_t m, size_t n) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            c[i * ldc + j] = beta == 0.0f ? alpha * t[i * nr + j] : alpha * t[i * nr + j] + beta * c[i * ldc + j];
}

#endif
