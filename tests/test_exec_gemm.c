/* test_exec_gemm.c — exec/gemm.h: the arguments the GPU backend hands to cublasGemmEx
 * (stack.cu's linear layers, attn.cu's six per-head products, calibrate's GEMM), run through
 * a CPU emulation of the column-major call, against plain row-major loops; the GQA column
 * offsets by hand; and the whole per-head attention forward and backward composed exactly
 * as attn.cu composes it (strided Q/K/V inside packed QKV rows, beta = 1 accumulation of a
 * GQA group into one dK/dV) against direct loops written as ref.c's attn_fwd/attn_bwd. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/gemm.h"

static double rnd(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(uint32_t)(*x >> 33) / 2147483648.0 - 1.0;
}
static double *vec(size_t n, uint64_t seed) {
    double *v = malloc((n + 1) * sizeof *v);
    cr_assert_not_null(v);
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) v[i] = rnd(&x);
    return v;
}
static void close_all(const double *got, const double *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])), "%s[%zu]: %.15g vs %.15g", what, i, got[i],
                  want[i]);
}

/* ---- the three builders against row-major loops ------------------------------------------- */

/* Row-major operands with leading dimensions wider than their rows (the strided Q/K/V case);
 * C keeps its padding columns: the call must not write them. */
Test(exec_gemm, builders_match_row_major_loops_with_strides) {
    const int M = 5, N = 7, K = 3, lda = 11, ldb = 9, ldc = 10;
    for (int kind = 0; kind < 3; kind++)
        for (int acc = 0; acc < 2; acc++) {
            /* A: abt/ab [M, K]; atb [K, M]. B: abt [N, K]; ab/atb [K, N]. */
            int ar = kind == 2 ? K : M, br = kind == 0 ? N : K;
            double *A = vec((size_t)ar * lda, 1 + kind), *B = vec((size_t)br * ldb, 7 + kind);
            double *C = vec((size_t)M * ldc, 3), *W = malloc((size_t)M * ldc * sizeof *W);
            cr_assert_not_null(W);
            memcpy(W, C, (size_t)M * ldc * sizeof *W);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int l = 0; l < K; l++) {
                        double a = kind == 2 ? A[(size_t)l * lda + i] : A[(size_t)i * lda + l];
                        double b = kind == 0 ? B[(size_t)j * ldb + l] : B[(size_t)l * ldb + j];
                        s += a * b;
                    }
                    W[(size_t)i * ldc + j] = 2.0 * s + (acc ? W[(size_t)i * ldc + j] : 0);
                }
            ExecGemm g = kind == 0   ? exec_gemm_abt(C, ldc, A, lda, B, ldb, M, N, K)
                         : kind == 1 ? exec_gemm_ab(C, ldc, A, lda, B, ldb, M, N, K)
                                     : exec_gemm_atb(C, ldc, A, lda, B, ldb, M, N, K);
            cr_assert(exec_gemm_valid(&g), "kind %d: cuBLAS would reject lda %d ldb %d ldc %d", kind, g.lda, g.ldb,
                      g.ldc);
            exec_gemm_cpu(&g, 2.0, acc ? 1.0 : 0.0);
            close_all(C, W, (size_t)M * ldc, kind == 0 ? "abt" : kind == 1 ? "ab" : "atb");
            free(A), free(B), free(C), free(W);
        }
}

/* y = x W^T, dx = dy W, dW += dy^T x with W [out, in] (params.h), as ref.c's mm_fwd/mm_bwd. */
Test(exec_gemm, linear_layer_forward_and_backward) {
    const int T = 6, in = 5, out = 4;
    double *x = vec((size_t)T * in, 11), *W = vec((size_t)out * in, 12), *dy = vec((size_t)T * out, 13);
    double *y = calloc((size_t)T * out, sizeof *y), *dx = calloc((size_t)T * in, sizeof *dx);
    double *dW = vec((size_t)out * in, 14), *dW0 = malloc((size_t)out * in * sizeof *dW0);
    cr_assert(y && dx && dW0);
    memcpy(dW0, dW, (size_t)out * in * sizeof *dW0);
    ExecGemm g = exec_gemm_linear_fwd(y, x, W, T, in, out);
    cr_assert(exec_gemm_valid(&g));
    exec_gemm_cpu(&g, 1, 0);
    g = exec_gemm_linear_dx(dx, dy, W, T, in, out);
    cr_assert(exec_gemm_valid(&g));
    exec_gemm_cpu(&g, 1, 0);
    g = exec_gemm_linear_dw(dW, dy, x, T, in, out);
    cr_assert(exec_gemm_valid(&g));
    exec_gemm_cpu(&g, 1, 1);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += x[t * in + i] * W[o * in + i];
            cr_assert(fabs(y[t * out + o] - s) < 1e-12, "y[%d,%d]", t, o);
        }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < in; i++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += dy[t * out + o] * W[o * in + i];
            cr_assert(fabs(dx[t * in + i] - s) < 1e-12, "dx[%d,%d]", t, i);
        }
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double s = dW0[o * in + i];
            for (int t = 0; t < T; t++) s += dy[t * out + o] * x[t * in + i];
            cr_assert(fabs(dW[o * in + i] - s) < 1e-12, "dW[%d,%d] accumulates", o, i);
        }
    free(x), free(W), free(dy), free(y), free(dx), free(dW), free(dW0);
}

Test(exec_gemm, valid_rejects_what_cublas_rejects) {
    double a[4] = {0}, b[4] = {0}, c[4] = {0};
    ExecGemm g = exec_gemm_linear_fwd(c, a, b, 2, 2, 2);
    cr_assert(exec_gemm_valid(&g));
    g.lda = 1; /* op(A) = A^T: lda must be >= k = 2 */
    cr_assert(!exec_gemm_valid(&g));
    g = exec_gemm_linear_dx(c, a, b, 2, 2, 2);
    g.ldc = 1;
    cr_assert(!exec_gemm_valid(&g));
    g = exec_gemm_linear_dw(c, a, b, 0, 2, 2); /* T = 0: callers skip the call */
    cr_assert(!exec_gemm_valid(&g));
}

Test(exec_gemm, gqa_head_columns_by_hand) {
    size_t q, k, v;
    /* nh 4, nkv 2, hd 3: row = Q0 Q1 Q2 Q3 K0 K1 V0 V1; head 3 reads group 1 */
    exec_attn_head_cols(&q, &k, &v, 4, 2, 3, 3);
    cr_assert_eq(q, 9);
    cr_assert_eq(k, 15);
    cr_assert_eq(v, 21);
    exec_attn_head_cols(&q, &k, &v, 4, 2, 3, 1); /* head 1: group 0 */
    cr_assert_eq(q, 3);
    cr_assert_eq(k, 12);
    cr_assert_eq(v, 18);
    exec_attn_head_cols(&q, &k, &v, 2, 2, 5, 1); /* MHA: head h reads its own K, V */
    cr_assert_eq(q, 5);
    cr_assert_eq(k, 15);
    cr_assert_eq(v, 25);
}

/* ---- attention composed as attn.cu composes it --------------------------------------------- */

/* k_attn_softmax_forward / _backward in double: row i of n scores, mask j > i when causal. */
static void softmax_rows(double *P, const double *S, int n, double scale, int causal) {
    for (int i = 0; i < n; i++) {
        int nj = causal ? i + 1 : n;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < nj; j++) mx = fmax(mx, S[i * n + j] * scale);
        for (int j = 0; j < nj; j++) sum += exp(S[i * n + j] * scale - mx);
        for (int j = 0; j < n; j++) P[i * n + j] = j < nj ? exp(S[i * n + j] * scale - mx) / sum : 0;
    }
}
static void softmax_back_rows(double *dS, const double *P, const double *dP, int n, double scale) {
    for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int j = 0; j < n; j++) dot += P[i * n + j] * dP[i * n + j];
        for (int j = 0; j < n; j++) dS[i * n + j] = P[i * n + j] * (dP[i * n + j] - dot) * scale;
    }
}

static void attn_gemm(double *att, double *dqkv, const double *qkv, const double *datt, int n, int nh, int nkv, int hd,
                      int causal) {
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    const double scale = 1.0 / sqrt((double)hd);
    size_t nn = (size_t)n * n;
    double *S = malloc(nn * sizeof *S), *P = malloc(nn * sizeof *P), *dP = malloc(nn * sizeof *dP);
    double *dS = malloc(nn * sizeof *dS);
    cr_assert(S && P && dP && dS);
    memset(dqkv, 0, (size_t)n * ld * sizeof *dqkv); /* the caller zeroes dqkv (attn.h) */
    for (int head = 0; head < nh; head++) {
        size_t qo, ko, vo;
        exec_attn_head_cols(&qo, &ko, &vo, nh, nkv, hd, head);
        ExecGemm g = exec_gemm_abt(S, n, qkv + qo, ld, qkv + ko, ld, n, n, hd);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 0);
        softmax_rows(P, S, n, scale, causal);
        g = exec_gemm_ab(att + qo, ldo, P, n, qkv + vo, ld, n, hd, n);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 0);
        /* backward, in attn.cu's order */
        const double *dO = datt + qo;
        g = exec_gemm_abt(dP, n, dO, ldo, qkv + vo, ld, n, n, hd);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 0);
        g = exec_gemm_atb(dqkv + vo, ld, P, n, dO, ldo, n, hd, n);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 1);
        softmax_back_rows(dS, P, dP, n, scale);
        g = exec_gemm_ab(dqkv + qo, ld, dS, n, qkv + ko, ld, n, hd, n);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 1);
        g = exec_gemm_atb(dqkv + ko, ld, dS, n, qkv + qo, ld, n, hd, n);
        cr_assert(exec_gemm_valid(&g));
        exec_gemm_cpu(&g, 1, 1);
    }
    free(S), free(P), free(dP), free(dS);
}

/* ref.c's attn_fwd + attn_bwd, one sequence: direct loops over (head, i, j, c). */
static void attn_loops(double *att, double *dqkv, const double *qkv, const double *datt, int n, int nh, int nkv, int hd,
                       int causal) {
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, grp = nh / nkv;
    const double scale = 1.0 / sqrt((double)hd);
    double *row = malloc((size_t)n * sizeof *row), *dp = malloc((size_t)n * sizeof *dp);
    cr_assert(row && dp);
    memset(dqkv, 0, (size_t)n * ld * sizeof *dqkv);
    for (int h = 0; h < nh; h++) {
        int qo = h * hd, ko = (nh + h / grp) * hd, vo = (nh + nkv + h / grp) * hd;
        for (int i = 0; i < n; i++) {
            int nj = causal ? i + 1 : n;
            double mx = -INFINITY, sum = 0, dot = 0;
            for (int j = 0; j < nj; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++) d += qkv[i * ld + qo + c] * qkv[j * ld + ko + c];
                row[j] = d * scale;
                mx = fmax(mx, row[j]);
            }
            for (int j = 0; j < nj; j++) sum += (row[j] = exp(row[j] - mx));
            for (int j = 0; j < nj; j++) row[j] /= sum;
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int j = 0; j < nj; j++) o += row[j] * qkv[j * ld + vo + c];
                att[i * ldo + qo + c] = o;
            }
            const double *dO = datt + i * ldo + qo;
            for (int j = 0; j < nj; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++) {
                    d += dO[c] * qkv[j * ld + vo + c];
                    dqkv[j * ld + vo + c] += row[j] * dO[c];
                }
                dp[j] = d;
                dot += d * row[j];
            }
            for (int j = 0; j < nj; j++) {
                double ds = row[j] * (dp[j] - dot) * scale;
                for (int c = 0; c < hd; c++) {
                    dqkv[i * ld + qo + c] += ds * qkv[j * ld + ko + c];
                    dqkv[j * ld + ko + c] += ds * qkv[i * ld + qo + c];
                }
            }
        }
    }
    free(row), free(dp);
}

static void attention_case(int n, int nh, int nkv, int hd, int causal) {
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    double *qkv = vec((size_t)n * ld, 100 + n), *datt = vec((size_t)n * ldo, 200 + n);
    double *a1 = calloc((size_t)n * ldo, sizeof *a1), *a2 = calloc((size_t)n * ldo, sizeof *a2);
    double *g1 = calloc((size_t)n * ld, sizeof *g1), *g2 = calloc((size_t)n * ld, sizeof *g2);
    cr_assert(a1 && a2 && g1 && g2);
    attn_gemm(a1, g1, qkv, datt, n, nh, nkv, hd, causal);
    attn_loops(a2, g2, qkv, datt, n, nh, nkv, hd, causal);
    for (size_t i = 0; i < (size_t)n * ldo; i++)
        cr_assert(fabs(a1[i] - a2[i]) <= 1e-12, "n %d nh %d nkv %d causal %d: att[%zu] %.15g vs %.15g", n, nh, nkv,
                  causal, i, a1[i], a2[i]);
    for (size_t i = 0; i < (size_t)n * ld; i++)
        cr_assert(fabs(g1[i] - g2[i]) <= 1e-11, "n %d nh %d nkv %d causal %d: dqkv[%zu] (col %zu) %.15g vs %.15g", n,
                  nh, nkv, causal, i, i % ld, g1[i], g2[i]);
    free(qkv), free(datt), free(a1), free(a2), free(g1), free(g2);
}

Test(exec_gemm, attention_forward_backward_as_attn_cu_composes_it) {
    for (int causal = 0; causal < 2; causal++) {
        attention_case(7, 4, 2, 3, causal); /* GQA groups of 2 */
        attention_case(5, 3, 3, 4, causal); /* MHA */
        attention_case(6, 4, 1, 2, causal); /* MQA: one group for all heads */
        attention_case(1, 2, 1, 5, causal); /* a one-token sequence */
    }
}
