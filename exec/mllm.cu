/* mllm.cu — see mllm.h. Layout of the work: host index lists per rank (rankidx.h), one
 * device block of activations per rank carved per step (grown, never shrunk: no allocation in
 * steady state), one shared backward scratch (the local ranks run one after another on one
 * stream), one stream, events around every phase. */
#include <stdlib.h>
#include <string.h>

#include "exec/attn.h"
#include "exec/comm.cuh"
#include "exec/kernels/kernels.cuh"
#include "exec/stack.cuh"

extern "C" {
#include "exec/mllm.h"
#include "exec/rankidx.h"
#include "base/util.h"
}

#define ALIGN 256
static size_t al(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

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
    char *act;       /* device activation block */
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
    ExecStackLayout L[MODEL_MAX_ENC + 1];
    ExecProjLayout PL[MODEL_MAX_ENC];
    uint64_t off[2 * MODEL_MAX_ENC + 1], total; /* flat offsets (elements); total padded to D */
    bf16 *w;
    float *g;
    cudaStream_t s;
    cublasHandle_t h;
    ncclComm_t nc;
    int nccl, failed;
    ExecComm *comm;
    char *scratch;
    size_t scratch_cap;
    StackScratch sc;
    uint32_t n_local;
    Rank *r;
    float *hloss;
    size_t hloss_cap;
    cudaEvent_t sync_ev[2];
};

uint32_t exec_mllm_n_local(const ExecMllm *x) { return x ? x->n_local : 0; }
void exec_mllm_mark_failed(ExecMllm *x) {
    if (x) x->failed = 1;
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

static OsStatus grow(char **p, size_t *cap, size_t bytes, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (bytes <= *cap) return OS_OK;
    CUDA_CHECK(cudaStreamSynchronize(s)); /* the old block may still be read on the stream */
    CUDA_CHECK(cudaFree(*p));
    *p = NULL, *cap = 0;
    CUDA_CHECK(cudaMalloc((void **)p, bytes));
    *cap = bytes;
fail:
    return st;
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
    for (uint32_t k = 0; k < x->n_mod; k++) {
        x->off[k] = x->total;
        if (k <= x->E) {
            exec_stack_layout(&x->L[k], k < x->E ? &m->enc[k].stack : &m->llm);
            x->total += x->L[k].total;
        } else {
            const EncoderSpec *e = &m->enc[k - x->E - 1];
            exec_proj_layout(&x->PL[k - x->E - 1], e->stack.hidden, m->llm.hidden, e->ratio);
            x->total += x->PL[k - x->E - 1].total;
        }
        /* each module's start 128-element aligned: GEMM operands want 16-byte alignment */
        x->total = (x->total + 127) / 128 * 128;
    }
    x->total = (x->total + D - 1) / D * D; /* FSDP splits the flat buffers evenly */
    CUDA_CHECK(cudaMalloc((void **)&x->w, x->total * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc((void **)&x->g, x->total * sizeof(float)));
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
    *len = 0;
    if (cap < sizeof id) OS_FAIL(OS_ERR_INTERNAL, "nccl", "unique id", NULL, "%zu bytes of room, %zu needed", cap, sizeof id);
    NCCL_CHECK(ncclGetUniqueId(&id));
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
    *out = NULL;
    if (id_len != sizeof uid) OS_FAIL(OS_ERR_INTERNAL, "nccl", "unique id", NULL, "%zu bytes, %zu expected", id_len, sizeof uid);
    memcpy(&uid, id, sizeof uid);
    OS_CHECK(mllm_alloc(&x, m, seed, D, 1, device));
    x->nccl = 1;
    NCCL_CHECK(ncclCommInitRank(&x->nc, (int)D, uid, (int)rank));
    OS_CHECK(exec_comm_create_nccl(&x->comm, x->nc, rank, D, x->s));
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
    if (x->nc && x->failed) (void)ncclCommAbort(x->nc), x->nc = NULL;
    if (x->s) (void)cudaStreamSynchronize(x->s);
    if (x->nc) (void)ncclCommDestroy(x->nc);
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
    (void)cudaFree(x->w), (void)cudaFree(x->g), (void)cudaFree(x->scratch);
    if (x->h) (void)cublasDestroy(x->h);
    if (x->s) (void)cudaStreamDestroy(x->s);
    free(x->r), free(x->hloss);
    free(x);
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
    CUDA_CHECK(cudaStreamSynchronize(x->s));
    CUDA_CHECK(cudaMemcpy(out, x->g + x->off[k], n * sizeof(float), cudaMemcpyDeviceToHost));
fail:
    return st;
}

/* ---- per-step buffers ------------------------------------------------------------------------ */

/* Bytes (carve = 0) or carve (carve = 1) rank r's block for its index. */
static size_t rank_layout(ExecMllm *x, Rank *r, int carve) {
    const ExecRankIdx *ix = &r->idx;
    const size_t Hl = x->m.llm.hidden, V = x->m.llm.vocab;
    char *p = r->act;
    size_t b = 0;
#define TAKE(ptr, type, n)                                     \
    do {                                                       \
        if (carve) ptr = (type *)(p + b);                      \
        b += al((size_t)(n) * sizeof(type) + 1);               \
    } while (0)
    for (uint32_t e = 0; e < x->E; e++) {
        size_t He = x->L[e].H, R = x->PL[e].r, tok = ix->enc_tok[e];
        TAKE(r->in_send[e], bf16, ix->in_send_rows[e] * He);
        TAKE(r->merged[e], bf16, tok * R * He);
        TAKE(r->z1[e], bf16, tok * Hl);
        TAKE(r->g1[e], bf16, tok * Hl);
        TAKE(r->proj[e], bf16, tok * Hl);
        TAKE(r->emb_send[e], bf16, ix->emb_send_rows[e] * Hl);
        TAKE(r->emb_recv[e], bf16, ix->emb_recv_rows[e] * Hl);
        TAKE(r->dg1[e], bf16, tok * Hl);
        TAKE(r->dmerged[e], bf16, tok * R * He);
        TAKE(r->denc[e], bf16, ix->enc_rows[e] * He);
        if (carve) exec_stack_acts_carve(&r->enc[e], &x->L[e], (int)ix->enc_rows[e], p + b);
        b += al(exec_stack_acts_bytes(&x->L[e], (int)ix->enc_rows[e]));
    }
    size_t T = ix->llm_rows;
    TAKE(r->text_send, int, ix->text_send_rows);
    TAKE(r->text_recv, int, ix->text_recv_rows);
    TAKE(r->ids, int, T + 1);
    TAKE(r->labels, int, T);
    TAKE(r->next_same, int, T);
    TAKE(r->logits, float, T * V);
    TAKE(r->loss, float, T);
    TAKE(r->dlogits, bf16, T * V);
    TAKE(r->dout, bf16, T * Hl);
    if (carve) exec_stack_acts_carve(&r->llm, &x->L[x->E], (int)T, p + b);
    b += al(exec_stack_acts_bytes(&x->L[x->E], (int)T));
#undef TAKE
    return b;
}

static OsStatus prepare(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id) {
    OsStatus st = OS_OK;
    uint64_t rows = 1;
    uint32_t longest = 1;
    for (uint32_t k = 0; k < x->n_local; k++) {
        Rank *r = &x->r[k];
        ExecRankIdx *ix = &r->idx;
        OS_CHECK(exec_rank_idx_build(ix, sp, &x->m, ex_id, exec_comm_rank(x->comm, k)));
        for (uint32_t e = 0; e < x->E; e++) {
            rows = OS_MAX(rows, ix->enc_rows[e]);
            longest = OS_MAX(longest, ix->enc_longest[e]);
        }
        rows = OS_MAX(rows, ix->llm_rows);
        longest = OS_MAX(longest, ix->llm_longest);
        if (ix->llm_rows >= (uint64_t)INT32_MAX || rows >= (uint64_t)INT32_MAX)
            OS_FAIL(OS_ERR_RANGE, "exec mllm", "rows", "use more ranks", "%llu rows on one rank", (unsigned long long)rows);
        OS_CHECK(grow(&r->act, &r->act_cap, rank_layout(x, r, 0), x->s));
        rank_layout(x, r, 1);
        OS_CHECK(grow((char **)&r->dblk, &r->dblk_cap, ix->n_blk * sizeof(uint64_t) + 8, x->s));
        CUDA_CHECK(cudaMemcpyAsync(r->dblk, ix->blk, ix->n_blk * sizeof(uint64_t), cudaMemcpyHostToDevice, x->s));
        CUDA_CHECK(cudaMemcpyAsync(r->next_same, ix->next_same, ix->llm_rows * sizeof(int), cudaMemcpyHostToDevice, x->s));
        /* the host blocks are pageable and rebuilt next step: finish the copies first */
        CUDA_CHECK(cudaStreamSynchronize(x->s));
    }
    {
        size_t need = exec_stack_scratch_bytes(x->L, (int)x->E + 1, (int)rows, (int)longest);
        if (need > x->scratch_cap) {
            OS_CHECK(grow(&x->scratch, &x->scratch_cap, need, x->s));
        }
        exec_stack_scratch_carve(&x->sc, x->L, (int)x->E + 1, (int)rows, (int)longest, x->scratch);
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
    ExecRoute inv[MODEL_MAX_ENC];
    memset(inv, 0, sizeof inv);
    if (nl > 64) OS_FAIL(OS_ERR_RANGE, "exec mllm", "local ranks", "use --gpus <= 64 with --emulate", "%u", nl);
    if (sp->D != x->D || sp->E != E)
        OS_FAIL(OS_ERR_INTERNAL, "exec mllm", "plan", NULL, "plan for %u ranks / %u encoders, executor %u / %u", sp->D,
                sp->E, x->D, E);
    OS_CHECK(prepare(x, sp, ex_id));
    for (uint32_t e = 0; e < E; e++) OS_CHECK(exec_route_inverse(&inv[e], &sp->emb[e]));
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
    CUDA_CHECK(cudaStreamSynchronize(x->s));
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
    for (uint32_t e = 0; e < E; e++) exec_route_free(&inv[e]);
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
    CUDA_CHECK(cudaStreamSynchronize(x->s));
    *secs = ev_secs(x->sync_ev[0], x->sync_ev[1], &st);
fail:
    if (st != OS_OK) x->failed = 1;
    return st;
}
