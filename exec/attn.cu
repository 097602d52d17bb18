/* attn.cu — see attn.h. Row-major tensors through column-major cuBLAS: a row-major [r, c]
 * matrix with leading dimension ld is the column-major [c, r] matrix with the same ld. */
#include <stdlib.h>

#include "exec/attn.h"
#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_attention(double *worst);
extern "C" OsStatus exec_st_attn_backward(double *worst);

OsStatus exec_attn_forward(bf16 *att, const bf16 *qkv, int n, int nh, int nkv, int hd,
                           int causal, float *S, bf16 *P, cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, grp = nh / nkv;
    const float one = 1.0f, zero = 0.0f, scale = 1.0f / sqrtf((float)hd);
    CUBLAS_CHECK(cublasSetStream(h, s));
    for (int head = 0; head < nh; head++) {
        const bf16 *q = qkv + (size_t)head * hd, *k = qkv + (size_t)(nh + head / grp) * hd;
        const bf16 *v = qkv + (size_t)(nh + nkv + head / grp) * hd;
        /* S[i][j] = q_i . k_j: column-major C (n x n, j fastest) = K^T(op) x Q */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, hd, &one, k, CUDA_R_16BF, ld, q,
                                  CUDA_R_16BF, ld, &zero, S, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        OS_CHECK(k_attn_softmax_forward(P, S, n, n, scale, causal, s));
        /* O[i][head hd + c] = sum_j P[i][j] v_j[c]: column-major O^T (hd x n) = V^T P^T */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, n, &one, v, CUDA_R_16BF, ld, P,
                                  CUDA_R_16BF, n, &zero, att + (size_t)head * hd, CUDA_R_16BF, ldo,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
fail:
    return st;
}

OsStatus exec_attn_backward(bf16 *dqkv, const bf16 *datt, const bf16 *qkv, int n, int nh, int nkv,
                            int hd, int causal, float *S, bf16 *P, float *dP, bf16 *dS,
                            cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, grp = nh / nkv;
    const float one = 1.0f, zero = 0.0f, scale = 1.0f / sqrtf((float)hd);
    CUBLAS_CHECK(cublasSetStream(h, s));
    for (int head = 0; head < nh; head++) {
        const size_t qo = (size_t)head * hd, ko = (size_t)(nh + head / grp) * hd;
        const size_t vo = (size_t)(nh + nkv + head / grp) * hd;
        const bf16 *q = qkv + qo, *k = qkv + ko, *v = qkv + vo, *dO = datt + qo;
        /* recompute P (as the forward) */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, hd, &one, k, CUDA_R_16BF, ld, q,
                                  CUDA_R_16BF, ld, &zero, S, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        OS_CHECK(k_attn_softmax_forward(P, S, n, n, scale, causal, s));
        /* dP[i][j] = dO_i . v_j (column-major [n(j), n(i)] = V^T(op) dO) */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, hd, &one, v, CUDA_R_16BF, ld, dO,
                                  CUDA_R_16BF, ldo, &zero, dP, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        /* dv_j += sum_i P[i][j] dO_i: column-major dV (hd x n) += dO (hd x n) P_cm^T */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, hd, n, n, &one, dO, CUDA_R_16BF, ldo, P,
                                  CUDA_R_16BF, n, &one, dqkv + vo, CUDA_R_16BF, ld, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        /* dS = P (dP - <P, dP>) scale; masked entries have P = 0, so dS = 0 there */
        OS_CHECK(k_attn_softmax_backward(dS, P, dP, n, n, scale, s));
        /* dq_i += sum_j dS[i][j] k_j: column-major dQ (hd x n) += K (hd x n) dS_cm */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, n, &one, k, CUDA_R_16BF, ld, dS,
                                  CUDA_R_16BF, n, &one, dqkv + qo, CUDA_R_16BF, ld, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        /* dk_j += sum_i dS[i][j] q_i: column-major dK (hd x n) += Q (hd x n) dS_cm^T */
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, hd, n, n, &one, q, CUDA_R_16BF, ld, dS,
                                  CUDA_R_16BF, n, &one, dqkv + ko, CUDA_R_16BF, ld, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
    }
fail:
    return st;
}

// CPU reference (double) for the self-test ---------------------------------------------------

static void attn_forward_cpu(double *att, const float *qkv, int n, int nh, int nkv, int hd,
                             int causal) {
    int ld = (nh + 2 * nkv) * hd, grp = nh / nkv;
    double scale = 1.0 / sqrt((double)hd), *p = (double *)malloc((size_t)n * sizeof(double));
    if (!p) return;
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < n; i++) {
            int nj = causal ? i + 1 : n;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < nj; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += (double)qkv[(size_t)i * ld + h * hd + c] * qkv[(size_t)j * ld + (nh + h / grp) * hd + c];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < nj; j++) sum += (p[j] = exp(p[j] - mx));
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int j = 0; j < nj; j++) o += p[j] / sum * qkv[(size_t)j * ld + (nh + nkv + h / grp) * hd + c];
                att[(size_t)i * nh * hd + h * hd + c] = o;
            }
        }
    free(p);
}

extern "C" OsStatus exec_st_attention(double *worst) {
    OsStatus st = OS_OK;
    const int n = 37, nh = 4, nkv = 2, hd = 16, ld = (nh + 2 * nkv) * hd;
    const size_t nq = (size_t)n * ld, no = (size_t)n * nh * hd;
    float *hq = NULL, *got = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *dq = NULL, *dP = NULL;
    float *dS = NULL;
    cublasHandle_t h = NULL;
    *worst = INFINITY;
    hq = (float *)malloc(nq * 4), got = (float *)malloc(no * 4), ref = (double *)malloc(no * 8);
    hb = (bf16 *)malloc((nq > no ? nq : no) * 2);
    ALLOC_CHECK(hq && got && ref && hb);
    for (size_t i = 0; i < nq; i++) hq[i] = exec_test_value(9, i);
    for (size_t i = 0; i < nq; i++) hb[i] = __float2bfloat16(hq[i]);
    CUDA_CHECK(cudaMalloc(&dq, (nq + no) * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&dS, (size_t)n * n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dP, (size_t)n * n * sizeof(bf16)));
    CUBLAS_CHECK(cublasCreate(&h));
    CUDA_CHECK(cudaMemcpy(dq, hb, nq * 2, cudaMemcpyHostToDevice));
    *worst = 0;
    for (int causal = 0; causal < 2; causal++) {
        OS_CHECK(exec_attn_forward(dq + nq, dq, n, nh, nkv, hd, causal, dS, dP, h, 0));
        CUDA_CHECK(cudaMemcpy(hb, dq + nq, no * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < no; i++) got[i] = __bfloat162float(hb[i]);
        attn_forward_cpu(ref, hq, n, nh, nkv, hd, causal);
        *worst = fmax(*worst, exec_worst(got, ref, no, 2e-2, 2e-2));
    }
fail:
    if (h) cublasDestroy(h);
    cudaFree(dq), cudaFree(dS), cudaFree(dP);
    free(hq), free(got), free(ref), free(hb);
    return st;
}

/* dqkv [n, ld] = gradient of sum(att * dO) w.r.t. qkv, in double (ref.c's attn_bwd). */
static void attn_backward_cpu(double *dqkv, const float *dO, const float *qkv, int n, int nh, int nkv,
                              int hd, int causal) {
    int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, grp = nh / nkv;
    double scale = 1.0 / sqrt((double)hd);
    double *p = (double *)malloc((size_t)n * sizeof(double)), *dp = (double *)malloc((size_t)n * sizeof(double));
    if (!p || !dp) {
        free(p), free(dp);
        return;
    }
    for (size_t i = 0; i < (size_t)n * ld; i++) dqkv[i] = 0;
    for (int h = 0; h < nh; h++) {
        int qo = h * hd, ko = (nh + h / grp) * hd, vo = (nh + nkv + h / grp) * hd;
        for (int i = 0; i < n; i++) {
            int nj = causal ? i + 1 : n;
            double mx = -INFINITY, sum = 0, dot = 0;
            for (int j = 0; j < nj; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++) d += (double)qkv[(size_t)i * ld + qo + c] * qkv[(size_t)j * ld + ko + c];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < nj; j++) sum += (p[j] = exp(p[j] - mx));
            for (int j = 0; j < nj; j++) {
                p[j] /= sum;
                double d = 0;
                for (int c = 0; c < hd; c++) {
                    d += (double)dO[(size_t)i * ldo + qo + c] * qkv[(size_t)j * ld + vo + c];
                    dqkv[(size_t)j * ld + vo + c] += p[j] * dO[(size_t)i * ldo + qo + c];
                }
                dp[j] = d;
                dot += d * p[j];
            }
            for (int j = 0; j < nj; j++) {
                double ds = p[j] * (dp[j] - dot) * scale;
                for (int c = 0; c < hd; c++) {
                    dqkv[(size_t)i * ld + qo + c] += ds * qkv[(size_t)j * ld + ko + c];
                    dqkv[(size_t)j * ld + ko + c] += ds * qkv[(size_t)i * ld + qo + c];
                }
            }
        }
    }
    free(p), free(dp);
}

extern "C" OsStatus exec_st_attn_backward(double *worst) {
    OsStatus st = OS_OK;
    const int n = 29, nh = 4, nkv = 2, hd = 16, ld = (nh + 2 * nkv) * hd;
    const size_t nq = (size_t)n * ld, no = (size_t)n * nh * hd;
    float *hq = NULL, *ho = NULL, *got = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *dq = NULL, *dd = NULL, *dg = NULL, *dP16 = NULL, *dS16 = NULL;
    float *dS = NULL, *dP = NULL;
    cublasHandle_t h = NULL;
    *worst = INFINITY;
    hq = (float *)malloc(nq * 4), ho = (float *)malloc(no * 4), got = (float *)malloc(nq * 4);
    ref = (double *)malloc(nq * 8), hb = (bf16 *)malloc(nq * 2);
    ALLOC_CHECK(hq && ho && got && ref && hb);
    for (size_t i = 0; i < nq; i++) hq[i] = exec_test_value(13, i);
    for (size_t i = 0; i < no; i++) ho[i] = exec_test_value(14, i);
    CUDA_CHECK(cudaMalloc(&dq, nq * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&dg, nq * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&dd, no * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&dS, (size_t)n * n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dP, (size_t)n * n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dP16, (size_t)n * n * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&dS16, (size_t)n * n * sizeof(bf16)));
    CUBLAS_CHECK(cublasCreate(&h));
    for (size_t i = 0; i < nq; i++) hb[i] = __float2bfloat16(hq[i]);
    CUDA_CHECK(cudaMemcpy(dq, hb, nq * 2, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < no; i++) hb[i] = __float2bfloat16(ho[i]);
    CUDA_CHECK(cudaMemcpy(dd, hb, no * 2, cudaMemcpyHostToDevice));
    *worst = 0;
    for (int causal = 0; causal < 2; causal++) {
        CUDA_CHECK(cudaMemset(dg, 0, nq * sizeof(bf16)));
        OS_CHECK(exec_attn_backward(dg, dd, dq, n, nh, nkv, hd, causal, dS, dP16, dP, dS16, h, 0));
        CUDA_CHECK(cudaMemcpy(hb, dg, nq * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < nq; i++) got[i] = __bfloat162float(hb[i]);
        attn_backward_cpu(ref, ho, hq, n, nh, nkv, hd, causal);
        *worst = fmax(*worst, exec_worst(got, ref, nq, 3e-2, 3e-2));
    }
fail:
    if (h) cublasDestroy(h);
    cudaFree(dq), cudaFree(dg), cudaFree(dd), cudaFree(dS), cudaFree(dP), cudaFree(dP16), cudaFree(dS16);
    free(hq), free(ho), free(got), free(ref), free(hb);
    return st;
}
