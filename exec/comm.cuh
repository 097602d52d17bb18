/* comm.cuh — the data movement of the GPU backend: plan.h's routes as all-to-allv, and the
 * gradient sync.
 * Implements: two backends behind one call. NCCL: this process is rank `rank` of D; every
 *   stage of a route is one ncclGroupStart / ncclSend + ncclRecv per peer with rows /
 *   ncclGroupEnd (the block to itself is a device copy); between the two stages of a
 *   node-wise route (plan.hierarchical) the relay copies each unit from its stage-0 receive
 *   slot to its stage-1 send slot. Gradient sync: DDP one ncclAllReduce (sum) of the flat
 *   fp32 gradients; FSDP ncclReduceScatter of the gradients + ncclAllGather of the bf16
 *   weights (in place; both counts must divide by D: mllm.cu pads its flat buffers), the
 *   bytes FSDP moves per step (no optimizer runs, so the gathered weights are unchanged).
 *   LOCAL: all D ranks live in this process on one device (tests, --emulate): the same
 *   blocks moved with cudaMemcpyAsync, and a no-op sync because the local ranks share one
 *   gradient buffer, which then holds the sum already.
 * Does not: time anything (callers put CUDA events around the calls) or own the rank buffers.
 * Source: nccl-tests' alltoall (grouped send/recv); DESIGN.md §3, §6. Only for .cu files. */
#ifndef OS_EXEC_COMM_CUH
#define OS_EXEC_COMM_CUH

#include "exec/kernels/common.cuh"

extern "C" {
#include "exec/plan.h"
}

typedef struct ExecComm ExecComm;

/* D local ranks on the current device, work on stream s (borrowed). */
OsStatus exec_comm_create_local(ExecComm **out, uint32_t D, cudaStream_t s);
/* Rank `rank` of D over an initialised communicator (borrowed: the caller destroys or aborts
 * it); N: the loaded NCCL (nccl_dl.cuh, borrowed). */
OsStatus exec_comm_create_nccl(ExecComm **out, const ExecNccl *N, ncclComm_t nc, uint32_t rank, uint32_t D,
                               cudaStream_t s);
void exec_comm_destroy(ExecComm *c); /* NULL-safe; synchronises the stream first */
uint32_t exec_comm_n_local(const ExecComm *c);           /* D (local) or 1 (NCCL) */
uint32_t exec_comm_rank(const ExecComm *c, uint32_t k);  /* global rank of local rank k */
int exec_comm_is_local(const ExecComm *c);

/* Make local rank k's relay buffers at least mid / out bytes (exec_route_relay_bytes of every
 * route of the step, memplan.h): called before the step's first move, when the stream is
 * idle, so that no buffer is freed under a pending copy or NCCL call. *grown += bytes newly
 * allocated (the executor's count). */
OsStatus exec_comm_reserve(ExecComm *c, uint32_t k, size_t mid, size_t out, double *grown);
/* Relay bytes held (all local ranks). */
double exec_comm_relay_bytes(const ExecComm *c);
/* Move route r: send[k] (laid out as r->st[0]'s send side of local rank k) -> recv[k] (the
 * last stage's receive side); row_bytes bytes per row; a node-wise route needs its relays
 * reserved. The relay is one cudaMemcpyAsync per unit: launch-bound for thousands of small
 * units (a segment-copy kernel, rows.cu, is the known fix). */
OsStatus exec_comm_route(ExecComm *c, const ExecRoute *r, void *const *recv, const void *const *send,
                         size_t row_bytes);
/* Sum the gradients over the ranks (see above); n, nw: elements, multiples of D for fsdp. */
OsStatus exec_comm_grad_sync(ExecComm *c, float *grads, uint64_t n, bf16 *weights, uint64_t nw, int fsdp);

#endif
