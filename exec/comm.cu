/* comm.cu — see comm.cuh. */
#include <stdlib.h>
#include <string.h>

#include "exec/comm.cuh"

extern "C" {
#include "exec/memplan.h"
}

struct ExecComm {
    int local;
    uint32_t D, rank; /* rank: NCCL only */
    ncclComm_t nc;    /* borrowed */
    const ExecNccl *N; /* borrowed */
    cudaStream_t s;   /* borrowed */
    uint32_t n_local;
    char **mid, **out;       /* [n_local] relay buffers of a two-stage route */
    size_t *mid_cap, *out_cap;
};

uint32_t exec_comm_n_local(const ExecComm *c) { return c->n_local; }
uint32_t exec_comm_rank(const ExecComm *c, uint32_t k) { return c->local ? k : c->rank; }
int exec_comm_is_local(const ExecComm *c) { return c->local; }

static OsStatus comm_alloc(ExecComm **out, uint32_t n_local) {
    OsStatus st = OS_OK;
    ExecComm *c = NULL;
    ALLOC_CHECK(c = (ExecComm *)calloc(1, sizeof *c));
    c->n_local = n_local;
    ALLOC_CHECK(c->mid = (char **)calloc(n_local, sizeof *c->mid));
    ALLOC_CHECK(c->out = (char **)calloc(n_local, sizeof *c->out));
    ALLOC_CHECK(c->mid_cap = (size_t *)calloc(n_local, sizeof(size_t)));
    ALLOC_CHECK(c->out_cap = (size_t *)calloc(n_local, sizeof(size_t)));
    *out = c;
    return OS_OK;
fail:
    exec_comm_destroy(c);
    return st;
}

OsStatus exec_comm_create_local(ExecComm **out, uint32_t D, cudaStream_t s) {
    OsStatus st = OS_OK;
    *out = NULL;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "exec comm", "ranks", NULL, "D = 0");
    OS_CHECK(comm_alloc(out, D));
    (*out)->local = 1, (*out)->D = D, (*out)->s = s;
fail:
    return st;
}

OsStatus exec_comm_create_nccl(ExecComm **out, const ExecNccl *N, ncclComm_t nc, uint32_t rank, uint32_t D,
                               cudaStream_t s) {
    OsStatus st = OS_OK;
    *out = NULL;
    if (rank >= D) OS_FAIL(OS_ERR_ARG, "exec comm", "rank", NULL, "rank %u of %u", rank, D);
    OS_CHECK(comm_alloc(out, 1));
    (*out)->D = D, (*out)->rank = rank, (*out)->nc = nc, (*out)->s = s, (*out)->N = N;
fail:
    return st;
}

void exec_comm_destroy(ExecComm *c) {
    if (!c) return;
    if (c->s) (void)cudaStreamSynchronize(c->s); /* a pending copy may still read the relays */
    for (uint32_t k = 0; k < c->n_local; k++) {
        if (c->mid) (void)cudaFree(c->mid[k]);
        if (c->out) (void)cudaFree(c->out[k]);
    }
    free(c->mid), free(c->out), free(c->mid_cap), free(c->out_cap);
    free(c);
}

/* Grow a device buffer. Only called from exec_comm_reserve, before a step's first move, with
 * the stream idle (the executor synchronised it): nothing pending can read the old one. */
static OsStatus grow(char **p, size_t *cap, size_t bytes, double *grown) {
    OsStatus st = OS_OK;
    if (bytes <= *cap) return OS_OK;
    CUDA_CHECK(cudaFree(*p));
    *grown -= (double)*cap;
    *p = NULL, *cap = 0;
    CUDA_CHECK(cudaMalloc((void **)p, bytes));
    *cap = bytes;
    *grown += (double)bytes;
fail:
    return st;
}

OsStatus exec_comm_reserve(ExecComm *c, uint32_t k, size_t mid, size_t out, double *grown) {
    OsStatus st = OS_OK;
    if (k >= c->n_local) OS_FAIL(OS_ERR_INTERNAL, "exec comm", "local rank", NULL, "%u of %u", k, c->n_local);
    OS_CHECK(grow(&c->mid[k], &c->mid_cap[k], mid, grown));
    OS_CHECK(grow(&c->out[k], &c->out_cap[k], out, grown));
fail:
    return st;
}

double exec_comm_relay_bytes(const ExecComm *c) {
    double b = 0;
    for (uint32_t k = 0; k < c->n_local; k++) b += (double)c->mid_cap[k] + (double)c->out_cap[k];
    return b;
}

/* One stage. Local: every (s, d) block is a device copy. NCCL: this rank's sends and receives
 * in one group (NCCL pairs them by peer; blocks to itself are copied directly). */
static OsStatus move_stage(ExecComm *c, const ExecMove *m, char *const *recv, const char *const *send, size_t rb) {
    OsStatus st = OS_OK;
    const uint32_t D = m->D;
    const size_t D1 = (size_t)D + 1;
    int grouped = 0; /* inside ncclGroupStart: a failing call must still close the group */
    if (c->local) {
        for (uint32_t s = 0; s < D; s++)
            for (uint32_t d = 0; d < D; d++) {
                uint64_t n = m->vol[(size_t)s * D + d];
                if (!n) continue;
                CUDA_CHECK(cudaMemcpyAsync(recv[d] + m->recv_off[d * D1 + s] * rb, send[s] + m->send_off[s * D1 + d] * rb,
                                           n * rb, cudaMemcpyDeviceToDevice, c->s));
            }
        return OS_OK;
    }
    {
        const uint32_t me = c->rank;
        uint64_t self = m->vol[(size_t)me * D + me];
        if (self)
            CUDA_CHECK(cudaMemcpyAsync(recv[0] + m->recv_off[me * D1 + me] * rb, send[0] + m->send_off[me * D1 + me] * rb,
                                       self * rb, cudaMemcpyDeviceToDevice, c->s));
        NCCL_CHECK(c->N->GroupStart());
        grouped = 1;
        for (uint32_t p = 0; p < D; p++) {
            if (p == me) continue;
            uint64_t out = m->vol[(size_t)me * D + p], in = m->vol[(size_t)p * D + me];
            if (out)
                NCCL_CHECK(c->N->Send(send[0] + m->send_off[me * D1 + p] * rb, out * rb, ncclUint8, (int)p, c->nc, c->s));
            if (in)
                NCCL_CHECK(c->N->Recv(recv[0] + m->recv_off[me * D1 + p] * rb, in * rb, ncclUint8, (int)p, c->nc, c->s));
        }
        grouped = 0;
        NCCL_CHECK(c->N->GroupEnd());
    }
fail:
    /* a group left open would hold this thread's later NCCL calls back (they would join it);
     * the caller aborts the communicator after any failure (mllm.h) */
    if (grouped) (void)c->N->GroupEnd();
    return st;
}

OsStatus exec_comm_route(ExecComm *c, const ExecRoute *r, void *const *recv, const void *const *send,
                         size_t rb) {
    OsStatus st = OS_OK;
    if (r->stages == 1) return move_stage(c, &r->st[0], (char *const *)recv, (const char *const *)send, rb);
    {
        const ExecMove *a = &r->st[0], *b = &r->st[1];
        for (uint32_t k = 0; k < c->n_local; k++) {
            uint32_t d = exec_comm_rank(c, k);
            size_t mid, out;
            exec_route_relay_bytes(r, d, rb, &mid, &out);
            if (c->mid_cap[k] < mid || c->out_cap[k] < out)
                OS_FAIL(OS_ERR_INTERNAL, "exec comm", "relay", NULL, "rank %u: relays of %zu/%zu bytes reserved, %zu/%zu needed",
                        d, c->mid_cap[k], c->out_cap[k], mid, out);
        }
        OS_CHECK(move_stage(c, a, c->mid, (const char *const *)send, rb));
        /* the relay: unit u sits at a->recv_pos[u] on rank a->dst[u], leaves from b->send_pos[u] */
        for (uint32_t u = 0; u < a->U; u++) {
            uint32_t d = a->dst[u];
            if (!a->size[u]) continue;
            if (c->local)
                CUDA_CHECK(cudaMemcpyAsync(c->out[d] + b->send_pos[u] * rb, c->mid[d] + a->recv_pos[u] * rb,
                                           a->size[u] * rb, cudaMemcpyDeviceToDevice, c->s));
            else if (d == c->rank)
                CUDA_CHECK(cudaMemcpyAsync(c->out[0] + b->send_pos[u] * rb, c->mid[0] + a->recv_pos[u] * rb,
                                           a->size[u] * rb, cudaMemcpyDeviceToDevice, c->s));
        }
        OS_CHECK(move_stage(c, b, (char *const *)recv, (const char *const *)c->out, rb));
    }
fail:
    return st;
}

OsStatus exec_comm_grad_sync(ExecComm *c, float *g, uint64_t n, bf16 *w, uint64_t nw, int fsdp) {
    OsStatus st = OS_OK;
    if (c->local || c->D == 1) return OS_OK; /* one shared gradient buffer holds the sum already */
    if (!fsdp) {
        NCCL_CHECK(c->N->AllReduce(g, g, n, ncclFloat, ncclSum, c->nc, c->s));
        return OS_OK;
    }
    if (n % c->D || nw % c->D)
        OS_FAIL(OS_ERR_INTERNAL, "exec comm", "fsdp", NULL, "%llu gradients / %llu weights do not split over %u ranks",
                (unsigned long long)n, (unsigned long long)nw, c->D);
    {
        size_t gc = n / c->D, wc = nw / c->D;
        NCCL_CHECK(c->N->ReduceScatter(g, g + c->rank * gc, gc, ncclFloat, ncclSum, c->nc, c->s));
        NCCL_CHECK(c->N->AllGather(w + c->rank * wc, w, wc, ncclBfloat16, c->nc, c->s));
    }
fail:
    return st;
}
