/* memplan.c — see memplan.h. Every layout is a sequence of TAKE(n bytes) steps; the block's
 * size is where the last one ends, so a carver that follows the same offsets can never run
 * past it. */
#include "exec/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "exec/flash.h"
#include "base/util.h"

#define AL exec_mem_al

void exec_mem_model(ExecMemModel *mm, const ModelSpec *m, uint32_t D, ExecAttnImpl impl) {
    memset(mm, 0, sizeof *mm);
    mm->E = m->n_enc, mm->n_mod = exec_n_modules(m), mm->D = D ? D : 1;
    mm->Hl = m->llm.hidden, mm->V = m->llm.vocab;
    for (uint32_t k = 0; k < mm->n_mod; k++) {
        mm->off[k] = mm->total;
        if (k <= mm->E) {
            exec_stack_layout(&mm->L[k], k < mm->E ? &m->enc[k].stack : &m->llm);
            mm->total += mm->L[k].total;
            mm->fused[k] = impl == EXEC_ATTN_FUSED && exec_flash_supported((int)mm->L[k].hd);
        } else {
            const EncoderSpec *e = &m->enc[k - mm->E - 1];
            exec_proj_layout(&mm->PL[k - mm->E - 1], e->stack.hidden, m->llm.hidden, e->ratio);
            mm->total += mm->PL[k - mm->E - 1].total;
        }
        mm->total = (mm->total + 127) / 128 * 128; /* GEMM operands want 16-byte alignment */
    }
    mm->total = (mm->total + mm->D - 1) / mm->D * mm->D;
}

void exec_acts_layout(ExecActsLayout *a, const ExecStackLayout *L, uint64_t T, int fused) {
    const size_t t = T, H = L->H, nl = L->layers;
    size_t b = 0;
#define TAKE(field, bytes) (a->field = b, b += AL(bytes))
    TAKE(x, (nl + 1) * t * H * 2);
    TAKE(n1, nl * t * H * 2);
    TAKE(att, nl * t * (size_t)L->nh * L->hd * 2);
    TAKE(xm, nl * t * H * 2);
    TAKE(n2, nl * t * H * 2);
    TAKE(qkv, nl * t * L->qkv_rows * 2);
    TAKE(u, nl * t * L->up_rows * 2);
    TAKE(h, nl * t * L->F * 2);
    TAKE(r1, nl * t * 4);
    TAKE(r2, nl * t * 4);
    TAKE(out, t * H * 2);
    TAKE(rf, t * 4);
    TAKE(lse, fused ? nl * (size_t)L->nh * t * 4 : 0);
#undef TAKE
    a->total = b;
}

void exec_scratch_layout(ExecScratchLayout *s, const ExecMemModel *mm, uint64_t rows, uint32_t longest) {
    size_t H = 1, F = 1, qkv = 1, up = 1, att = 1, nh = 1;
    int any_fused = 0, any_twin = 0;
    const size_t t = rows > 0 ? rows : 1, n = longest > 0 ? longest : 1, nn = n * n;
    for (uint32_t k = 0; k <= mm->E; k++) {
        const ExecStackLayout *L = &mm->L[k];
        H = OS_MAX(H, (size_t)L->H), F = OS_MAX(F, (size_t)L->F), qkv = OS_MAX(qkv, (size_t)L->qkv_rows);
        up = OS_MAX(up, (size_t)L->up_rows), att = OS_MAX(att, (size_t)L->nh * L->hd), nh = OS_MAX(nh, (size_t)L->nh);
        if (mm->fused[k]) any_fused = 1;
        else any_twin = 1;
    }
    size_t b = 0;
    memset(s, 0, sizeof *s);
#define TAKE(field, bytes) (s->field = b, b += AL(bytes))
    TAKE(dx, t * H * 2);
    TAKE(dxm, t * H * 2);
    TAKE(dn, t * H * 2);
    TAKE(dh, t * F * 2);
    TAKE(du, t * up * 2);
    TAKE(datt, t * att * 2);
    TAKE(dqkv, t * qkv * 2);
    /* the cuBLAS twin's n x n scores: only when some stack runs it */
    TAKE(S, any_twin ? nn * 4 : 0);
    TAKE(dP, any_twin ? nn * 4 : 0);
    TAKE(P, any_twin ? nn * 2 : 0);
    TAKE(dS, any_twin ? nn * 2 : 0);
    s->max_tiles = exec_flash_max_tiles(t);
    TAKE(dq, any_fused ? t * att * 4 : 0);
    TAKE(dvec, any_fused ? t * nh * 4 : 0);
    TAKE(tiles, any_fused ? 2 * s->max_tiles * sizeof(ExecFlashTile) : 0);
#undef TAKE
    s->total = b;
}

void exec_rank_layout(ExecRankLayout *r, const ExecMemModel *mm, const ExecRankIdx *ix) {
    const size_t Hl = mm->Hl, V = mm->V, T = ix->llm_rows;
    size_t b = 0;
    memset(r, 0, sizeof *r);
    /* +1: a zero-row array still gets its own aligned slot (a valid, distinct pointer) */
#define TAKE(field, bytes) (r->field = b, b += AL((size_t)(bytes) + 1))
    for (uint32_t e = 0; e < mm->E; e++) {
        const size_t He = mm->L[e].H, R = mm->PL[e].r, tok = ix->enc_tok[e];
        TAKE(in_send[e], ix->in_send_rows[e] * He * 2);
        TAKE(merged[e], tok * R * He * 2);
        TAKE(z1[e], tok * Hl * 2);
        TAKE(g1[e], tok * Hl * 2);
        TAKE(proj[e], tok * Hl * 2);
        TAKE(emb_send[e], ix->emb_send_rows[e] * Hl * 2);
        TAKE(emb_recv[e], ix->emb_recv_rows[e] * Hl * 2);
        TAKE(dg1[e], tok * Hl * 2);
        TAKE(dmerged[e], tok * R * He * 2);
        TAKE(denc[e], ix->enc_rows[e] * He * 2);
        exec_acts_layout(&r->enc_acts[e], &mm->L[e], ix->enc_rows[e], mm->fused[e]);
        r->enc[e] = b;
        b += AL(r->enc_acts[e].total);
    }
    TAKE(text_send, ix->text_send_rows * 4);
    TAKE(text_recv, ix->text_recv_rows * 4);
    TAKE(ids, (T + 1) * 4);
    TAKE(labels, T * 4);
    TAKE(next_same, T * 4);
    TAKE(logits, T * V * 4);
    TAKE(loss, T * 4);
    TAKE(dlogits, T * V * 2);
    TAKE(dout, T * Hl * 2);
#undef TAKE
    exec_acts_layout(&r->llm_acts, &mm->L[mm->E], T, mm->fused[mm->E]);
    r->llm = b;
    b += AL(r->llm_acts.total);
    r->total = b;
}

void exec_route_relay_bytes(const ExecRoute *r, uint32_t d, size_t rb, size_t *mid, size_t *out) {
    *mid = *out = 0;
    if (r->stages < 2) return;
    const size_t D1 = (size_t)r->st[0].D + 1, D = r->st[0].D;
    *mid = r->st[0].recv_off[d * D1 + D] * rb + 1;
    *out = r->st[1].send_off[d * D1 + D] * rb + 1;
}

OsStatus exec_mem_track_init(ExecMemTrack *t, const ModelSpec *m, uint32_t D, int local, uint32_t rank,
                             ExecAttnImpl impl) {
    OsStatus st = OS_OK;
    memset(t, 0, sizeof *t);
    if (D == 0) OS_FAIL(OS_ERR_ARG, "memory plan", "ranks", NULL, "D = 0");
    exec_mem_model(&t->mm, m, D, impl);
    t->local = local || D == 1, t->rank = rank, t->n_local = t->local ? D : 1;
    ALLOC_CHECK(t->act = calloc(t->n_local, sizeof *t->act));
    ALLOC_CHECK(t->idx = calloc(t->n_local, sizeof *t->idx));
    ALLOC_CHECK(t->mid = calloc(t->n_local, sizeof *t->mid));
    ALLOC_CHECK(t->out = calloc(t->n_local, sizeof *t->out));
    exec_rank_idx_init(&t->ix);
    return OS_OK;
fail:
    exec_mem_track_free(t);
    return st;
}

/* Relays: every route a step moves (mllm.cu reserves them all in prepare). */
static OsStatus relays(ExecMemTrack *t, const ModelSpec *m, const ExecStepPlan *sp, uint32_t k, uint32_t d) {
    OsStatus st = OS_OK;
    size_t mid, out;
    const size_t hl = (size_t)m->llm.hidden * 2;
#define ROUTE(r, rb)                                                \
    do {                                                            \
        exec_route_relay_bytes((r), d, (rb), &mid, &out);           \
        t->mid[k] = OS_MAX(t->mid[k], mid);                         \
        t->out[k] = OS_MAX(t->out[k], out);                         \
    } while (0)
    for (uint32_t e = 0; e < sp->E; e++) {
        ROUTE(&sp->in[e], (size_t)m->enc[e].stack.hidden * 2);
        ROUTE(&sp->emb[e], hl);
        OS_CHECK(exec_route_inverse(&t->inv, &sp->emb[e]));
        ROUTE(&t->inv, hl);
        exec_route_free(&t->inv);
    }
    ROUTE(&sp->text, sizeof(int32_t));
#undef ROUTE
fail:
    return st;
}

OsStatus exec_mem_track_step(ExecMemTrack *t, const ModelSpec *m, const ExecStepPlan *sp, const uint64_t *ex_id) {
    OsStatus st = OS_OK;
    uint64_t rows = 1;
    uint32_t longest = 1;
    for (uint32_t k = 0; k < t->n_local; k++) {
        const uint32_t d = t->local ? k : t->rank;
        ExecRankLayout rl;
        OS_CHECK(exec_rank_idx_build(&t->ix, sp, m, ex_id, d));
        for (uint32_t e = 0; e < t->mm.E; e++) {
            rows = OS_MAX(rows, t->ix.enc_rows[e]);
            longest = OS_MAX(longest, t->ix.enc_longest[e]);
        }
        rows = OS_MAX(rows, t->ix.llm_rows);
        longest = OS_MAX(longest, t->ix.llm_longest);
        exec_rank_layout(&rl, &t->mm, &t->ix);
        t->act[k] = OS_MAX(t->act[k], rl.total);
        t->idx[k] = OS_MAX(t->idx[k], exec_rank_idx_bytes(&t->ix));
        OS_CHECK(relays(t, m, sp, k, d));
    }
    {
        ExecScratchLayout sl;
        exec_scratch_layout(&sl, &t->mm, rows, longest);
        t->scratch = OS_MAX(t->scratch, sl.total);
    }
fail:
    return st;
}

void exec_mem_track_count(const ExecMemTrack *t, ExecMemCount *out) {
    memset(out, 0, sizeof *out);
    out->weights = (double)t->mm.total * 2;
    out->grads = (double)t->mm.total * 4;
    for (uint32_t k = 0; k < t->n_local; k++) {
        out->activations += (double)t->act[k];
        out->index += (double)t->idx[k];
        out->relay += (double)t->mid[k] + (double)t->out[k];
    }
    out->scratch = (double)t->scratch;
    out->total = out->weights + out->grads + out->activations + out->index + out->scratch + out->relay;
}

void exec_mem_track_free(ExecMemTrack *t) {
    free(t->act), free(t->idx), free(t->mid), free(t->out);
    exec_rank_idx_free(&t->ix);
    exec_route_free(&t->inv);
    memset(t, 0, sizeof *t);
}
