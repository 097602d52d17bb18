/* params.h — parameter layout and counter-based random values shared by the CPU reference
 * (ref.c) and the GPU backend (*.cu), so both hold bit-identical weights and inputs.
 * Implements: the flat per-module parameter layout of a transformer stack (DESIGN.md §2:
 *   {layers, hidden, ffn, heads, kv_heads, vocab}) and of an encoder's projector (ratio
 *   merge + 2-layer MLP, sim/model.h), a splitmix64 counter hash, bf16 rounding, and the
 *   values of weights, text tokens, item inputs and labels as pure functions of indices.
 * Does not: allocate, compute, or know any device; header-only on purpose (static inline),
 *   so os_exec (C) and os_exec_gpu (CUDA) need no link-order dependence on each other.
 * Conventions: a matrix W is [out, in] row-major and y = x W^T (llm.c); no biases; no
 *   positional encoding (positions change neither cost nor data movement); an example's LLM
 *   sequence is its projected items in order, then its text tokens. */
#ifndef OS_EXEC_PARAMS_H
#define OS_EXEC_PARAMS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define EXEC_HD static inline __host__ __device__
#else
#define EXEC_HD static inline
#endif

#include "sim/model.h"

/* ---- random values --------------------------------------------------------------------- */

EXEC_HD uint64_t exec_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
EXEC_HD uint64_t exec_hash3(uint64_t seed, uint64_t a, uint64_t b) {
    return exec_mix64(seed ^ exec_mix64(a ^ exec_mix64(b)));
}
/* Uniform in [-1, 1) with 24 random bits: exact in float on host and device. */
EXEC_HD float exec_uniform(uint64_t h) {
    return (float)(uint32_t)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}
/* Round a float to the nearest bf16 (ties to even), returned as a float. */
EXEC_HD float exec_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- stack layout ---------------------------------------------------------------------- */

enum {
    EXEC_T_ATTN_NORM = 0, /* [H] */
    EXEC_T_QKV,           /* [(nh + 2 nkv) hd, H] */
    EXEC_T_O,             /* [H, nh hd] */
    EXEC_T_MLP_NORM,      /* [H] */
    EXEC_T_UP,            /* [F, H] (GELU) or [2F, H] (SwiGLU: gate rows, then up rows) */
    EXEC_T_DOWN,          /* [H, F] */
    EXEC_T_LAYER_KINDS,
    EXEC_T_FINAL_NORM = 12, /* [H] */
    EXEC_T_EMB = 13,        /* [V, H] */
    EXEC_T_LM_HEAD = 14,    /* [V, H] */
    EXEC_T_P1 = 0,          /* projector [Hl, r He] */
    EXEC_T_P2 = 1           /* projector [Hl, Hl] */
};

typedef struct {
    uint32_t H, F, nh, nkv, hd, V, layers, gated, causal;
    uint32_t qkv_rows, up_rows;  /* (nh + 2 nkv) hd; F or 2F */
    uint64_t off[EXEC_T_LAYER_KINDS]; /* offsets inside one layer, elements */
    uint64_t layer_size;
    uint64_t final_norm, emb, lm_head; /* offsets inside the module (emb/lm_head valid if V) */
    uint64_t total;                    /* elements of the module */
} ExecStackLayout;

EXEC_HD void exec_stack_layout(ExecStackLayout *L, const StackSpec *s) {
    L->H = s->hidden;
    L->F = s->ffn;
    L->nh = s->heads;
    L->nkv = s->kv_heads;
    L->hd = s->hidden / s->heads;
    L->V = s->vocab;
    L->layers = s->layers;
    L->gated = s->gated_mlp;
    L->causal = s->causal;
    L->qkv_rows = (L->nh + 2 * L->nkv) * L->hd;
    L->up_rows = L->gated ? 2 * L->F : L->F;
    uint64_t H = L->H, o = 0;
    L->off[EXEC_T_ATTN_NORM] = o; o += H;
    L->off[EXEC_T_QKV] = o; o += (uint64_t)L->qkv_rows * H;
    L->off[EXEC_T_O] = o; o += H * (uint64_t)L->nh * L->hd;
    L->off[EXEC_T_MLP_NORM] = o; o += H;
    L->off[EXEC_T_UP] = o; o += (uint64_t)L->up_rows * H;
    L->off[EXEC_T_DOWN] = o; o += H * L->F;
    L->layer_size = o;
    o *= L->layers;
    L->final_norm = o; o += H;
    L->emb = o; o += (uint64_t)L->V * H;
    L->lm_head = o; o += (uint64_t)L->V * H;
    L->total = o;
}

/* Projector of encoder e: p1 [Hl, r He] at 0, p2 [Hl, Hl] after it. */
typedef struct {
    uint32_t He, Hl, r;
    uint64_t p1, p2, total;
} ExecProjLayout;

EXEC_HD void exec_proj_layout(ExecProjLayout *P, uint32_t enc_hidden, uint32_t llm_hidden,
                              uint32_t ratio) {
    P->He = enc_hidden;
    P->Hl = llm_hidden;
    P->r = ratio;
    P->p1 = 0;
    P->p2 = (uint64_t)llm_hidden * ratio * enc_hidden;
    P->total = P->p2 + (uint64_t)llm_hidden * llm_hidden;
}

/* Module numbering: 0..n_enc-1 encoders, n_enc the LLM, n_enc+1+e the projector of e. */
static inline uint32_t exec_n_modules(const ModelSpec *m) { return 2 * m->n_enc + 1; }

/* Tensor ids feed the hash: module, layer and kind make every tensor's stream distinct. */
EXEC_HD uint64_t exec_tensor_id(uint32_t module, uint32_t layer, uint32_t kind) {
    return ((uint64_t)module << 32) | ((uint64_t)layer << 8) | kind;
}

/* Value of element idx of a tensor: norms 1 + u/8, matrices u / sqrt(fan_in), embeddings u;
 * rounded to bf16 so the GPU's bf16 copy is exact. Every product here is exact, so nvcc's
 * FMA contraction cannot make the device value differ from the host's. */
EXEC_HD float exec_param_value(uint64_t seed, uint64_t tensor, uint64_t idx, int is_norm,
                               uint32_t fan_in) {
    float u = exec_uniform(exec_hash3(seed, tensor, idx));
    float v = is_norm ? 1.0f + u * 0.125f : (fan_in ? u / sqrtf((float)fan_in) : u);
    return exec_bf16_round(v);
}

/* Which tensor (layer, kind, fan_in, is_norm) holds element `e` of a stack module. */
EXEC_HD void exec_stack_locate(const ExecStackLayout *L, uint64_t e, uint32_t *layer,
                               uint32_t *kind, uint64_t *idx, int *is_norm, uint32_t *fan_in) {
    if (e < L->final_norm) {
        *layer = (uint32_t)(e / L->layer_size);
        uint64_t r = e % L->layer_size;
        uint32_t k = EXEC_T_LAYER_KINDS - 1;
        while (k > 0 && r < L->off[k]) k--;
        *kind = k;
        *idx = r - L->off[k];
        *is_norm = k == EXEC_T_ATTN_NORM || k == EXEC_T_MLP_NORM;
        *fan_in = k == EXEC_T_O ? L->nh * L->hd : k == EXEC_T_DOWN ? L->F : L->H;
        return;
    }
    *layer = 0;
    if (e < L->emb) {
        *kind = EXEC_T_FINAL_NORM, *idx = e - L->final_norm, *is_norm = 1, *fan_in = 0;
    } else if (e < L->lm_head) {
        *kind = EXEC_T_EMB, *idx = e - L->emb, *is_norm = 0, *fan_in = 0;
    } else {
        *kind = EXEC_T_LM_HEAD, *idx = e - L->lm_head, *is_norm = 0, *fan_in = L->H;
    }
}

EXEC_HD float exec_stack_param(uint64_t seed, uint32_t module, const ExecStackLayout *L,
                               uint64_t e) {
    uint32_t layer, kind, fan_in;
    uint64_t idx;
    int is_norm;
    exec_stack_locate(L, e, &layer, &kind, &idx, &is_norm, &fan_in);
    return exec_param_value(seed, exec_tensor_id(module, layer, kind), idx, is_norm, fan_in);
}

EXEC_HD float exec_proj_param(uint64_t seed, uint32_t module, const ExecProjLayout *P,
                              uint64_t e) {
    if (e < P->p2)
        return exec_param_value(seed, exec_tensor_id(module, 0, EXEC_T_P1), e, 0, P->r * P->He);
    return exec_param_value(seed, exec_tensor_id(module, 0, EXEC_T_P2), e - P->p2, 0, P->Hl);
}

/* ---- data ------------------------------------------------------------------------------ */

#define EXEC_TAG_TOKEN 0x746f6b656eull /* "token" */
#define EXEC_TAG_ITEM 0x6974656dull    /* "item" */
#define EXEC_NORM_EPS 1e-5             /* RMSNorm epsilon (Llama's) */

/* Text token t of an example (vocab V). */
EXEC_HD uint32_t exec_token(uint64_t seed, uint64_t example_id, uint32_t t, uint32_t V) {
    return (uint32_t)(exec_hash3(seed ^ EXEC_TAG_TOKEN, example_id, t) % V);
}
/* Encoder input of item k of an example: element (pos, c) of its [len, He] features. */
EXEC_HD float exec_item_input(uint64_t seed, uint64_t example_id, uint32_t k, uint64_t pos,
                              uint32_t c, uint32_t He) {
    uint64_t h = exec_hash3(seed ^ EXEC_TAG_ITEM, (example_id << 8) ^ k, pos * He + c);
    return exec_bf16_round(exec_uniform(h));
}
/* Position p of a sequence of S tokens whose first I are projected items has a label when
 * p + 1 < S and p + 1 >= I (next-token prediction of text only); the label is text token
 * p + 1 - I. */
EXEC_HD uint32_t exec_n_labels(uint32_t item_tokens, uint32_t text) {
    if (text == 0) return 0;
    return item_tokens ? text : text - 1;
}

/* Positions an item occupies in its encoder: pad_to pads short items up to the window
 * (Whisper, REFERENCE.md §D.3); the padding is computed like real input. */
static inline uint32_t exec_item_positions(const EncoderSpec *e, uint32_t len) {
    return (e->pad_to && len < e->pad_to) ? e->pad_to : len;
}
/* LLM tokens of an item: ceil(REAL positions / ratio) (DESIGN.md §1), as the simulator's
 * cost_item_llm_tokens counts them. Convention for padded encoders (pad_to): the encoder runs
 * on exec_item_positions (padding included, it costs encoder time), but only the item's first
 * `len` output positions are ratio-merged, projected and spliced; the padding's outputs are
 * dropped (Whisper's decoder sees 1500 frames, but an MLLM splices only the speech). */
static inline uint32_t exec_item_tokens(const EncoderSpec *e, uint32_t len) {
    uint32_t r = e->ratio ? e->ratio : 1;
    return (len + r - 1) / r;
}

/* A list of examples as the backend sees them: one rank's share or a whole global batch.
 * All arrays borrowed. Items of example i are [first_item[i], first_item[i] + n_items[i]). */
typedef struct {
    uint32_t n;                 /* examples */
    const uint64_t *id;         /* [n] example ids: seed the text tokens and item inputs */
    const uint32_t *text;       /* [n] text tokens */
    const uint32_t *first_item; /* [n] */
    const uint32_t *n_items;    /* [n] */
    const uint32_t *it_enc;     /* [M] encoder index of each item */
    const uint32_t *it_len;     /* [M] encoder positions as drawn (before pad_to) */
} ExecBatch;

#endif
