/* emucomm.c — see emucomm.h. A route's stage is a dense D x D row matrix (plan.h); it becomes
 * a NetMove list of its off-diagonal entries, in a buffer grown once and reused. */
#include "exec/emucomm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/params.h"
#include "base/util.h"

double exec_emu_grad_bytes(const ModelSpec *m, uint32_t D) {
    uint64_t total = 0;
    for (uint32_t k = 0; k < exec_n_modules(m); k++) {
        if (k <= m->n_enc) {
            ExecStackLayout L;
            exec_stack_layout(&L, k < m->n_enc ? &m->enc[k].stack : &m->llm);
            total += L.total;
        } else {
            const EncoderSpec *e = &m->enc[k - m->n_enc - 1];
            ExecProjLayout P;
            exec_proj_layout(&P, e->stack.hidden, m->llm.hidden, e->ratio);
            total += P.total;
        }
        total = (total + 127) / 128 * 128; /* mllm.cu: each module 128-element aligned */
    }
    if (D) total = (total + D - 1) / D * D; /* mllm.cu: padded so FSDP splits evenly */
    return (double)total * sizeof(float);
}

typedef struct {
    NetMove *mv;
    size_t cap;
} Moves;

/* Cost of one route (reversed: the backward's inverse move); adds to *secs and *bytes. */
static OsStatus route_cost(double *secs, uint64_t *bytes, int *crosses, const ExecRoute *r, size_t row_bytes,
                           int reverse, const Cluster *c, NetScratch *ns, Moves *mv) {
    OsStatus st = OS_OK;
    for (uint32_t s = 0; s < r->stages; s++) {
        const ExecMove *m = &r->st[s];
        size_t n = 0;
        void *buf = mv->mv;
        OS_CHECK(os_grow(&buf, &mv->cap, (size_t)m->D * m->D + 1, sizeof *mv->mv));
        mv->mv = buf;
        for (uint32_t a = 0; a < m->D; a++)
            for (uint32_t b = 0; b < m->D; b++) {
                uint64_t v = m->vol[(size_t)a * m->D + b];
                if (a == b || v == 0) continue; /* a block to itself is a device copy */
                mv->mv[n++] = (NetMove){reverse ? b : a, reverse ? a : b, v * row_bytes};
                *bytes += v * row_bytes;
            }
        if (n == 0) continue;
        double t = net_alltoallv(c, mv->mv, n, ns, NULL);
        if (!isfinite(t)) {
            st = os_has_error() ? OS_ERR_INTERNAL
                                : os_fail(OS_ERR_INTERNAL, "exec", "emulated all-to-all", NULL, "net model gave %g", t);
            goto fail;
        }
        *secs += t, *crosses = 1;
    }
fail:
    return st;
}

OsStatus exec_emu_comm(ExecEmuComm *out, const ExecStepPlan *sp, const ModelSpec *m, const Cluster *c,
                       NetScratch *ns) {
    OsStatus st = OS_OK;
    Moves mv = {NULL, 0};
    const uint32_t E = sp->E, P = E + 1;
    const size_t emb_rb = (size_t)m->llm.hidden * 2; /* bf16 rows, as mllm.cu moves them */
    memset(out, 0, sizeof *out);
    if (sp->D != c->dp || E != m->n_enc || P > EXEC_VAL_MAX_PHASES)
        OS_FAIL(OS_ERR_INTERNAL, "exec", "emulated collectives", NULL, "plan for %u ranks / %u encoders, cluster DP %u, model %u encoders",
                sp->D, E, c->dp, m->n_enc);
    out->P = P;
    for (uint32_t e = 0; e < E; e++)
        OS_CHECK(route_cost(&out->comm_s[e], &out->bytes[e], &out->moves[e], &sp->in[e],
                            (size_t)m->enc[e].stack.hidden * 2, 0, c, ns, &mv));
    /* the LLM's barrier: every encoder's embeddings, then the token ids */
    for (uint32_t e = 0; e < E; e++)
        OS_CHECK(route_cost(&out->comm_s[E], &out->bytes[E], &out->moves[E], &sp->emb[e], emb_rb, 0, c, ns, &mv));
    OS_CHECK(route_cost(&out->comm_s[E], &out->bytes[E], &out->moves[E], &sp->text, sizeof(int32_t), 0, c, ns, &mv));
    /* backward: before encoder p = P-2-k's backward its embeddings' gradients return */
    for (uint32_t k = 0; k < E; k++) {
        uint32_t p = P - 2 - k;
        OS_CHECK(route_cost(&out->comm_s[P + k], &out->bytes[P + k], &out->bwd_moves[p], &sp->emb[p], emb_rb, 1, c,
                            ns, &mv));
    }
    {
        double g = exec_emu_grad_bytes(m, sp->D);
        out->comm_s[2 * P - 1] = net_allreduce_ring(c, g);
        out->bytes[2 * P - 1] = (uint64_t)g;
    }
fail:
    free(mv.mv);
    return st;
}

void exec_emu_comm_step(ExecEmuStep *e, const ExecEmuComm *cm, uint32_t D, const double *fwd, const double *bwd) {
    *e = (ExecEmuStep){.D = D, .P = cm->P, .fwd = fwd, .bwd = bwd, .moves = cm->moves, .comm_s = cm->comm_s,
                       .bwd_moves = cm->bwd_moves};
}
