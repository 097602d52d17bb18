/* rankidx.h — what ONE rank does with one step's plan, as flat index lists the GPU kernels
 * read (exec/kernels/step.cu, rows.cu) and the buffer sizes it needs.
 * Implements: from an ExecStepPlan (plan.h) and rank d: the item-feature and text-id fills of
 *   the units d holds at home (in their send layouts), the encoder sequences d computes (in
 *   receive order), the ratio-merge copies (only the item's REAL positions: params.h's pad_to
 *   convention), the pack copies into the embeddings' send buffer, the LLM row assembly (item
 *   rows from each embedding receive buffer, text rows from the token ids), the LLM sequence
 *   lengths and next-token flags, and every buffer's row count.
 * Does not: allocate on a device or run anything (mllm.cu does); it is plain C so that the
 *   CPU tests can drive the same lists through exec_route_apply_cpu (tests/test_exec_rankidx.c).
 * Header-only (static inline), as params.h and for the same reason: os_exec_gpu (mllm.cu) and
 *   os_exec (C) are linked in that order, so the CUDA library cannot call into a C file of
 *   os_exec that nothing else pulls in. Every list is sized from M and N up front (one bound
 *   instead of two passes).
 * Units: rows (positions, LLM tokens, token ids). Letters as plan.h. */
#ifndef OS_EXEC_RANKIDX_H
#define OS_EXEC_RANKIDX_H

#include <stddef.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include "exec/plan.h"
#include "base/util.h"
#include "sim/model.h"

/* n entries of `width` uint64 each, starting at blk[off]. */
typedef struct {
    uint64_t off;
    uint32_t n;
} ExecIdxList;

typedef struct {
    uint32_t d, D, E;
    uint64_t in_send_rows[MODEL_MAX_ENC];  /* in[e] send buffer (home side) */
    uint64_t enc_rows[MODEL_MAX_ENC];      /* = in[e] receive rows: positions d encodes */
    uint64_t enc_tok[MODEL_MAX_ENC];       /* projector rows d computes */
    uint64_t emb_send_rows[MODEL_MAX_ENC], emb_recv_rows[MODEL_MAX_ENC];
    uint64_t text_send_rows, text_recv_rows;
    uint64_t llm_rows;                     /* LLM tokens d runs */
    uint32_t enc_longest[MODEL_MAX_ENC], llm_longest;
    ExecIdxList fill[MODEL_MAX_ENC];   /* x4: (send row, positions, example id, item k of ex) */
    ExecIdxList text_fill;             /* x3: (send row, text tokens, example id) */
    ExecIdxList merge[MODEL_MAX_ENC];  /* x3: (encoder row, merged row = token * ratio, real n) */
    ExecIdxList pack[MODEL_MAX_ENC];   /* x3: (projector row, emb send row, tokens) */
    ExecIdxList gather[MODEL_MAX_ENC]; /* x3: (emb receive row, LLM row, tokens) */
    ExecIdxList tgather;               /* x3: (text receive row, LLM row, tokens) */
    ExecIdxList enc_len[MODEL_MAX_ENC];/* x1: encoder positions of each sequence, compute order */
    ExecIdxList llm_len;               /* x1: LLM tokens of each sequence */
    uint64_t *blk;                     /* every list above; owned, reused across steps */
    size_t n_blk, cap_blk;
    int32_t *next_same;                /* [llm_rows] 1 when row r + 1 is in r's sequence */
    size_t cap_ns;
} ExecRankIdx;

static inline const uint64_t *exec_idx(const ExecRankIdx *x, ExecIdxList l) { return x->blk + l.off; }

/* exec_rank_idx_init / _free: a zeroed index / release its blocks.
 * exec_rank_idx_build: rebuild for rank d (reuses the blocks: no allocation once they are
 * large enough). ex_id: [N] example ids (seed the inputs, params.h). */

static inline void exec_rank_idx_init(ExecRankIdx *x) { memset(x, 0, sizeof *x); }

static inline void exec_rank_idx_free(ExecRankIdx *x) {
    free(x->blk);
    free(x->next_same);
    memset(x, 0, sizeof *x);
}

/* Append one entry of w values to list l (the block was sized beforehand). */
static inline void exec_idx_put_(ExecRankIdx *x, ExecIdxList *l, const uint64_t *v, uint32_t w) {
    memcpy(x->blk + x->n_blk, v, w * sizeof *v);
    x->n_blk += w;
    l->n++;
}
static inline void exec_idx_start_(ExecRankIdx *x, ExecIdxList *l) { l->off = x->n_blk, l->n = 0; }

static inline OsStatus exec_rank_idx_build(ExecRankIdx *x, const ExecStepPlan *sp, const ModelSpec *m,
                             const uint64_t *ex_id, uint32_t d) {
    /* every local up front: a goto may not cross an initialisation in C++ (mllm.cu) */
    OsStatus st = OS_OK;
    uint32_t D = sp->D, E = sp->E, M = sp->M, N = sp->N;
    size_t need = (size_t)M * 14 + (size_t)N * 7 + 16, D1 = (size_t)D + 1;
    void *blkv = x->blk, *ns = NULL;
    uint64_t *blk = NULL, T = 0;
    const ExecMove *t0 = &sp->text.st[0];
    if (d >= D || E != m->n_enc)
        OS_FAIL(OS_ERR_INTERNAL, "exec rank index", "rank", NULL, "rank %u of %u, %u encoders vs model %u", d, D, E,
                m->n_enc);
    /* need bounds: per encoder fill 4 + merge 3 + pack 3 + gather 3 + len 1 per item; text
     * fill 3 + tgather 3 + llm_len 1 per example */
    OS_CHECK(os_grow(&blkv, &x->cap_blk, need, sizeof *x->blk));
    x->blk = (uint64_t *)blkv;
    blk = x->blk;
    {
        size_t cb = x->cap_blk, cn = x->cap_ns;
        int32_t *keep = x->next_same;
        memset(x, 0, sizeof *x);
        x->blk = blk, x->cap_blk = cb, x->next_same = keep, x->cap_ns = cn;
    }
    x->d = d, x->D = D, x->E = E;
    for (uint32_t e = 0; e < E; e++) {
        const ExecRoute *in = &sp->in[e], *emb = &sp->emb[e];
        const ExecMove *in0 = &in->st[0], *emb0 = &emb->st[0];
        uint32_t R = m->enc[e].ratio ? m->enc[e].ratio : 1;
        x->in_send_rows[e] = in0->send_off[d * D1 + D];
        x->enc_rows[e] = sp->enc_rows[e][d];
        x->emb_send_rows[e] = emb0->send_off[d * D1 + D];
        x->emb_recv_rows[e] = emb->st[emb->stages - 1].recv_off[d * D1 + D];
        exec_idx_start_(x, &x->fill[e]);
        for (uint32_t k = 0; k < sp->n_units[e]; k++) {
            if (in0->src[k] != d) continue;
            uint32_t j = sp->unit_item[e][k], i = sp->item_ex[j];
            uint64_t v[4] = {in0->send_pos[k], sp->item_pos[j], ex_id[i], (uint64_t)(j - sp->ex_first[i])};
            exec_idx_put_(x, &x->fill[e], v, 4);
        }
        uint64_t row = 0, tok = 0;
        exec_idx_start_(x, &x->merge[e]);
        for (uint64_t q = sp->enc_off[e][d]; q < sp->enc_off[e][d + 1]; q++) {
            uint32_t j = sp->unit_item[e][sp->enc_order[e][q]];
            uint64_t v[3] = {row, tok * R, sp->item_len[j]};
            exec_idx_put_(x, &x->merge[e], v, 3);
            row += sp->item_pos[j], tok += sp->item_tok[j];
            if (sp->item_pos[j] > x->enc_longest[e]) x->enc_longest[e] = (uint32_t)sp->item_pos[j];
        }
        if (row != x->enc_rows[e])
            OS_FAIL(OS_ERR_INTERNAL, "exec rank index", "encoder rows", NULL, "rank %u encoder %u: %llu vs %llu", d,
                    e, (unsigned long long)row, (unsigned long long)x->enc_rows[e]);
        x->enc_tok[e] = tok;
        exec_idx_start_(x, &x->enc_len[e]);
        for (uint64_t q = sp->enc_off[e][d]; q < sp->enc_off[e][d + 1]; q++) {
            uint64_t v = sp->item_pos[sp->unit_item[e][sp->enc_order[e][q]]];
            exec_idx_put_(x, &x->enc_len[e], &v, 1);
        }
        exec_idx_start_(x, &x->pack[e]);
        for (uint64_t q = sp->pack_off[e][d]; q < sp->pack_off[e][d + 1]; q++) {
            const ExecSeg *g = &sp->pack_seg[e][q];
            uint64_t v[3] = {g->from, g->to, g->n};
            exec_idx_put_(x, &x->pack[e], v, 3);
        }
    }
    x->text_send_rows = t0->send_off[d * D1 + D];
    x->text_recv_rows = sp->text.st[sp->text.stages - 1].recv_off[d * D1 + D];
    exec_idx_start_(x, &x->text_fill);
    for (uint32_t i = 0; i < N; i++) {
        if (t0->src[i] != d) continue;
        uint64_t v[3] = {t0->send_pos[i], sp->ex_text[i], ex_id[i]};
        exec_idx_put_(x, &x->text_fill, v, 3);
    }
    for (uint32_t e = 0; e < E; e++) exec_idx_start_(x, &x->gather[e]), x->gather[e].n = 0;
    /* gather lists are interleaved in the plan (per example: items, then text); keep them
     * per source buffer, each in plan order: count first, then place */
    {
        uint64_t cnt[MODEL_MAX_ENC + 1] = {0}, at[MODEL_MAX_ENC + 1];
        for (uint64_t g = sp->gather_off[d]; g < sp->gather_off[d + 1]; g++) cnt[sp->gather_seg[g].buf]++;
        uint64_t o = x->n_blk;
        for (uint32_t b = 0; b <= E; b++) at[b] = o, o += 3 * cnt[b];
        for (uint32_t e = 0; e < E; e++) x->gather[e].off = at[e], x->gather[e].n = (uint32_t)cnt[e];
        x->tgather.off = at[E], x->tgather.n = (uint32_t)cnt[E];
        for (uint64_t g = sp->gather_off[d]; g < sp->gather_off[d + 1]; g++) {
            const ExecSeg *s = &sp->gather_seg[g];
            if (s->buf > E)
                OS_FAIL(OS_ERR_INTERNAL, "exec rank index", "gather", NULL, "segment buffer %u of %u", s->buf, E);
            uint64_t *v = x->blk + at[s->buf];
            v[0] = s->from, v[1] = s->to, v[2] = s->n;
            at[s->buf] += 3;
        }
        x->n_blk = o;
    }
    /* LLM sequences: items' tokens + text, in the plan's LLM order */
    exec_idx_start_(x, &x->llm_len);
    for (uint64_t q = sp->llm_off[d]; q < sp->llm_off[d + 1]; q++) {
        uint32_t i = sp->llm_order[q];
        uint64_t S = sp->ex_text[i];
        for (uint32_t j = sp->ex_first[i]; j != UINT32_MAX && j < M && sp->item_ex[j] == i; j++) S += sp->item_tok[j];
        exec_idx_put_(x, &x->llm_len, &S, 1);
        T += S;
        if (S > x->llm_longest) x->llm_longest = (uint32_t)S;
    }
    if (T != sp->llm_rows[d])
        OS_FAIL(OS_ERR_INTERNAL, "exec rank index", "LLM rows", NULL, "rank %u: %llu vs plan %llu", d,
                (unsigned long long)T, (unsigned long long)sp->llm_rows[d]);
    x->llm_rows = T;
    ns = x->next_same;
    OS_CHECK(os_grow(&ns, &x->cap_ns, (size_t)T + 1, sizeof *x->next_same));
    x->next_same = (int32_t *)ns;
    {
        uint64_t r = 0;
        const uint64_t *len = exec_idx(x, x->llm_len);
        for (uint32_t s = 0; s < x->llm_len.n; s++)
            for (uint64_t p = 0; p < len[s]; p++, r++) x->next_same[r] = p + 1 < len[s];
    }
fail:
    return st;
}

#endif
