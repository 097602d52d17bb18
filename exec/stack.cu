/* stack.cu — see stack.cuh. Row-major tensors through column-major cuBLAS (exec/gemm.h):
 * y = x W^T is C(out x T) = W^T(op) x, dx = dy W is C(in x T) = W dy, dW = dy^T x is
 * C(in x out) = x dy^T(op). */
#include "exec/attn.h"
#include "exec/flash.cuh"
#include "exec/gemm.cuh"
#include "exec/kernels/kernels.cuh"
#include "exec/stack.cuh"


/* The operand order and leading dimensions come from exec/gemm.h (tested on the CPU). */
OsStatus exec_mm_forward(void *y, cudaDataType yt, const bf16 *x, const bf16 *W, int T, int in, int out,
                         float beta, cublasHandle_t h) {
    if (T <= 0) return OS_OK;
    ExecGemm g = exec_gemm_linear_fwd(y, x, W, T, in, out);
    return exec_gemm_run(h, &g, yt, 1.0f, beta);
}

OsStatus exec_mm_backward_x(bf16 *dx, const bf16 *dy, const bf16 *W, int T, int in, int out, float beta,
                            cublasHandle_t h) {
    if (T <= 0) return OS_OK;
    ExecGemm g = exec_gemm_linear_dx(dx, dy, W, T, in, out);
    return exec_gemm_run(h, &g, CUDA_R_16BF, 1.0f, beta);
}

OsStatus exec_mm_backward_w(float *dW, const bf16 *dy, const bf16 *x, int T, int in, int out, cublasHandle_t h) {
    if (T <= 0) return OS_OK;
    ExecGemm g = exec_gemm_linear_dw(dW, dy, x, T, in, out);
    return exec_gemm_run(h, &g, CUDA_R_32F, 1.0f, 1.0f); /* beta = 1: dW accumulates */
}

/* ---- blocks -------------------------------------------------------------------------------- */

void exec_stack_acts_carve(StackActs *a, const ExecActsLayout *lay, int T, int fused, void *base) {
    char *p = (char *)base;
    a->T = T, a->fused = fused;
    a->x = (bf16 *)(p + lay->x);
    a->n1 = (bf16 *)(p + lay->n1);
    a->att = (bf16 *)(p + lay->att);
    a->xm = (bf16 *)(p + lay->xm);
    a->n2 = (bf16 *)(p + lay->n2);
    a->qkv = (bf16 *)(p + lay->qkv);
    a->u = (bf16 *)(p + lay->u);
    a->h = (bf16 *)(p + lay->h);
    a->r1 = (float *)(p + lay->r1);
    a->r2 = (float *)(p + lay->r2);
    a->out = (bf16 *)(p + lay->out);
    a->rf = (float *)(p + lay->rf);
    a->lse = fused ? (float *)(p + lay->lse) : NULL;
}

void exec_stack_scratch_carve(StackScratch *s, const ExecScratchLayout *lay, void *base, ExecFlashTile *host_tiles) {
    char *p = (char *)base;
    s->dx = (bf16 *)(p + lay->dx);
    s->dxm = (bf16 *)(p + lay->dxm);
    s->dn = (bf16 *)(p + lay->dn);
    s->dh = (bf16 *)(p + lay->dh);
    s->du = (bf16 *)(p + lay->du);
    s->datt = (bf16 *)(p + lay->datt);
    s->dqkv = (bf16 *)(p + lay->dqkv);
    s->S = (float *)(p + lay->S);
    s->dP = (float *)(p + lay->dP);
    s->P = (bf16 *)(p + lay->P);
    s->dS = (bf16 *)(p + lay->dS);
    s->dq = (float *)(p + lay->dq);
    s->dvec = (float *)(p + lay->dvec);
    s->tiles = (ExecFlashTile *)(p + lay->tiles);
    s->max_tiles = lay->max_tiles;
    s->host_tiles = host_tiles;
}

/* The tile lists of this stack's sequences, on the device (forward at tiles[0..], backward at
 * tiles[max_tiles..]). */
static OsStatus upload_tiles(uint32_t *n, StackScratch *sc, const uint64_t *len, int nseq, int causal,
                             cudaStream_t s) {
    OsStatus st = OS_OK;
    uint64_t T = 0;
    for (int q = 0; q < nseq; q++) T += len[q];
    if (exec_flash_max_tiles(T) > sc->max_tiles)
        OS_FAIL(OS_ERR_INTERNAL, "exec stack", "tiles", NULL, "%llu rows need more than %llu tiles",
                (unsigned long long)T, (unsigned long long)sc->max_tiles);
    *n = exec_flash_tiles(sc->host_tiles, sc->host_tiles + sc->max_tiles, len, (uint32_t)nseq, causal);
    /* pageable source: the copy is staged before the call returns, the buffer can be reused */
    CUDA_CHECK(cudaMemcpyAsync(sc->tiles, sc->host_tiles, *n * sizeof(ExecFlashTile), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(sc->tiles + sc->max_tiles, sc->host_tiles + sc->max_tiles,
                               *n * sizeof(ExecFlashTile), cudaMemcpyHostToDevice, s));
fail:
    return st;
}

/* ---- forward / backward ---------------------------------------------------------------------- */

OsStatus exec_stack_forward(StackActs *a, const bf16 *W, const ExecStackLayout *L, const uint64_t *len,
                            int nseq, StackScratch *sc, cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int T = a->T, H = (int)L->H, F = (int)L->F, nh = (int)L->nh, nkv = (int)L->nkv, hd = (int)L->hd;
    const int ldq = (int)L->qkv_rows, ldo = nh * hd;
    const size_t TH = (size_t)T * H;
    uint32_t ntiles = 0;
    if (T <= 0) return OS_OK;
    CUBLAS_CHECK(cublasSetStream(h, s));
    if (a->fused) OS_CHECK(upload_tiles(&ntiles, sc, len, nseq, (int)L->causal, s));
    for (uint32_t l = 0; l < L->layers; l++) {
        const bf16 *Wl = W + l * L->layer_size;
        bf16 *x = a->x + l * TH, *xn = a->x + (l + 1) * TH;
        bf16 *n1 = a->n1 + l * TH, *att = a->att + l * TH, *xm = a->xm + l * TH, *n2 = a->n2 + l * TH;
        bf16 *qkv = a->qkv + l * (size_t)T * ldq, *u = a->u + l * (size_t)T * L->up_rows;
        bf16 *hh = a->h + l * (size_t)T * F;
        OS_CHECK(k_rmsnorm_forward(n1, a->r1 + (size_t)l * T, x, Wl + L->off[EXEC_T_ATTN_NORM], T, H, s));
        OS_CHECK(exec_mm_forward(qkv, CUDA_R_16BF, n1, Wl + L->off[EXEC_T_QKV], T, H, ldq, 0.0f, h));
        if (a->fused) { /* one launch for every sequence; attention stays inside each (DESIGN.md §2) */
            OS_CHECK(exec_flash_forward(att, a->lse + (size_t)l * nh * T, qkv, sc->tiles, ntiles, T, nh, nkv, hd,
                                        (int)L->causal, s));
        } else {
            size_t t0 = 0;
            for (int q = 0; q < nseq; q++) {
                if (len[q])
                    OS_CHECK(exec_attn_forward(att + t0 * ldo, qkv + t0 * ldq, (int)len[q], nh, nkv, hd,
                                               (int)L->causal, sc->S, sc->P, h, s));
                t0 += len[q];
            }
        }
        /* xm = x + att Wo^T: the residual first, then the GEMM with beta = 1 */
        CUDA_CHECK(cudaMemcpyAsync(xm, x, TH * sizeof(bf16), cudaMemcpyDeviceToDevice, s));
        OS_CHECK(exec_mm_forward(xm, CUDA_R_16BF, att, Wl + L->off[EXEC_T_O], T, ldo, H, 1.0f, h));
        OS_CHECK(k_rmsnorm_forward(n2, a->r2 + (size_t)l * T, xm, Wl + L->off[EXEC_T_MLP_NORM], T, H, s));
        OS_CHECK(exec_mm_forward(u, CUDA_R_16BF, n2, Wl + L->off[EXEC_T_UP], T, H, (int)L->up_rows, 0.0f, h));
        if (L->gated) OS_CHECK(k_swiglu_forward(hh, u, T, F, s));
        else OS_CHECK(k_gelu_forward(hh, u, (size_t)T * F, s));
        CUDA_CHECK(cudaMemcpyAsync(xn, xm, TH * sizeof(bf16), cudaMemcpyDeviceToDevice, s));
        OS_CHECK(exec_mm_forward(xn, CUDA_R_16BF, hh, Wl + L->off[EXEC_T_DOWN], T, F, H, 1.0f, h));
    }
    OS_CHECK(k_rmsnorm_forward(a->out, a->rf, a->x + L->layers * TH, W + L->final_norm, T, H, s));
fail:
    return st;
}

OsStatus exec_stack_backward(float *dW, const bf16 *W, const ExecStackLayout *L, const StackActs *a,
                             const bf16 *dout, const uint64_t *len, int nseq, StackScratch *sc,
                             cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int T = a->T, H = (int)L->H, F = (int)L->F, nh = (int)L->nh, nkv = (int)L->nkv, hd = (int)L->hd;
    const int ldq = (int)L->qkv_rows, ldo = nh * hd, up = (int)L->up_rows;
    const size_t TH = (size_t)T * H;
    uint32_t ntiles = 0;
    if (T <= 0) return OS_OK;
    CUBLAS_CHECK(cublasSetStream(h, s));
    if (a->fused) OS_CHECK(upload_tiles(&ntiles, sc, len, nseq, (int)L->causal, s));
    /* final norm: dx = d x_L */
    OS_CHECK(k_rmsnorm_backward(sc->dx, dW + L->final_norm, NULL, dout, a->x + L->layers * TH, W + L->final_norm,
                                a->rf, T, H, s));
    for (uint32_t l = L->layers; l-- > 0;) {
        const bf16 *Wl = W + l * L->layer_size;
        float *dWl = dW + l * L->layer_size;
        const bf16 *x = a->x + l * TH, *n1 = a->n1 + l * TH, *att = a->att + l * TH, *xm = a->xm + l * TH;
        const bf16 *n2 = a->n2 + l * TH, *qkv = a->qkv + l * (size_t)T * ldq, *u = a->u + l * (size_t)T * up;
        const bf16 *hh = a->h + l * (size_t)T * F;
        /* MLP: x_{l+1} = xm + h Wd^T */
        OS_CHECK(exec_mm_backward_x(sc->dh, sc->dx, Wl + L->off[EXEC_T_DOWN], T, F, H, 0.0f, h));
        OS_CHECK(exec_mm_backward_w(dWl + L->off[EXEC_T_DOWN], sc->dx, hh, T, F, H, h));
        if (L->gated) OS_CHECK(k_swiglu_backward(sc->du, u, sc->dh, T, F, s));
        else OS_CHECK(k_gelu_backward(sc->du, u, sc->dh, (size_t)T * F, s));
        OS_CHECK(exec_mm_backward_x(sc->dn, sc->du, Wl + L->off[EXEC_T_UP], T, H, up, 0.0f, h));
        OS_CHECK(exec_mm_backward_w(dWl + L->off[EXEC_T_UP], sc->du, n2, T, H, up, h));
        OS_CHECK(k_rmsnorm_backward(sc->dxm, dWl + L->off[EXEC_T_MLP_NORM], sc->dx, sc->dn, xm,
                                    Wl + L->off[EXEC_T_MLP_NORM], a->r2 + (size_t)l * T, T, H, s));
        /* attention: xm = x + att Wo^T */
        OS_CHECK(exec_mm_backward_x(sc->datt, sc->dxm, Wl + L->off[EXEC_T_O], T, ldo, H, 0.0f, h));
        OS_CHECK(exec_mm_backward_w(dWl + L->off[EXEC_T_O], sc->dxm, att, T, ldo, H, h));
        CUDA_CHECK(cudaMemsetAsync(sc->dqkv, 0, (size_t)T * ldq * sizeof(bf16), s));
        if (a->fused) {
            OS_CHECK(exec_flash_backward(sc->dqkv, sc->dq, sc->dvec, sc->datt, qkv, att, a->lse + (size_t)l * nh * T,
                                         sc->tiles + sc->max_tiles, ntiles, T, nh, nkv, hd, (int)L->causal, s));
        } else {
            size_t t0 = 0;
            for (int q = 0; q < nseq; q++) {
                if (len[q])
                    OS_CHECK(exec_attn_backward(sc->dqkv + t0 * ldq, sc->datt + t0 * ldo, qkv + t0 * ldq, (int)len[q],
                                                nh, nkv, hd, (int)L->causal, sc->S, sc->P, sc->dP, sc->dS, h, s));
                t0 += len[q];
            }
        }
        OS_CHECK(exec_mm_backward_x(sc->dn, sc->dqkv, Wl + L->off[EXEC_T_QKV], T, H, ldq, 0.0f, h));
        OS_CHECK(exec_mm_backward_w(dWl + L->off[EXEC_T_QKV], sc->dqkv, n1, T, H, ldq, h));
        OS_CHECK(k_rmsnorm_backward(sc->dx, dWl + L->off[EXEC_T_ATTN_NORM], sc->dxm, sc->dn, x,
                                    Wl + L->off[EXEC_T_ATTN_NORM], a->r1 + (size_t)l * T, T, H, s));
    }
fail:
    return st;
}
