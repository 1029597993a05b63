/*
 * CKernels: the NNBackprop compute engine.
 *
 * float32, row-major, explicit leading dimensions (in elements), no hidden allocation: a kernel
 * that needs scratch space takes it from the caller (see nnk_sgemm_work_size). Every symbol
 * carries the nnk_ prefix. Kernels are internal to NNBackprop: they check their preconditions
 * with assert() in debug builds and never print or exit; the layers above validate user input.
 *
 * Each optimized kernel (AVX2+FMA, AVX-512F, NEON) has a scalar reference twin, always
 * compiled; nnk_set_isa() forces a path so tests can hold every variant against the reference.
 *
 * Threads: kernels split large problems across OpenMP threads and keep small ones on the
 * calling thread. All kernels may run concurrently from several threads on distinct output
 * buffers. Results are bitwise identical for any thread count: every output element is
 * computed by one thread in a fixed order (reductions such as nnk_sum_squares split work in
 * fixed-size chunks independent of the thread count).
 */
#ifndef NNK_CKERNELS_H
#define NNK_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Dispatch and threads                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef enum nnk_isa {
    NNK_ISA_SCALAR = 0, /* plain C reference, every CPU */
    NNK_ISA_AVX2 = 1,   /* x86-64 AVX2 + FMA */
    NNK_ISA_AVX512 = 2, /* x86-64 AVX-512F */
    NNK_ISA_NEON = 3,   /* arm64 Advanced SIMD */
} nnk_isa;

/* The path in use. Chosen once from CPUID and the OS's saved-state mask (XCR0), overridden by
 * the environment variable NNB_ISA=scalar|avx2|avx512|neon (an unsupported or unknown value
 * falls back to the best supported path; nnk_isa_env_note() says why). */
nnk_isa nnk_isa_active(void);
/* 1 when this CPU and OS can run `isa`. */
int nnk_isa_supported(nnk_isa isa);
/* Force a path. Returns 0, or -1 (and changes nothing) when the CPU lacks it. Not to be called
 * while kernels run on other threads. */
int nnk_set_isa(nnk_isa isa);
/* "scalar", "avx2", "avx512", "neon"; "unknown" for anything else. */
const char *nnk_isa_name(nnk_isa isa);
/* Parse a name as above; returns -1 when unknown. */
int nnk_isa_from_name(const char *name);
/* NULL, or a static message when NNB_ISA was set to something unknown or unsupported. */
const char *nnk_isa_env_note(void);

/* 1 when built with OpenMP. */
int nnk_openmp_enabled(void);
/* Threads a parallel kernel uses (OMP_NUM_THREADS at start; 1 without OpenMP). */
int nnk_get_num_threads(void);
/* The most threads nnk_set_num_threads accepts: 256, or the machine's online hardware
 * threads when there are more. OMP_NUM_THREADS above it is clamped to it. */
int nnk_max_threads(void);
/* Set the thread count; without OpenMP it stays 1. Returns 0, or -1 (and changes nothing)
 * when n is outside 1..nnk_max_threads(). */
int nnk_set_num_threads(int n);
/* Caps the threads of the kernels that the calling thread runs from now on (0: no cap, the
 * default; negative counts as 0) and returns the previous cap. Thread-local: kernels other
 * threads run keep nnk_get_num_threads(). Work sizes stay those of nnk_get_num_threads() (at
 * least as large as a capped call needs). One-sample inference runs under a cap of 1. */
int nnk_set_thread_cap(int cap);
/* The measured FP32 FMA peak in GFLOP/s of `threads` threads (clamped to 1..nnk_max_threads(),
 * and 1 without OpenMP)
 * on the active ISA's widest vectors, from about `seconds` of independent FMAs per thread (the
 * best of five runs). For benchmarks that quote a kernel as a fraction of the machine. */
double nnk_fma_peak_gflops(int threads, double seconds);

/* ------------------------------------------------------------------------------------------ */
/* GEMM                                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef enum nnk_trans { NNK_NO_TRANS = 0, NNK_TRANS = 1 } nnk_trans;

/* Floats of scratch that nnk_sgemm needs to run an (M, N, K) product on `threads` threads
 * (pass nnk_get_num_threads(); a smaller work buffer just means fewer threads). 0 means the
 * product needs no scratch (the unpacked small-M path, or an empty product). */
size_t nnk_sgemm_work_size(size_t M, size_t N, size_t K, int threads);

/* C <- alpha * op(A) * op(B) + beta * C.
 * op(A) is (M, K): A is (M, K) with lda >= K, or (K, M) with lda >= M when ta == NNK_TRANS.
 * op(B) is (K, N): B is (K, N) with ldb >= N, or (N, K) with ldb >= K when tb == NNK_TRANS.
 * C is (M, N), ldc >= N. beta == 0 overwrites C (NaN in C is not propagated).
 * work / work_len: caller-owned scratch of work_len floats (64-byte aligned preferred). The
 * kernel uses as many threads as both nnk_get_num_threads() and work_len allow; with less
 * than one thread's worth it falls back to an unpacked path (correct, slower). May be NULL/0. */
void nnk_sgemm(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K,
               float alpha, const float *A, size_t lda, const float *B, size_t ldb,
               float beta, float *C, size_t ldc, float *work, size_t work_len);

/* The reference twin: plain triple loop with float accumulation, single-threaded, no scratch. */
void nnk_sgemm_ref(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K,
                   float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                   float beta, float *C, size_t ldc);

/* The arithmetic of a product: fp32, or bf16 inputs with fp32 accumulation (AVX512_BF16's
 * vdpbf16ps: each input rounded to nearest-even bf16, the products summed in float, subnormal
 * inputs and results flushed to zero). C, alpha, beta, bias and epilogues stay fp32. */
typedef enum nnk_precision { NNK_PRECISION_FP32 = 0, NNK_PRECISION_BF16 = 1 } nnk_precision;

/* 1 when the active ISA has a kernel for `prec` (bf16: AVX512_BF16 on the avx512 path); products
 * asked for in a precision without one run its reference twin (correct, slow). */
int nnk_precision_supported(nnk_precision prec);

/* The arithmetic nnk_gemm gives this product when asked for `prec`: fp32 for fp32; for bf16,
 * bf16 where the active path has the kernel, except X * W^T with at most 64 rows (the shapes the
 * fp32 path multiplies unpacked, faster than packing W to bf16 would be), which stay fp32; on a path
 * without the kernel bf16 (its reference twin). Depends on the shape and path only. */
nnk_precision nnk_gemm_precision(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K);

/* nnk_sgemm in precision nnk_gemm_precision(prec, ...) (work sized by nnk_sgemm_work_size,
 * which covers both). The GEMM override (nnk_set_sgemm_override) replaces fp32 products only. */
void nnk_gemm(nnk_precision prec, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K,
              float alpha, const float *A, size_t lda, const float *B, size_t ldb,
              float beta, float *C, size_t ldc, float *work, size_t work_len);

/* The bf16 reference twin: every input rounded by nnk_bf16_round, the exact products summed in
 * double, single-threaded. */
void nnk_sbgemm_ref(nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K,
                    float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                    float beta, float *C, size_t ldc);

/* fp32 <-> bf16 bits (round to nearest, ties to even; NaN stays a quiet NaN), and x rounded to
 * the nearest bf16 value. */
uint16_t nnk_bf16_from_float(float x);
float nnk_bf16_to_float(uint16_t h);
float nnk_bf16_round(float x);

/* ------------------------------------------------------------------------------------------ */
/* Data                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* y (n) = x (n) * scale, each byte as a float (exactly (float)x[i] * scale, as IDX loading has
 * always computed it). */
void nnk_u8_to_float(float *restrict y, const uint8_t *restrict x, size_t n, float scale);

/* ------------------------------------------------------------------------------------------ */
/* Activations                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef enum nnk_act {
    NNK_ACT_IDENTITY = 0,
    NNK_ACT_SIGMOID = 1,
    NNK_ACT_TANH = 2,
    NNK_ACT_RELU = 3,
    NNK_ACT_LEAKY_RELU = 4, /* x > 0 ? x : alpha * x          (PyTorch default alpha 0.01) */
    NNK_ACT_ELU = 5,        /* x > 0 ? x : alpha * (e^x - 1)  (default alpha 1) */
    NNK_ACT_GELU_ERF = 6,   /* x * Phi(x), exact erf form */
    NNK_ACT_GELU_TANH = 7,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    NNK_ACT_SILU = 8,       /* x * sigmoid(x) */
    NNK_ACT_SOFTPLUS = 9,   /* log(1 + e^x), computed without overflow */
    NNK_ACT_COUNT_ = 10
} nnk_act;

/* "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu",
 * "softplus". */
const char *nnk_act_name(nnk_act act);
/* Parse a name as above; -1 when unknown. */
int nnk_act_from_name(const char *name);

/* y[i] = f(x[i]) for i < n. y may equal x (in place). alpha is used by leaky_relu and elu. */
void nnk_act_forward(nnk_act act, float alpha, float *y, const float *x, size_t n);
void nnk_act_forward_ref(nnk_act act, float alpha, float *y, const float *x, size_t n);

/* 1 when the derivative needs the input x; 0 when y = f(x) suffices (identity, sigmoid, tanh,
 * relu), so a layer need not keep its pre-activation. */
int nnk_act_needs_input(nnk_act act);

/* dx[i] = dy[i] * f'(x[i]) for i < n, where x is the activation's input and y = f(x) its
 * output. x may be NULL when !nnk_act_needs_input(act). dx may equal dy. */
void nnk_act_backward(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                      const float *y, size_t n);
void nnk_act_backward_ref(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                          const float *y, size_t n);

/* Row-wise softmax / log-softmax: x, y are (rows, cols) with leading dimensions ldx, ldy >= cols.
 * Max-subtracted, so finite for logits of +-1e4. y may equal x when ldy == ldx. */
void nnk_softmax_forward(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols);
void nnk_log_softmax_forward(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols);
/* dx = y (.) (dy - rowsum(dy (.) y)), y the softmax output. All (rows, cols), leading dim ld. */
void nnk_softmax_backward(float *dx, const float *dy, const float *y, size_t ld, size_t rows, size_t cols);
/* dx = dy - softmax(x) * rowsum(dy), y the log-softmax output (softmax = exp(y)). */
void nnk_log_softmax_backward(float *dx, const float *dy, const float *y, size_t ld, size_t rows, size_t cols);

/* ------------------------------------------------------------------------------------------ */
/* Fused layer steps                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Dense forward, Y = act(X * W^T + b), finishing each output tile (bias, activation) while it
 * is in cache. X is (M, K) ldx, W is (N, K) ldw (PyTorch nn.Linear layout), b is (N) or NULL,
 * Y is (M, N) ldy. Z, when not NULL, receives the pre-activation X * W^T + b (M, N) ldy, for
 * activations whose backward needs it. work/work_len as for nnk_sgemm (nnk_sgemm_work_size(M, N, K,
 * threads) floats). `prec` is the product's arithmetic (nnk_gemm); the rest is fp32. */
void nnk_dense_forward(nnk_precision prec, float *Y, float *Z, size_t ldy, const float *X, size_t ldx,
                       const float *W, size_t ldw, const float *b, size_t M, size_t N, size_t K,
                       nnk_act act, float alpha, float *work, size_t work_len);

/* One dense layer of a chain: y (out) = act(x (in) W^T + b), W (out, in) row-major, b (out). */
typedef struct nnk_dense_link {
    const float *W;
    const float *b;
    size_t in, out;
    nnk_act act;
    float alpha;
} nnk_dense_link;

/* y (links[n-1].out) = the n dense layers applied in turn to one row x (links[0].in): a
 * one-sample predict in one parallel region, every thread taking the same 4-output strips of
 * each layer (so its share of the weights stays in its own cache from call to call), a barrier
 * between layers. Each output is bitwise what nnk_dense_forward gives for M = 1, on any thread
 * count. ping and pong hold the widest inner layer's outputs (unused when n == 1). Threads:
 * by the weights' bytes (nnk_threads_for_stream), past a one-sample thread cap. Returns 0, or -1
 * having done nothing when n is 0, a link's sizes are 0 or do not chain, or an sgemm override is
 * installed (the caller then runs the layers itself, so the override sees every product). */
int nnk_dense_chain_forward_row(float *y, const float *x, const nnk_dense_link *links, size_t n, float *ping,
                                float *pong);

/* Dense backward. dY is (M, N) ld ldy and is overwritten by dZ = dY (.) act'(Z), with Z and Y
 * as saved by the forward (Z may be NULL when !nnk_act_needs_input(act)). Then
 *   dW (N, K) ldw  <- dZ^T * X + (accumulate ? dW : 0)
 *   db (N)         <- column sums of dZ + (accumulate ? db : 0)      (db may be NULL)
 *   dX (M, K) ldx  <- dZ * W                                         (dX may be NULL)
 * dW and dX share the leading dimensions of W and X. work/work_len as for nnk_sgemm, sized by
 * nnk_dense_backward_work_size(M, N, K, threads). Both products in precision `prec`. */
size_t nnk_dense_backward_work_size(size_t M, size_t N, size_t K, int threads);
void nnk_dense_backward(nnk_precision prec, float *dX, float *dW, float *db, float *dY, size_t ldy,
                        const float *X, size_t ldx, const float *W, size_t ldw,
                        const float *Z, const float *Y, size_t M, size_t N, size_t K,
                        nnk_act act, float alpha, int accumulate, float *work, size_t work_len);

/* db[j] (+)= sum_i dZ[i, j]: dZ (M, N) ld ldz. */
void nnk_bias_grad(float *db, const float *dZ, size_t ldz, size_t M, size_t N, int accumulate);

/* ------------------------------------------------------------------------------------------ */
/* int8 inference                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Post-training int8 dense layers: activations quantized to uint8 with a per-tensor scale and
 * zero point (x ~ in_scale * (q - zero_point)), weights to int8 with one scale per output
 * channel (w ~ w_scale[j] * w_q), products summed exactly in int32 (AVX512-VNNI vpdpbusd where
 * the CPU has it, AVX2 vpmaddwd, else a portable loop with the same sums), dequantized in fp32:
 *   y[i, j] = act(fma((float)(acc[i, j] - zero_point * colsum[j]), scale[j], bias[j]))
 * with colsum[j] = sum_k w_q[j, k] and scale[j] = in_scale * w_scale[j]. Integer sums are exact,
 * so every path gives the same bits. */

/* 1 when the active path has a SIMD int8 kernel (vpdpbusd on avx512 with VNNI, vpmaddwd on
 * avx2 and on avx512 without it); else the portable loop runs. */
int nnk_int8_accelerated(void);

/* Bytes of packed weights for N output channels of depth K, and the packing of W (N, K) ldw. */
size_t nnk_qweights_packed_size(size_t N, size_t K);
void nnk_qweights_pack(int8_t *dst, const int8_t *W, size_t ldw, size_t N, size_t K);

/* q (n) = clamp(round(fma(x, inv_scale, zero_point)), 0, 255): to nearest even, clamped in float
 * first (NaN gives 0, huge values 0 or 255). */
void nnk_quantize_u8(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);

/* C (M, N) ldc = A (M, K) ldA * W^T in int32, A uint8 with lda >= K rounded up to 4 (bytes past
 * K are multiplied by zero weights), W packed by nnk_qweights_pack. The reference twin takes W
 * unpacked (N, K) ldw and lda >= K. */
void nnk_qgemm(int32_t *C, size_t ldc, const uint8_t *A, size_t lda, const int8_t *Wpacked, size_t M, size_t N,
               size_t K);
void nnk_qgemm_ref(int32_t *C, size_t ldc, const uint8_t *A, size_t lda, const int8_t *W, size_t ldw, size_t M,
                   size_t N, size_t K);

/* Y (M, N) ldy = the int8 dense layer above on X (M, K) ldx (fp32), W packed; bias may be NULL.
 * work: nnk_qdense_work_size(M, N, K) bytes (any alignment). One-row calls run on the calling
 * thread; larger products split over threads with the same bits. */
size_t nnk_qdense_work_size(size_t M, size_t N, size_t K);
void nnk_qdense_forward(float *Y, size_t ldy, const float *X, size_t ldx, size_t M, size_t N, size_t K,
                        const int8_t *Wpacked, const int32_t *colsum, const float *scale, const float *bias,
                        float in_scale, int32_t zero_point, nnk_act act, float alpha, void *work, size_t work_len);
/* The reference twin, with W unpacked (N, K) and caller scratch aq (M * K bytes), acc (M * N). */
void nnk_qdense_forward_ref(float *Y, size_t ldy, const float *X, size_t ldx, size_t M, size_t N, size_t K,
                            const int8_t *W, const int32_t *colsum, const float *scale, const float *bias,
                            float in_scale, int32_t zero_point, nnk_act act, float alpha, uint8_t *aq, int32_t *acc);

/* ------------------------------------------------------------------------------------------ */
/* Pooling (layers/pool2d.c)                                                                    */
/* ------------------------------------------------------------------------------------------ */
/* 2-D pooling over x (batch, channels, in_h, in_w), NCHW, as PyTorch's MaxPool2d / AvgPool2d with
 * dilation 1 and ceil_mode off: max pooling pads with -infinity, average pooling with zeros.
 * Every window overlaps the input (the padding rule below guarantees it). Planes (and, in the
 * forward, output rows) are split across threads; each output and each plane of dx is computed
 * by one thread in a fixed order, so results do not depend on the thread count. */

typedef struct nnk_pool2d_shape {
    size_t batch, channels, in_h, in_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    int count_include_pad; /* average pooling: divide by the whole window (PyTorch's default, 1) or by its in-input part (0) */
} nnk_pool2d_shape;

/* 0 and out_h = (in_h + 2 pad_h - kernel_h) / stride_h + 1 (likewise out_w), or -1 (outputs
 * untouched) when a size or stride is 0, padding is more than half the kernel (pad > kernel / 2,
 * PyTorch's rule), the kernel is larger than the padded input, or a size overflows: the padded
 * input, the byte size of x or y, or an input plane beyond INT32_MAX elements (argmax's range). */
int nnk_pool2d_output_size(const nnk_pool2d_shape *s, size_t *out_h, size_t *out_w);

/* y (batch, channels, out_h, out_w) = window maxima; argmax (same count) gets the index within
 * the input plane (h * in_w + w) of each maximum: the first in row-major window order on ties, and
 * a NaN wins (the last NaN of the window), as PyTorch's CPU kernel. A window of -infinity gives
 * -infinity and the index of its first in-input element. s must pass nnk_pool2d_output_size. */
void nnk_maxpool2d_forward(float *y, int32_t *argmax, const float *x, const nnk_pool2d_shape *s);
/* dx (batch, channels, in_h, in_w) <- scatter of dy (output shape) through argmax: zeroed, then
 * dy added at each recorded index, in output order. */
void nnk_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax, const nnk_pool2d_shape *s);
/* y = window sums (in float, row-major window order) divided by kernel_h * kernel_w, or by the
 * count of in-input elements when count_include_pad == 0. */
void nnk_avgpool2d_forward(float *y, const float *x, const nnk_pool2d_shape *s);
/* dx <- zeroed, then each dy / divisor added over its window's in-input part (in a fixed order). */
void nnk_avgpool2d_backward(float *dx, const float *dy, const nnk_pool2d_shape *s);

/* Reference twins: one output (or one dy) at a time straight from the definition, over the whole
 * window with an in-input test, single-threaded; the average sums in double. */
void nnk_maxpool2d_forward_ref(float *y, int32_t *argmax, const float *x, const nnk_pool2d_shape *s);
void nnk_maxpool2d_backward_ref(float *dx, const float *dy, const int32_t *argmax, const nnk_pool2d_shape *s);
void nnk_avgpool2d_forward_ref(float *y, const float *x, const nnk_pool2d_shape *s);
void nnk_avgpool2d_backward_ref(float *dx, const float *dy, const nnk_pool2d_shape *s);

/* ------------------------------------------------------------------------------------------ */
/* Normalization (layers/norm.c)                                                                */
/* ------------------------------------------------------------------------------------------ */
/* PyTorch's BatchNorm1d/2d and LayerNorm. Statistics are accumulated in double; save_invstd is
 * 1 / sqrt(biased variance + eps). Batch norm splits channels across threads, layer norm rows;
 * layer norm's dgamma / dbeta are column sums taken over the rows in order by whichever thread
 * owns a column block, so every result is the same for any thread count. */

/* Batch normalization over x (N, C, S): S = H * W for BatchNorm2d, 1 for BatchNorm1d on (N, C).
 * Training: batch mean and biased variance per channel over N * S values normalise x;
 * save_mean / save_invstd (C) keep mean and 1/sqrt(var + eps) for the backward (both may be NULL
 * when no backward follows); when running_mean / running_var are not NULL they are updated as
 * PyTorch does, in double:
 *   running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED variance
 *   (times n / (n - 1), n = N * S) for running_var. Requires N * S > 1 (returns -1 otherwise,
 *   before writing anything). gamma / beta (C) may be NULL (affine off: 1 and 0). Returns 0.
 * y (N, C, S) may equal x. */
int nnk_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd, float *running_mean,
                                float *running_var, const float *x, const float *gamma, const float *beta,
                                size_t N, size_t C, size_t S, float momentum, float eps);
/* Eval: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta; gamma / beta may be
 * NULL. y may equal x. */
void nnk_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                const float *running_mean, const float *running_var,
                                size_t N, size_t C, size_t S, float eps);
/* Backward of the training forward: dx (N, C, S; may be NULL), dgamma, dbeta (C; may be NULL,
 * as when affine is off) from dy, x (N, C, S) and the saved statistics; gamma (C) or NULL.
 * dgamma / dbeta are overwritten, or with accumulate != 0 get this call's sums added (in float:
 * old + new). dx may equal dy. */
void nnk_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            size_t N, size_t C, size_t S, int accumulate);

/* Layer normalization of each of `rows` rows of `cols` values (PyTorch's LayerNorm over the
 * trailing dimensions, flattened): biased variance, eps inside the sqrt; gamma/beta (cols) or
 * NULL. x, y (rows, cols), y may equal x; save_mean / save_invstd (rows), or NULL when no
 * backward follows. */
void nnk_layernorm_forward(float *y, float *save_mean, float *save_invstd, const float *x,
                           const float *gamma, const float *beta, size_t rows, size_t cols, float eps);
/* dx (rows, cols; may be NULL), dgamma, dbeta (cols; may be NULL) from dy, x (rows, cols) and the
 * saved statistics (rows); gamma (cols) or NULL; accumulate as for nnk_batchnorm_backward.
 * dx may equal dy. */
void nnk_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            size_t rows, size_t cols, int accumulate);

/* Reference twins: plain loops, two-pass statistics in double, single-threaded. */
int nnk_batchnorm_forward_train_ref(float *y, float *save_mean, float *save_invstd, float *running_mean,
                                    float *running_var, const float *x, const float *gamma, const float *beta,
                                    size_t N, size_t C, size_t S, float momentum, float eps);
void nnk_batchnorm_forward_eval_ref(float *y, const float *x, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var,
                                    size_t N, size_t C, size_t S, float eps);
void nnk_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                const float *save_mean, const float *save_invstd, const float *gamma,
                                size_t N, size_t C, size_t S, int accumulate);
void nnk_layernorm_forward_ref(float *y, float *save_mean, float *save_invstd, const float *x,
                               const float *gamma, const float *beta, size_t rows, size_t cols, float eps);
void nnk_layernorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                const float *save_mean, const float *save_invstd, const float *gamma,
                                size_t rows, size_t cols, int accumulate);

/* ------------------------------------------------------------------------------------------ */
/* Convolution                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* A 2-D convolution over a batch, NCHW, as PyTorch's nn.Conv2d (zero padding, no ceil mode). */
typedef struct nnk_conv2d_shape {
    size_t batch, in_channels, in_h, in_w;
    size_t out_channels, kernel_h, kernel_w;
    size_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
} nnk_conv2d_shape;

/* Output size, checked: 0 with *out_h and *out_w set, or -1 when a size is 0, stride or dilation is
 * 0, channels are not divisible by groups, the dilated kernel is larger than the padded input,
 * or any size computed from the shape (including work sizes and element counts) overflows size_t.
 * out_h = (in_h + 2 pad_h - dilation_h (kernel_h - 1) - 1) / stride_h + 1, and so for out_w.
 * Element counts are checked as byte counts (n * sizeof(float)), work sizes for any thread count
 * nnk_set_num_threads accepts. out_h or out_w may be NULL. */
int nnk_conv2d_output_size(const nnk_conv2d_shape *s, size_t *out_h, size_t *out_w);

/* Floats of work the forward / backward need for this shape with `threads` threads (0 when none,
 * and 0 for a shape nnk_conv2d_output_size refuses). A smaller buffer means fewer threads, with
 * the same result; less than the size for 1 thread (or work == NULL) runs the reference twin
 * instead (correct, slower). Sizes follow the active ISA's GEMM blocking: query after nnk_set_isa. */
size_t nnk_conv2d_forward_work_size(const nnk_conv2d_shape *s, int threads);
size_t nnk_conv2d_backward_work_size(const nnk_conv2d_shape *s, int threads);

/* y (batch, out_channels, out_h, out_w) = act(conv(x, w) + b), with x (batch, in_channels, in_h,
 * in_w), w (out_channels, in_channels / groups, kernel_h, kernel_w), b (out_channels) or NULL.
 * z, when not NULL, receives the pre-activation (same shape as y), for activations whose
 * backward needs it (nnk_act_needs_input). All tensors contiguous. The products run in
 * precision `prec` (nnk_gemm); the reference fallback (too little work) computes in fp32. */
void nnk_conv2d_forward(nnk_precision prec, float *y, float *z, const float *x, const float *w, const float *b,
                        const nnk_conv2d_shape *s, nnk_act act, float alpha, float *work, size_t work_len);

/* Backward. dy (shape of y) is overwritten by dz = dy (.) act'(z) (z may be NULL when
 * !nnk_act_needs_input(act); y is the forward's output). Then
 *   dw <- dz (*) x  + (accumulate ? dw : 0)          (the weight gradient; dw may be NULL)
 *   db <- sums of dz over batch and space + (accumulate ? db : 0)   (db may be NULL)
 *   dx <- the input gradient (full transposed convolution)           (dx may be NULL)
 * The products run in precision `prec`, as for the forward. */
void nnk_conv2d_backward(nnk_precision prec, float *dx, float *dw, float *db, float *dy, const float *x, const float *w,
                         const float *z, const float *y, const nnk_conv2d_shape *s, nnk_act act,
                         float alpha, int accumulate, float *work, size_t work_len);

/* Direct-loop reference twins (no work, single thread, float accumulation, the activation's
 * reference twin): */
void nnk_conv2d_forward_ref(float *y, float *z, const float *x, const float *w, const float *b,
                            const nnk_conv2d_shape *s, nnk_act act, float alpha);
void nnk_conv2d_backward_ref(float *dx, float *dw, float *db, float *dy, const float *x, const float *w,
                             const float *z, const float *y, const nnk_conv2d_shape *s, nnk_act act,
                             float alpha, int accumulate);

/* ------------------------------------------------------------------------------------------ */
/* Losses                                                                                       */
/* ------------------------------------------------------------------------------------------ */
/* Each returns the loss with PyTorch's reduction='mean' and, when grad is not NULL, writes the
 * gradient of that mean with respect to pred/logits (same shape, contiguous rows x cols).
 * Sums are accumulated in double. Finite for logits of +-1e4. */

/* mean((p - t)^2) over rows*cols. */
float nnk_loss_mse(float *grad, const float *pred, const float *target, size_t rows, size_t cols);
/* mean(|p - t|); gradient sign(p - t) / n, 0 at p == t. */
float nnk_loss_mae(float *grad, const float *pred, const float *target, size_t rows, size_t cols);
/* mean Huber(delta): 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta). */
float nnk_loss_huber(float *grad, const float *pred, const float *target, size_t rows, size_t cols,
                     float delta);
/* Softmax cross-entropy from logits (rows, cols), class-index targets in [0, cols), mean over
 * rows. label_smoothing in [0, 1): target distribution (1 - s) onehot + s / cols (PyTorch). */
float nnk_loss_softmax_ce_index(float *grad, const float *logits, const int32_t *labels,
                                size_t rows, size_t cols, float label_smoothing);
/* Softmax cross-entropy from logits with one-hot or soft target rows (each a distribution). */
float nnk_loss_softmax_ce_soft(float *grad, const float *logits, const float *target,
                               size_t rows, size_t cols, float label_smoothing);
/* Binary cross-entropy from logits, targets in [0, 1], mean over rows*cols. */
float nnk_loss_bce_logits(float *grad, const float *logits, const float *target, size_t rows,
                          size_t cols);

/* ------------------------------------------------------------------------------------------ */
/* Optimizer steps over a flat parameter buffer (PyTorch semantics)                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct nnk_sgd_params {
    float lr, momentum, dampening, weight_decay;
    int nesterov; /* requires momentum > 0 and dampening == 0 */
} nnk_sgd_params;
/* velocity: n floats, zero before the first step (only read when momentum != 0; may be NULL
 * then). first_step != 0 on the first step (velocity = grad, as in PyTorch). */
void nnk_sgd_step(float *param, float *velocity, const float *grad, size_t n,
                  const nnk_sgd_params *p, int first_step);

typedef struct nnk_adam_params {
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled; /* 0: Adam (L2 added to the gradient); 1: AdamW (decoupled decay) */
} nnk_adam_params;
/* m, v: n floats, zero before step 1. step: 1-based count of this update (bias correction). */
void nnk_adam_step(float *param, float *m, float *v, const float *grad, size_t n,
                   const nnk_adam_params *p, int64_t step);

typedef struct nnk_rmsprop_params {
    float lr, alpha, eps, weight_decay, momentum;
    int centered;
} nnk_rmsprop_params;
/* sq: n floats (square average), buf: n floats when momentum > 0 (else may be NULL), gavg: n
 * floats when centered (else may be NULL); all zero before the first step. */
void nnk_rmsprop_step(float *param, float *sq, float *buf, float *gavg, const float *grad, size_t n,
                      const nnk_rmsprop_params *p);

typedef struct nnk_adagrad_params {
    float lr, lr_decay, weight_decay, eps;
} nnk_adagrad_params;
/* sum: n floats, initial_accumulator_value before step 1; step is 1-based. */
void nnk_adagrad_step(float *param, float *sum, const float *grad, size_t n,
                      const nnk_adagrad_params *p, int64_t step);

/* Sum of squares of x (for the global gradient norm: sqrt of the sum over all buffers),
 * accumulated in double. */
double nnk_sum_squares(const float *x, size_t n);
/* x[i] *= s. */
void nnk_scale(float *x, size_t n, float s);

/* Reference twins of the optimizer steps (scalar loops, same semantics). */
void nnk_sgd_step_ref(float *param, float *velocity, const float *grad, size_t n,
                      const nnk_sgd_params *p, int first_step);
void nnk_adam_step_ref(float *param, float *m, float *v, const float *grad, size_t n,
                       const nnk_adam_params *p, int64_t step);


/* ------------------------------------------------------------------------------------------ */
/* Kernel overrides (the plugin API's kernel replacement)                                       */
/* ------------------------------------------------------------------------------------------ */
/* A replacement kernel runs in place of the built-in one for every caller in the process (the
 * fused dense steps included: the bias and activation are then applied after the replaced
 * GEMM). The reference twins (nnk_sgemm_ref, nnk_act_*_ref) are never replaced, so a plugin can
 * be checked against them. Install or remove overrides while no kernel is running. */

typedef void (*nnk_sgemm_fn)(void *ctx, nnk_trans ta, nnk_trans tb, size_t M, size_t N, size_t K,
                             float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                             float beta, float *C, size_t ldc);
/* Routes nnk_sgemm through fn(ctx, ...) (same contract as nnk_sgemm); NULL restores the
 * built-in kernels. */
void nnk_set_sgemm_override(nnk_sgemm_fn fn, void *ctx);
/* 1 when a GEMM override is installed. */
int nnk_sgemm_overridden(void);

typedef void (*nnk_act_forward_fn)(void *ctx, float *y, const float *x, size_t n);
typedef void (*nnk_act_backward_fn)(void *ctx, float *dx, const float *dy, const float *x,
                                    const float *y, size_t n);
/* Routes nnk_act_forward / nnk_act_backward for `act` through fwd / bwd (both given, called on
 * the calling thread with the whole buffer; bwd gets x == NULL when !nnk_act_needs_input(act),
 * as the built-in backward does);
 * NULL for both restores the built-in kernels. Returns 0, or -1 for an unknown act or a
 * half-given pair. */
int nnk_set_act_override(nnk_act act, nnk_act_forward_fn fwd, nnk_act_backward_fn bwd, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* NNK_CKERNELS_H */
