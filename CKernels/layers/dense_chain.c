/* A chain of dense layers on one row (a one-sample predict) in one parallel region. */
#include "../dispatch/table.h"
#include "../gemm/gemm_internal.h"

/* Strips [s0, s1) (4 outputs each) of one link: y = act(x W^T + b) on those outputs, by the
 * GEMM's dot kernel and epilogue, so each output is what nnk_dense_forward computes. */
static void link_strips(const nnk_gemm_arch *g, const nnk_dense_link *l, const float *x, float *y, size_t s0,
                        size_t s1) {
    const nnk_epilogue ep = {l->b, NULL, l->act, l->alpha};
    for (size_t s = s0; s < s1; s++) {
        const size_t j = s * 4, nb = NNK_MIN(4, l->out - j);
        g->dot_rows(1, nb, l->in, 1.0f, x, l->in, l->W + j * l->in, l->in, 0.0f, y + j, l->out);
        nnk_gemm_apply_epilogue(&ep, y, l->out, 0, j, 1, nb);
    }
}

/* The links in order from x to y on the calling team: each thread takes the same share of
 * every link's strips, with a barrier between links (the next reads all of this one's outputs). */
static void run_chain(const nnk_gemm_arch *g, float *y, const float *x, const nnk_dense_link *links, size_t n,
                      float *ping, float *pong) {
    const float *in = x;
    for (size_t i = 0; i < n; i++) {
        float *out = i + 1 == n ? y : (i % 2 == 0 ? ping : pong);
        const size_t strips = (links[i].out + 3) / 4;
        size_t s0, s1;
        nnk_thread_share(strips, &s0, &s1);
        link_strips(g, &links[i], in, out, s0, s1);
        if (i + 1 < n) {
            NNK_PRAGMA(omp barrier)
        }
        in = out;
    }
}

int nnk_dense_chain_forward_row(float *y, const float *x, const nnk_dense_link *links, size_t n, float *ping,
                                float *pong) {
    if (n == 0 || nnk_sgemm_overridden()) return -1;
    double bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (links[i].in == 0 || links[i].out == 0 || (i > 0 && links[i].in != links[i - 1].out)) return -1;
        bytes += 4.0 * (double)links[i].in * (double)links[i].out;
    }
    const nnk_gemm_arch *g = nnk_active_table()->gemm;
    const int nt = nnk_threads_for_stream(bytes, NNK_STREAM_MIN_BYTES_PER_THREAD);
    if (nt <= 1) {
        run_chain(g, y, x, links, n, ping, pong);
    } else {
        NNK_PRAGMA(omp parallel num_threads(nt))
        run_chain(g, y, x, links, n, ping, pong);
    }
    return 0;
}
