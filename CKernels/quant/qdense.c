/* int8 dense inference: quantize the input rows, the int8 product, dequantize with the bias,
 * then the activation, a block of rows at a time; and the row kernels' reference twins. */
#include "quant_internal.h"
#include "../dispatch/table.h"

#include <math.h>
#include <string.h>

void nnk_quantize_u8_ref(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point) {
    for (size_t i = 0; i < n; i++) {
        const float t = fminf(fmaxf(fmaf(x[i], inv_scale, zero_point), 0.0f), 255.0f); /* fmaxf(NaN, 0) = 0 */
        q[i] = (uint8_t)lrintf(t); /* the default rounding: to nearest even */
    }
}

void nnk_dequantize_ref(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                        const float *scale, const float *bias) {
    for (size_t j = 0; j < n; j++)
        y[j] = fmaf((float)(acc[j] - zero_point * colsum[j]), scale[j], bias ? bias[j] : 0.0f);
}

void nnk_quantize_u8(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point) {
    nnk_active_table()->quantize_u8(q, x, n, inv_scale, zero_point);
}

/* Rows per block: the block's quantized rows and int32 sums are the work. */
enum { QDENSE_ROWS = 128 };

static size_t round4(size_t k) { return (k + 3) / 4 * 4; }

size_t nnk_qdense_work_size(size_t M, size_t N, size_t K) {
    const size_t rows = NNK_MIN(M, (size_t)QDENSE_ROWS);
    return rows * round4(K) + rows * N * sizeof(int32_t) + 64;
}

void nnk_qdense_forward(float *Y, size_t ldy, const float *X, size_t ldx, size_t M, size_t N, size_t K,
                        const int8_t *Wp, const int32_t *colsum, const float *scale, const float *bias, float in_scale,
                        int32_t zero_point, nnk_act act, float alpha, void *work, size_t work_len) {
    const nnk_kernel_table *t = nnk_active_table();
    const size_t k4 = round4(K), rows = NNK_MIN(M, (size_t)QDENSE_ROWS);
    assert(work_len >= nnk_qdense_work_size(M, N, K));
    (void)work_len;
    int32_t *acc = (int32_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    uint8_t *aq = (uint8_t *)(acc + rows * N);
    const float inv = 1.0f / in_scale;
    for (size_t i0 = 0; i0 < M; i0 += rows) {
        const size_t mb = NNK_MIN(rows, M - i0);
        for (size_t i = 0; i < mb; i++) {
            t->quantize_u8(aq + i * k4, X + (i0 + i) * ldx, K, inv, (float)zero_point);
            memset(aq + i * k4 + K, 0, k4 - K); /* multiplies the zero padding of the weights */
        }
        nnk_qgemm(acc, N, aq, k4, Wp, mb, N, K);
        for (size_t i = 0; i < mb; i++) {
            float *y = Y + (i0 + i) * ldy;
            t->dequantize(y, acc + i * N, N, zero_point, colsum, scale, bias);
            if (act != NNK_ACT_IDENTITY) nnk_act_forward(act, alpha, y, y, N);
        }
    }
}

void nnk_qdense_forward_ref(float *Y, size_t ldy, const float *X, size_t ldx, size_t M, size_t N, size_t K,
                            const int8_t *W, const int32_t *colsum, const float *scale, const float *bias, float in_scale,
                            int32_t zero_point, nnk_act act, float alpha, uint8_t *aq, int32_t *acc) {
    const float inv = 1.0f / in_scale;
    for (size_t i = 0; i < M; i++) nnk_quantize_u8_ref(aq + i * K, X + i * ldx, K, inv, (float)zero_point);
    nnk_qgemm_ref(acc, N, aq, K, W, K, M, N, K);
    for (size_t i = 0; i < M; i++) {
        nnk_dequantize_ref(Y + i * ldy, acc + i * N, N, zero_point, colsum, scale, bias);
        if (act != NNK_ACT_IDENTITY) nnk_act_forward(act, alpha, Y + i * ldy, Y + i * ldy, N); /* the fp32 activation, as above */
    }
}
