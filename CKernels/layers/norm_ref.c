/*
 * Reference twins of the normalization kernels (norm.c): plain loops in double, the statistics in
 * two passes (the mean, then the mean squared deviation), single-threaded; the source of truth the
 * tests hold norm.c to. Then the scalar reductions that are the reference entries of the kernel
 * table (norm_kernels.h).
 */
#include "norm_kernels.h"

#include <math.h>

/* ---- batch norm -------------------------------------------------------------------------- */

/* Element (n, c, s) of an (N, C, S) array. */
#define AT(a, n, c, s) ((a)[((n) * C + (c)) * S + (s)])

int nnk_batchnorm_forward_train_ref(float *y, float *save_mean, float *save_invstd, float *running_mean,
                                    float *running_var, const float *x, const float *gamma, const float *beta,
                                    size_t N, size_t C, size_t S, float momentum, float eps) {
    const size_t count = N * S;
    if (count <= 1) return -1;
    for (size_t c = 0; c < C; c++) {
        double mean = 0.0, var = 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) mean += AT(x, n, c, s);
        mean /= (double)count;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) var += (AT(x, n, c, s) - mean) * (AT(x, n, c, s) - mean);
        var /= (double)count;
        const double invstd = 1.0 / sqrt(var + eps);
        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) AT(y, n, c, s) = (float)((AT(x, n, c, s) - mean) * invstd * g + b);
        if (save_mean) save_mean[c] = (float)mean;
        if (save_invstd) save_invstd[c] = (float)invstd;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + (double)momentum * mean);
        if (running_var)
            running_var[c] = (float)((1.0 - momentum) * running_var[c] +
                                     (double)momentum * var * (double)count / (double)(count - 1));
    }
    return 0;
}

void nnk_batchnorm_forward_eval_ref(float *y, const float *x, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var, size_t N, size_t C,
                                    size_t S, float eps) {
    for (size_t c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++)
                AT(y, n, c, s) = (float)((AT(x, n, c, s) - (double)running_mean[c]) * invstd * g + b);
    }
}

/* dx = g invstd (dy - mean(dy) - xhat mean(dy xhat)); dgamma = sum dy xhat; dbeta = sum dy. */
void nnk_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                const float *save_mean, const float *save_invstd, const float *gamma, size_t N,
                                size_t C, size_t S, int accumulate) {
    const double count = (double)(N * S);
    for (size_t c = 0; c < C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c], g = gamma ? gamma[c] : 1.0;
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) {
                sum_dy += AT(dy, n, c, s);
                sum_dy_xhat += AT(dy, n, c, s) * ((AT(x, n, c, s) - mean) * invstd);
            }
        if (dgamma) dgamma[c] = (accumulate ? dgamma[c] : 0.0f) + (float)sum_dy_xhat;
        if (dbeta) dbeta[c] = (accumulate ? dbeta[c] : 0.0f) + (float)sum_dy;
        if (!dx || count == 0) continue;
        for (size_t n = 0; n < N; n++)
            for (size_t s = 0; s < S; s++) {
                const double xhat = (AT(x, n, c, s) - mean) * invstd;
                AT(dx, n, c, s) = (float)(g * invstd * (AT(dy, n, c, s) - sum_dy / count - xhat * sum_dy_xhat / count));
            }
    }
}

#undef AT

/* ---- layer norm -------------------------------------------------------------------------- */

void nnk_layernorm_forward_ref(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                               const float *beta, size_t rows, size_t cols, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        double mean = 0.0, var = 0.0;
        for (size_t j = 0; j < cols; j++) mean += xr[j];
        mean /= (double)cols;
        for (size_t j = 0; j < cols; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= (double)cols;
        const double invstd = 1.0 / sqrt(var + eps);
        for (size_t j = 0; j < cols; j++)
            y[r * cols + j] = (float)((xr[j] - mean) * invstd * (gamma ? gamma[j] : 1.0) + (beta ? beta[j] : 0.0));
        if (save_mean) save_mean[r] = (float)mean;
        if (save_invstd) save_invstd[r] = (float)invstd;
    }
}

/* dx = invstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma; dgamma = column sums of dy xhat,
 * dbeta = column sums of dy. */
void nnk_layernorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                const float *save_mean, const float *save_invstd, const float *gamma, size_t rows,
                                size_t cols, int accumulate) {
    for (size_t j = 0; j < cols; j++) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (size_t r = 0; r < rows; r++) {
            sum_dy += dy[r * cols + j];
            sum_dy_xhat += dy[r * cols + j] * ((x[r * cols + j] - (double)save_mean[r]) * save_invstd[r]);
        }
        if (dgamma) dgamma[j] = (accumulate ? dgamma[j] : 0.0f) + (float)sum_dy_xhat;
        if (dbeta) dbeta[j] = (accumulate ? dbeta[j] : 0.0f) + (float)sum_dy;
    }
    if (!dx) return;
    for (size_t r = 0; r < rows; r++) {
        const double mean = save_mean[r], invstd = save_invstd[r];
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (size_t j = 0; j < cols; j++) {
            const double g = dy[r * cols + j] * (gamma ? gamma[j] : 1.0);
            sum_g += g;
            sum_g_xhat += g * ((x[r * cols + j] - mean) * invstd);
        }
        for (size_t j = 0; j < cols; j++) {
            const double g = dy[r * cols + j] * (gamma ? gamma[j] : 1.0), xhat = (x[r * cols + j] - mean) * invstd;
            dx[r * cols + j] = (float)(invstd * (g - sum_g / (double)cols - xhat * sum_g_xhat / (double)cols));
        }
    }
}

/* ---- the kernel table's scalar reductions ------------------------------------------------ */

void nnk_norm_moments_ref(const float *x, size_t n, double acc[2]) {
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        q += (double)x[i] * x[i];
    }
    acc[0] += s;
    acc[1] += q;
}

void nnk_norm_dot_ref(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]) {
    double sg = 0.0, sp = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double g = gamma ? (double)dy[i] * gamma[i] : dy[i];
        sg += g;
        sp += g * ((double)x[i] - mean);
    }
    acc[0] += sg;
    acc[1] += sp;
}
