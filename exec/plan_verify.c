/* plan_verify.c — exec_step_plan_verify (plan.h): run a step plan on the CPU with tagged rows
 * and check that it conserves and reassembles everything. Slow and obvious on purpose: the
 * twin of what comm.cu and the pack/gather kernels do on the GPU. */
#include <stdlib.h>
#include <string.h>

#include "exec/plan.h"
#include "base/util.h"

/* A row's tag: kind (1 input position, 2 projected token, 3 text token), unit, index. */
static uint64_t tag(uint64_t kind, uint64_t unit, uint64_t t) {
    return (kind << 62) | ((unit & 0x7FFFFFFFu) << 31) | (t & 0x7FFFFFFFu);
}

static void bufs_free(uint64_t **b, uint32_t D) {
    for (uint32_t d = 0; b && d < D; d++) free(b[d]);
    free(b);
}
/* D buffers, rank d's of off[d*(D+1)+D] rows (a send or receive layout's totals). */
static uint64_t **bufs_new(uint32_t D, const uint64_t *off) {
    uint64_t **b = calloc(D, sizeof *b);
    if (!b) return NULL;
    for (uint32_t d = 0; d < D; d++)
        if (!(b[d] = calloc(off[(size_t)d * (D + 1) + D] + 1, sizeof(uint64_t)))) {
            bufs_free(b, D);
            return NULL;
        }
    return b;
}

#define CHECK_ROW(cond, ...) \
    do { if (!(cond)) OS_FAIL(OS_ERR_INTERNAL, "exec plan", "verify", NULL, __VA_ARGS__); } while (0)

OsStatus exec_step_plan_verify(const ExecStepPlan *sp) {
    OsStatus st = OS_OK;
    uint32_t D = sp->D, E = sp->E;
    uint64_t **send = NULL, **recv = NULL, **inv_recv = NULL;
    uint64_t **proj[MODEL_MAX_ENC] = {0}, **embr[MODEL_MAX_ENC] = {0}, **textr = NULL, **x = NULL;
    uint32_t *seen_it = NULL, *seen_ex = NULL;
    ExecRoute inv;
    memset(&inv, 0, sizeof inv);
    ALLOC_CHECK(seen_it = calloc((size_t)sp->M + 1, sizeof *seen_it));
    ALLOC_CHECK(seen_ex = calloc((size_t)sp->N + 1, sizeof *seen_ex));
    for (uint32_t e = 0; e < E; e++) {
        const ExecRoute *r = &sp->in[e];
        const ExecMove *first = &r->st[0], *last = &r->st[r->stages - 1];
        uint32_t U = sp->n_units[e];
        ALLOC_CHECK(send = bufs_new(D, first->send_off));
        ALLOC_CHECK(recv = bufs_new(D, last->recv_off));
        for (uint32_t k = 0; k < U; k++) {
            uint32_t j = sp->unit_item[e][k];
            for (uint64_t p = 0; p < sp->item_pos[j]; p++)
                send[first->src[k]][first->send_pos[k] + p] = tag(1, j, p);
        }
        OS_CHECK(exec_route_apply_cpu((void *const *)recv, (const void *const *)send, r, sizeof(uint64_t)));
        /* the encoder computes in receive order: every position where the plan says */
        ALLOC_CHECK(proj[e] = calloc(D, sizeof *proj[e]));
        for (uint32_t d = 0; d < D; d++) {
            uint64_t row = 0, tok = 0;
            for (uint64_t q = sp->enc_off[e][d]; q < sp->enc_off[e][d + 1]; q++) {
                uint32_t k = sp->enc_order[e][q], j = sp->unit_item[e][k];
                CHECK_ROW(last->dst[k] == d, "encoder %u: item %u computed on rank %u but sent to %u", e, j, d, last->dst[k]);
                for (uint64_t p = 0; p < sp->item_pos[j]; p++)
                    CHECK_ROW(recv[d][row + p] == tag(1, j, p), "encoder %u: rank %u row %llu is not item %u position %llu",
                              e, d, (unsigned long long)(row + p), j, (unsigned long long)p);
                row += sp->item_pos[j], tok += sp->item_tok[j];
                seen_it[j]++;
            }
            CHECK_ROW(row == sp->enc_rows[e][d], "encoder %u: rank %u rows %llu != planned %llu", e, d,
                      (unsigned long long)row, (unsigned long long)sp->enc_rows[e][d]);
            ALLOC_CHECK(proj[e][d] = calloc(tok + 1, sizeof(uint64_t)));
            tok = 0;
            for (uint64_t q = sp->enc_off[e][d]; q < sp->enc_off[e][d + 1]; q++) {
                uint32_t j = sp->unit_item[e][sp->enc_order[e][q]];
                for (uint64_t t = 0; t < sp->item_tok[j]; t++) proj[e][d][tok++] = tag(2, j, t);
            }
        }
        bufs_free(send, D), bufs_free(recv, D);
        send = recv = NULL;
        /* pack the projector output and move it to the LLM ranks */
        const ExecRoute *m = &sp->emb[e];
        ALLOC_CHECK(send = bufs_new(D, m->st[0].send_off));
        ALLOC_CHECK(embr[e] = bufs_new(D, m->st[m->stages - 1].recv_off));
        for (uint32_t d = 0; d < D; d++)
            for (uint64_t q = sp->pack_off[e][d]; q < sp->pack_off[e][d + 1]; q++) {
                const ExecSeg *s = &sp->pack_seg[e][q];
                memcpy(send[d] + s->to, proj[e][d] + s->from, s->n * sizeof(uint64_t));
            }
        OS_CHECK(exec_route_apply_cpu((void *const *)embr[e], (const void *const *)send, m, sizeof(uint64_t)));
        bufs_free(send, D);
        send = NULL;
    }
    for (uint32_t j = 0; j < sp->M; j++)
        CHECK_ROW(seen_it[j] == 1, "item %u encoded %u times", j, seen_it[j]);
    /* text ids */
    ALLOC_CHECK(send = bufs_new(D, sp->text.st[0].send_off));
    ALLOC_CHECK(textr = bufs_new(D, sp->text.st[sp->text.stages - 1].recv_off));
    for (uint32_t i = 0; i < sp->N; i++)
        for (uint64_t t = 0; t < sp->ex_text[i]; t++)
            send[sp->text.st[0].src[i]][sp->text.st[0].send_pos[i] + t] = tag(3, i, t);
    OS_CHECK(exec_route_apply_cpu((void *const *)textr, (const void *const *)send, &sp->text, sizeof(uint64_t)));
    bufs_free(send, D);
    send = NULL;
    /* reassemble every LLM sequence and compare with the original order */
    ALLOC_CHECK(x = calloc(D, sizeof *x));
    for (uint32_t d = 0; d < D; d++) {
        ALLOC_CHECK(x[d] = calloc(sp->llm_rows[d] + 1, sizeof(uint64_t)));
        for (uint64_t g = sp->gather_off[d]; g < sp->gather_off[d + 1]; g++) {
            const ExecSeg *s = &sp->gather_seg[g];
            const uint64_t *from = s->buf < E ? embr[s->buf][d] : textr[d];
            CHECK_ROW(s->to + s->n <= sp->llm_rows[d], "rank %u: gather past the LLM input", d);
            memcpy(x[d] + s->to, from + s->from, s->n * sizeof(uint64_t));
        }
        uint64_t row = 0;
        for (uint64_t q = sp->llm_off[d]; q < sp->llm_off[d + 1]; q++) {
            uint32_t i = sp->llm_order[q];
            seen_ex[i]++;
            for (uint32_t j = sp->ex_first[i]; j != UINT32_MAX && j < sp->M && sp->item_ex[j] == i; j++)
                for (uint64_t t = 0; t < sp->item_tok[j]; t++, row++)
                    CHECK_ROW(x[d][row] == tag(2, j, t), "rank %u: example %u token %llu is not item %u's token %llu",
                              d, i, (unsigned long long)row, j, (unsigned long long)t);
            for (uint64_t t = 0; t < sp->ex_text[i]; t++, row++)
                CHECK_ROW(x[d][row] == tag(3, i, t), "rank %u: example %u text token %llu misplaced", d, i,
                          (unsigned long long)t);
        }
        CHECK_ROW(row == sp->llm_rows[d], "rank %u: %llu LLM rows != planned %llu", d, (unsigned long long)row,
                  (unsigned long long)sp->llm_rows[d]);
    }
    for (uint32_t i = 0; i < sp->N; i++)
        CHECK_ROW(seen_ex[i] == 1, "example %u run %u times in the LLM", i, seen_ex[i]);
    /* backward: gradients of item rows go home through the inverse routes */
    for (uint32_t e = 0; e < E; e++) {
        const ExecRoute *m = &sp->emb[e];
        OS_CHECK(exec_route_inverse(&inv, m));
        ALLOC_CHECK(send = bufs_new(D, inv.st[0].send_off));
        ALLOC_CHECK(inv_recv = bufs_new(D, inv.st[inv.stages - 1].recv_off));
        for (uint32_t d = 0; d < D; d++)
            for (uint64_t g = sp->gather_off[d]; g < sp->gather_off[d + 1]; g++) {
                const ExecSeg *s = &sp->gather_seg[g];
                if (s->buf == e) memcpy(send[d] + s->from, x[d] + s->to, s->n * sizeof(uint64_t));
            }
        OS_CHECK(exec_route_apply_cpu((void *const *)inv_recv, (const void *const *)send, &inv, sizeof(uint64_t)));
        for (uint32_t d = 0; d < D; d++)
            for (uint64_t q = sp->pack_off[e][d]; q < sp->pack_off[e][d + 1]; q++) {
                const ExecSeg *s = &sp->pack_seg[e][q];
                CHECK_ROW(!memcmp(inv_recv[d] + s->to, proj[e][d] + s->from, s->n * sizeof(uint64_t)),
                          "encoder %u: rank %u: the gradient of segment %llu did not come back", e, d,
                          (unsigned long long)q);
            }
        bufs_free(send, D), bufs_free(inv_recv, D);
        send = inv_recv = NULL;
        exec_route_free(&inv);
    }
fail:
    exec_route_free(&inv);
    bufs_free(send, D), bufs_free(recv, D), bufs_free(inv_recv, D);
    for (uint32_t e = 0; e < MODEL_MAX_ENC; e++) bufs_free(proj[e], D), bufs_free(embr[e], D);
    bufs_free(textr, D), bufs_free(x, D);
    free(seen_it), free(seen_ex);
    return st;
}
