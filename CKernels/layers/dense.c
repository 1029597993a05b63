/* Fused dense-layer steps on top of the GEMM: forward with the bias and activation finished per
 * output tile, backward as the two GEMMs and the column sums of backprop. */
#include "../gemm/gemm_internal.h"

/* Y (M, N) = act(X (M, K) * W^T (W is (N, K)) + b (N)); Z (M, N) gets the pre-activation. */
void nnk_dense_forward(nnk_precision prec, float *Y, float *Z, size_t ldy, const float *X, size_t ldx,
                       const float *W, size_t ldw, const float *b, size_t M, size_t N, size_t K, nnk_act act,
                       float alpha, float *work, size_t work_len) {
    const nnk_epilogue ep = {b, Z, act, alpha};
    nnk_gemm_ex(prec, NNK_NO_TRANS, NNK_TRANS, M, N, K, 1.0f, X, ldx, W, ldw, 0.0f, Y, ldy, &ep, work, work_len);
}

size_t nnk_dense_backward_work_size(size_t M, size_t N, size_t K, int threads) {
    const size_t dw = nnk_sgemm_work_size(N, K, M, threads), dx = nnk_sgemm_work_size(M, K, N, threads);
    return dw > dx ? dw : dx;
}

/* db (N) (+)= column sums of dZ (M, N). Row order, so the sum is the same on every path. */
void nnk_bias_grad(float *db, const float *dZ, size_t ldz, size_t M, size_t N, int accumulate) {
    if (!accumulate)
        for (size_t j = 0; j < N; j++) db[j] = 0.0f;
    for (size_t i = 0; i < M; i++) {
        const float *row = dZ + i * ldz;
        for (size_t j = 0; j < N; j++) db[j] += row[j];
    }
}

/* dY (M, N) becomes dZ; dW (N, K) (+)= dZ^T X; db (N) (+)= colsum dZ; dX (M, K) = dZ W. */
void nnk_dense_backward(nnk_precision prec, float *dX, float *dW, float *db, float *dY, size_t ldy, const float *X,
                        size_t ldx, const float *W, size_t ldw, const float *Z, const float *Y, size_t M, size_t N,
                        size_t K, nnk_act act, float alpha, int accumulate, float *work, size_t work_len) {
    assert(Z != NULL || !nnk_act_needs_input(act));
    if (act != NNK_ACT_IDENTITY) {
        if (ldy == N) {
            nnk_act_backward(act, alpha, dY, dY, Z, Y, M * N);
        } else {
            for (size_t i = 0; i < M; i++)
                nnk_act_backward(act, alpha, dY + i * ldy, dY + i * ldy, Z ? Z + i * ldy : NULL, Y + i * ldy, N);
        }
    }
    if (dW)
        nnk_gemm(prec, NNK_TRANS, NNK_NO_TRANS, N, K, M, 1.0f, dY, ldy, X, ldx, accumulate ? 1.0f : 0.0f, dW, ldw,
                  work, work_len);
    if (db) nnk_bias_grad(db, dY, ldy, M, N, accumulate);
    if (dX) nnk_gemm(prec, NNK_NO_TRANS, NNK_NO_TRANS, M, K, N, 1.0f, dY, ldy, W, ldw, 0.0f, dX, ldx, work, work_len);
}
