/* test_exec_rankidx.c — the per-rank index lists the GPU step executor reads (exec/rankidx.c),
 * driven on the CPU exactly as mllm.cu drives them on the GPU: tagged rows are generated at
 * their home rank from the fill lists, moved with exec_route_apply_cpu (comm.cu's twin), merged,
 * "projected" (one tagged row per LLM token), packed, moved, assembled into LLM rows, and the
 * gradients sent back along the reversed lists and inverse routes. Every LLM sequence must be
 * the example's items in order then its text, every gradient must come home, on random plans,
 * flat and node-wise, with a pad_to encoder (padding encoded, not spliced). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "exec/params.h"
#include "exec/plan.h"
#include "exec/rankidx.h"

/* tag = kind | example id | item k | position or token */
#define TAG(kind, id, k, p) (((uint64_t)(kind) << 56) | ((uint64_t)(id) << 24) | ((uint64_t)(k) << 16) | (uint64_t)(p))
enum { K_IN = 1, K_TOK = 2, K_TEXT = 3 };

static ModelSpec two_enc(void) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    strcpy(m.name, "t");
    m.llm = (StackSpec){.layers = 1, .hidden = 8, .ffn = 16, .heads = 2, .kv_heads = 1, .vocab = 32, .gated_mlp = 1, .causal = 1};
    m.n_enc = 2;
    m.enc[0].stack = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 2, .vocab = 0, .gated_mlp = 0, .causal = 0};
    m.enc[0].ratio = 2;
    m.enc[1].stack = (StackSpec){.layers = 1, .hidden = 6, .ffn = 6, .heads = 3, .kv_heads = 1, .vocab = 0, .gated_mlp = 1, .causal = 0};
    m.enc[1].ratio = 3, m.enc[1].pad_to = 16;
    return m;
}

static uint64_t *zalloc(uint64_t n) {
    uint64_t *p = calloc(n + 1, sizeof *p);
    cr_assert_not_null(p);
    return p;
}

static void check_plan(const ExecStepPlan *sp, const ModelSpec *m, const uint64_t *ex_id) {
    enum { DMAX = 8 };
    uint32_t D = sp->D, E = sp->E;
    ExecRankIdx ix[DMAX];
    uint64_t *in_s[DMAX], *in_r[DMAX], *proj[MODEL_MAX_ENC][DMAX], *es[MODEL_MAX_ENC][DMAX], *er[MODEL_MAX_ENC][DMAX];
    uint64_t *ts[DMAX], *tr[DMAX], *llm[DMAX];
    for (uint32_t d = 0; d < D; d++) {
        exec_rank_idx_init(&ix[d]);
        cr_assert_eq(exec_rank_idx_build(&ix[d], sp, m, ex_id, d), OS_OK, "%s", os_last_error());
    }
    for (uint32_t e = 0; e < E; e++) {
        uint32_t R = m->enc[e].ratio;
        for (uint32_t d = 0; d < D; d++) {
            in_s[d] = zalloc(ix[d].in_send_rows[e]);
            in_r[d] = zalloc(ix[d].enc_rows[e]);
            const uint64_t *f = exec_idx(&ix[d], ix[d].fill[e]);
            for (uint32_t q = 0; q < ix[d].fill[e].n; q++, f += 4)
                for (uint64_t p = 0; p < f[1]; p++) in_s[d][f[0] + p] = TAG(K_IN, f[2], f[3], p);
        }
        ExecRoute *rt = (ExecRoute *)&sp->in[e];
        cr_assert_eq(exec_route_apply_cpu((void *const *)in_r, (const void *const *)in_s, rt, 8), OS_OK);
        /* encoder rows: sequences of enc_len positions 0..n-1 of one item; merge real rows */
        for (uint32_t d = 0; d < D; d++) {
            const uint64_t *len = exec_idx(&ix[d], ix[d].enc_len[e]), *mg = exec_idx(&ix[d], ix[d].merge[e]);
            cr_assert_eq(ix[d].enc_len[e].n, ix[d].merge[e].n);
            proj[e][d] = zalloc(ix[d].enc_tok[e]);
            uint64_t row = 0, tok = 0;
            for (uint32_t q = 0; q < ix[d].enc_len[e].n; q++, mg += 3) {
                cr_assert_eq(mg[0], row, "rank %u enc %u seq %u", d, e, q);
                cr_assert_eq(mg[1], tok * R);
                cr_assert(mg[2] <= len[q] && mg[2] > 0);
                if (m->enc[e].pad_to) cr_assert(len[q] >= m->enc[e].pad_to);
                uint64_t t0 = in_r[d][row];
                for (uint64_t p = 0; p < len[q]; p++) cr_assert_eq(in_r[d][row + p], t0 + p, "rank %u enc %u", d, e);
                for (uint64_t t = 0; t < (mg[2] + R - 1) / R; t++)
                    proj[e][d][tok + t] = TAG(K_TOK, (t0 >> 24) & 0xFFFFFFFFull, (t0 >> 16) & 0xFF, t) | ((uint64_t)e << 52);
                row += len[q], tok += (mg[2] + R - 1) / R;
            }
            cr_assert_eq(row, ix[d].enc_rows[e]);
            cr_assert_eq(tok, ix[d].enc_tok[e]);
            es[e][d] = zalloc(ix[d].emb_send_rows[e]);
            er[e][d] = zalloc(ix[d].emb_recv_rows[e]);
            const uint64_t *pk = exec_idx(&ix[d], ix[d].pack[e]);
            for (uint32_t q = 0; q < ix[d].pack[e].n; q++, pk += 3)
                memcpy(es[e][d] + pk[1], proj[e][d] + pk[0], pk[2] * 8);
        }
        cr_assert_eq(exec_route_apply_cpu((void *const *)er[e], (const void *const *)es[e], &sp->emb[e], 8), OS_OK);
        for (uint32_t d = 0; d < D; d++) free(in_s[d]), free(in_r[d]);
    }
    for (uint32_t d = 0; d < D; d++) {
        ts[d] = zalloc(ix[d].text_send_rows);
        tr[d] = zalloc(ix[d].text_recv_rows);
        const uint64_t *f = exec_idx(&ix[d], ix[d].text_fill);
        for (uint32_t q = 0; q < ix[d].text_fill.n; q++, f += 3)
            for (uint64_t t = 0; t < f[1]; t++) ts[d][f[0] + t] = TAG(K_TEXT, f[2], 0, t);
    }
    cr_assert_eq(exec_route_apply_cpu((void *const *)tr, (const void *const *)ts, &sp->text, 8), OS_OK);
    /* LLM rows: items in order, then text; next-token flags inside each sequence */
    for (uint32_t d = 0; d < D; d++) {
        llm[d] = zalloc(ix[d].llm_rows);
        for (uint32_t e = 0; e < E; e++) {
            const uint64_t *g = exec_idx(&ix[d], ix[d].gather[e]);
            for (uint32_t q = 0; q < ix[d].gather[e].n; q++, g += 3) memcpy(llm[d] + g[1], er[e][d] + g[0], g[2] * 8);
        }
        const uint64_t *g = exec_idx(&ix[d], ix[d].tgather);
        for (uint32_t q = 0; q < ix[d].tgather.n; q++, g += 3) memcpy(llm[d] + g[1], tr[d] + g[0], g[2] * 8);
        uint64_t r = 0;
        const uint64_t *len = exec_idx(&ix[d], ix[d].llm_len);
        for (uint64_t q = sp->llm_off[d], s = 0; q < sp->llm_off[d + 1]; q++, s++) {
            uint32_t i = sp->llm_order[q];
            uint64_t r0 = r;
            for (uint32_t j = sp->ex_first[i]; j != UINT32_MAX && j < sp->M && sp->item_ex[j] == i; j++) {
                uint32_t e = sp->item_enc[j];
                cr_assert_eq(sp->item_tok[j], (sp->item_len[j] + m->enc[e].ratio - 1) / m->enc[e].ratio,
                             "tokens from the real length");
                for (uint64_t t = 0; t < sp->item_tok[j]; t++, r++)
                    cr_assert_eq(llm[d][r], TAG(K_TOK, ex_id[i], j - sp->ex_first[i], t) | ((uint64_t)e << 52),
                                 "rank %u example %u item %u token %llu", d, i, j, (unsigned long long)t);
            }
            for (uint64_t t = 0; t < sp->ex_text[i]; t++, r++)
                cr_assert_eq(llm[d][r], TAG(K_TEXT, ex_id[i], 0, t), "rank %u example %u text %llu", d, i,
                             (unsigned long long)t);
            cr_assert_eq(len[s], r - r0);
            for (uint64_t p = r0; p < r; p++) cr_assert_eq(ix[d].next_same[p], p + 1 < r);
        }
        cr_assert_eq(r, ix[d].llm_rows);
    }
    /* backward: reversed gathers, inverse routes, reversed packs bring every row home */
    for (uint32_t e = 0; e < E; e++) {
        ExecRoute inv;
        for (uint32_t d = 0; d < D; d++) {
            memset(er[e][d], 0, (ix[d].emb_recv_rows[e] + 1) * 8);
            memset(es[e][d], 0, (ix[d].emb_send_rows[e] + 1) * 8);
            const uint64_t *g = exec_idx(&ix[d], ix[d].gather[e]);
            for (uint32_t q = 0; q < ix[d].gather[e].n; q++, g += 3) memcpy(er[e][d] + g[0], llm[d] + g[1], g[2] * 8);
        }
        cr_assert_eq(exec_route_inverse(&inv, &sp->emb[e]), OS_OK);
        cr_assert_eq(exec_route_apply_cpu((void *const *)es[e], (const void *const *)er[e], &inv, 8), OS_OK);
        exec_route_free(&inv);
        for (uint32_t d = 0; d < D; d++) {
            uint64_t *back = zalloc(ix[d].enc_tok[e]);
            const uint64_t *pk = exec_idx(&ix[d], ix[d].pack[e]);
            for (uint32_t q = 0; q < ix[d].pack[e].n; q++, pk += 3) memcpy(back + pk[0], es[e][d] + pk[1], pk[2] * 8);
            cr_assert(!memcmp(back, proj[e][d], ix[d].enc_tok[e] * 8), "rank %u encoder %u: gradients lost", d, e);
            free(back), free(proj[e][d]), free(es[e][d]), free(er[e][d]);
        }
    }
    for (uint32_t d = 0; d < D; d++) free(ts[d]), free(tr[d]), free(llm[d]), exec_rank_idx_free(&ix[d]);
}

Test(exec_rankidx, random_plans_flat_and_nodewise) {
    ModelSpec m = two_enc();
    enum { D = 8, N = 48 };
    uint32_t drawn[N], tok[N], home[N], exr[N], it_ex[4 * N], it_len[4 * N], itr[4 * N];
    uint64_t ex_id[N];
    uint8_t it_ph[4 * N];
    uint64_t x = 777;
#define RND() (x = x * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(x >> 33))
    for (int trial = 0; trial < 12; trial++) {
        uint32_t M = 0;
        for (uint32_t i = 0; i < N; i++) {
            drawn[i] = i / (N / D);
            ex_id[i] = 1000 + 37 * i + trial;
            uint32_t nit = RND() % 4, t = 1 + RND() % 20;
            for (uint32_t k = 0; k < nit; k++) {
                it_ex[M] = i, it_ph[M] = (uint8_t)(RND() % 2), it_len[M] = 1 + RND() % 40;
                t += exec_item_tokens(&m.enc[it_ph[M]], it_len[M]);
                itr[M] = RND() % D;
                M++;
            }
            tok[i] = t;
            home[i] = trial % 2 ? drawn[i] : RND() % D;
            exr[i] = RND() % D;
        }
        StepWork w = {.D = D, .P = 3, .N = N, .M = M, .dp_per_node = 4, .drawn = drawn,
                      .ex_tokens = tok, .it_example = it_ex, .it_phase = it_ph, .it_len = it_len};
        Plan p = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = trial % 3 == 0};
        ExecStepPlan sp;
        cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_OK, "%s", os_last_error());
        check_plan(&sp, &m, ex_id);
        exec_step_plan_free(&sp);
    }
}

/* pad_to: the encoder runs 16 positions for a 4-position item; 2 LLM tokens (ratio 3). */
Test(exec_rankidx, pad_to_encodes_padding_splices_real_tokens) {
    ModelSpec m = two_enc();
    cr_assert_eq(exec_item_positions(&m.enc[1], 4), 16);
    cr_assert_eq(exec_item_tokens(&m.enc[1], 4), 2);
    cr_assert_eq(exec_item_tokens(&m.enc[1], 17), 6);
    cr_assert_eq(exec_item_positions(&m.enc[1], 17), 17);
    static const uint32_t drawn[] = {0, 1}, tok[] = {5, 3}, it_ex[] = {0}, it_len[] = {4}, home[] = {0, 1};
    static const uint32_t exr[] = {1, 0}, itr[] = {1};
    static const uint8_t it_ph[] = {1};
    static const uint64_t ex_id[] = {5, 6};
    StepWork w = {.D = 2, .P = 3, .N = 2, .M = 1, .dp_per_node = 2, .drawn = drawn, .ex_tokens = tok,
                  .it_example = it_ex, .it_phase = it_ph, .it_len = it_len};
    Plan p = {.home = (uint32_t *)home, .ex_rank = (uint32_t *)exr, .it_rank = (uint32_t *)itr, .hierarchical = 0};
    ExecStepPlan sp;
    ExecRankIdx ix;
    exec_rank_idx_init(&ix);
    cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_rank_idx_build(&ix, &sp, &m, ex_id, 1), OS_OK);
    cr_assert_eq(ix.enc_rows[1], 16);           /* rank 1 encodes the padded item */
    cr_assert_eq(ix.enc_tok[1], 2);             /* and projects 2 tokens */
    cr_assert_eq(exec_idx(&ix, ix.merge[1])[2], 4); /* from its 4 real positions */
    cr_assert_eq(ix.llm_rows, 5);               /* it runs example 0: 2 item tokens + 3 text */
    cr_assert_eq(ix.emb_send_rows[1], 2);       /* its tokens go to itself */
    cr_assert_eq(exec_rank_idx_build(&ix, &sp, &m, ex_id, 0), OS_OK);
    cr_assert_eq(ix.llm_rows, 3);               /* example 1: text only */
    cr_assert_eq(ix.fill[1].n, 1);              /* rank 0 is the item's home */
    cr_assert_eq(exec_idx(&ix, ix.fill[1])[1], 16);
    check_plan(&sp, &m, ex_id);
    exec_rank_idx_free(&ix);
    exec_step_plan_free(&sp);
}
