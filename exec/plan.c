/* plan.c — see plan.h. Host-side bookkeeping, O(U log U) per route (one sort). */
#include "exec/plan.h"

#include <stdlib.h>
#include <string.h>

#include "exec/params.h"
#include "base/util.h"

/* ---- one all-to-allv ------------------------------------------------------------------- */

void exec_move_free(ExecMove *m) {
    free(m->src), free(m->dst), free(m->size), free(m->vol), free(m->units);
    free(m->send_off), free(m->recv_off), free(m->send_pos), free(m->recv_pos);
    memset(m, 0, sizeof *m);
}

OsStatus exec_move_build(ExecMove *m, uint32_t D, uint32_t U, const uint32_t *src,
                         const uint32_t *dst, const uint64_t *size) {
    OsStatus st = OS_OK;
    uint64_t *cur = NULL;
    memset(m, 0, sizeof *m);
    m->D = D, m->U = U;
    size_t DD = (size_t)D * D, D1 = (size_t)D * (D + 1);
    ALLOC_CHECK(m->src = malloc(((size_t)U + 1) * sizeof *m->src));
    ALLOC_CHECK(m->dst = malloc(((size_t)U + 1) * sizeof *m->dst));
    ALLOC_CHECK(m->size = malloc(((size_t)U + 1) * sizeof *m->size));
    ALLOC_CHECK(m->vol = calloc(DD, sizeof *m->vol));
    ALLOC_CHECK(m->units = calloc(DD, sizeof *m->units));
    ALLOC_CHECK(m->send_off = calloc(D1, sizeof *m->send_off));
    ALLOC_CHECK(m->recv_off = calloc(D1, sizeof *m->recv_off));
    ALLOC_CHECK(m->send_pos = malloc(((size_t)U + 1) * sizeof *m->send_pos));
    ALLOC_CHECK(m->recv_pos = malloc(((size_t)U + 1) * sizeof *m->recv_pos));
    ALLOC_CHECK(cur = malloc(2 * DD * sizeof *cur));
    for (uint32_t u = 0; u < U; u++) {
        if (src[u] >= D || dst[u] >= D)
            OS_FAIL(OS_ERR_INTERNAL, "exec plan", "route", "a policy assigned a rank outside [0, D)",
                    "unit %u moves %u -> %u with D = %u", u, src[u], dst[u], D);
        m->src[u] = src[u], m->dst[u] = dst[u], m->size[u] = size[u];
        m->vol[(size_t)src[u] * D + dst[u]] += size[u];
        m->units[(size_t)src[u] * D + dst[u]]++;
    }
    for (uint32_t s = 0; s < D; s++)
        for (uint32_t d = 0; d < D; d++) {
            m->send_off[(size_t)s * (D + 1) + d + 1] = m->send_off[(size_t)s * (D + 1) + d] + m->vol[(size_t)s * D + d];
            m->recv_off[(size_t)d * (D + 1) + s + 1] = m->recv_off[(size_t)d * (D + 1) + s] + m->vol[(size_t)s * D + d];
        }
    /* units in increasing index inside each (sender, receiver) block, on both sides */
    for (uint32_t s = 0; s < D; s++)
        for (uint32_t d = 0; d < D; d++) {
            cur[(size_t)s * D + d] = m->send_off[(size_t)s * (D + 1) + d];
            cur[DD + (size_t)s * D + d] = m->recv_off[(size_t)d * (D + 1) + s];
        }
    for (uint32_t u = 0; u < U; u++) {
        size_t k = (size_t)src[u] * D + dst[u];
        m->send_pos[u] = cur[k];
        m->recv_pos[u] = cur[DD + k];
        cur[k] += size[u];
        cur[DD + k] += size[u];
    }
    free(cur);
    return OS_OK;
fail:
    free(cur);
    exec_move_free(m);
    return st;
}

void exec_route_free(ExecRoute *r) {
    for (uint32_t k = 0; k < 2; k++) exec_move_free(&r->st[k]);
    r->stages = 0;
}

OsStatus exec_route_build(ExecRoute *r, uint32_t D, uint32_t dp_per_node, int hier, uint32_t U,
                          const uint32_t *src, const uint32_t *dst, const uint64_t *size) {
    OsStatus st = OS_OK;
    uint32_t *relay = NULL;
    memset(r, 0, sizeof *r);
    if (!hier || dp_per_node == 0 || dp_per_node >= D) {
        r->stages = 1;
        return exec_move_build(&r->st[0], D, U, src, dst, size);
    }
    r->stages = 2;
    ALLOC_CHECK(relay = malloc(((size_t)U + 1) * sizeof *relay));
    for (uint32_t u = 0; u < U; u++) {
        /* the rank of the source's node on the destination's rail (same local index); a
         * partial last node may lack it, then the source sends over the NIC itself */
        uint32_t rl = (src[u] / dp_per_node) * dp_per_node + dst[u] % dp_per_node;
        relay[u] = (dst[u] < D && rl < D) ? rl : src[u];
    }
    OS_CHECK(exec_move_build(&r->st[0], D, U, src, relay, size));
    OS_CHECK(exec_move_build(&r->st[1], D, U, relay, dst, size));
    free(relay);
    return OS_OK;
fail:
    free(relay);
    exec_route_free(r);
    return st;
}

OsStatus exec_route_inverse(ExecRoute *inv, const ExecRoute *r) {
    OsStatus st = OS_OK;
    memset(inv, 0, sizeof *inv);
    inv->stages = r->stages;
    for (uint32_t k = 0; k < r->stages; k++) {
        const ExecMove *f = &r->st[r->stages - 1 - k];
        OS_CHECK(exec_move_build(&inv->st[k], f->D, f->U, f->dst, f->src, f->size));
    }
    return OS_OK;
fail:
    exec_route_free(inv);
    return st;
}

/* Block copies per (sender, receiver), as NCCL's grouped send/recv moves them. */
static void move_apply_cpu(void *const *recv, const void *const *send, const ExecMove *m,
                           size_t rb) {
    uint32_t D = m->D;
    for (uint32_t s = 0; s < D; s++)
        for (uint32_t d = 0; d < D; d++) {
            uint64_t n = m->vol[(size_t)s * D + d];
            if (!n) continue;
            memcpy((char *)recv[d] + m->recv_off[(size_t)d * (D + 1) + s] * rb,
                   (const char *)send[s] + m->send_off[(size_t)s * (D + 1) + d] * rb, n * rb);
        }
}

OsStatus exec_route_apply_cpu(void *const *recv, const void *const *send, const ExecRoute *r,
                              size_t rb) {
    OsStatus st = OS_OK;
    if (r->stages == 1) {
        move_apply_cpu(recv, send, &r->st[0], rb);
        return OS_OK;
    }
    const ExecMove *a = &r->st[0], *b = &r->st[1];
    uint32_t D = a->D;
    void **mid = NULL, **out = NULL;
    ALLOC_CHECK(mid = calloc(D, sizeof *mid));
    ALLOC_CHECK(out = calloc(D, sizeof *out));
    for (uint32_t d = 0; d < D; d++) {
        ALLOC_CHECK(mid[d] = malloc(a->recv_off[(size_t)d * (D + 1) + D] * rb + 1));
        ALLOC_CHECK(out[d] = malloc(b->send_off[(size_t)d * (D + 1) + D] * rb + 1));
    }
    move_apply_cpu(mid, send, a, rb);
    for (uint32_t u = 0; u < a->U; u++) /* the relay's copy from stage-0 to stage-1 layout */
        memcpy((char *)out[a->dst[u]] + b->send_pos[u] * rb, (char *)mid[a->dst[u]] + a->recv_pos[u] * rb,
               a->size[u] * rb);
    move_apply_cpu(recv, (const void *const *)out, b, rb);
fail:
    for (uint32_t d = 0; mid && d < D; d++) free(mid[d]);
    for (uint32_t d = 0; out && d < D; d++) free(out[d]);
    free(mid), free(out);
    return st;
}

/* ---- the step plan --------------------------------------------------------------------- */

typedef struct {
    uint32_t rank;
    uint64_t pos;
    uint32_t u;
} OrderKey;

static int key_cmp(const void *a, const void *b) {
    const OrderKey *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->u < y->u ? -1 : x->u > y->u;
}

void exec_step_plan_free(ExecStepPlan *sp) {
    for (uint32_t e = 0; e < MODEL_MAX_ENC; e++) {
        free(sp->unit_item[e]), free(sp->enc_order[e]), free(sp->enc_off[e]);
        free(sp->enc_rows[e]), free(sp->pack_seg[e]), free(sp->pack_off[e]);
        exec_route_free(&sp->in[e]);
        exec_route_free(&sp->emb[e]);
    }
    exec_route_free(&sp->text);
    free(sp->item_unit), free(sp->item_ex), free(sp->item_enc), free(sp->ex_first);
    free(sp->item_pos), free(sp->item_tok), free(sp->item_len), free(sp->ex_text);
    free(sp->llm_order), free(sp->llm_off), free(sp->llm_rows);
    free(sp->gather_seg), free(sp->gather_off);
    memset(sp, 0, sizeof *sp);
}

OsStatus exec_step_plan_build(ExecStepPlan *sp, const Plan *p, const StepWork *w,
                              const ModelSpec *m) {
    OsStatus st = OS_OK;
    uint32_t D = w->D, N = w->N, M = w->M, E = m->n_enc;
    uint32_t *src = NULL, *dst = NULL, *ex_first = NULL; /* ex_first: owned by sp once built */
    uint64_t *size = NULL, *cur = NULL;
    OrderKey *keys = NULL;
    memset(sp, 0, sizeof *sp);
    sp->D = D, sp->E = E, sp->N = N, sp->M = M, sp->hierarchical = p->hierarchical;
    if (w->P != E + 1)
        OS_FAIL(OS_ERR_ARG, m->name, "encoders", "use the model the trace was replayed with",
                "the step has %u phases but the model %u encoders + the LLM", w->P, E);
    size_t big = (size_t)(M > N ? M : N) + 1;
    ALLOC_CHECK(src = malloc(big * sizeof *src));
    ALLOC_CHECK(dst = malloc(big * sizeof *dst));
    ALLOC_CHECK(size = malloc(big * sizeof *size));
    ALLOC_CHECK(keys = malloc(big * sizeof *keys));
    ALLOC_CHECK(ex_first = sp->ex_first = calloc((size_t)N + 1, sizeof *ex_first));
    ALLOC_CHECK(sp->item_ex = malloc(((size_t)M + 1) * sizeof *sp->item_ex));
    ALLOC_CHECK(sp->item_enc = malloc(((size_t)M + 1) * sizeof *sp->item_enc));
    ALLOC_CHECK(sp->item_unit = malloc(((size_t)M + 1) * sizeof *sp->item_unit));
    ALLOC_CHECK(sp->item_pos = malloc(((size_t)M + 1) * sizeof *sp->item_pos));
    ALLOC_CHECK(sp->item_tok = malloc(((size_t)M + 1) * sizeof *sp->item_tok));
    ALLOC_CHECK(sp->item_len = malloc(((size_t)M + 1) * sizeof *sp->item_len));
    ALLOC_CHECK(sp->ex_text = malloc(((size_t)N + 1) * sizeof *sp->ex_text));
    for (uint32_t i = 0; i < N; i++) {
        if (p->home[i] >= D || p->ex_rank[i] >= D)
            OS_FAIL(OS_ERR_INTERNAL, "exec plan", "example", "a policy assigned a rank outside [0, D)",
                    "example %u: home %u, LLM rank %u, D = %u", i, p->home[i], p->ex_rank[i], D);
        sp->ex_text[i] = w->ex_tokens[i];
        ex_first[i] = UINT32_MAX;
    }
    /* items: phase, sizes, contiguity per example, text = S - item tokens */
    for (uint32_t j = 0; j < M; j++) {
        uint32_t e = w->it_phase[j], i = w->it_example[j];
        if (e >= E || i >= N || p->it_rank[j] >= D)
            OS_FAIL(OS_ERR_INTERNAL, "exec plan", "item", NULL,
                    "item %u: encoder %u of %u, example %u of %u, rank %u of %u", j, e, E, i, N,
                    p->it_rank[j], D);
        if (j > 0 && w->it_example[j - 1] > i)
            OS_FAIL(OS_ERR_INTERNAL, "exec plan", "item", "items must be grouped by example in order",
                    "item %u belongs to example %u after an item of example %u", j, i, w->it_example[j - 1]);
        if (ex_first[i] == UINT32_MAX) ex_first[i] = j;
        sp->item_ex[j] = i, sp->item_enc[j] = e;
        sp->item_pos[j] = exec_item_positions(&m->enc[e], w->it_len[j]);
        sp->item_tok[j] = exec_item_tokens(&m->enc[e], w->it_len[j]);
        sp->item_len[j] = w->it_len[j];
        if (sp->ex_text[i] < sp->item_tok[j])
            OS_FAIL(OS_ERR_ARG, "exec plan", "ex_tokens", "ex_tokens must count text + projected items",
                    "example %u: %u LLM tokens cannot hold its items", i, w->ex_tokens[i]);
        sp->ex_text[i] -= (uint32_t)sp->item_tok[j];
        sp->item_unit[j] = sp->n_units[e]++;
    }
    for (uint32_t e = 0; e < E; e++) {
        uint32_t U = sp->n_units[e];
        ALLOC_CHECK(sp->unit_item[e] = malloc(((size_t)U + 1) * sizeof(uint32_t)));
        for (uint32_t j = 0; j < M; j++)
            if (w->it_phase[j] == e) sp->unit_item[e][sp->item_unit[j]] = j;
        for (uint32_t k = 0; k < U; k++) {
            uint32_t j = sp->unit_item[e][k];
            src[k] = p->home[w->it_example[j]], dst[k] = p->it_rank[j], size[k] = sp->item_pos[j];
        }
        OS_CHECK(exec_route_build(&sp->in[e], D, w->dp_per_node, p->hierarchical, U, src, dst, size));
        for (uint32_t k = 0; k < U; k++) {
            uint32_t j = sp->unit_item[e][k];
            src[k] = p->it_rank[j], dst[k] = p->ex_rank[w->it_example[j]], size[k] = sp->item_tok[j];
        }
        OS_CHECK(exec_route_build(&sp->emb[e], D, w->dp_per_node, p->hierarchical, U, src, dst, size));
        /* compute order = final receive order of the inputs */
        ALLOC_CHECK(sp->enc_order[e] = malloc(((size_t)U + 1) * sizeof(uint32_t)));
        ALLOC_CHECK(sp->enc_off[e] = calloc((size_t)D + 1, sizeof(uint64_t)));
        ALLOC_CHECK(sp->enc_rows[e] = calloc((size_t)D + 1, sizeof(uint64_t)));
        for (uint32_t k = 0; k < U; k++) {
            keys[k] = (OrderKey){p->it_rank[sp->unit_item[e][k]], exec_route_recv_pos(&sp->in[e], k), k};
            sp->enc_off[e][keys[k].rank + 1]++;
            sp->enc_rows[e][keys[k].rank] += sp->item_pos[sp->unit_item[e][k]];
        }
        qsort(keys, U, sizeof *keys, key_cmp);
        for (uint32_t d = 0; d < D; d++) sp->enc_off[e][d + 1] += sp->enc_off[e][d];
        for (uint32_t k = 0; k < U; k++) sp->enc_order[e][k] = keys[k].u;
        /* pack: projector rows in compute order -> emb send layout */
        ALLOC_CHECK(sp->pack_seg[e] = malloc(((size_t)U + 1) * sizeof(ExecSeg)));
        ALLOC_CHECK(sp->pack_off[e] = calloc((size_t)D + 1, sizeof(uint64_t)));
        for (uint32_t d = 0; d < D; d++) {
            uint64_t row = 0;
            for (uint64_t q = sp->enc_off[e][d]; q < sp->enc_off[e][d + 1]; q++) {
                uint32_t k = sp->enc_order[e][q], j = sp->unit_item[e][k];
                sp->pack_seg[e][q] = (ExecSeg){0, row, exec_route_send_pos(&sp->emb[e], k), sp->item_tok[j]};
                row += sp->item_tok[j];
            }
            sp->pack_off[e][d + 1] = sp->enc_off[e][d + 1];
        }
    }
    /* text ids and the LLM order (increasing example index per rank) */
    for (uint32_t i = 0; i < N; i++) src[i] = p->home[i], dst[i] = p->ex_rank[i], size[i] = sp->ex_text[i];
    OS_CHECK(exec_route_build(&sp->text, D, w->dp_per_node, p->hierarchical, N, src, dst, size));
    ALLOC_CHECK(sp->llm_order = malloc(((size_t)N + 1) * sizeof(uint32_t)));
    ALLOC_CHECK(sp->llm_off = calloc((size_t)D + 1, sizeof(uint64_t)));
    ALLOC_CHECK(sp->llm_rows = calloc((size_t)D + 1, sizeof(uint64_t)));
    ALLOC_CHECK(sp->gather_seg = malloc(((size_t)M + N + 1) * sizeof(ExecSeg)));
    ALLOC_CHECK(sp->gather_off = calloc((size_t)D + 1, sizeof(uint64_t)));
    for (uint32_t i = 0; i < N; i++) {
        sp->llm_off[p->ex_rank[i] + 1]++;
        sp->llm_rows[p->ex_rank[i]] += w->ex_tokens[i];
    }
    for (uint32_t d = 0; d < D; d++) sp->llm_off[d + 1] += sp->llm_off[d];
    ALLOC_CHECK(cur = malloc(((size_t)D + 1) * sizeof *cur));
    for (uint32_t d = 0; d < D; d++) cur[d] = sp->llm_off[d];
    for (uint32_t i = 0; i < N; i++) sp->llm_order[cur[p->ex_rank[i]]++] = i;
    uint64_t g = 0;
    for (uint32_t d = 0; d < D; d++) {
        uint64_t row = 0;
        for (uint64_t q = sp->llm_off[d]; q < sp->llm_off[d + 1]; q++) {
            uint32_t i = sp->llm_order[q];
            for (uint32_t j = ex_first[i]; j != UINT32_MAX && j < M && w->it_example[j] == i; j++) {
                uint32_t e = w->it_phase[j];
                sp->gather_seg[g++] = (ExecSeg){e, exec_route_recv_pos(&sp->emb[e], sp->item_unit[j]), row, sp->item_tok[j]};
                row += sp->item_tok[j];
            }
            sp->gather_seg[g++] = (ExecSeg){E, exec_route_recv_pos(&sp->text, i), row, sp->ex_text[i]};
            row += sp->ex_text[i];
        }
        sp->gather_off[d + 1] = g;
    }
fail:
    free(src), free(dst), free(size), free(keys), free(cur);
    if (st != OS_OK) exec_step_plan_free(sp);
    return st;
}
