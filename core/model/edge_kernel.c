/* One chunk of a Denoiser layer's edge work without autograd, fused per edge (core/model/native.py).
 *
 * The same sums as core.model.fast._edge_sums (its docstring gives the maths), for receivers
 * [n0, n1) whose edges [e0, e1) are contiguous and sorted by receiver, in three loops around the
 * edge MLP's width x width product (left to the BLAS, which runs it several times faster than a
 * per-edge loop, and which the kernel leaves without bias so no bias rows are copied into its
 * output): edge_pre writes the first Linear + LayerNorm + SiLU of every edge (reading the node
 * projection's rows in place, adding its bias, prefetching the randomly placed rows of later
 * edges), edge_post takes the second Linear's output through its bias, LayerNorm + SiLU, the gate
 * and the receiver sums, both in blocks of edges (LBLOCK), and edge_coord makes each receiver's
 * G_i = sum_j u_ij (x) m_ij in register tiles and applies W_c to it while it is in L1. Each
 * edge's other intermediates stay in registers and L1 instead of (E, width) tensors written and
 * read by a dozen separate kernels. Float32.
 */
#include <math.h>
#include <stdint.h>

#define MAXW 512
#define MAXK 32
#ifndef PREFETCH
#define PREFETCH 1  /* 0: pre_impl does not ask the cache for the next block's gathered rows */
#endif

/* exp(x) for the SiLUs, the gate and the distance features' tanh, inline so the compiler
 * vectorises it with the loop around it: 2^(x log2 e) as 2^n times a degree-5 polynomial of 2^f,
 * |f| <= 1/2, fitted for the least largest relative error (2.3e-7 in float32 arithmetic, against
 * 1.2e-7 for float32 rounding itself), x clamped to [-87, 88] (beyond which the SiLU is 0 or x
 * to float precision anyway). */
static inline float exp_approx(float x) {
    x = fminf(fmaxf(x, -87.f), 88.f);
    const float y = x * 1.44269504f, n = rintf(y), f = y - n;
    float p = 1.32764717e-3f;
    p = p * f + 9.67554154e-3f;
    p = p * f + 5.55071328e-2f;
    p = p * f + 2.40221197e-1f;
    p = p * f + 6.93146967e-1f;
    p = p * f + 1.00000007f;
    union { float f; int32_t i; } scale = { .i = ((int32_t)n + 127) << 23 };
    return p * scale.f;
}

/* A LayerNorm's mean and 1/std of one row. */
static inline void row_stats(const float *restrict v, const int W, const float eps, float *mean_out, float *inv_out) {
    float mean = 0.f, var = 0.f;
    for (int o = 0; o < W; o++) mean += v[o];
    mean /= W;
    for (int o = 0; o < W; o++) { float d = v[o] - mean; var += d * d; }
    *mean_out = mean;
    *inv_out = 1.f / sqrtf(var / W + eps);
}

/* The LayerNorm's affine map and the SiLU of one row, in place, given its row_stats. */
static inline void affine_silu(float *restrict v, const int W, const float mean, const float inv,
                               const float *gamma, const float *beta) {
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

/* Edges are taken in blocks of LBLOCK, each stage looping over the block's edges: one edge's
 * stage is a chain of dependent operations (a reduction, then the square root, then the
 * exponentials that need it), too long for the core's reordering window to overlap with the
 * next edge's if all stages of an edge come one after another. */
#ifndef LBLOCK
#define LBLOCK 16
#endif

static inline void pre_impl(
    int64_t e0, int64_t e1, const int W, const int k,
    const int64_t *row, const int64_t *col, const float *shift,
    const int64_t *index, const float *frac, const float *table,
    const float *x, const float *a, const float *b, const int64_t lda, const int64_t ldb,
    const float *ab_bias, const float *edge_w_t,
    const float *n1w, const float *n1b, float eps1, float cutoff, float *restrict out)
{
    float diff[3 * MAXK], sq[MAXK], feat[LBLOCK][MAXK], mean[LBLOCK], inv[LBLOCK];
    const float inv_c2 = 1.f / (cutoff * cutoff);
    for (int64_t eb = e0; eb < e1; eb += LBLOCK) {
        const int nb = e1 - eb < LBLOCK ? (int)(e1 - eb) : LBLOCK;
        for (int j = 0; j < nb; j++) {  /* distance features; the next block's random rows asked for */
            const int64_t e = eb + j, ep = e + LBLOCK;
            if (PREFETCH && ep < e1) {
                const char *bp = (const char *)(b + col[ep] * ldb), *tp = (const char *)(table + index[ep] * W);
                for (int l = 0; l < W * 4; l += 64) __builtin_prefetch(bp + l);
                for (int l = 0; l < 2 * W * 4; l += 64) __builtin_prefetch(tp + l);
                __builtin_prefetch(x + col[ep] * 3 * k);
            }
            edge_diff(e, row, col, shift, x, k, diff, sq);
            /* 2 tanh(y) - 1 = 1 - 4 / (exp(2y) + 1), y >= 0: the inline exp vectorises over the
             * channels, where libm's tanhf runs lane by lane */
            for (int c = 0; c < k; c++) feat[j][c] = 1.f - 4.f / (exp_approx(2.f * fminf(sq[c] * inv_c2, 10.f)) + 1.f);
        }
        for (int j = 0; j < nb; j++) {  /* the first Linear */
            const int64_t e = eb + j;
            const float *t0 = table + index[e] * W, *t1 = t0 + W, *ai = a + row[e] * lda, *bj = b + col[e] * ldb;
            const float f = frac[e];
            float *v = out + (e - e0) * W;
            for (int o = 0; o < W; o++) v[o] = t0[o] + f * (t1[o] - t0[o]) + ai[o] + bj[o] + ab_bias[o];
            for (int c = 0; c < k; c++) {  /* output-contiguous: no horizontal sums */
                const float fc = feat[j][c], *wc = edge_w_t + c * W;
                for (int o = 0; o < W; o++) v[o] += fc * wc[o];
            }
        }
        for (int j = 0; j < nb; j++) row_stats(out + (eb + j - e0) * W, W, eps1, mean + j, inv + j);
        for (int j = 0; j < nb; j++) affine_silu(out + (eb + j - e0) * W, W, mean[j], inv[j], n1w, n1b);
    }
}

/* The second Linear's bias, LayerNorm + SiLU in place, the gate and the receivers' gated message sums. */
static inline void post_impl(
    int64_t n0, int64_t e0, int64_t e1, const int W,
    const int64_t *row, const float *cut, float *restrict m_all, const float *lin2_b,
    const float *n2w, const float *n2b, float eps2,
    const float *gate_w, float gate_b, int64_t has_gate, float *restrict agg)
{
    float mean[LBLOCK], inv[LBLOCK], weight[LBLOCK];
    for (int64_t eb = e0; eb < e1; eb += LBLOCK) {
        const int nb = e1 - eb < LBLOCK ? (int)(e1 - eb) : LBLOCK;
        float *mb = m_all + (eb - e0) * W;
        for (int j = 0; j < nb; j++) {
            float *m = mb + j * W;
            for (int o = 0; o < W; o++) m[o] += lin2_b[o];
            row_stats(m, W, eps2, mean + j, inv + j);
        }
        for (int j = 0; j < nb; j++) affine_silu(mb + j * W, W, mean[j], inv[j], n2w, n2b);
        for (int j = 0; j < nb; j++) weight[j] = cut[eb + j];
        if (has_gate)
            for (int j = 0; j < nb; j++) {
                const float *m = mb + j * W;
                float s = gate_b;
                for (int o = 0; o < W; o++) s += gate_w[o] * m[o];
                weight[j] *= 1.f / (1.f + exp_approx(-s));
            }
        for (int j = 0; j < nb; j++) {
            const float *m = mb + j * W;
            float *ag = agg + (row[eb + j] - n0) * W;
            for (int o = 0; o < W; o++) ag[o] += weight[j] * m[o];
        }
    }
}

/* G_i = sum_j u_ij (x) m_ij, (3k, W) per receiver, with u = cut d_ij / (sqrt(|d_ij|^2 + 1) + 1)
 * per channel (core.model.fast._edge_sums): a (3k x deg) x (deg x W) product per receiver, done
 * in register tiles of ROWS rows x 8 lanes that stay in registers over a block of the receiver's
 * edges, so each m_ij is loaded once per tile instead of G being read and written per edge. */
typedef float v8 __attribute__((vector_size(32), aligned(4)));
#define ROWS 12
#define EBLOCK 64

static inline void tile(const float *restrict U, const int R, const int r0, const int nr,
                        const float *restrict m, const int W, const int o0, const int ne,
                        float *restrict G, const int first)
{
    v8 acc[ROWS];
    for (int r = 0; r < nr; r++) acc[r] = first ? (v8){0} : *(const v8 *)(G + (r0 + r) * W + o0);
    for (int e = 0; e < ne; e++) {
        const v8 mv = *(const v8 *)(m + e * W + o0);
        const float *u = U + e * R + r0;
        for (int r = 0; r < nr; r++) acc[r] += u[r] * mv;
    }
    for (int r = 0; r < nr; r++) *(v8 *)(G + (r0 + r) * W + o0) = acc[r];
}

/* dx_i[d, o] = sum_(c, h) mix[o, (c, h)] G_i[(d, c), h]: W_c applied to one receiver's G_i
 * while it is in L1, in tiles of 3 coordinates x 4 outputs that share each 8-lane load. */
static inline void mix_rows(const float *restrict G, const float *restrict mix, const int W, const int k,
                            float *restrict di)
{
    const int L = k * W, L8 = L / 8 * 8;
    int o0 = 0;
    for (; o0 + 4 <= k; o0 += 4) {
        v8 acc[3][4] = {{{0}}};
        for (int h = 0; h < L8; h += 8) {
            const v8 g0 = *(const v8 *)(G + h), g1 = *(const v8 *)(G + L + h), g2 = *(const v8 *)(G + 2 * L + h);
            for (int j = 0; j < 4; j++) {
                const v8 w = *(const v8 *)(mix + (o0 + j) * L + h);
                acc[0][j] += w * g0; acc[1][j] += w * g1; acc[2][j] += w * g2;
            }
        }
        for (int d = 0; d < 3; d++)
            for (int j = 0; j < 4; j++) {
                float s = 0.f;
                for (int l = 0; l < 8; l++) s += acc[d][j][l];
                for (int h = L8; h < L; h++) s += mix[(o0 + j) * L + h] * G[d * L + h];
                di[d * k + o0 + j] = s;
            }
    }
    for (; o0 < k; o0++) {  /* channel counts that are no multiple of 4 */
        const float *mo = mix + (int64_t)o0 * L;
        for (int d = 0; d < 3; d++) {
            float s = 0.f;
            for (int h = 0; h < L; h++) s += mo[h] * G[d * L + h];
            di[d * k + o0] = s;
        }
    }
}

static inline void coord_impl(
    int64_t n0, int64_t e0, int64_t e1, const int W, const int k,
    const int64_t *row, const int64_t *col, const float *shift, const float *cut, const float *x,
    const float *m_all, const float *mix, float *restrict G, float *restrict dx)
{
    const int R = 3 * k, W8 = W / 8 * 8;
    float U[EBLOCK * 3 * MAXK], sq[MAXK];
    int64_t e = e0;
    while (e < e1) {
        const int64_t i = row[e];
        for (int first = 1; e < e1 && row[e] == i; first = 0) {
            int ne = 0;  /* the next block of this receiver's edges: their u rows */
            for (; ne < EBLOCK && e + ne < e1 && row[e + ne] == i; ne++) {
                float *u = U + ne * R;
                edge_diff(e + ne, row, col, shift, x, k, u, sq);
                for (int c = 0; c < k; c++) {
                    const float scale = cut[e + ne] / (sqrtf(sq[c] + 1.f) + 1.f);
                    for (int d = 0; d < 3; d++) u[d * k + c] *= scale;
                }
            }
            const float *m = m_all + (e - e0) * W;
            for (int o0 = 0; o0 < W8; o0 += 8) {
                int r0 = 0;
                for (; r0 + ROWS <= R; r0 += ROWS) tile(U, R, r0, ROWS, m, W, o0, ne, G, first);
                if (r0 < R) tile(U, R, r0, R - r0, m, W, o0, ne, G, first);
            }
            for (int o = W8; o < W; o++)  /* widths that are no multiple of 8 */
                for (int r = 0; r < R; r++) {
                    float s = first ? 0.f : G[r * W + o];
                    for (int j = 0; j < ne; j++) s += U[j * R + r] * m[j * W + o];
                    G[r * W + o] = s;
                }
            e += ne;
        }
        mix_rows(G, mix, W, k, dx + (i - n0) * R);
    }
}

/* Entry points (return 0, or 1 for a width or channel count beyond MAXW / MAXK); the shipped
 * width and channel count get copies with them as constants, which the compiler vectorises whole. */
int edge_pre(int64_t e0, int64_t e1, int64_t W, int64_t k,
             const int64_t *row, const int64_t *col, const float *shift,
             const int64_t *index, const float *frac, const float *table,
             const float *x, const float *a, const float *b, int64_t lda, int64_t ldb,
             const float *ab_bias, const float *edge_w_t,
             const float *n1w, const float *n1b, float eps1, float cutoff, float *out)
{
    if (W > MAXW || k > MAXK) return 1;
#define PRE(WW, KK) pre_impl(e0, e1, WW, KK, row, col, shift, index, frac, table, x, a, b, lda, ldb, ab_bias, edge_w_t, n1w, n1b, \
                             eps1, cutoff, out)
    if (W == 64 && k == 8) PRE(64, 8);
    else PRE((int)W, (int)k);
#undef PRE
    return 0;
}

int edge_post(int64_t n0, int64_t e0, int64_t e1, int64_t W,
              const int64_t *row, const float *cut, float *m, const float *lin2_b,
              const float *n2w, const float *n2b, float eps2,
              const float *gate_w, float gate_b, int64_t has_gate, float *agg)
{
    if (W > MAXW) return 1;
    if (W == 64) post_impl(n0, e0, e1, 64, row, cut, m, lin2_b, n2w, n2b, eps2, gate_w, gate_b, has_gate, agg);
    else post_impl(n0, e0, e1, (int)W, row, cut, m, lin2_b, n2w, n2b, eps2, gate_w, gate_b, has_gate, agg);
    return 0;
}

int edge_coord(int64_t n0, int64_t e0, int64_t e1, int64_t W, int64_t k,
               const int64_t *row, const int64_t *col, const float *shift, const float *cut, const float *x,
               const float *m, const float *mix, float *scratch, float *dx)
{
    if (W > MAXW || k > MAXK) return 1;
    if (W == 64 && k == 8) coord_impl(n0, e0, e1, 64, 8, row, col, shift, cut, x, m, mix, scratch, dx);
    else coord_impl(n0, e0, e1, (int)W, (int)k, row, col, shift, cut, x, m, mix, scratch, dx);
    return 0;
}
