/* attn.cu — see attn.h. Row-major tensors through column-major cuBLAS: a row-major [r, c]
 * matrix with leading dimension ld is the column-major [c, r] matrix with the same ld. */
#include <stdlib.h>

#include "exec/attn.h"
#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_attention(double *worst);

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
