/* One chunk of a Denoiser layer's edge work without autograd, fused per edge (core/model/native.py).
 *
 * The same sums as core.model.fast._edge_sums (its docstring gives the maths), for receivers
 * [n0, n1) whose edges [e0, e1) are contiguous and sorted by receiver, in two loops around the
 * edge MLP's width x width product (left to the BLAS, which runs it several times faster than a
 * per-edge loop): edge_pre writes the first Linear + LayerNorm + SiLU of every edge, edge_post
 * takes the second Linear's output through LayerNorm + SiLU, the gate and the receiver sums.
 * Each edge's other intermediates stay in registers and L1 instead of (E, width) tensors written
 * and read by a dozen separate kernels. Float32.
 */
#include <math.h>
#include <stdint.h>

#define MAXW 512
#define MAXK 32

/* exp(x) for the SiLU, inline so the compiler vectorises it with the loop around it: 2^(x log2 e)
 * as 2^n times the degree-7 Taylor polynomial of 2^f, |f| <= 1/2 (relative error < 1e-7), x
 * clamped to [-87, 88] (beyond which the SiLU is 0 or x to float precision anyway). */
static inline float exp_approx(float x) {
    x = fminf(fmaxf(x, -87.f), 88.f);
    const float y = x * 1.44269504f, n = rintf(y), f = y - n;
    float p = 1.5252734e-5f;
    p = p * f + 1.5403530e-4f;
    p = p * f + 1.3333558e-3f;
    p = p * f + 9.6181291e-3f;
    p = p * f + 5.5504109e-2f;
    p = p * f + 2.4022651e-1f;
    p = p * f + 6.9314718e-1f;
    p = p * f + 1.0f;
    union { float f; int32_t i; } scale = { .i = ((int32_t)n + 127) << 23 };
    return p * scale.f;
}

static inline void norm_silu(float *restrict v, const int W, const float *gamma, const float *beta, float eps) {
    float mean = 0.f, var = 0.f;
    for (int o = 0; o < W; o++) mean += v[o];
    mean /= W;
    for (int o = 0; o < W; o++) { float d = v[o] - mean; var += d * d; }
    const float inv = 1.f / sqrtf(var / W + eps);
    for (int o = 0; o < W; o++) {
        const float z = (v[o] - mean) * inv * gamma[o] + beta[o];
        v[o] = z / (1.f + exp_approx(-z));
    }
}

/* diff[d * k + c] = x_i - x_j - shift (coordinate d of channel c) and sq[c] = |diff_c|^2 */
static inline void edge_diff(int64_t e, const int64_t *row, const int64_t *col, const float *shift,
                             const float *x, const int k, float *restrict diff, float *restrict sq) {
    const float *xi = x + row[e] * 3 * k, *xj = x + col[e] * 3 * k;
    for (int d = 0; d < 3; d++)
        for (int c = 0; c < k; c++)
            diff[d * k + c] = xi[d * k + c] - xj[d * k + c] - shift[e * 3 + d];
    for (int c = 0; c < k; c++)
        sq[c] = diff[c] * diff[c] + diff[k + c] * diff[k + c] + diff[2 * k + c] * diff[2 * k + c];
}

static inline void pre_impl(
    int64_t e0, int64_t e1, const int W, const int k,
    const int64_t *row, const int64_t *col, const float *shift,
    const int64_t *index, const float *frac, const float *table,
    const float *x, const float *a, const float *b, const float *edge_w_t,
    const float *n1w, const float *n1b, float eps1, float cutoff, float *restrict out)
{
    float diff[3 * MAXK], sq[MAXK], feat[MAXK];
    const float inv_c2 = 1.f / (cutoff * cutoff);
    for (int64_t e = e0; e < e1; e++) {
        edge_diff(e, row, col, shift, x, k, diff, sq);
        for (int c = 0; c < k; c++) feat[c] = 2.f * tanhf(fminf(sq[c] * inv_c2, 10.f)) - 1.f;
        const float *t0 = table + index[e] * W, *t1 = t0 + W, *ai = a + row[e] * W, *bj = b + col[e] * W;
        const float f = frac[e];
        float *v = out + (e - e0) * W;
        for (int o = 0; o < W; o++) v[o] = t0[o] + f * (t1[o] - t0[o]) + ai[o] + bj[o];
        for (int c = 0; c < k; c++) {  /* output-contiguous: no horizontal sums */
            const float fc = feat[c], *wc = edge_w_t + c * W;
            for (int o = 0; o < W; o++) v[o] += fc * wc[o];
        }
        norm_silu(v, W, n1w, n1b, eps1);
    }
}

static inline void post_impl(
    int64_t n0, int64_t e0, int64_t e1, const int W, const int k,
    const int64_t *row, const int64_t *col, const float *shift, const float *cut, const float *x,
    float *restrict m_all, const float *n2w, const float *n2b, float eps2,
    const float *gate_w, float gate_b, int64_t has_gate, float *restrict agg, float *restrict g)
{
    float diff[3 * MAXK], sq[MAXK];
    for (int64_t e = e0; e < e1; e++) {
        float *m = m_all + (e - e0) * W;
        norm_silu(m, W, n2w, n2b, eps2);
        float weight = cut[e];
        if (has_gate) {
            float s = gate_b;
            for (int o = 0; o < W; o++) s += gate_w[o] * m[o];
            weight *= 1.f / (1.f + exp_approx(-s));
        }
        float *ag = agg + (row[e] - n0) * W, *gi = g + (row[e] - n0) * 3 * k * W;
        for (int o = 0; o < W; o++) ag[o] += weight * m[o];
        edge_diff(e, row, col, shift, x, k, diff, sq);
        for (int c = 0; c < k; c++) {
            const float scale = cut[e] / (sqrtf(sq[c] + 1.f) + 1.f);
            for (int d = 0; d < 3; d++) {
                const float u = diff[d * k + c] * scale;
                float *gr = gi + (d * k + c) * W;
                for (int o = 0; o < W; o++) gr[o] += u * m[o];
            }
        }
    }
}

/* Entry points (return 0, or 1 for a width or channel count beyond MAXW / MAXK); the shipped
 * width and channel count get copies with them as constants, which the compiler vectorises whole. */
int edge_pre(int64_t e0, int64_t e1, int64_t W, int64_t k,
             const int64_t *row, const int64_t *col, const float *shift,
             const int64_t *index, const float *frac, const float *table,
             const float *x, const float *a, const float *b, const float *edge_w_t,
             const float *n1w, const float *n1b, float eps1, float cutoff, float *out)
{
    if (W > MAXW || k > MAXK) return 1;
#define PRE(WW, KK) pre_impl(e0, e1, WW, KK, row, col, shift, index, frac, table, x, a, b, edge_w_t, n1w, n1b, \
                             eps1, cutoff, out)
    if (W == 64 && k == 8) PRE(64, 8);
    else PRE((int)W, (int)k);
#undef PRE
    return 0;
}

int edge_post(int64_t n0, int64_t e0, int64_t e1, int64_t W, int64_t k,
              const int64_t *row, const int64_t *col, const float *shift, const float *cut, const float *x,
              float *m, const float *n2w, const float *n2b, float eps2,
              const float *gate_w, float gate_b, int64_t has_gate, float *agg, float *g)
{
    if (W > MAXW || k > MAXK) return 1;
#define POST(WW, KK) post_impl(n0, e0, e1, WW, KK, row, col, shift, cut, x, m, n2w, n2b, eps2, gate_w, gate_b, \
                               has_gate, agg, g)
    if (W == 64 && k == 8) POST(64, 8);
    else POST((int)W, (int)k);
#undef POST
    return 0;
}
