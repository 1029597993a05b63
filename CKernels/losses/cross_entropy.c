/*
 * Softmax cross-entropy from logits, PyTorch's CrossEntropyLoss(reduction='mean',
 * label_smoothing=s) for class-index and for probability targets. With q the (smoothed) target
 * row and lse = log(sum_j e^{x_j}), each row contributes
 *     sum_j q_j (lse - x_j)                           (= -sum_j q_j log softmax(x)_j)
 * and the mean is over rows. Its gradient is (softmax(x) * sum_j q_j - q) / rows, which is the
 * familiar (softmax(x) - q) / rows when q is a distribution. lse subtracts the row maximum first,
 * so logits of +-1e4 stay finite; everything is computed in double.
 * grad may equal logits (each element is read before it is written).
 */
#include "../internal.h"

#include <math.h>

/* x is (cols). Returns log(sum_j e^{x_j}), computed as max + log(sum_j e^{x_j - max}). */
static double row_log_sum_exp(const float *x, size_t cols) {
    float mx = x[0];
    for (size_t j = 1; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++) sum += exp((double)x[j] - (double)mx);
    return (double)mx + log(sum);
}

/* logits, grad are (rows, cols), labels is (rows) with values in [0, cols). Target row is
 * (1 - s) onehot(label) + s / cols. Returns the mean over rows. */
float nnk_loss_softmax_ce_index(float *grad, const float *logits, const int32_t *labels,
                                size_t rows, size_t cols, float label_smoothing) {
    if (rows == 0 || cols == 0) return 0.0f;
    assert(logits != NULL && labels != NULL);
    assert(label_smoothing >= 0.0f && label_smoothing <= 1.0f);
    const double s = (double)label_smoothing, on = 1.0 - s, off = s / (double)cols;
    const double inv_rows = 1.0 / (double)rows;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *x = logits + r * cols;
        const int32_t y = labels[r];
        assert(y >= 0 && (size_t)y < cols);
        const double lse = row_log_sum_exp(x, cols);
        double nll_sum = 0.0; /* sum_j -log softmax(x)_j, each term >= 0 */
        for (size_t j = 0; j < cols; j++) nll_sum += lse - (double)x[j];
        total += on * (lse - (double)x[y]) + off * nll_sum; /* sum_j q_j (lse - x_j) */
        if (grad == NULL) continue;
        float *g = grad + r * cols; /* (softmax(x) - q) / rows */
        for (size_t j = 0; j < cols; j++)
            g[j] = (float)((exp((double)x[j] - lse) - off - ((size_t)y == j ? on : 0.0)) * inv_rows);
    }
    return (float)(total * inv_rows);
}

/* logits, target, grad are (rows, cols); each target row a distribution (one-hot or soft).
 * Target row is (1 - s) target + s / cols, as PyTorch smooths probability targets. Returns the
 * mean over rows. */
float nnk_loss_softmax_ce_soft(float *grad, const float *logits, const float *target,
                               size_t rows, size_t cols, float label_smoothing) {
    if (rows == 0 || cols == 0) return 0.0f;
    assert(logits != NULL && target != NULL);
    assert(label_smoothing >= 0.0f && label_smoothing <= 1.0f);
    const double s = (double)label_smoothing, on = 1.0 - s, off = s / (double)cols;
    const double inv_rows = 1.0 / (double)rows;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *x = logits + r * cols, *t = target + r * cols;
        const double lse = row_log_sum_exp(x, cols);
        double q_sum = 0.0;
        for (size_t j = 0; j < cols; j++) {
            const double q = on * (double)t[j] + off;
            q_sum += q;
            total += q * (lse - (double)x[j]);
        }
        if (grad == NULL) continue;
        float *g = grad + r * cols; /* (softmax(x) sum(q) - q) / rows */
        for (size_t j = 0; j < cols; j++)
            g[j] = (float)((exp((double)x[j] - lse) * q_sum - (on * (double)t[j] + off)) * inv_rows);
    }
    return (float)(total * inv_rows);
}
