/* attn.cu — see attn.h. Row-major tensors through column-major cuBLAS: a row-major [r, c]
 * matrix with leading dimension ld is the column-major [c, r] matrix with the same ld. */
#include <stdlib.h>

#include "exec/attn.h"
#include "exec/flash.cuh"
#include "exec/gemm.cuh"
#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_attention(double *worst);
extern "C" OsStatus exec_st_attn_backward(double *worst);
extern "C" OsStatus exec_st_flash_twin(double *worst);

/* Every GEMM's operands come from exec/gemm.h (tested on the CPU against plain loops). */
OsStatus exec_attn_forward(bf16 *att, const bf16 *qkv, int n, int nh, int nkv, int hd,
                           int causal, float *S, bf16 *P, cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    CUBLAS_CHECK(cublasSetStream(h, s));
    for (int head = 0; head < nh; head++) {
        size_t qo, ko, vo;
        exec_attn_head_cols(&qo, &ko, &vo, nh, nkv, hd, head);
        /* S[n,n] = Q K^T (fp32), then P = softmax(S scale) with the mask (bf16) */
        ExecGemm g = exec_gemm_abt(S, n, qkv + qo, ld, qkv + ko, ld, n, n, hd);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_32F, 1.0f, 0.0f));
        OS_CHECK(k_attn_softmax_forward(P, S, n, n, scale, causal, s));
        /* O[n, head cols] = P V */
        g = exec_gemm_ab(att + qo, ldo, P, n, qkv + vo, ld, n, hd, n);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_16BF, 1.0f, 0.0f));
    }
fail:
    return st;
}

OsStatus exec_attn_backward(bf16 *dqkv, const bf16 *datt, const bf16 *qkv, int n, int nh, int nkv,
                            int hd, int causal, float *S, bf16 *P, float *dP, bf16 *dS,
                            cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    CUBLAS_CHECK(cublasSetStream(h, s));
    for (int head = 0; head < nh; head++) {
        size_t qo, ko, vo;
        exec_attn_head_cols(&qo, &ko, &vo, nh, nkv, hd, head);
        const bf16 *q = qkv + qo, *k = qkv + ko, *v = qkv + vo, *dO = datt + qo;
        /* recompute P (as the forward) */
        ExecGemm g = exec_gemm_abt(S, n, q, ld, k, ld, n, n, hd);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_32F, 1.0f, 0.0f));
        OS_CHECK(k_attn_softmax_forward(P, S, n, n, scale, causal, s));
        /* dP[n,n] = dO V^T */
        g = exec_gemm_abt(dP, n, dO, ldo, v, ld, n, n, hd);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_32F, 1.0f, 0.0f));
        /* dV += P^T dO (beta = 1: the heads of one GQA group share dV) */
        g = exec_gemm_atb(dqkv + vo, ld, P, n, dO, ldo, n, hd, n);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_16BF, 1.0f, 1.0f));
        /* dS = P (dP - <P, dP>) scale; masked entries have P = 0, so dS = 0 there */
        OS_CHECK(k_attn_softmax_backward(dS, P, dP, n, n, scale, s));
        /* dQ += dS K */
        g = exec_gemm_ab(dqkv + qo, ld, dS, n, k, ld, n, hd, n);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_16BF, 1.0f, 1.0f));
        /* dK += dS^T Q */
        g = exec_gemm_atb(dqkv + ko, ld, dS, n, q, ld, n, hd, n);
        OS_CHECK(exec_gemm_run(h, &g, CUDA_R_16BF, 1.0f, 1.0f));
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

// the fused kernels against this slow twin ------------------------------------------------------

/* One sequence of 100 rows (two tiles, a partial one), GQA 4 heads in 2 groups, head dim 64,
 * both masks: the fused forward and backward (exec/flash.cu) against the cuBLAS path above. */
extern "C" OsStatus exec_st_flash_twin(double *worst) {
    OsStatus st = OS_OK;
    const int n = 100, nh = 4, nkv = 2, hd = 64, ld = (nh + 2 * nkv) * hd;
    const size_t nq = (size_t)n * ld, no = (size_t)n * nh * hd;
    const uint64_t len = (uint64_t)n;
    bf16 *hb = NULL, *dq = NULL, *dd = NULL, *a1 = NULL, *a2 = NULL, *g1 = NULL, *g2 = NULL, *P = NULL, *dS16 = NULL;
    float *S = NULL, *dPf = NULL, *lse = NULL, *dqa = NULL, *dv = NULL, *got = NULL;
    double *ref = NULL;
    ExecFlashTile ht[8], *dt = NULL;
    cublasHandle_t h = NULL;
    uint32_t nt = 0;
    *worst = INFINITY;
    hb = (bf16 *)malloc(nq * 2), got = (float *)malloc(nq * 4), ref = (double *)malloc(nq * 8);
    ALLOC_CHECK(hb && got && ref);
    CUDA_CHECK(cudaMalloc(&dq, nq * 2));
    CUDA_CHECK(cudaMalloc(&dd, no * 2));
    CUDA_CHECK(cudaMalloc(&a1, no * 2));
    CUDA_CHECK(cudaMalloc(&a2, no * 2));
    CUDA_CHECK(cudaMalloc(&g1, nq * 2));
    CUDA_CHECK(cudaMalloc(&g2, nq * 2));
    CUDA_CHECK(cudaMalloc(&S, (size_t)n * n * 4));
    CUDA_CHECK(cudaMalloc(&dPf, (size_t)n * n * 4));
    CUDA_CHECK(cudaMalloc(&P, (size_t)n * n * 2));
    CUDA_CHECK(cudaMalloc(&dS16, (size_t)n * n * 2));
    CUDA_CHECK(cudaMalloc(&lse, (size_t)nh * n * 4));
    CUDA_CHECK(cudaMalloc(&dqa, no * 4));
    CUDA_CHECK(cudaMalloc(&dv, (size_t)nh * n * 4));
    CUDA_CHECK(cudaMalloc(&dt, sizeof ht));
    CUBLAS_CHECK(cublasCreate(&h));
    for (size_t i = 0; i < nq; i++) hb[i] = __float2bfloat16(2.0f * exec_test_value(41, i));
    CUDA_CHECK(cudaMemcpy(dq, hb, nq * 2, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < no; i++) hb[i] = __float2bfloat16(exec_test_value(42, i));
    CUDA_CHECK(cudaMemcpy(dd, hb, no * 2, cudaMemcpyHostToDevice));
    *worst = 0;
    for (int causal = 0; causal < 2; causal++) {
        nt = exec_flash_tiles(ht, ht + 4, &len, 1, causal);
        CUDA_CHECK(cudaMemcpy(dt, ht, sizeof ht, cudaMemcpyHostToDevice));
        OS_CHECK(exec_attn_forward(a1, dq, n, nh, nkv, hd, causal, S, P, h, 0));
        OS_CHECK(exec_flash_forward(a2, lse, dq, dt, nt, n, nh, nkv, hd, causal, 0));
        CUDA_CHECK(cudaMemset(g1, 0, nq * 2));
        CUDA_CHECK(cudaMemset(g2, 0, nq * 2));
        OS_CHECK(exec_attn_backward(g1, dd, dq, n, nh, nkv, hd, causal, S, P, dPf, dS16, h, 0));
        OS_CHECK(exec_flash_backward(g2, dqa, dv, dd, dq, a2, lse, dt + 4, nt, n, nh, nkv, hd, causal, 0));
        CUDA_CHECK(cudaDeviceSynchronize());
        for (int pass = 0; pass < 2; pass++) {
            const size_t cnt = pass ? nq : no;
            CUDA_CHECK(cudaMemcpy(hb, pass ? g1 : a1, cnt * 2, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < cnt; i++) ref[i] = __bfloat162float(hb[i]);
            CUDA_CHECK(cudaMemcpy(hb, pass ? g2 : a2, cnt * 2, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < cnt; i++) got[i] = __bfloat162float(hb[i]);
            *worst = fmax(*worst, exec_worst(got, ref, cnt, 3e-2, 3e-2));
        }
    }
fail:
    if (h) cublasDestroy(h);
    cudaFree(dq), cudaFree(dd), cudaFree(a1), cudaFree(a2), cudaFree(g1), cudaFree(g2), cudaFree(S), cudaFree(dPf);
    cudaFree(P), cudaFree(dS16), cudaFree(lse), cudaFree(dqa), cudaFree(dv), cudaFree(dt);
    free(hb), free(got), free(ref);
    if (st != OS_OK) *worst = INFINITY;
    return st;
}
