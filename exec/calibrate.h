/* calibrate.h — measure the achieved-rate table (sim/cost.h Calib, format v2) on GPU 0.
 * Implements, in plain C (so that CI drives it with a fake timer): the measurement plan and
 *   the table it makes.
 *   - GEMMs: one complete (m, n, k) grid, every cell measured and kept. m and k run over the
 *     token ladder min_tokens .. max_tokens (doubling; it spans the weight sizes too, which
 *     the weight-gradient GEMM puts on m and its token count on k: cost.c asks
 *     (M, N, K), (M, K, N) and (K, N, M)); n over the model's distinct weight sizes (every
 *     stack's QKV, O, MLP in/out, LM head and the projectors), thinned evenly in log space,
 *     smallest and largest kept, to fit CALIB_MAX_GEMM cells. Noise that makes a bigger GEMM
 *     faster is clamped by calib_validate (time made non-decreasing), never a reason to drop
 *     a run (issue 10, defect 3).
 *   - Attention: the backend's fused variable-length kernel (exec/flash.h; with
 *     ORCHSIM_ATTN=cublas, its cuBLAS twin, and the file says so), forward and backward,
 *     causal and bidirectional, one sequence of each length min_len .. max_len (doubling), at
 *     every distinct head dimension of the model's stacks with that stack's heads and KV
 *     groups; rates in FlashAttention's convention (cost.h).
 *   - HBM: a streaming copy kernel over copy_bytes, counted read + write.
 *   - kernel_launch_s: the GPU time of one tiny memory-bound kernel, back to back.
 *   - overlap_slowdown = 1 - t_alone / t_beside of a large GEMM, alone and beside a copy
 *     kernel on another stream that holds EXEC_CAL_PROXY_CTAS CTAs (about NCCL's channel
 *     count) streaming HBM: a labelled proxy for NCCL (one GPU has no peers), recorded as
 *     such in the file's provenance.
 *   - gemm_sustained: the overlap GEMM (below) back to back for sustain_s seconds, the first
 *     half untimed (the board reaching its power and thermal steady state, as in a training
 *     run), the median of the second; the grid above is a burst measurement, and
 *     calib_validate scales it by the ratio (sim/calib.c prepare_sustain).
 *   - peak_flops: 4096 dense bf16 FLOP/clock/SM on sm_90 (REFERENCE.md §D.4) at the SM clock,
 *     raised to the best measured GEMM if one beats it (a table is never refused for it).
 *   Timing is the timer's: warm-up launches, then `repeats` launches between CUDA events,
 *   median (STYLE.md habit 7).
 * Does not: time anything itself (ExecCalTimer: the GPU module's, or a test's fake), measure
 *   collectives (intra_bw/inter_bw stay 0), or write the file (cli/cmd_calibrate.c). */
#ifndef OS_EXEC_CALIBRATE_H
#define OS_EXEC_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "exec/gpu.h"
#include "sim/cost.h"
#include "sim/model.h"

#define EXEC_CAL_PROXY_CTAS 16 /* CTAs of the overlap proxy (NCCL rings use 16-32 on H100) */

typedef struct {
    uint32_t repeats, warmup;
    uint32_t min_tokens, max_tokens; /* GEMM m and k ladder, doubling */
    uint32_t min_len, max_len;       /* attention lengths, doubling */
    double copy_bytes;               /* HBM copy size */
    double sustain_s;                /* seconds of the sustained GEMM burn (half untimed, half
                                        timed); 0 = skip (gemm_sustained not written) */
    int verbose;                     /* one stderr line per measurement */
} ExecCalibOptions;

void exec_calib_options_init(ExecCalibOptions *o); /* 20, 5, 256, 32768, 64, 16384, 2 GiB, 60 s */

typedef enum { EXEC_CW_GEMM, EXEC_CW_ATTN, EXEC_CW_COPY, EXEC_CW_LAUNCH, EXEC_CW_GEMM_BESIDE } ExecCalKind;

/* One workload. GEMM (and GEMM_BESIDE): row-major C[m, n] = A[m, k] B[k, n], bf16 in, fp32
 * accumulate, bf16 out. ATTN: one sequence of len rows, nh heads in nkv KV groups of hd.
 * COPY: bytes read and as many written. LAUNCH: one tiny kernel. */
typedef struct {
    ExecCalKind kind;
    int m, n, k;
    int dir, causal, nh, nkv, hd, len;
    double bytes;
} ExecCalWork;

/* Buffers the plan needs at most (the timer allocates them once, before the first run). */
typedef struct {
    double gemm_a, gemm_b, gemm_c; /* elements */
    double attn_rows, attn_cols;   /* qkv rows x (nh + 2 nkv) hd, widest */
    double attn_out_cols;          /* nh hd, widest */
    double copy_bytes;
    double total_bytes;            /* everything above in bytes (before allocating) */
} ExecCalNeeds;

/* Median seconds of one run of w (repeats timed after warmup untimed). */
typedef struct {
    void *ctx;
    OsStatus (*time)(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec);
} ExecCalTimer;

/* The plan's axes (for tests and --verbose): m/k ladder and n sizes. */
typedef struct {
    uint32_t n_ladder, n_dims, n_hd;
    double ladder[CALIB_MAX_AXIS], dims[CALIB_MAX_AXIS];
    int hd[4], nh[4], nkv[4]; /* distinct head dims and the heads of the first stack with it */
    uint32_t n_len;
    int len[CALIB_MAX_AXIS];
} ExecCalPlan;

OsStatus exec_calib_plan(ExecCalPlan *p, ExecCalNeeds *need, const ModelSpec *m, const ExecCalibOptions *o);

/* Fill c (reset first) from the timer's measurements of the plan; info names the device and
 * gives the clocks for the peak. Every measurement ends up in the table. */
OsStatus exec_calibrate_run(Calib *c, const ModelSpec *m, const ExecCalibOptions *o, const ExecCalTimer *t,
                            const ExecDeviceInfo *info);

/* The whole command's work on GPU 0 through the GPU module. Errors: the module (file and
 * library named), no device, not enough memory (says how much), CUDA/cuBLAS failures. */
OsStatus exec_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o);

#endif
