/* stack.cu — see stack.cuh. Row-major tensors through column-major cuBLAS (exec/gemm.h):
 * y = x W^T is C(out x T) = W^T(op) x, dx = dy W is C(in x T) = W dy, dW = dy^T x is
 * C(in x out) = x dy^T(op). */
#include "exec/attn.h"
#include "exec/gemm.cuh"
#include "exec/kernels/kernels.cuh"
#include "exec/stack.cuh"

#define ALIGN 256

static size_t al(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }
static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

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

size_t exec_stack_acts_bytes(const ExecStackLayout *L, int T) {
    size_t t = (size_t)T, H = L->H, nl = L->layers;
    size_t b = al((nl + 1) * t * H * 2);
    b += nl * (al(t * H * 2) * 4 + al(t * L->qkv_rows * 2) + al(t * L->up_rows * 2) + al(t * L->F * 2));
    b += nl * 2 * al(t * 4);
    b += al(t * H * 2) + al(t * 4);
    return b;
}

void exec_stack_acts_carve(StackActs *a, const ExecStackLayout *L, int T, void *base) {
    char *p = (char *)base;
    size_t t = (size_t)T, H = L->H, nl = L->layers;
#define TAKE(ptr, type, n)             \
    do {                               \
        ptr = (type *)p;               \
        p += al((size_t)(n) * sizeof(type)); \
    } while (0)
    a->T = T;
    TAKE(a->x, bf16, (nl + 1) * t * H);
    /* per-layer arrays: one region each, layer l at l * stride (strides are aligned) */
    TAKE(a->n1, bf16, nl * t * H);
    TAKE(a->att, bf16, nl * t * H);
    TAKE(a->xm, bf16, nl * t * H);
    TAKE(a->n2, bf16, nl * t * H);
    TAKE(a->qkv, bf16, nl * t * L->qkv_rows);
    TAKE(a->u, bf16, nl * t * L->up_rows);
    TAKE(a->h, bf16, nl * t * L->F);
    TAKE(a->r1, float, nl * t);
    TAKE(a->r2, float, nl * t);
    TAKE(a->out, bf16, t * H);
    TAKE(a->rf, float, t);
#undef TAKE
}

static void widest(const ExecStackLayout *L, int nL, size_t *H, size_t *F, size_t *qkv, size_t *up, size_t *att) {
    *H = *F = *qkv = *up = *att = 1;
    for (int k = 0; k < nL; k++) {
        *H = zmax(*H, (size_t)L[k].H), *F = zmax(*F, (size_t)L[k].F);
        *qkv = zmax(*qkv, (size_t)L[k].qkv_rows), *up = zmax(*up, (size_t)L[k].up_rows);
        *att = zmax(*att, (size_t)L[k].nh * L[k].hd);
    }
}

size_t exec_stack_scratch_bytes(const ExecStackLayout *L, int nL, int T, int n) {
    size_t H, F, qkv, up, att, t = (size_t)(T > 0 ? T : 1), nn = (size_t)(n > 0 ? n : 1) * (n > 0 ? n : 1);
    widest(L, nL, &H, &F, &qkv, &up, &att);
    return 3 * al(t * H * 2) + al(t * F * 2) + al(t * up * 2) + al(t * att * 2) + al(t * qkv * 2) +
           2 * al(nn * 4) + 2 * al(nn * 2);
}

void exec_stack_scratch_carve(StackScratch *s, const ExecStackLayout *L, int nL, int T, int n, void *base) {
    size_t H, F, qkv, up, att, t = (size_t)(T > 0 ? T : 1), nn = (size_t)(n > 0 ? n : 1) * (n > 0 ? n : 1);
    char *p = (char *)base;
    widest(L, nL, &H, &F, &qkv, &up, &att);
    s->dx = (bf16 *)p, p += al(t * H * 2);
    s->dxm = (bf16 *)p, p += al(t * H * 2);
    s->dn = (bf16 *)p, p += al(t * H * 2);
    s->dh = (bf16 *)p, p += al(t * F * 2);
    s->du = (bf16 *)p, p += al(t * up * 2);
    s->datt = (bf16 *)p, p += al(t * att * 2);
    s->dqkv = (bf16 *)p, p += al(t * qkv * 2);
    s->S = (float *)p, p += al(nn * 4);
    s->dP = (float *)p, p += al(nn * 4);
    s->P = (bf16 *)p, p += al(nn * 2);
    s->dS = (bf16 *)p;
}

/* ---- forward / backward ---------------------------------------------------------------------- */

OsStatus exec_stack_forward(StackActs *a, const bf16 *W, const ExecStackLayout *L, const uint64_t *len,
                            int nseq, StackScratch *sc, cublasHandle_t h, cudaStream_t s) {
    OsStatus st = OS_OK;
    const int T = a->T, H = (int)L->H, F = (int)L->F, nh = (int)L->nh, nkv = (int)L->nkv, hd = (int)L->hd;
    const int ldq = (int)L->qkv_rows, ldo = nh * hd;
    const size_t TH = (size_t)T * H;
    if (T <= 0) return OS_OK;
    CUBLAS_CHECK(cublasSetStream(h, s));
    for (uint32_t l = 0; l < L->layers; l++) {
        const bf16 *Wl = W + l * L->layer_size;
        bf16 *x = a->x + l * TH, *xn = a->x + (l + 1) * TH;
        bf16 *n1 = a->n1 + l * TH, *att = a->att + l * TH, *xm = a->xm + l * TH, *n2 = a->n2 + l * TH;
        bf16 *qkv = a->qkv + l * (size_t)T * ldq, *u = a->u + l * (size_t)T * L->up_rows;
        bf16 *hh = a->h + l * (size_t)T * F;
        OS_CHECK(k_rmsnorm_forward(n1, a->r1 + (size_t)l * T, x, Wl + L->off[EXEC_T_ATTN_NORM], T, H, s));
        OS_CHECK(exec_mm_forward(qkv, CUDA_R_16BF, n1, Wl + L->off[EXEC_T_QKV], T, H, ldq, 0.0f, h));
        size_t t0 = 0;
        for (int q = 0; q < nseq; q++) {
            if (len[q]) /* attention inside each sequence only (DESIGN.md §2) */
                OS_CHECK(exec_attn_forward(att + t0 * ldo, qkv + t0 * ldq, (int)len[q], nh, nkv, hd, (int)L->causal,
                                           sc->S, sc->P, h, s));
            t0 += len[q];
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
    if (T <= 0) return OS_OK;
    CUBLAS_CHECK(cublasSetStream(h, s));
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
        size_t t0 = 0;
        for (int q = 0; q < nseq; q++) {
            if (len[q])
                OS_CHECK(exec_attn_backward(sc->dqkv + t0 * ldq, sc->datt + t0 * ldo, qkv + t0 * ldq, (int)len[q], nh,
                                            nkv, hd, (int)L->causal, sc->S, sc->P, sc->dP, sc->dS, h, s));
            t0 += len[q];
        }
        OS_CHECK(exec_mm_backward_x(sc->dn, sc->dqkv, Wl + L->off[EXEC_T_QKV], T, H, ldq, 0.0f, h));
        OS_CHECK(exec_mm_backward_w(dWl + L->off[EXEC_T_QKV], sc->dqkv, n1, T, H, ldq, h));
        OS_CHECK(k_rmsnorm_backward(sc->dx, dWl + L->off[EXEC_T_ATTN_NORM], sc->dxm, sc->dn, x,
                                    Wl + L->off[EXEC_T_ATTN_NORM], a->r1 + (size_t)l * T, T, H, s));
    }
fail:
    return st;
}
