/* int8 GEMM (quant_internal.h): weight packing, the blocked driver over the active path's
 * tile kernel, and the reference twins. */
#include "quant_internal.h"
#include "../dispatch/table.h"

#include <string.h>

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

size_t nnk_qweights_packed_size(size_t N, size_t K) { return round_up(N, NNK_QNR) * round_up(K, 4); }

void nnk_qweights_pack(int8_t *dst, const int8_t *W, size_t ldw, size_t N, size_t K) {
    const size_t groups = round_up(K, 4) / 4;
    for (size_t j0 = 0; j0 < N; j0 += NNK_QNR, dst += groups * 4 * NNK_QNR)
        for (size_t g = 0; g < groups; g++)
            for (size_t c = 0; c < NNK_QNR; c++)
                for (size_t t = 0; t < 4; t++) {
                    const size_t j = j0 + c, k = 4 * g + t;
                    dst[g * 4 * NNK_QNR + 4 * c + t] = j < N && k < K ? W[j * ldw + k] : 0;
                }
}

/* The portable tile: the same sums as the VNNI tile, in int32 (exact). */
void nnk_qtile_ref(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                   size_t n) {
    int32_t t[NNK_QMR][NNK_QNR] = {{0}};
    for (size_t g = 0; g < groups; g++, b += 4 * NNK_QNR)
        for (size_t i = 0; i < m; i++) {
            const uint8_t *ai = a + i * lda + 4 * g;
            for (size_t j = 0; j < NNK_QNR; j++)
                for (size_t q = 0; q < 4; q++) t[i][j] += (int32_t)ai[q] * (int32_t)b[4 * j + q];
        }
    for (size_t i = 0; i < m; i++) memcpy(c + i * ldc, t[i], n * sizeof(int32_t));
}

int nnk_int8_accelerated(void) { return nnk_active_table()->qtile != nnk_qtile_ref; }

/* Below this many multiply-adds a product stays on the calling thread. */
#define QGEMM_MIN_MACS_PER_THREAD 1.0e6

typedef struct qgemm_call {
    nnk_qtile_fn tile;
    int32_t *C;
    size_t ldc, lda, groups, blocks, M, N;
    const uint8_t *A;
    const int8_t *Bp;
} qgemm_call;

/* Unit u: panel u / blocks (32 channels) against row block u % blocks (8 rows). Units run
 * panel-major, so a thread's run of units keeps one panel's weights in L1 across row blocks. */
static void qgemm_unit(const qgemm_call *q, size_t u) {
    const size_t p = u / q->blocks, r = u % q->blocks;
    const size_t j0 = p * NNK_QNR, i0 = r * NNK_QMR;
    q->tile(q->groups, q->A + i0 * q->lda, q->lda, q->Bp + p * q->groups * 4 * NNK_QNR, q->C + i0 * q->ldc + j0, q->ldc,
            NNK_MIN(NNK_QMR, q->M - i0), NNK_MIN(NNK_QNR, q->N - j0));
}

void nnk_qgemm(int32_t *C, size_t ldc, const uint8_t *A, size_t lda, const int8_t *Bp, size_t M, size_t N, size_t K) {
    assert(lda >= round_up(K, 4) && ldc >= N);
    const size_t groups = round_up(K, 4) / 4, panels = (N + NNK_QNR - 1) / NNK_QNR, blocks = (M + NNK_QMR - 1) / NNK_QMR;
    const qgemm_call q = {nnk_active_table()->qtile, C, ldc, lda, groups, blocks, M, N, A, Bp};
    const size_t units = panels * blocks;
    const int nt = (int)NNK_MIN((size_t)nnk_threads_for((double)M * (double)N * (double)K, QGEMM_MIN_MACS_PER_THREAD), units);
    NNK_PARALLEL_FOR(nt, units, u, qgemm_unit(&q, u));
}

void nnk_qgemm_ref(int32_t *C, size_t ldc, const uint8_t *A, size_t lda, const int8_t *W, size_t ldw, size_t M, size_t N,
                   size_t K) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            int32_t s = 0;
            for (size_t k = 0; k < K; k++) s += (int32_t)A[i * lda + k] * (int32_t)W[j * ldw + k];
            C[i * ldc + j] = s;
        }
}
