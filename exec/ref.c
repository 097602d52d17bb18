/* ref.c — see ref.h. Plain loops in double; every array comment gives its shape. */
#include "exec/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct RefModel {
    ModelSpec spec;
    uint64_t seed;
    uint32_t n_mod;
    uint64_t n[2 * MODEL_MAX_ENC + 1];
    double *w[2 * MODEL_MAX_ENC + 1];  /* [n[k]] weights of module k */
    double *dw[2 * MODEL_MAX_ENC + 1]; /* [n[k]] gradients */
};

/* ---- primitives ------------------------------------------------------------------------ */

void ref_rmsnorm_forward(double *out, double *rstd, const double *x, const double *g,
                         uint32_t T, uint32_t C) {
    for (uint32_t t = 0; t < T; t++) {
        const double *xt = x + (size_t)t * C;
        double ss = 0;
        for (uint32_t c = 0; c < C; c++) ss += xt[c] * xt[c];
        double r = 1.0 / sqrt(ss / C + EXEC_NORM_EPS);
        rstd[t] = r;
        for (uint32_t c = 0; c < C; c++) out[(size_t)t * C + c] = xt[c] * r * g[c];
    }
}

void ref_rmsnorm_backward(double *dx, double *dg, const double *dout, const double *x,
                          const double *g, const double *rstd, uint32_t T, uint32_t C) {
    for (uint32_t t = 0; t < T; t++) {
        const double *xt = x + (size_t)t * C, *dy = dout + (size_t)t * C;
        double r = rstd[t], dot = 0;
        for (uint32_t c = 0; c < C; c++) {
            dot += g[c] * dy[c] * xt[c];
            dg[c] += dy[c] * xt[c] * r;
        }
        /* y = x r g with r = (mean x^2 + eps)^-1/2: dr/dx_c = -r^3 x_c / C */
        for (uint32_t c = 0; c < C; c++)
            dx[(size_t)t * C + c] += r * g[c] * dy[c] - xt[c] * r * r * r * dot / C;
    }
}

void ref_softmax(double *out, const double *in, uint32_t n) {
    double mx = -INFINITY, s = 0;
    for (uint32_t i = 0; i < n; i++) mx = in[i] > mx ? in[i] : mx;
    for (uint32_t i = 0; i < n; i++) s += (out[i] = exp(in[i] - mx));
    for (uint32_t i = 0; i < n; i++) out[i] /= s;
}

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
double ref_gelu(double x) { return 0.5 * x * (1.0 + tanh(GELU_K * (x + 0.044715 * x * x * x))); }
double ref_gelu_grad(double x) {
    double u = GELU_K * (x + 0.044715 * x * x * x), th = tanh(u);
    double du = GELU_K * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
}
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* y[T, out] = x[T, in] W[out, in]^T */
static void mm_fwd(double *y, const double *x, const double *W, uint32_t T, uint32_t in,
                   uint32_t out) {
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t o = 0; o < out; o++) {
            double s = 0;
            for (uint32_t i = 0; i < in; i++) s += x[(size_t)t * in + i] * W[(size_t)o * in + i];
            y[(size_t)t * out + o] = s;
        }
}
/* dx[T, in] += dy W; dW[out, in] += dy^T x. dx may be NULL. */
static void mm_bwd(double *dx, double *dW, const double *dy, const double *x, const double *W,
                   uint32_t T, uint32_t in, uint32_t out) {
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t o = 0; o < out; o++) {
            double g = dy[(size_t)t * out + o];
            if (g == 0) continue;
            for (uint32_t i = 0; i < in; i++) {
                if (dx) dx[(size_t)t * in + i] += g * W[(size_t)o * in + i];
                dW[(size_t)o * in + i] += g * x[(size_t)t * in + i];
            }
        }
}

/* ---- one transformer stack ------------------------------------------------------------- */

typedef struct {
    uint32_t T, nseq;
    const uint32_t *len; /* [nseq] borrowed */
    uint64_t P_per_layer;
    /* per layer l: */
    double *x;    /* [(layers + 1), T, H] residual stream entering layer l (last: final) */
    double *n1, *r1, *qkv, *att, *P, *xm, *n2, *r2, *u, *h;
    double *out, *rf; /* [T, H], [T] after the final norm */
} Acts;

static void acts_free(Acts *a) {
    double **f[] = {&a->x, &a->n1, &a->r1, &a->qkv, &a->att, &a->P, &a->xm,
                    &a->n2, &a->r2, &a->u, &a->h, &a->out, &a->rf};
    for (size_t i = 0; i < OS_ARRAY_LEN(f); i++) free(*f[i]), *f[i] = NULL;
}

static OsStatus acts_alloc(Acts *a, const ExecStackLayout *L, uint32_t T, const uint32_t *len,
                           uint32_t nseq) {
    OsStatus st = OS_OK;
    memset(a, 0, sizeof *a);
    a->T = T, a->len = len, a->nseq = nseq;
    for (uint32_t s = 0; s < nseq; s++) a->P_per_layer += (uint64_t)len[s] * len[s] * L->nh;
    size_t nl = L->layers, TH = (size_t)T * L->H;
    ALLOC_CHECK(a->x = calloc((nl + 1) * TH + 1, sizeof(double)));
    ALLOC_CHECK(a->n1 = calloc(nl * TH + 1, sizeof(double)));
    ALLOC_CHECK(a->r1 = calloc(nl * T + 1, sizeof(double)));
    ALLOC_CHECK(a->qkv = calloc(nl * T * (size_t)L->qkv_rows + 1, sizeof(double)));
    ALLOC_CHECK(a->att = calloc(nl * TH + 1, sizeof(double)));
    ALLOC_CHECK(a->P = calloc(nl * a->P_per_layer + 1, sizeof(double)));
    ALLOC_CHECK(a->xm = calloc(nl * TH + 1, sizeof(double)));
    ALLOC_CHECK(a->n2 = calloc(nl * TH + 1, sizeof(double)));
    ALLOC_CHECK(a->r2 = calloc(nl * T + 1, sizeof(double)));
    ALLOC_CHECK(a->u = calloc(nl * T * (size_t)L->up_rows + 1, sizeof(double)));
    ALLOC_CHECK(a->h = calloc(nl * T * (size_t)L->F + 1, sizeof(double)));
    ALLOC_CHECK(a->out = calloc(TH + 1, sizeof(double)));
    ALLOC_CHECK(a->rf = calloc((size_t)T + 1, sizeof(double)));
    return OS_OK;
fail:
    acts_free(a);
    return st;
}

/* Attention of every sequence and head: att[T, nh hd], P[sum nh len^2] probabilities. */
static void attn_fwd(double *att, double *P, const double *qkv, const ExecStackLayout *L,
                     const uint32_t *len, uint32_t nseq) {
    uint32_t hd = L->hd, grp = L->nh / L->nkv, ld = L->qkv_rows;
    double scale = 1.0 / sqrt((double)hd);
    size_t t0 = 0, p0 = 0;
    for (uint32_t s = 0; s < nseq; s++) {
        uint32_t n = len[s];
        for (uint32_t h = 0; h < L->nh; h++) {
            uint32_t qo = h * hd, ko = (L->nh + h / grp) * hd, vo = (L->nh + L->nkv + h / grp) * hd;
            for (uint32_t i = 0; i < n; i++) {
                double *row = P + p0 + ((size_t)h * n + i) * n;
                uint32_t nj = L->causal ? i + 1 : n;
                for (uint32_t j = 0; j < nj; j++) {
                    double d = 0;
                    for (uint32_t c = 0; c < hd; c++)
                        d += qkv[(t0 + i) * ld + qo + c] * qkv[(t0 + j) * ld + ko + c];
                    row[j] = d * scale;
                }
                ref_softmax(row, row, nj);
                for (uint32_t j = nj; j < n; j++) row[j] = 0;
                for (uint32_t c = 0; c < hd; c++) {
                    double o = 0;
                    for (uint32_t j = 0; j < nj; j++) o += row[j] * qkv[(t0 + j) * ld + vo + c];
                    att[(t0 + i) * (size_t)(L->nh * hd) + qo + c] = o;
                }
            }
        }
        t0 += n;
        p0 += (size_t)L->nh * n * n;
    }
}

/* dqkv[T, qkv_rows] += the backward of attn_fwd given datt[T, nh hd]. */
static void attn_bwd(double *dqkv, const double *datt, const double *qkv, const double *P,
                     const ExecStackLayout *L, const uint32_t *len, uint32_t nseq) {
    uint32_t hd = L->hd, grp = L->nh / L->nkv, ld = L->qkv_rows, ldo = L->nh * hd;
    double scale = 1.0 / sqrt((double)hd);
    size_t t0 = 0, p0 = 0;
    uint32_t maxn = 0;
    for (uint32_t s = 0; s < nseq; s++) maxn = len[s] > maxn ? len[s] : maxn;
    double *dP = malloc(((size_t)maxn + 1) * sizeof(double));
    if (!dP) return; /* the caller's gradients stay partial; only reachable under OOM */
    for (uint32_t s = 0; s < nseq; s++) {
        uint32_t n = len[s];
        for (uint32_t h = 0; h < L->nh; h++) {
            uint32_t qo = h * hd, ko = (L->nh + h / grp) * hd, vo = (L->nh + L->nkv + h / grp) * hd;
            for (uint32_t i = 0; i < n; i++) {
                const double *row = P + p0 + ((size_t)h * n + i) * n;
                const double *dO = datt + (t0 + i) * ldo + qo;
                uint32_t nj = L->causal ? i + 1 : n;
                double dot = 0;
                for (uint32_t j = 0; j < nj; j++) {
                    double d = 0;
                    for (uint32_t c = 0; c < hd; c++) {
                        d += dO[c] * qkv[(t0 + j) * ld + vo + c];
                        dqkv[(t0 + j) * ld + vo + c] += row[j] * dO[c];
                    }
                    dP[j] = d;
                    dot += d * row[j];
                }
                for (uint32_t j = 0; j < nj; j++) {
                    double dS = row[j] * (dP[j] - dot) * scale;
                    for (uint32_t c = 0; c < hd; c++) {
                        dqkv[(t0 + i) * ld + qo + c] += dS * qkv[(t0 + j) * ld + ko + c];
                        dqkv[(t0 + j) * ld + ko + c] += dS * qkv[(t0 + i) * ld + qo + c];
                    }
                }
            }
        }
        t0 += n;
        p0 += (size_t)L->nh * n * n;
    }
    free(dP);
}

/* Forward of a stack over a.T rows in a.nseq sequences; x0: [T, H] input. */
static void stack_fwd(Acts *a, const double *W, const ExecStackLayout *L, const double *x0) {
    uint32_t T = a->T, H = L->H, F = L->F;
    size_t TH = (size_t)T * H;
    memcpy(a->x, x0, TH * sizeof(double));
    for (uint32_t l = 0; l < L->layers; l++) {
        const double *Wl = W + l * L->layer_size;
        double *x = a->x + l * TH, *xn = a->x + (l + 1) * TH;
        double *n1 = a->n1 + l * TH, *qkv = a->qkv + l * (size_t)T * L->qkv_rows;
        double *att = a->att + l * TH, *xm = a->xm + l * TH, *n2 = a->n2 + l * TH;
        double *u = a->u + l * (size_t)T * L->up_rows, *h = a->h + l * (size_t)T * F;
        ref_rmsnorm_forward(n1, a->r1 + (size_t)l * T, x, Wl + L->off[EXEC_T_ATTN_NORM], T, H);
        mm_fwd(qkv, n1, Wl + L->off[EXEC_T_QKV], T, H, L->qkv_rows);
        attn_fwd(att, a->P + l * a->P_per_layer, qkv, L, a->len, a->nseq);
        mm_fwd(xm, att, Wl + L->off[EXEC_T_O], T, L->nh * L->hd, H);
        for (size_t i = 0; i < TH; i++) xm[i] += x[i];
        ref_rmsnorm_forward(n2, a->r2 + (size_t)l * T, xm, Wl + L->off[EXEC_T_MLP_NORM], T, H);
        mm_fwd(u, n2, Wl + L->off[EXEC_T_UP], T, H, L->up_rows);
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t f = 0; f < F; f++) {
                const double *ut = u + (size_t)t * L->up_rows;
                h[(size_t)t * F + f] = L->gated ? ut[f] * sigmoid(ut[f]) * ut[F + f] : ref_gelu(ut[f]);
            }
        mm_fwd(xn, h, Wl + L->off[EXEC_T_DOWN], T, F, H);
        for (size_t i = 0; i < TH; i++) xn[i] += xm[i];
    }
    ref_rmsnorm_forward(a->out, a->rf, a->x + L->layers * TH, W + L->final_norm, T, H);
}

/* Backward: dout [T, H] -> dx0 [T, H] (overwritten), dW accumulated. */
static OsStatus stack_bwd(double *dx0, double *dW, const double *W, const ExecStackLayout *L,
                          const Acts *a, const double *dout) {
    OsStatus st = OS_OK;
    uint32_t T = a->T, H = L->H, F = L->F;
    size_t TH = (size_t)T * H;
    double *dxm = NULL, *dbig = NULL, *dh = NULL;
    ALLOC_CHECK(dxm = calloc(TH + 1, sizeof(double)));
    ALLOC_CHECK(dbig = calloc((size_t)T * (L->qkv_rows > L->up_rows ? L->qkv_rows : L->up_rows) + TH + 1, sizeof(double)));
    ALLOC_CHECK(dh = calloc((size_t)T * (F > H ? F : H) + 1, sizeof(double)));
    double *dx = dx0;
    memset(dx, 0, TH * sizeof(double));
    ref_rmsnorm_backward(dx, dW + L->final_norm, dout, a->x + L->layers * TH, W + L->final_norm,
                         a->rf, T, H);
    for (uint32_t l = L->layers; l-- > 0;) {
        const double *Wl = W + l * L->layer_size;
        double *dWl = dW + l * L->layer_size;
        const double *x = a->x + l * TH, *n1 = a->n1 + l * TH, *qkv = a->qkv + l * (size_t)T * L->qkv_rows;
        const double *att = a->att + l * TH, *xm = a->xm + l * TH, *n2 = a->n2 + l * TH;
        const double *u = a->u + l * (size_t)T * L->up_rows, *h = a->h + l * (size_t)T * F;
        /* MLP: dx holds d x_{l+1}; x_{l+1} = xm + h Wd^T */
        memset(dh, 0, (size_t)T * F * sizeof(double));
        mm_bwd(dh, dWl + L->off[EXEC_T_DOWN], dx, h, Wl + L->off[EXEC_T_DOWN], T, F, H);
        double *du = dbig;
        memset(du, 0, (size_t)T * L->up_rows * sizeof(double));
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t f = 0; f < F; f++) {
                const double *ut = u + (size_t)t * L->up_rows;
                double g = dh[(size_t)t * F + f];
                double *dut = du + (size_t)t * L->up_rows;
                if (L->gated) {
                    double sg = sigmoid(ut[f]);
                    dut[f] = g * ut[F + f] * sg * (1.0 + ut[f] * (1.0 - sg));
                    dut[F + f] = g * ut[f] * sg;
                } else {
                    dut[f] = g * ref_gelu_grad(ut[f]);
                }
            }
        double *dn = dh; /* reuse: [T, H] */
        memset(dn, 0, TH * sizeof(double));
        mm_bwd(dn, dWl + L->off[EXEC_T_UP], du, n2, Wl + L->off[EXEC_T_UP], T, H, L->up_rows);
        memcpy(dxm, dx, TH * sizeof(double));
        ref_rmsnorm_backward(dxm, dWl + L->off[EXEC_T_MLP_NORM], dn, xm, Wl + L->off[EXEC_T_MLP_NORM],
                             a->r2 + (size_t)l * T, T, H);
        /* attention: xm = x + att Wo^T */
        double *datt = dbig + (size_t)T * L->qkv_rows, *dqkv = dbig;
        memset(datt, 0, TH * sizeof(double));
        mm_bwd(datt, dWl + L->off[EXEC_T_O], dxm, att, Wl + L->off[EXEC_T_O], T, L->nh * L->hd, H);
        memset(dqkv, 0, (size_t)T * L->qkv_rows * sizeof(double));
        attn_bwd(dqkv, datt, qkv, a->P + l * a->P_per_layer, L, a->len, a->nseq);
        memset(dn, 0, TH * sizeof(double));
        mm_bwd(dn, dWl + L->off[EXEC_T_QKV], dqkv, n1, Wl + L->off[EXEC_T_QKV], T, H, L->qkv_rows);
        memcpy(dx, dxm, TH * sizeof(double));
        ref_rmsnorm_backward(dx, dWl + L->off[EXEC_T_ATTN_NORM], dn, x, Wl + L->off[EXEC_T_ATTN_NORM],
                             a->r1 + (size_t)l * T, T, H);
    }
fail:
    free(dxm);
    free(dbig);
    free(dh);
    return st;
}

/* ---- the model ------------------------------------------------------------------------- */

OsStatus ref_model_create(RefModel **out, const ModelSpec *m, uint64_t seed) {
    OsStatus st = OS_OK;
    RefModel *r = NULL;
    *out = NULL;
    if (m->n_enc > MODEL_MAX_ENC || !m->llm.vocab)
        OS_FAIL(OS_ERR_ARG, m->name, "llm.vocab", "the LLM needs a vocabulary", "not an MLLM spec");
    ALLOC_CHECK(r = calloc(1, sizeof *r));
    r->spec = *m;
    r->seed = seed;
    r->n_mod = exec_n_modules(m);
    for (uint32_t k = 0; k < r->n_mod; k++) {
        /* zeroed: gcc -O2 cannot see that L is only read when is_stack and P only when not
         * (-Wmaybe-uninitialized in Release builds) */
        ExecStackLayout L = {0};
        ExecProjLayout P = {0};
        int is_stack = k <= m->n_enc;
        if (is_stack) {
            exec_stack_layout(&L, k < m->n_enc ? &m->enc[k].stack : &m->llm);
            r->n[k] = L.total;
        } else {
            const EncoderSpec *e = &m->enc[k - m->n_enc - 1];
            exec_proj_layout(&P, e->stack.hidden, m->llm.hidden, e->ratio);
            r->n[k] = P.total;
        }
        ALLOC_CHECK(r->w[k] = malloc((r->n[k] + 1) * sizeof(double)));
        ALLOC_CHECK(r->dw[k] = calloc(r->n[k] + 1, sizeof(double)));
        for (uint64_t i = 0; i < r->n[k]; i++)
            r->w[k][i] = is_stack ? exec_stack_param(seed, k, &L, i) : exec_proj_param(seed, k, &P, i);
    }
    *out = r;
    return OS_OK;
fail:
    ref_model_destroy(r);
    return st;
}

void ref_model_destroy(RefModel *r) {
    if (!r) return;
    for (uint32_t k = 0; k < r->n_mod; k++) free(r->w[k]), free(r->dw[k]);
    free(r);
}

double *ref_params(RefModel *r, uint32_t k, uint64_t *n) {
    if (k >= r->n_mod) return NULL;
    if (n) *n = r->n[k];
    return r->w[k];
}
double *ref_grads(RefModel *r, uint32_t k, uint64_t *n) {
    if (k >= r->n_mod) return NULL;
    if (n) *n = r->n[k];
    return r->dw[k];
}
void ref_zero_grads(RefModel *r) {
    for (uint32_t k = 0; k < r->n_mod; k++) memset(r->dw[k], 0, r->n[k] * sizeof(double));
}

uint64_t ref_batch_labels(const ModelSpec *m, const ExecBatch *b) {
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t I = 0;
        for (uint32_t k = 0; k < b->n_items[i]; k++) {
            uint32_t j = b->first_item[i] + k;
            if (b->it_enc[j] < m->n_enc) I += exec_item_tokens(&m->enc[b->it_enc[j]], b->it_len[j]);
        }
        n += exec_n_labels(I, b->text[i]);
    }
    return n;
}

/* Per-encoder working set of one step. */
typedef struct {
    uint32_t T, tok, nseq; /* positions, projected tokens, items */
    uint32_t *len;         /* [nseq] positions per item the encoder runs (pad_to applied) */
    uint32_t *real;        /* [nseq] real positions: only these are merged and spliced */
    double *x0, *merged, *z1, *g1, *proj; /* [T,He], [tok, r He], [tok,Hl] x3 */
    Acts a;
} EncWork;

static void encwork_free(EncWork *w) {
    free(w->len), free(w->real), free(w->x0), free(w->merged), free(w->z1), free(w->g1), free(w->proj);
    acts_free(&w->a);
    memset(w, 0, sizeof *w);
}

OsStatus ref_model_step(double *loss, RefModel *r, const ExecBatch *b, uint64_t dseed,
                        double label_norm, int backward) {
    OsStatus st = OS_OK;
    const ModelSpec *m = &r->spec;
    uint32_t E = m->n_enc, Hl = m->llm.hidden, V = m->llm.vocab;
    EncWork ew[MODEL_MAX_ENC];
    Acts la;
    memset(ew, 0, sizeof ew);
    memset(&la, 0, sizeof la);
    uint32_t *S = NULL, *jrow = NULL;
    double *dpr[MODEL_MAX_ENC] = {0}; /* [tok_e, Hl] gradient of encoder e's projector output */
    double *x0 = NULL, *logits = NULL, *dlog = NULL, *dout = NULL, *dx0 = NULL, *tmp = NULL;
    uint32_t M = 0;
    *loss = 0;
    for (uint32_t i = 0; i < b->n; i++) M = OS_MAX(M, b->first_item[i] + b->n_items[i]);
    ALLOC_CHECK(S = calloc((size_t)b->n + 1, sizeof *S));
    ALLOC_CHECK(jrow = calloc((size_t)M + 1, sizeof *jrow)); /* item -> row in its encoder batch */
    /* count per encoder, in batch order */
    for (uint32_t i = 0; i < b->n; i++) {
        S[i] = b->text[i];
        for (uint32_t k = 0; k < b->n_items[i]; k++) {
            uint32_t j = b->first_item[i] + k, e = b->it_enc[j];
            if (e >= E)
                OS_FAIL(OS_ERR_ARG, m->name, "items", "the model has no encoder for it",
                        "item %u of example %u uses encoder %u", k, i, e);
            jrow[j] = ew[e].T;
            ew[e].T += exec_item_positions(&m->enc[e], b->it_len[j]);
            ew[e].tok += exec_item_tokens(&m->enc[e], b->it_len[j]);
            ew[e].nseq++;
            S[i] += exec_item_tokens(&m->enc[e], b->it_len[j]);
        }
    }
    /* encoders + projectors */
    for (uint32_t e = 0; e < E; e++) {
        EncWork *w = &ew[e];
        const EncoderSpec *es = &m->enc[e];
        ExecStackLayout L;
        exec_stack_layout(&L, &es->stack);
        uint32_t He = L.H, R = es->ratio;
        ALLOC_CHECK(w->len = calloc((size_t)w->nseq + 1, sizeof *w->len));
        ALLOC_CHECK(w->real = calloc((size_t)w->nseq + 1, sizeof *w->real));
        ALLOC_CHECK(w->x0 = calloc((size_t)w->T * He + 1, sizeof(double)));
        ALLOC_CHECK(w->merged = calloc((size_t)w->tok * R * He + 1, sizeof(double)));
        ALLOC_CHECK(w->z1 = calloc((size_t)w->tok * Hl + 1, sizeof(double)));
        ALLOC_CHECK(w->g1 = calloc((size_t)w->tok * Hl + 1, sizeof(double)));
        ALLOC_CHECK(w->proj = calloc((size_t)w->tok * Hl + 1, sizeof(double)));
        uint32_t q = 0;
        for (uint32_t i = 0; i < b->n; i++)
            for (uint32_t k = 0; k < b->n_items[i]; k++) {
                uint32_t j = b->first_item[i] + k;
                if (b->it_enc[j] != e) continue;
                uint32_t n = exec_item_positions(es, b->it_len[j]);
                w->real[q] = b->it_len[j];
                w->len[q++] = n;
                for (uint32_t p = 0; p < n; p++)
                    for (uint32_t c = 0; c < He; c++)
                        w->x0[((size_t)jrow[j] + p) * He + c] = exec_item_input(dseed, b->id[i], k, p, c, He);
            }
        if (!w->T) continue;
        OS_CHECK(acts_alloc(&w->a, &L, w->T, w->len, w->nseq));
        stack_fwd(&w->a, r->w[e], &L, w->x0);
        /* ratio merge: projected token t of an item = its REAL positions [t R, t R + R),
         * zero-padded; outputs of pad_to padding are dropped (params.h exec_item_tokens) */
        uint32_t row = 0, tok = 0;
        for (uint32_t s = 0; s < w->nseq; s++) {
            uint32_t n = w->real[s], nt = (n + R - 1) / R;
            for (uint32_t p = 0; p < n; p++)
                memcpy(w->merged + ((size_t)(tok + p / R) * R + p % R) * He,
                       w->a.out + ((size_t)row + p) * He, He * sizeof(double));
            row += w->len[s], tok += nt;
        }
        const double *Wp = r->w[E + 1 + e];
        mm_fwd(w->z1, w->merged, Wp, w->tok, R * He, Hl);
        for (size_t i = 0; i < (size_t)w->tok * Hl; i++) w->g1[i] = ref_gelu(w->z1[i]);
        mm_fwd(w->proj, w->g1, Wp + (size_t)Hl * R * He, w->tok, Hl, Hl);
    }
    /* LLM input: each example's projected items in order, then its text embeddings */
    ExecStackLayout LL;
    exec_stack_layout(&LL, &m->llm);
    uint32_t T = 0;
    for (uint32_t i = 0; i < b->n; i++) T += S[i];
    ALLOC_CHECK(x0 = calloc((size_t)T * Hl + 1, sizeof(double)));
    ALLOC_CHECK(dx0 = calloc((size_t)T * Hl + 1, sizeof(double)));
    ALLOC_CHECK(dout = calloc((size_t)T * Hl + 1, sizeof(double)));
    ALLOC_CHECK(logits = calloc((size_t)T * V + 1, sizeof(double)));
    ALLOC_CHECK(dlog = calloc((size_t)T * V + 1, sizeof(double)));
    ALLOC_CHECK(tmp = calloc((size_t)V + 1, sizeof(double)));
    const double *Wl = r->w[E];
    double *dWl = r->dw[E];
    uint32_t etok[MODEL_MAX_ENC] = {0}, t0 = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t p = 0;
        for (uint32_t k = 0; k < b->n_items[i]; k++) {
            uint32_t j = b->first_item[i] + k, e = b->it_enc[j];
            uint32_t nt = exec_item_tokens(&m->enc[e], b->it_len[j]);
            memcpy(x0 + ((size_t)t0 + p) * Hl, ew[e].proj + (size_t)etok[e] * Hl, (size_t)nt * Hl * sizeof(double));
            etok[e] += nt, p += nt;
        }
        for (uint32_t t = 0; t < b->text[i]; t++, p++)
            memcpy(x0 + ((size_t)t0 + p) * Hl, Wl + LL.emb + (size_t)exec_token(dseed, b->id[i], t, V) * Hl,
                   Hl * sizeof(double));
        t0 += S[i];
    }
    OS_CHECK(acts_alloc(&la, &LL, T, S, b->n));
    stack_fwd(&la, Wl, &LL, x0);
    mm_fwd(logits, la.out, Wl + LL.lm_head, T, Hl, V);
    t0 = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t I = S[i] - b->text[i];
        for (uint32_t p = 0; p + 1 < S[i]; p++) {
            if (p + 1 < I) continue;
            uint32_t lab = exec_token(dseed, b->id[i], p + 1 - I, V);
            const double *lg = logits + ((size_t)t0 + p) * V;
            ref_softmax(tmp, lg, V);
            *loss += -log(tmp[lab]) / label_norm;
            for (uint32_t v = 0; v < V; v++)
                dlog[((size_t)t0 + p) * V + v] = (tmp[v] - (v == lab)) / label_norm;
        }
        t0 += S[i];
    }
    if (!backward) goto fail;
    mm_bwd(dout, dWl + LL.lm_head, dlog, la.out, Wl + LL.lm_head, T, Hl, V);
    OS_CHECK(stack_bwd(dx0, dWl, Wl, &LL, &la, dout));
    /* route the LLM input gradient: text rows to the embedding, item rows to projectors */
    memset(etok, 0, sizeof etok);
    double *gelup[MODEL_MAX_ENC];
    for (uint32_t e = 0; e < E; e++) gelup[e] = ew[e].z1;
    for (uint32_t e = 0; e < E; e++)
        for (size_t x = 0; x < (size_t)ew[e].tok * Hl; x++) ew[e].z1[x] = ref_gelu_grad(ew[e].z1[x]);
    for (uint32_t e = 0; e < E; e++) {
        ALLOC_CHECK(dpr[e] = calloc((size_t)ew[e].tok * Hl + 1, sizeof(double)));
    }
    t0 = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t p = 0;
        for (uint32_t k = 0; k < b->n_items[i]; k++) {
            uint32_t j = b->first_item[i] + k, e = b->it_enc[j];
            uint32_t nt = exec_item_tokens(&m->enc[e], b->it_len[j]);
            memcpy(dpr[e] + (size_t)etok[e] * Hl, dx0 + ((size_t)t0 + p) * Hl, (size_t)nt * Hl * sizeof(double));
            etok[e] += nt, p += nt;
        }
        for (uint32_t t = 0; t < b->text[i]; t++, p++) {
            double *de = dWl + LL.emb + (size_t)exec_token(dseed, b->id[i], t, V) * Hl;
            for (uint32_t c = 0; c < Hl; c++) de[c] += dx0[((size_t)t0 + p) * Hl + c];
        }
        t0 += S[i];
    }
    for (uint32_t e = 0; e < E; e++) {
        EncWork *w = &ew[e];
        if (!w->T) continue;
        ExecStackLayout L;
        exec_stack_layout(&L, &m->enc[e].stack);
        uint32_t He = L.H, R = m->enc[e].ratio;
        const double *Wp = r->w[E + 1 + e];
        double *dWp = r->dw[E + 1 + e];
        double *dg1 = w->proj; /* proj no longer needed: reuse as dg1 [tok, Hl] */
        memset(dg1, 0, (size_t)w->tok * Hl * sizeof(double));
        mm_bwd(dg1, dWp + (size_t)Hl * R * He, dpr[e], w->g1, Wp + (size_t)Hl * R * He, w->tok, Hl, Hl);
        for (size_t x = 0; x < (size_t)w->tok * Hl; x++) dg1[x] *= gelup[e][x]; /* gelu' */
        double *dmerged = NULL, *denc = NULL, *dxe = NULL;
        dmerged = calloc((size_t)w->tok * R * He + 1, sizeof(double));
        denc = calloc((size_t)w->T * He + 1, sizeof(double));
        dxe = calloc((size_t)w->T * He + 1, sizeof(double));
        if (!dmerged || !denc || !dxe) {
            free(dmerged), free(denc), free(dxe);
            OS_FAIL(OS_ERR_NOMEM, "memory", "ref encoder backward", NULL, "allocation failed");
        }
        mm_bwd(dmerged, dWp, dg1, w->merged, Wp, w->tok, R * He, Hl);
        uint32_t row = 0, tok = 0;
        for (uint32_t s = 0; s < w->nseq; s++) {
            uint32_t n = w->real[s]; /* padding rows get no gradient from the projector */
            for (uint32_t p = 0; p < n; p++)
                memcpy(denc + ((size_t)row + p) * He, dmerged + ((size_t)(tok + p / R) * R + p % R) * He,
                       He * sizeof(double));
            row += w->len[s], tok += (n + R - 1) / R;
        }
        st = stack_bwd(dxe, r->dw[e], r->w[e], &L, &w->a, denc);
        free(dmerged), free(denc), free(dxe);
        if (st != OS_OK) goto fail;
    }
fail:
    for (uint32_t e = 0; e < E; e++) encwork_free(&ew[e]), free(dpr[e]);
    acts_free(&la);
    free(S), free(jrow), free(x0), free(logits), free(dlog), free(dout), free(dx0), free(tmp);
    return st;
}
