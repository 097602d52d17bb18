/* test_exec_plan.c — the GPU backend's data-movement plans (exec/plan.c): count matrices and
 * buffer layouts of hand-made moves, the node-wise two-stage route, a hand-made step under
 * `none` and a post-balancing plan, inverse routes, and the CPU verifier on random plans. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "exec/plan.h"

static uint64_t V(const ExecMove *m, uint32_t s, uint32_t d) { return m->vol[(size_t)s * m->D + d]; }
static uint64_t SO(const ExecMove *m, uint32_t s, uint32_t d) { return m->send_off[(size_t)s * (m->D + 1) + d]; }
static uint64_t RO(const ExecMove *m, uint32_t d, uint32_t s) { return m->recv_off[(size_t)d * (m->D + 1) + s]; }

Test(exec_plan, move_counts_and_layout_by_hand) {
    /* u0 0->1 (2 rows), u1 0->1 (3), u2 1->0 (1), u3 2->2 (4), u4 0->2 (5) */
    const uint32_t src[] = {0, 0, 1, 2, 0}, dst[] = {1, 1, 0, 2, 2};
    const uint64_t size[] = {2, 3, 1, 4, 5};
    ExecMove m;
    cr_assert_eq(exec_move_build(&m, 3, 5, src, dst, size), OS_OK);
    cr_assert_eq(V(&m, 0, 1), 5);
    cr_assert_eq(V(&m, 0, 2), 5);
    cr_assert_eq(V(&m, 1, 0), 1);
    cr_assert_eq(V(&m, 2, 2), 4);
    cr_assert_eq(V(&m, 0, 0) + V(&m, 1, 1) + V(&m, 1, 2) + V(&m, 2, 0) + V(&m, 2, 1), 0);
    cr_assert_eq(m.units[0 * 3 + 1], 2);
    /* rank 0 sends [peer1: u0 u1][peer2: u4] */
    cr_assert_eq(SO(&m, 0, 1), 0);
    cr_assert_eq(SO(&m, 0, 2), 5);
    cr_assert_eq(SO(&m, 0, 3), 10);
    cr_assert_eq(m.send_pos[0], 0);
    cr_assert_eq(m.send_pos[1], 2);
    cr_assert_eq(m.send_pos[4], 5);
    /* rank 2 receives [from0: u4][from2: u3] */
    cr_assert_eq(RO(&m, 2, 2), 5);
    cr_assert_eq(m.recv_pos[4], 0);
    cr_assert_eq(m.recv_pos[3], 5);
    cr_assert_eq(m.recv_pos[1], 2);
    cr_assert_eq(m.recv_pos[2], 0);
    exec_move_free(&m);
}

Test(exec_plan, bad_rank_is_an_error) {
    const uint32_t src[] = {0}, dst[] = {3};
    const uint64_t size[] = {1};
    ExecMove m;
    cr_assert_eq(exec_move_build(&m, 2, 1, src, dst, size), OS_ERR_INTERNAL);
}

Test(exec_plan, inverse_swaps_layouts) {
    const uint32_t src[] = {0, 2, 1, 2, 0, 1}, dst[] = {1, 0, 1, 2, 2, 0};
    const uint64_t size[] = {3, 1, 2, 2, 4, 1};
    ExecRoute r, inv;
    cr_assert_eq(exec_route_build(&r, 3, 3, 0, 6, src, dst, size), OS_OK);
    cr_assert_eq(exec_route_inverse(&inv, &r), OS_OK);
    for (uint32_t u = 0; u < 6; u++) {
        cr_assert_eq(inv.st[0].send_pos[u], r.st[0].recv_pos[u]);
        cr_assert_eq(inv.st[0].recv_pos[u], r.st[0].send_pos[u]);
    }
    for (uint32_t s = 0; s < 3; s++)
        for (uint32_t d = 0; d < 3; d++) cr_assert_eq(V(&inv.st[0], d, s), V(&r.st[0], s, d));
    exec_route_free(&r);
    exec_route_free(&inv);
}

/* 4 ranks, 2 per node: cross-node rows only travel between ranks with the same local index. */
Test(exec_plan, node_wise_route_by_hand) {
    const uint32_t src[] = {0, 1, 0, 2}, dst[] = {3, 2, 1, 3};
    const uint64_t size[] = {2, 1, 3, 1};
    ExecRoute r;
    cr_assert_eq(exec_route_build(&r, 4, 2, 1, 4, src, dst, size), OS_OK);
    cr_assert_eq(r.stages, 2);
    /* u0 0->3 relays through 1 (node 0, local index 1); u1 1->2 through 0; u2 stays in node 0 */
    cr_assert_eq(r.st[0].dst[0], 1);
    cr_assert_eq(r.st[1].src[0], 1);
    cr_assert_eq(r.st[0].dst[1], 0);
    cr_assert_eq(r.st[0].dst[2], 1);
    cr_assert_eq(r.st[1].src[2], 1);
    cr_assert_eq(r.st[1].dst[2], 1);
    for (uint32_t s = 0; s < 4; s++)
        for (uint32_t d = 0; d < 4; d++) {
            if (s / 2 != d / 2) cr_assert_eq(V(&r.st[0], s, d), 0, "stage 0 crosses nodes %u->%u", s, d);
            if (s / 2 != d / 2 && s % 2 != d % 2) cr_assert_eq(V(&r.st[1], s, d), 0, "off-rail %u->%u", s, d);
        }
    cr_assert_eq(V(&r.st[1], 1, 3), 2);
    cr_assert_eq(V(&r.st[1], 0, 2), 1);
    /* data arrives where the final stage says */
    uint32_t b0[8], b1[8], b2[8], b3[8], r0[8] = {0}, r1[8] = {0}, r2[8] = {0}, r3[8] = {0};
    void *send[4] = {b0, b1, b2, b3}, *recv[4] = {r0, r1, r2, r3};
    for (uint32_t u = 0; u < 4; u++)
        for (uint64_t k = 0; k < size[u]; k++)
            ((uint32_t *)send[src[u]])[r.st[0].send_pos[u] + k] = 100 * (u + 1) + (uint32_t)k;
    cr_assert_eq(exec_route_apply_cpu(recv, (const void *const *)send, &r, sizeof(uint32_t)), OS_OK);
    for (uint32_t u = 0; u < 4; u++)
        for (uint64_t k = 0; k < size[u]; k++)
            cr_assert_eq(((uint32_t *)recv[dst[u]])[exec_route_recv_pos(&r, u) + k], 100 * (u + 1) + k);
    exec_route_free(&r);
}

static ModelSpec two_enc(void) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    strcpy(m.name, "plan-test");
    m.llm = (StackSpec){.layers = 2, .hidden = 8, .ffn = 12, .heads = 2, .kv_heads = 1, .vocab = 13, .gated_mlp = 1, .causal = 1};
    m.n_enc = 2;
    m.enc[0].stack = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 2, .vocab = 0, .gated_mlp = 0, .causal = 0};
    m.enc[0].ratio = 2;
    m.enc[1].stack = (StackSpec){.layers = 1, .hidden = 6, .ffn = 6, .heads = 3, .kv_heads = 1, .vocab = 0, .gated_mlp = 1, .causal = 0};
    m.enc[1].ratio = 3;
    return m;
}

/* ex0: text 3 + image(3 -> 2 tokens); ex1: text 4; ex2: text 2 + audio(4 -> 2) + image(2 -> 1);
 * ex3: text 1 + image(5 -> 3). Rank 0 drew ex0, ex1; rank 1 drew ex2, ex3. */
static const uint32_t DRAWN[] = {0, 0, 1, 1}, EX_TOK[] = {5, 4, 5, 4};
static const uint32_t IT_EX[] = {0, 2, 2, 3}, IT_LEN[] = {3, 4, 2, 5};
static const uint8_t IT_PH[] = {0, 1, 0, 0};

static StepWork work(uint32_t D, uint32_t dpn) {
    return (StepWork){.D = D, .P = 3, .N = 4, .M = 4, .dp_per_node = dpn, .drawn = DRAWN,
                      .ex_tokens = EX_TOK, .it_example = IT_EX, .it_phase = IT_PH, .it_len = IT_LEN};
}

Test(exec_plan, none_moves_nothing_across_ranks) {
    ModelSpec m = two_enc();
    StepWork w = work(2, 2);
    uint32_t home[4], exr[4], itr[4];
    memcpy(home, DRAWN, sizeof home), memcpy(exr, DRAWN, sizeof exr);
    for (int j = 0; j < 4; j++) itr[j] = DRAWN[IT_EX[j]];
    Plan p = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = 0};
    ExecStepPlan sp;
    cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_OK);
    for (uint32_t e = 0; e < 2; e++) {
        cr_assert_eq(V(&sp.in[e].st[0], 0, 1) + V(&sp.in[e].st[0], 1, 0), 0);
        cr_assert_eq(V(&sp.emb[e].st[0], 0, 1) + V(&sp.emb[e].st[0], 1, 0), 0);
    }
    cr_assert_eq(sp.ex_text[2], 2);
    cr_assert_eq(sp.llm_rows[0], 9);
    cr_assert_eq(sp.llm_rows[1], 9);
    cr_assert_eq(sp.enc_rows[0][1], 7); /* image positions of ex2 + ex3 */
    cr_assert_eq(exec_step_plan_verify(&sp), OS_OK);
    exec_step_plan_free(&sp);
}

Test(exec_plan, post_plan_by_hand) {
    ModelSpec m = two_enc();
    StepWork w = work(2, 2);
    uint32_t home[4], exr[4] = {1, 0, 1, 0}, itr[4] = {1, 0, 0, 0};
    memcpy(home, DRAWN, sizeof home);
    Plan p = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = 0};
    ExecStepPlan sp;
    cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_OK);
    const ExecMove *in0 = &sp.in[0].st[0], *emb0 = &sp.emb[0].st[0];
    cr_assert_eq(V(in0, 0, 1), 3);
    cr_assert_eq(V(in0, 1, 0), 7);
    /* image on rank 0 runs item 2 then item 3 (units 1, 2); on rank 1 item 0 (unit 0) */
    cr_assert_eq(sp.enc_off[0][1], 2);
    cr_assert_eq(sp.enc_order[0][0], 1);
    cr_assert_eq(sp.enc_order[0][1], 2);
    cr_assert_eq(sp.enc_order[0][2], 0);
    cr_assert_eq(V(emb0, 1, 1), 2);
    cr_assert_eq(V(emb0, 0, 1), 1);
    cr_assert_eq(V(emb0, 0, 0), 3);
    cr_assert_eq(sp.llm_rows[0], 8);
    cr_assert_eq(sp.llm_rows[1], 10);
    /* rank 1 assembles ex0 = [item0 (2 rows from emb0 at 1)][text from 0], then ex2 */
    const ExecSeg *g = &sp.gather_seg[sp.gather_off[1]];
    cr_assert(g[0].buf == 0 && g[0].from == 1 && g[0].to == 0 && g[0].n == 2);
    cr_assert(g[1].buf == 2 && g[1].from == 0 && g[1].to == 2 && g[1].n == 3);
    cr_assert(g[2].buf == 1 && g[2].from == 0 && g[2].to == 5 && g[2].n == 2);
    cr_assert(g[3].buf == 0 && g[3].from == 0 && g[3].to == 7 && g[3].n == 1);
    cr_assert(g[4].buf == 2 && g[4].from == 3 && g[4].to == 8 && g[4].n == 2);
    cr_assert_eq(exec_step_plan_verify(&sp), OS_OK);
    exec_step_plan_free(&sp);
}

Test(exec_plan, too_few_llm_tokens_is_an_error) {
    ModelSpec m = two_enc();
    StepWork w = work(2, 2);
    static const uint32_t bad_tok[] = {1, 4, 5, 4}; /* ex0's image alone is 2 tokens */
    w.ex_tokens = bad_tok;
    uint32_t home[4] = {0, 0, 1, 1}, exr[4] = {0, 0, 1, 1}, itr[4] = {0, 1, 1, 1};
    Plan p = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = 0};
    ExecStepPlan sp;
    cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_ERR_ARG);
}

/* Random plans on 8 ranks (4 per node), flat and node-wise: the verifier must pass. */
Test(exec_plan, random_plans_verify) {
    ModelSpec m = two_enc();
    enum { D = 8, N = 64 };
    uint32_t drawn[N], tok[N], home[N], exr[N], it_ex[4 * N], it_len[4 * N], itr[4 * N];
    uint8_t it_ph[4 * N];
    uint64_t x = 12345;
#define RND() (x = x * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(x >> 33))
    for (int trial = 0; trial < 20; trial++) {
        uint32_t M = 0;
        for (uint32_t i = 0; i < N; i++) {
            drawn[i] = i / (N / D);
            uint32_t nit = RND() % 4, t = RND() % 20;
            for (uint32_t k = 0; k < nit; k++) {
                it_ex[M] = i, it_ph[M] = (uint8_t)(RND() % 2), it_len[M] = 1 + RND() % 40;
                t += (it_len[M] + m.enc[it_ph[M]].ratio - 1) / m.enc[it_ph[M]].ratio;
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
        cr_assert_eq(exec_step_plan_build(&sp, &p, &w, &m), OS_OK);
        cr_assert_eq(sp.in[0].stages, p.hierarchical ? 2 : 1);
        cr_assert_eq(exec_step_plan_verify(&sp), OS_OK, "trial %d", trial);
        exec_step_plan_free(&sp);
    }
}
