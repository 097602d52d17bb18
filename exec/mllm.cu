/* mllm.cu — see mllm.h. Layout of the work: host index lists per rank (rankidx.h), one
 * device block of activations per rank laid out by exec/memplan.h and carved per step (grown,
 * never shrunk: no allocation in steady state), one shared backward scratch (the local ranks
 * run one after another on one stream), one stream, events around every phase. Every
 * cudaMalloc goes through dev_grow, which keeps the executor's own byte count. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/attn.h"
#include "exec/comm.cuh"
#include "exec/kernels/kernels.cuh"
#include "exec/stack.cuh"

extern "C" {
#include "exec/mllm.h"
#include "exec/rankidx.h"
#include "base/util.h"
}

/* event slots (start/end pairs): compute per phase, moves before phase p, the inverse moves
 * of encoder e's embeddings, the whole step */
enum {
    EV_FWD = 0,
    EV_BWD = EXEC_MAX_PHASES,
    EV_A2A = 2 * EXEC_MAX_PHASES,
    EV_INV = 3 * EXEC_MAX_PHASES,
    EV_STEP = 4 * EXEC_MAX_PHASES,
    EV_N
};

typedef struct {
    ExecRankIdx idx;
    uint64_t *dblk;  /* device copy of idx.blk */
    size_t dblk_cap; /* bytes */
    char *act;       /* device activation block (memplan.h ExecRankLayout) */
    size_t act_cap;
    /* carved per step */
    bf16 *in_send[MODEL_MAX_ENC], *merged[MODEL_MAX_ENC], *z1[MODEL_MAX_ENC], *g1[MODEL_MAX_ENC];
    bf16 *proj[MODEL_MAX_ENC], *emb_send[MODEL_MAX_ENC], *emb_recv[MODEL_MAX_ENC];
    bf16 *dg1[MODEL_MAX_ENC], *dmerged[MODEL_MAX_ENC], *denc[MODEL_MAX_ENC];
    StackActs enc[MODEL_MAX_ENC], llm;
    int *text_send, *text_recv, *ids, *labels, *next_same;
    float *logits, *loss;
    bf16 *dlogits, *dout;
    cudaEvent_t ev[2 * EV_N]; /* start/end pairs */
    int ev_used[EV_N];
} Rank;

struct ExecMllm {
    ModelSpec m;
    uint64_t seed;
    uint32_t E, n_mod, D;
    ExecMemModel mm;        /* layouts and flat offsets (memplan.h) */
    ExecAttnImpl impl;
    const ExecStackLayout *L;  /* = mm.L */
    const ExecProjLayout *PL;  /* = mm.PL */
    const uint64_t *off;       /* = mm.off */
    uint64_t total;            /* = mm.total */
    bf16 *w;
    float *g;
    cudaStream_t s;
    cublasHandle_t h;
    const ExecNccl *N;
    ncclComm_t nc;
    int nccl, failed;
    double wait_s;             /* longest stream wait (polling NCCL's async error), <= 0: none */
    ExecComm *comm;
    char *scratch;
    size_t scratch_cap;
    StackScratch sc;
    ExecFlashTile *htiles;     /* host tile lists, [2 max_tiles] */
    size_t htiles_cap;         /* entries */
    uint32_t n_local;
    Rank *r;
    float *hloss;
    size_t hloss_cap;
    cudaEvent_t sync_ev[2];
    ExecMemCount held;         /* the allocator's count: weights, grads, act, index, scratch */
    ExecRoute inv[MODEL_MAX_ENC];
};

uint32_t exec_mllm_n_local(const ExecMllm *x) { return x ? x->n_local : 0; }
void exec_mllm_mark_failed(ExecMllm *x) {
    if (x) x->failed = 1;
}
void exec_mllm_set_wait(ExecMllm *x, double seconds) {
    if (x) x->wait_s = seconds;
}
void exec_mllm_mem(const ExecMllm *x, ExecMemCount *out) {
    memset(out, 0, sizeof *out);
    if (!x) return;
    *out = x->held;
    out->relay = x->comm ? exec_comm_relay_bytes(x->comm) : 0;
    out->total = out->weights + out->grads + out->activations + out->index + out->scratch + out->relay;
}

/* ---- weights ------------------------------------------------------------------------------- */

__global__ void init_stack_kernel(bf16 *w, uint64_t seed, uint32_t module, ExecStackLayout L) {
    for (uint64_t e = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; e < L.total; e += (uint64_t)gridDim.x * blockDim.x)
        w[e] = __float2bfloat16(exec_stack_param(seed, module, &L, e));
}
__global__ void init_proj_kernel(bf16 *w, uint64_t seed, uint32_t module, ExecProjLayout P) {
    for (uint64_t e = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; e < P.total; e += (uint64_t)gridDim.x * blockDim.x)
        w[e] = __float2bfloat16(exec_proj_param(seed, module, &P, e));
}

/* Grow a device buffer to `bytes` (exactly: memplan.h replays this rule), keeping *count.
 * The stream is synchronised first: the old block may still be read on it. */
static OsStatus dev_grow(char **p, size_t *cap, size_t bytes, double *count, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (bytes <= *cap) return OS_OK;
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaFree(*p));
    *count -= (double)*cap;
    *p = NULL, *cap = 0;
    CUDA_CHECK(cudaMalloc((void **)p, bytes));
    *cap = bytes;
    *count += (double)bytes;
fail:
    return st;
}

static ExecAttnImpl env_impl(void) {
    const char *e = getenv("ORCHSIM_ATTN");
    return e && !strcmp(e, "cublas") ? EXEC_ATTN_CUBLAS : EXEC_ATTN_FUSED;
}

static OsStatus mllm_alloc(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t n_local,
                           int device) {
    OsStatus st = OS_OK;
    ExecMllm *x = NULL;
    *out = NULL;
    if (m->n_enc > MODEL_MAX_ENC || !m->llm.vocab || D == 0)
        OS_FAIL(OS_ERR_ARG, m->name, "model", "use an MLLM preset", "%u encoders, vocab %u, D = %u", m->n_enc,
                m->llm.vocab, D);
    ALLOC_CHECK(x = (ExecMllm *)calloc(1, sizeof *x));
    x->m = *m, x->seed = seed, x->E = m->n_enc, x->n_mod = exec_n_modules(m), x->D = D, x->n_local = n_local;
    x->impl = env_impl(), x->wait_s = 60;
    exec_mem_model(&x->mm, m, D, x->impl);
    x->L = x->mm.L, x->PL = x->mm.PL, x->off = x->mm.off, x->total = x->mm.total;
    ALLOC_CHECK(x->r = (Rank *)calloc(n_local, sizeof *x->r));
    for (uint32_t k = 0; k < n_local; k++) exec_rank_idx_init(&x->r[k].idx);
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&x->s, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&x->h));
    CUBLAS_CHECK(cublasSetStream(x->h, x->s));
    for (uint32_t k = 0; k < n_local; k++)
        for (int e = 0; e < 2 * EV_N; e++) CUDA_CHECK(cudaEventCreate(&x->r[k].ev[e]));
    CUDA_CHECK(cudaEventCreate(&x->sync_ev[0]));
    CUDA_CHECK(cudaEventCreate(&x->sync_ev[1]));
    CUDA_CHECK(cudaMalloc((void **)&x->w, x->total * sizeof(bf16)));
    x->held.weights = (double)x->total * sizeof(bf16);
    CUDA_CHECK(cudaMalloc((void **)&x->g, x->total * sizeof(float)));
    x->held.grads = (double)x->total * sizeof(float);
    CUDA_CHECK(cudaMemsetAsync(x->w, 0, x->total * sizeof(bf16), x->s));
    CUDA_CHECK(cudaMemsetAsync(x->g, 0, x->total * sizeof(float), x->s));
    for (uint32_t k = 0; k < x->n_mod; k++) {
        if (k <= x->E) init_stack_kernel<<<1024, 256, 0, x->s>>>(x->w + x->off[k], seed, k, x->L[k]);
        else init_proj_kernel<<<1024, 256, 0, x->s>>>(x->w + x->off[k], seed, k, x->PL[k - x->E - 1]);
        LAUNCH_CHECK();
    }
    CUDA_CHECK(cudaStreamSynchronize(x->s));
    *out = x;
    return OS_OK;
fail:
    exec_mllm_destroy(x);
    return st;
}

OsStatus exec_mllm_set_attn(ExecMllm *x, ExecAttnImpl impl) {
    if (!x) return os_fail(OS_ERR_ARG, "exec mllm", "attention", NULL, "no executor");
    x->impl = impl;
    exec_mem_model(&x->mm, &x->m, x->D, impl); /* same flat layout; only the fused flags change */
    return OS_OK;
}

OsStatus exec_mllm_create_local(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device) {
    OsStatus st = OS_OK;
    OS_CHECK(mllm_alloc(out, m, seed, D, D, device));
    OS_CHECK(exec_comm_create_local(&(*out)->comm, D, (*out)->s));
    return OS_OK;
fail:
    exec_mllm_destroy(*out);
    *out = NULL;
    return st;
}

OsStatus exec_nccl_id(void *blob, size_t cap, size_t *len) {
    OsStatus st = OS_OK;
    ncclUniqueId id;
    const ExecNccl *N = NULL;
    *len = 0;
    if (cap < sizeof id) OS_FAIL(OS_ERR_INTERNAL, "nccl", "unique id", NULL, "%zu bytes of room, %zu needed", cap, sizeof id);
    OS_CHECK(exec_nccl(&N));
    NCCL_CHECK(N->GetUniqueId(&id));
    memcpy(blob, &id, sizeof id);
    *len = sizeof id;
fail:
    return st;
}

OsStatus exec_mllm_create_nccl(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                               int device, const void *id, size_t id_len) {
    OsStatus st = OS_OK;
    ncclUniqueId uid;
    ExecMllm *x = NULL;
    const ExecNccl *N = NULL;
    *out = NULL;
    if (id_len != sizeof uid) OS_FAIL(OS_ERR_INTERNAL, "nccl", "unique id", NULL, "%zu bytes, %zu expected", id_len, sizeof uid);
    memcpy(&uid, id, sizeof uid);
    OS_CHECK(exec_nccl(&N));
    OS_CHECK(mllm_alloc(&x, m, seed, D, 1, device));
    x->nccl = 1, x->N = N;
    NCCL_CHECK(N->CommInitRank(&x->nc, (int)D, uid, (int)rank));
    OS_CHECK(exec_comm_create_nccl(&x->comm, N, x->nc, rank, D, x->s));
    *out = x;
    return OS_OK;
fail:
    if (x) x->failed = 1;
    exec_mllm_destroy(x);
    return st;
}

void exec_mllm_destroy(ExecMllm *x) {
    if (!x) return;
    /* failed: abort first (peers must not wait for this rank, and an NCCL kernel stuck on
     * the stream only returns once the communicator is aborted), then drain the stream;
     * otherwise drain first, so that no operation is pending when the communicator goes */
    if (x->nc && x->failed) (void)x->N->CommAbort(x->nc), x->nc = NULL;
    if (x->s) (void)cudaStreamSynchronize(x->s);
    if (x->nc) (void)x->N->CommDestroy(x->nc);
    exec_comm_destroy(x->comm);
    for (uint32_t k = 0; x->r && k < x->n_local; k++) {
        Rank *r = &x->r[k];
        exec_rank_idx_free(&r->idx);
        (void)cudaFree(r->dblk), (void)cudaFree(r->act);
        for (int e = 0; e < 2 * EV_N; e++)
            if (r->ev[e]) (void)cudaEventDestroy(r->ev[e]);
    }
    for (int e = 0; e < 2; e++)
        if (x->sync_ev[e]) (void)cudaEventDestroy(x->sync_ev[e]);
    for (uint32_t e = 0; e < MODEL_MAX_ENC; e++) exec_route_free(&x->inv[e]);
    (void)cudaFree(x->w), (void)cudaFree(x->g), (void)cudaFree(x->scratch);
    if (x->h) (void)cublasDestroy(x->h);
    if (x->s) (void)cudaStreamDestroy(x->s);
    free(x->r), free(x->hloss), free(x->htiles);
    free(x);
}

/* Wait for the stream. With a communicator, poll instead of blocking: NCCL's asynchronous error
 * (a dead peer, a network failure) fails this rank with NCCL's reason at once, and a stream
 * that does not finish within wait_s fails it with OS_ERR_TIMEOUT; either way the
 * communicator is marked for abort, so that the peers do not hang on this rank either. */
static OsStatus wait_stream(ExecMllm *x, const char *what) {
    OsStatus st = OS_OK;
    double t0 = os_now();
    if (!x->nc) {
        CUDA_CHECK(cudaStreamSynchronize(x->s));
        return OS_OK;
    }
    for (;;) {
        cudaError_t e = cudaStreamQuery(x->s);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) CUDA_CHECK(e);
        ncclResult_t ar = ncclSuccess;
        NCCL_CHECK(x->N->CommGetAsyncError(x->nc, &ar));
        if (ar != ncclSuccess && ar != ncclInProgress) {
            const char *last = x->N->GetLastError ? x->N->GetLastError(x->nc) : "";
            OS_FAIL(OS_ERR_NCCL, "nccl", "ncclCommGetAsyncError", "a peer failed or the network broke; NCCL_DEBUG=WARN "
                    "says more", "asynchronous error during %s: %s%s%s", what, exec_nccl_strerror(ar),
                    last && *last ? ": " : "", last ? last : "");
        }
        if (x->wait_s > 0 && os_now() - t0 > x->wait_s)
            OS_FAIL(OS_ERR_TIMEOUT, "nccl", what, "a peer is stuck or gone; raise --timeout if the step is just slow",
                    "the stream did not finish within %.3g s", x->wait_s);
        struct timespec ts = {0, 200000}; /* 0.2 ms: small against any step */
        nanosleep(&ts, NULL);
    }
fail:
    if (st != OS_OK) x->failed = 1;
    return st;
}

OsStatus exec_mllm_zero_grads(ExecMllm *x) {
    OsStatus st = OS_OK;
    CUDA_CHECK(cudaMemsetAsync(x->g, 0, x->total * sizeof(float), x->s));
fail:
    return st;
}

OsStatus exec_mllm_grads(ExecMllm *x, uint32_t k, float *out, uint64_t n) {
    OsStatus st = OS_OK;
    uint64_t have = k >= x->n_mod ? 0 : k <= x->E ? x->L[k].total : x->PL[k - x->E - 1].total;
    if (k >= x->n_mod || n > have)
        OS_FAIL(OS_ERR_ARG, "exec mllm", "module", NULL, "module %u of %u, %llu of %llu elements", k, x->n_mod,
                (unsigned long long)n, (unsigned long long)have);
    OS_CHECK(wait_stream(x, "a gradient copy"));
    CUDA_CHECK(cudaMemcpy(out, x->g + x->off[k], n * sizeof(float), cudaMemcpyDeviceToHost));
fail:
    return st;
}

/* ---- per-step buffers ------------------------------------------------------------------------ */

/* Point rank r's arrays into its block, laid out as lay. */
static void rank_carve(ExecMllm *x, Rank *r, const ExecRankLayout *lay) {
    char *p = r->act;
    const ExecRankIdx *ix = &r->idx;
    for (uint32_t e = 0; e < x->E; e++) {
        r->in_send[e] = (bf16 *)(p + lay->in_send[e]);
        r->merged[e] = (bf16 *)(p + lay->merged[e]);
        r->z1[e] = (bf16 *)(p + lay->z1[e]);
        r->g1[e] = (bf16 *)(p + lay->g1[e]);
        r->proj[e] = (bf16 *)(p + lay->proj[e]);
        r->emb_send[e] = (bf16 *)(p + lay->emb_send[e]);
        r->emb_recv[e] = (bf16 *)(p + lay->emb_recv[e]);
        r->dg1[e] = (bf16 *)(p + lay->dg1[e]);
        r->dmerged[e] = (bf16 *)(p + lay->dmerged[e]);
        r->denc[e] = (bf16 *)(p + lay->denc[e]);
        exec_stack_acts_carve(&r->enc[e], &lay->enc_acts[e], (int)ix->enc_rows[e], x->mm.fused[e], p + lay->enc[e]);
    }
    r->text_send = (int *)(p + lay->text_send);
    r->text_recv = (int *)(p + lay->text_recv);
    r->ids = (int *)(p + lay->ids);
    r->labels = (int *)(p + lay->labels);
    r->next_same = (int *)(p + lay->next_same);
    r->logits = (float *)(p + lay->logits);
    r->loss = (float *)(p + lay->loss);
    r->dlogits = (bf16 *)(p + lay->dlogits);
    r->dout = (bf16 *)(p + lay->dout);
    exec_stack_acts_carve(&r->llm, &lay->llm_acts, (int)ix->llm_rows, x->mm.fused[x->E], p + lay->llm);
}

/* Index lists, blocks, scratch and relays of step sp (inverse routes in x->inv), all grown
 * before the step's first move (memplan.h replays exactly this). */
static OsStatus prepare(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id) {
    OsStatus st = OS_OK;
    uint64_t rows = 1;
    uint32_t longest = 1;
    for (uint32_t k = 0; k < x->n_local; k++) {
        Rank *r = &x->r[k];
        ExecRankIdx *ix = &r->idx;
        ExecRankLayout lay;
        const uint32_t d = exec_comm_rank(x->comm, k);
        OS_CHECK(exec_rank_idx_build(ix, sp, &x->m, ex_id, d));
        for (uint32_t e = 0; e < x->E; e++) {
            rows = OS_MAX(rows, ix->enc_rows[e]);
            longest = OS_MAX(longest, ix->enc_longest[e]);
        }
        rows = OS_MAX(rows, ix->llm_rows);
        longest = OS_MAX(longest, ix->llm_longest);
        if (ix->llm_rows >= (uint64_t)INT32_MAX || rows >= (uint64_t)INT32_MAX)
            OS_FAIL(OS_ERR_RANGE, "exec mllm", "rows", "use more ranks", "%llu rows on one rank", (unsigned long long)rows);
        exec_rank_layout(&lay, &x->mm, ix);
        OS_CHECK(dev_grow(&r->act, &r->act_cap, lay.total, &x->held.activations, x->s));
        rank_carve(x, r, &lay);
        OS_CHECK(dev_grow((char **)&r->dblk, &r->dblk_cap, exec_rank_idx_bytes(ix), &x->held.index, x->s));
        CUDA_CHECK(cudaMemcpyAsync(r->dblk, ix->blk, ix->n_blk * sizeof(uint64_t), cudaMemcpyHostToDevice, x->s));
        CUDA_CHECK(cudaMemcpyAsync(r->next_same, ix->next_same, ix->llm_rows * sizeof(int), cudaMemcpyHostToDevice, x->s));
        /* the host blocks are pageable and rebuilt next step: finish the copies first */
        CUDA_CHECK(cudaStreamSynchronize(x->s));
        {
            /* relays of every route this rank moves in the step (stream idle here) */
            size_t mid = 0, out = 0, a, b;
            const size_t hl = (size_t)x->m.llm.hidden * sizeof(bf16);
            for (uint32_t e = 0; e < x->E; e++) {
                exec_route_relay_bytes(&sp->in[e], d, (size_t)x->L[e].H * sizeof(bf16), &a, &b);
                mid = OS_MAX(mid, a), out = OS_MAX(out, b);
                exec_route_relay_bytes(&sp->emb[e], d, hl, &a, &b);
                mid = OS_MAX(mid, a), out = OS_MAX(out, b);
                exec_route_relay_bytes(&x->inv[e], d, hl, &a, &b);
                mid = OS_MAX(mid, a), out = OS_MAX(out, b);
            }
            exec_route_relay_bytes(&sp->text, d, sizeof(int32_t), &a, &b);
            mid = OS_MAX(mid, a), out = OS_MAX(out, b);
            double ignored = 0; /* relays are counted by the comm layer itself */
            OS_CHECK(exec_comm_reserve(x->comm, k, mid, out, &ignored));
        }
    }
    {
        ExecScratchLayout lay;
        exec_scratch_layout(&lay, &x->mm, rows, longest);
        OS_CHECK(dev_grow(&x->scratch, &x->scratch_cap, lay.total, &x->held.scratch, x->s));
        if (x->htiles_cap < 2 * lay.max_tiles) {
            void *p = x->htiles;
            OS_CHECK(os_grow(&p, &x->htiles_cap, 2 * lay.max_tiles, sizeof *x->htiles));
            x->htiles = (ExecFlashTile *)p;
        }
        exec_stack_scratch_carve(&x->sc, &lay, x->scratch, x->htiles);
    }
fail:
    return st;
}

#define DEV(r, list) ((r)->dblk + (r)->idx.list.off)

/* ---- phases of one rank --------------------------------------------------------------------- */

static OsStatus ev_begin(ExecMllm *x, Rank *r, int slot) {
    OsStatus st = OS_OK;
    CUDA_CHECK(cudaEventRecord(r->ev[2 * slot], x->s));
    r->ev_used[slot] = 1;
fail:
    return st;
}
static OsStatus ev_end(ExecMllm *x, Rank *r, int slot) {
    OsStatus st = OS_OK;
    CUDA_CHECK(cudaEventRecord(r->ev[2 * slot + 1], x->s));
fail:
    return st;
}

static OsStatus encoder_forward(ExecMllm *x, Rank *r, uint32_t e) {
    OsStatus st = OS_OK;
    const ExecRankIdx *ix = &r->idx;
    const int T = (int)ix->enc_rows[e], He = (int)x->L[e].H, Hl = (int)x->m.llm.hidden, R = (int)x->PL[e].r;
    const int tok = (int)ix->enc_tok[e];
    const bf16 *W = x->w + x->off[e], *Wp = x->w + x->off[x->E + 1 + e];
    if (T == 0) return OS_OK;
    OS_CHECK(exec_stack_forward(&r->enc[e], W, &x->L[e], exec_idx(ix, ix->enc_len[e]), (int)ix->enc_len[e].n, &x->sc,
                                x->h, x->s));
    /* ratio merge of the real positions: merged [tok R, He] rows, zero past an item's end */
    CUDA_CHECK(cudaMemsetAsync(r->merged[e], 0, (size_t)tok * R * He * sizeof(bf16), x->s));
    OS_CHECK(k_rows_copy(r->merged[e], r->enc[e].out, DEV(r, merge[e]), (int)ix->merge[e].n, He, 0, x->s));
    OS_CHECK(exec_mm_forward(r->z1[e], CUDA_R_16BF, r->merged[e], Wp + x->PL[e].p1, tok, R * He, Hl, 0.0f, x->h));
    OS_CHECK(k_gelu_forward(r->g1[e], r->z1[e], (size_t)tok * Hl, x->s));
    OS_CHECK(exec_mm_forward(r->proj[e], CUDA_R_16BF, r->g1[e], Wp + x->PL[e].p2, tok, Hl, Hl, 0.0f, x->h));
    OS_CHECK(k_rows_copy(r->emb_send[e], r->proj[e], DEV(r, pack[e]), (int)ix->pack[e].n, Hl, 0, x->s));
fail:
    return st;
}

static OsStatus encoder_backward(ExecMllm *x, Rank *r, uint32_t e) {
    OsStatus st = OS_OK;
    const ExecRankIdx *ix = &r->idx;
    const int T = (int)ix->enc_rows[e], He = (int)x->L[e].H, Hl = (int)x->m.llm.hidden, R = (int)x->PL[e].r;
    const int tok = (int)ix->enc_tok[e];
    const bf16 *W = x->w + x->off[e], *Wp = x->w + x->off[x->E + 1 + e];
    float *dW = x->g + x->off[e], *dWp = x->g + x->off[x->E + 1 + e];
    if (T == 0) return OS_OK;
    /* the returned gradients sit in emb_send's layout: unpack into projector order */
    OS_CHECK(k_rows_copy(r->proj[e], r->emb_send[e], DEV(r, pack[e]), (int)ix->pack[e].n, Hl, 1, x->s));
    OS_CHECK(exec_mm_backward_x(r->dg1[e], r->proj[e], Wp + x->PL[e].p2, tok, Hl, Hl, 0.0f, x->h));
    OS_CHECK(exec_mm_backward_w(dWp + x->PL[e].p2, r->proj[e], r->g1[e], tok, Hl, Hl, x->h));
    OS_CHECK(k_gelu_backward(r->dg1[e], r->z1[e], r->dg1[e], (size_t)tok * Hl, x->s));
    OS_CHECK(exec_mm_backward_x(r->dmerged[e], r->dg1[e], Wp + x->PL[e].p1, tok, R * He, Hl, 0.0f, x->h));
    OS_CHECK(exec_mm_backward_w(dWp + x->PL[e].p1, r->dg1[e], r->merged[e], tok, R * He, Hl, x->h));
    /* un-merge: padding positions get no gradient from the projector */
    CUDA_CHECK(cudaMemsetAsync(r->denc[e], 0, (size_t)T * He * sizeof(bf16), x->s));
    OS_CHECK(k_rows_copy(r->denc[e], r->dmerged[e], DEV(r, merge[e]), (int)ix->merge[e].n, He, 1, x->s));
    OS_CHECK(exec_stack_backward(dW, W, &x->L[e], &r->enc[e], r->denc[e], exec_idx(ix, ix->enc_len[e]),
                                 (int)ix->enc_len[e].n, &x->sc, x->h, x->s));
fail:
    return st;
}

static OsStatus llm_forward(ExecMllm *x, Rank *r, double label_norm) {
    OsStatus st = OS_OK;
    const ExecRankIdx *ix = &r->idx;
    const ExecStackLayout *L = &x->L[x->E];
    const int T = (int)ix->llm_rows, Hl = (int)L->H, V = (int)L->V;
    const bf16 *W = x->w + x->off[x->E];
    bf16 *x0 = r->llm.x;
    if (T == 0) return OS_OK;
    for (uint32_t e = 0; e < x->E; e++)
        OS_CHECK(k_rows_copy(x0, r->emb_recv[e], DEV(r, gather[e]), (int)ix->gather[e].n, Hl, 0, x->s));
    CUDA_CHECK(cudaMemsetAsync(r->ids, 0xFF, ((size_t)T + 1) * sizeof(int), x->s)); /* -1: not text */
    OS_CHECK(k_ids_scatter(r->ids, r->text_recv, DEV(r, tgather), (int)ix->tgather.n, x->s));
    OS_CHECK(k_embed_rows_forward(x0, W + L->emb, r->ids, T, Hl, x->s));
    OS_CHECK(k_labels(r->labels, r->ids, r->next_same, T, x->s));
    OS_CHECK(exec_stack_forward(&r->llm, W, L, exec_idx(ix, ix->llm_len), (int)ix->llm_len.n, &x->sc, x->h, x->s));
    OS_CHECK(exec_mm_forward(r->logits, CUDA_R_32F, r->llm.out, W + L->lm_head, T, Hl, V, 0.0f, x->h));
    OS_CHECK(k_xent(r->loss, r->dlogits, r->logits, r->labels, T, V, label_norm, x->s));
fail:
    return st;
}

static OsStatus llm_backward(ExecMllm *x, Rank *r) {
    OsStatus st = OS_OK;
    const ExecRankIdx *ix = &r->idx;
    const ExecStackLayout *L = &x->L[x->E];
    const int T = (int)ix->llm_rows, Hl = (int)L->H, V = (int)L->V;
    const bf16 *W = x->w + x->off[x->E];
    float *dW = x->g + x->off[x->E];
    if (T == 0) return OS_OK;
    OS_CHECK(exec_mm_backward_x(r->dout, r->dlogits, W + L->lm_head, T, Hl, V, 0.0f, x->h));
    OS_CHECK(exec_mm_backward_w(dW + L->lm_head, r->dlogits, r->llm.out, T, Hl, V, x->h));
    OS_CHECK(exec_stack_backward(dW, W, L, &r->llm, r->dout, exec_idx(ix, ix->llm_len), (int)ix->llm_len.n, &x->sc,
                                 x->h, x->s));
    OS_CHECK(k_embed_rows_backward(dW + L->emb, x->sc.dx, r->ids, T, Hl, x->s));
    /* item rows' gradients into the embeddings' receive layout: the inverse move's send side */
    for (uint32_t e = 0; e < x->E; e++)
        OS_CHECK(k_rows_copy(r->emb_recv[e], x->sc.dx, DEV(r, gather[e]), (int)ix->gather[e].n, Hl, 1, x->s));
fail:
    return st;
}

/* ---- the step -------------------------------------------------------------------------------- */

/* A move of all local ranks, timed on every local rank's slot (one exchange). */
static OsStatus move(ExecMllm *x, const ExecRoute *rt, void **recv, void **send, size_t rb, int slot, int first) {
    OsStatus st = OS_OK;
    Rank *r0 = &x->r[0];
    if (first) OS_CHECK(ev_begin(x, r0, slot));
    OS_CHECK(exec_comm_route(x->comm, rt, recv, (const void *const *)send, rb));
    OS_CHECK(ev_end(x, r0, slot));
fail:
    return st;
}

static double ev_secs(cudaEvent_t a, cudaEvent_t b, OsStatus *st) {
    float ms = 0;
    cudaError_t e = cudaEventElapsedTime(&ms, a, b);
    if (e != cudaSuccess && *st == OS_OK)
        *st = os_fail(OS_ERR_CUDA, "cuda", "cudaEventElapsedTime", NULL, "%s", cudaGetErrorString(e));
    return ms * 1e-3;
}

OsStatus exec_mllm_step(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t seed,
                        double label_norm, ExecRankTimes *t) {
    OsStatus st = OS_OK;
    const uint32_t E = x->E, P = E + 1, nl = x->n_local;
    void *send[64], *recv[64];
    ExecRoute *inv = x->inv;
    if (nl > 64) OS_FAIL(OS_ERR_RANGE, "exec mllm", "local ranks", "use --gpus <= 64 with --emulate", "%u", nl);
    if (sp->D != x->D || sp->E != E)
        OS_FAIL(OS_ERR_INTERNAL, "exec mllm", "plan", NULL, "plan for %u ranks / %u encoders, executor %u / %u", sp->D,
                sp->E, x->D, E);
    for (uint32_t e = 0; e < E; e++) {
        exec_route_free(&inv[e]);
        OS_CHECK(exec_route_inverse(&inv[e], &sp->emb[e]));
    }
    OS_CHECK(prepare(x, sp, ex_id)); /* after the inverses: their relays are reserved too */
    for (uint32_t k = 0; k < nl; k++) {
        memset(x->r[k].ev_used, 0, sizeof x->r[k].ev_used);
        OS_CHECK(ev_begin(x, &x->r[k], EV_STEP));
    }
    /* encoders: home ranks generate their items' features, the inputs move, each rank encodes */
    for (uint32_t e = 0; e < E; e++) {
        const size_t rb = x->L[e].H * sizeof(bf16);
        for (uint32_t k = 0; k < nl; k++) {
            Rank *r = &x->r[k];
            OS_CHECK(k_item_inputs(r->in_send[e], DEV(r, fill[e]), (int)r->idx.fill[e].n, (int)x->L[e].H, seed, x->s));
            send[k] = r->in_send[e], recv[k] = r->enc[e].x;
        }
        OS_CHECK(move(x, &sp->in[e], recv, send, rb, EV_A2A + (int)e, 1));
        for (uint32_t k = 0; k < nl; k++) {
            OS_CHECK(ev_begin(x, &x->r[k], EV_FWD + (int)e));
            OS_CHECK(encoder_forward(x, &x->r[k], e));
            OS_CHECK(ev_end(x, &x->r[k], EV_FWD + (int)e));
        }
    }
    /* embeddings and token ids to the LLM ranks */
    for (uint32_t k = 0; k < nl; k++) {
        Rank *r = &x->r[k];
        OS_CHECK(k_text_ids(r->text_send, DEV(r, text_fill), (int)r->idx.text_fill.n, (int)x->m.llm.vocab, seed, x->s));
    }
    for (uint32_t e = 0; e < E; e++) {
        for (uint32_t k = 0; k < nl; k++) send[k] = x->r[k].emb_send[e], recv[k] = x->r[k].emb_recv[e];
        OS_CHECK(move(x, &sp->emb[e], recv, send, x->m.llm.hidden * sizeof(bf16), EV_A2A + (int)E, e == 0));
    }
    for (uint32_t k = 0; k < nl; k++) send[k] = x->r[k].text_send, recv[k] = x->r[k].text_recv;
    OS_CHECK(move(x, &sp->text, recv, send, sizeof(int), EV_A2A + (int)E, E == 0));
    /* the LLM, forward then backward */
    for (uint32_t k = 0; k < nl; k++) {
        Rank *r = &x->r[k];
        OS_CHECK(ev_begin(x, r, EV_FWD + (int)E));
        OS_CHECK(llm_forward(x, r, label_norm));
        OS_CHECK(ev_end(x, r, EV_FWD + (int)E));
        OS_CHECK(ev_begin(x, r, EV_BWD + (int)E));
        OS_CHECK(llm_backward(x, r));
        OS_CHECK(ev_end(x, r, EV_BWD + (int)E));
    }
    /* encoders backward, last first, each after its embeddings' gradients came back. The
     * inverse move has its own slot (EV_INV) so the forward input move of the same encoder
     * keeps its own: both are summed into a2a[e] below. */
    for (uint32_t q = 0; q < E; q++) {
        uint32_t e = E - 1 - q;
        for (uint32_t k = 0; k < nl; k++) send[k] = x->r[k].emb_recv[e], recv[k] = x->r[k].emb_send[e];
        OS_CHECK(move(x, &inv[e], recv, send, x->m.llm.hidden * sizeof(bf16), EV_INV + (int)e, 1));
        for (uint32_t k = 0; k < nl; k++) {
            OS_CHECK(ev_begin(x, &x->r[k], EV_BWD + (int)e));
            OS_CHECK(encoder_backward(x, &x->r[k], e));
            OS_CHECK(ev_end(x, &x->r[k], EV_BWD + (int)e));
        }
    }
    for (uint32_t k = 0; k < nl; k++) OS_CHECK(ev_end(x, &x->r[k], EV_STEP));
    OS_CHECK(wait_stream(x, "the step"));
    /* read the events and the loss */
    for (uint32_t k = 0; k < nl; k++) {
        Rank *r = &x->r[k], *r0 = &x->r[0];
        ExecRankTimes *o = &t[k];
        memset(o, 0, sizeof *o);
        for (uint32_t p = 0; p < P; p++) {
            if (r->ev_used[EV_FWD + p]) o->fwd[p] = ev_secs(r->ev[2 * (EV_FWD + p)], r->ev[2 * (EV_FWD + p) + 1], &st);
            if (r->ev_used[EV_BWD + p]) o->bwd[p] = ev_secs(r->ev[2 * (EV_BWD + p)], r->ev[2 * (EV_BWD + p) + 1], &st);
            if (r0->ev_used[EV_A2A + p])
                o->a2a[p] = ev_secs(r0->ev[2 * (EV_A2A + p)], r0->ev[2 * (EV_A2A + p) + 1], &st);
            if (p < E && r0->ev_used[EV_INV + p])
                o->a2a[p] += ev_secs(r0->ev[2 * (EV_INV + p)], r0->ev[2 * (EV_INV + p) + 1], &st);
        }
        o->step = ev_secs(r->ev[2 * EV_STEP], r->ev[2 * EV_STEP + 1], &st);
        uint64_t T = r->idx.llm_rows;
        void *hl = x->hloss;
        OS_CHECK(os_grow(&hl, &x->hloss_cap, T + 1, sizeof(float)));
        x->hloss = (float *)hl;
        CUDA_CHECK(cudaMemcpy(x->hloss, r->loss, T * sizeof(float), cudaMemcpyDeviceToHost));
        for (uint64_t i = 0; i < T; i++) o->loss += x->hloss[i];
    }
    if (st != OS_OK) goto fail;
fail:
    if (st != OS_OK) x->failed = 1;
    return st;
}

OsStatus exec_mllm_grad_sync(ExecMllm *x, int fsdp, double *secs) {
    OsStatus st = OS_OK;
    *secs = 0;
    if (exec_comm_is_local(x->comm)) return OS_OK;
    CUDA_CHECK(cudaEventRecord(x->sync_ev[0], x->s));
    OS_CHECK(exec_comm_grad_sync(x->comm, x->g, x->total, x->w, x->total, fsdp));
    CUDA_CHECK(cudaEventRecord(x->sync_ev[1], x->s));
    OS_CHECK(wait_stream(x, "the gradient sync"));
    *secs = ev_secs(x->sync_ev[0], x->sync_ev[1], &st);
fail:
    if (st != OS_OK) x->failed = 1;
    return st;
}
