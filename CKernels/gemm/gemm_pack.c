/* Packing of op(A) and op(B) into the micro-panels the micro-kernels stream (gemm_internal.h). */
#include "gemm_internal.h"

#include <string.h>

/* dst: ceil(mc / mr) panels of (kc, mr); rows past mc are zero. */
void nnk_pack_a(float *dst, nnk_trans ta, const float *A, size_t lda, size_t i0, size_t mc,
                size_t p0, size_t kc, size_t mr) {
    for (size_t ip = 0; ip < mc; ip += mr, dst += mr * kc) {
        const size_t rows = NNK_MIN(mr, mc - ip);
        if (ta == NNK_TRANS) {
            /* A is (K, M): each depth step is a contiguous run of rows. */
            const float *src = A + p0 * lda + i0 + ip;
            for (size_t p = 0; p < kc; p++, src += lda) {
                float *d = dst + p * mr;
                memcpy(d, src, rows * sizeof(float));
                for (size_t i = rows; i < mr; i++) d[i] = 0.0f;
            }
        } else {
            /* A is (M, K): read each row contiguously, write it with stride mr. */
            for (size_t i = 0; i < rows; i++) {
                const float *src = A + (i0 + ip + i) * lda + p0;
                for (size_t p = 0; p < kc; p++) dst[p * mr + i] = src[p];
            }
            for (size_t i = rows; i < mr; i++)
                for (size_t p = 0; p < kc; p++) dst[p * mr + i] = 0.0f;
        }
    }
}

/* dst: ceil(nc / nr) panels of (kc, nr); columns past nc are zero. */
void nnk_pack_b(float *dst, nnk_trans tb, const float *B, size_t ldb, size_t p0, size_t kc,
                size_t j0, size_t nc, size_t nr) {
    for (size_t jp = 0; jp < nc; jp += nr, dst += nr * kc) {
        const size_t cols = NNK_MIN(nr, nc - jp);
        if (tb == NNK_NO_TRANS) {
            /* B is (K, N): each depth step is a contiguous run of columns. */
            const float *src = B + p0 * ldb + j0 + jp;
            for (size_t p = 0; p < kc; p++, src += ldb) {
                float *d = dst + p * nr;
                memcpy(d, src, cols * sizeof(float));
                for (size_t j = cols; j < nr; j++) d[j] = 0.0f;
            }
        } else {
            /* B is (N, K) (a weight stored [out, in]): read rows, write with stride nr. */
            for (size_t j = 0; j < cols; j++) {
                const float *src = B + (j0 + jp + j) * ldb + p0;
                for (size_t p = 0; p < kc; p++) dst[p * nr + j] = src[p];
            }
            for (size_t j = cols; j < nr; j++)
                for (size_t p = 0; p < kc; p++) dst[p * nr + j] = 0.0f;
        }
    }
}
