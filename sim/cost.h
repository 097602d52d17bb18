/* cost.h — what a rank's share of a phase costs: FLOPs and time on one GPU.
 * Implements: the per-layer FLOP formula of DESIGN.md §2 (QKV with GQA, output projection,
 *   MLP, attention scores+values; forward+backward = 3x forward), attention per item
 *   (encoders) / per example (LLM) — never over a packed buffer — or padded b*max_len
 *   batches; time of one micro-batch priced op by op: every GEMM (forward, data-gradient and
 *   weight-gradient) at the achieved rate of its shape (M, N, K), attention forward and
 *   backward at the kernel's rate for (length, head dim, causality), memory-bound work (norms,
 *   activations, residual adds, position encoding, biases' gradients, embeddings, the loss over
 *   the vocabulary) as bytes over achieved HBM bandwidth plus a fixed time per kernel;
 *   recomputation (full or selective); the optimizer step; MFU numerators.
 * Does not: know about ranks, networks or policies. Files: cost.c (FLOPs, time), calib.c
 *   (the table and its file format), calib_h100.c (the built-in table's data).
 * Source: REFERENCE.md §D.1 (PaLM/Megatron conventions), §D.4 (H100 peak); the built-in
 *   table's sources are listed in calib_h100.c and sim/README-models.md §5. */
#ifndef OS_COST_H
#define OS_COST_H

#include <stdint.h>

#include "base/status.h"
#include "sim/model.h"

#define CALIB_MAX_GEMM 512  /* rows: a complete grid over <= 16 values of each of m, n, k */
#define CALIB_MAX_AXIS 16
#define CALIB_MAX_ATTN 384
#define CALIB_MAX_META 16

/* One measured GEMM call C[m x n] = A[m x k] B[k x n] (k is the reduction): 2*m*n*k FLOPs
 * at `rate` FLOP/s. */
typedef struct {
    double m, n, k, rate;
} CalibGemm;

typedef enum { ATTN_FWD = 0, ATTN_BWD = 1 } AttnDir;
/* One measured attention kernel: a sequence length, head dimension and mask, forward or
 * backward, at `rate` FLOP/s in FlashAttention's convention (forward 4 * len^2 * hdim per head,
 * halved when causal; backward 2.5x the forward's FLOPs). */
typedef struct {
    uint8_t dir, causal;
    uint32_t hdim;
    double len, rate;
} CalibAttn;

#define CALIB_MAX_NORM 32
/* One measured LayerNorm kernel (optional rows): forward or backward at a hidden size, at
 * `bw` bytes/s counted on the op's ideal bytes (forward: read x, write y = 2 elements; backward:
 * read x and dy, write dx = 3 elements; gamma/beta and the per-row statistics not counted, so
 * the rate includes the backward's second pass over x and dy for the weight gradients). */
typedef struct {
    uint8_t dir;
    uint32_t hidden;
    double bw;
} CalibNorm;

/* Achieved-rate table. calib_prepare builds the lookup structures (the *_ax / *_lr fields and
 * the attention curves) from the rows; load, default and validate call it. */
typedef struct {
    char name[128];          /* "builtin-h100-sxm", or the file's name (else its path) */
    char device[128];        /* device it was measured on */
    char stack[160];         /* the software stack the rates stand for */
    char attn_kernel[96];    /* which attention kernel the attn rows measure */
    double peak_flops;       /* dense bf16 peak per GPU, FLOP/s (989.4e12, REFERENCE §D.4) */
    double hbm_bw;           /* achieved bytes/s of a streaming (memory-bound) kernel */
    double kernel_launch_s;  /* fixed GPU time of one memory-bound kernel: launch, ramp, tail */
    double overlap_slowdown; /* [0, 1): compute runs at (1 - this) of its speed while NCCL
                                kernels run beside it (they take SMs and HBM bandwidth) */
    uint32_t n_gemm;
    CalibGemm gemm[CALIB_MAX_GEMM];
    uint32_t n_attn;
    CalibAttn attn[CALIB_MAX_ATTN]; /* sorted by (dir, causal, hdim, len) by calib_prepare */
    /* optional measured network figures (0 = not measured; the cluster defaults apply) */
    double intra_bw, inter_bw;           /* bytes/s per direction per GPU */
    /* free-text provenance kept from the file (clock_mhz, cuda_version, cublas_version,
     * nccl_version, driver, ...): [n_meta] key/value pairs, written back by calib_save */
    uint32_t n_meta;
    char meta_key[CALIB_MAX_META][32];
    char meta_val[CALIB_MAX_META][128];
    /* ---- derived by calib_prepare ---- */
    uint32_t ax_n[3];                    /* distinct m, n, k values */
    double ax[3][CALIB_MAX_AXIS];        /* ascending */
    double grid_lr[CALIB_MAX_GEMM];      /* log(rate) at (i, j, l): [(i*ax_n[1] + j)*ax_n[2] + l],
                                            with time made non-decreasing along every axis */
    /* ---- appended last (keeps the offsets above for the GPU module's ABI) ---- */
    double conv_frac;        /* [0, 1]: a k x k convolution run as an implicit GEMM achieves this
                                fraction of a dense GEMM of the same (M, N, K); 0 = not measured
                                (sim/diffusion/dops.h's estimate applies). File key `conv`. */
    /* ---- the software stack's own kernels (optional keys, appended after conv; absent = the
     * stack has no such kernel, or it is priced as a streaming kernel at hbm_bw: see each) ---- */
    uint32_t n_norm;
    CalibNorm norm[CALIB_MAX_NORM]; /* LayerNorm kernels by hidden size (file rows `layernorm`),
                                       sorted by (dir, hidden); none = streaming at hbm_bw */
    double ce_eager_bw;      /* bytes/s of PyTorch's eager cross-entropy forward (fp32 upcast,
                                log_softmax, nll: 14 bytes per logit moved); 0 = hbm_bw.
                                File key `ce_eager_bw` */
    double metric_ce;        /* eager cross-entropy forwards over the logits per micro-batch for
                                training metrics (Composer: LanguageCrossEntropy and
                                LanguagePerplexity = 2); 0 = none. File key `train_metric_ce` */
    double grad_land_bytes;  /* bytes per parameter per micro-batch the framework moves to land
                                weight gradients in its gradient buffer (PyTorch FSDP's flat
                                parameter: the views' split backward = a copy, 4 bf16); 0 = none.
                                File key `grad_land_bytes` */
    uint32_t recompute_early_stop; /* 1: full recomputation stops once every saved tensor is
                                rebuilt (PyTorch >= 2.1 non-reentrant checkpoint): the block's
                                last GEMM and residual add are not recomputed; 0: the whole block
                                is. File key `recompute_early_stop` */
    /* ---- sustained GEMM throughput (optional key, appended last) ---- */
    double gemm_sustained;   /* FLOP/s of back-to-back GEMMs of one reference shape held for
                                a minute (a burn: the GPU at its power and thermal steady
                                state, as through a training run); 0 = not measured. File key
                                `gemm_sustained = <FLOP/s> <m> <n> <k>` */
    double gemm_sustained_mnk[3]; /* its reference shape */
    double gemm_sustain_scale; /* derived by calib_validate: min(1, gemm_sustained / the gemm
                                rows' rate at that shape), applied to every GEMM rate (the rows
                                are burst measurements: seconds of load, a cooler, faster
                                clock); 1 when not measured. Attention and memory-bound rates
                                are not scaled (see calib.c) */
} Calib;

/* The built-in H100 SXM table (calib_h100.c: every number's source). */
void calib_default_h100(Calib *c);
/* Read / write the text format (documented in calib.c and sim/README-models.md §5). Load
 * validates every row (file + line in errors); a v1 file, or one missing a key the cost model
 * needs, is refused naming the key. Save validates, then writes atomically (temp + rename). */
OsStatus calib_load(Calib *c, const char *path);
OsStatus calib_save(const Calib *c, const char *path);
/* Check a table and build its lookups: peak > 0, hbm_bw > 0, launch and slowdown in range,
 * GEMM rows a complete (m, n, k) grid with rates in (0, peak], attention rows for forward and
 * backward, causal and not, rates in (0, peak]. where names it in errors. Measurement noise
 * that would make a bigger GEMM faster is clamped (time made non-decreasing), never refused. */
OsStatus calib_validate(Calib *c, const char *where);
/* Append rows (calibrate, tests); call calib_validate after the last one. */
OsStatus calib_add_gemm(Calib *c, double m, double n, double k, double rate);
OsStatus calib_add_attn(Calib *c, AttnDir dir, int causal, uint32_t hdim, double len, double rate);
OsStatus calib_add_norm(Calib *c, AttnDir dir, uint32_t hidden, double bw);
/* One line on the table's GEMM rates for a command's resolved configuration: the sustained
 * scale and the burn behind it, or that the rows are taken as they are (no gemm_sustained). */
void calib_sustain_text(const Calib *c, char *buf, size_t cap);
/* Set (or replace) a free-text provenance entry; key: [a-z0-9_]+, < 32 chars. */
OsStatus calib_set_meta(Calib *c, const char *key, const char *value);
/* The value of a provenance entry, or NULL. Borrowed from c. */
const char *calib_get_meta(const Calib *c, const char *key);
/* Achieved FLOP/s of a GEMM of shape (m, n, k): power-law (trilinear in log space) between grid
 * points; above the grid the largest size's rate; below it the smallest size's time (a
 * launch-bound kernel takes as long as the smallest measured one); times gemm_sustain_scale.
 * Needs calib_validate. */
double calib_gemm_rate(const Calib *c, double m, double n, double k);
/* calib_gemm_rate along one axis with the other two fixed: the trilinear interpolation is
 * separable, so interpolating the fixed dimensions once at every grid value of the varying one
 * gives the same rates (to rounding) at a 1-D lookup's cost. axis: 0 = m varies, 1 = n, 2 = k;
 * a, b: the fixed sizes in (m, n, k) order without the varying one. */
typedef struct {
    uint8_t axis, ready;
    double scale;                 /* below-grid factor of the fixed dimensions */
    double lr[CALIB_MAX_AXIS];    /* log(rate) at the varying axis' grid values */
} CalibLine;
void calib_gemm_line(CalibLine *l, const Calib *c, int axis, double a, double b);
double calib_line_rate(const CalibLine *l, const Calib *c, double x);
/* Achieved FLOP/s of an attention kernel: power law in length along each measured head-dim
 * curve, then between the two nearest head dims; above the longest length its rate; below the
 * shortest, a rate proportional to length (partial tiles: the shortest's time per sequence). */
double calib_attn_rate(const Calib *c, AttnDir dir, int causal, uint32_t hdim, double len);
/* Bytes/s of a LayerNorm kernel over `hidden` features on its ideal bytes (CalibNorm): power law
 * in hidden between rows, the nearest row's rate outside them. Without rows: a streaming kernel,
 * hbm_bw forward and hbm_bw x 3/5 backward (ATen's backward reads x and dy twice: the input
 * gradient kernel and the gamma/beta kernel move 5 elements for the op's 3). */
double calib_norm_bw(const Calib *c, AttnDir dir, uint32_t hidden);

typedef enum { ATTN_VARLEN = 0, ATTN_PADDED = 1 } AttnLayout;
/* Activation recomputation in the backward pass: none; full (+1 forward of every layer, as
 * activation checkpointing per block does); selective (the attention kernel's forward only:
 * Korthikanti et al. 2022, the part whose activations grow as len^2). */
typedef enum { RECOMPUTE_NONE = 0, RECOMPUTE_FULL = 1, RECOMPUTE_SELECTIVE = 2 } RecomputeMode;

/* Optional memo of one unit's attention seconds by (phase, length) (direct-mapped): a replay
 * costs ~10^5 units a step and each lookup interpolates. Caller-owned, zeroed. */
#define COST_MEMO_SLOTS 8192
#define COST_MEMO_WEIGHTS 7 /* 4 per layer, the LM head, the projector's 2 */
typedef struct {
    uint64_t key[COST_MEMO_SLOTS]; /* (phase << 32 | length) + 1; 0 = empty */
    double fwd[COST_MEMO_SLOTS], bwd[COST_MEMO_SLOTS]; /* seconds per layer */
    /* GEMM rates of each weight along its token axis: [phase][weight][fwd, dgrad, wgrad] */
    CalibLine gemm[MODEL_MAX_ENC + 1][COST_MEMO_WEIGHTS][3];
} CostMemo;

typedef struct {
    const ModelSpec *model; /* borrowed */
    const Calib *calib;     /* borrowed */
    int recompute;          /* RecomputeMode */
    AttnLayout layout;      /* varlen (sum len^2) or padded (b * max_len) */
    CostMemo *memo;         /* may be NULL; never changes results, only speed */
    /* The GPU's slice of the work (layout.h); 0 reads as 1. Times are one GPU's: TP splits
     * every weight (Megatron: QKV and MLP-in by columns, O and MLP-out by rows, the LM head
     * and the loss by vocabulary), attention by heads and the TP-sharded activations; with
     * sequence parallelism (sp) the norms and residual adds too. CP gives a GPU 1/cp of every
     * sequence's positions and, with load-balanced chunking, 1/cp of its attention work. The
     * FLOP counts stay the whole work's (for MFU over all GPUs). */
    uint32_t tp, cp;
    int sp;
} CostModel;

/* A pipeline stage's part of a stack: `layers` of its layers, with the embedding (and
 * position table) when `embed`, the final norm, LM head and loss (LLM) or the projector
 * (encoder) when `head`. cost_phase runs the whole stack. */
typedef struct {
    uint32_t layers;
    uint8_t embed, head;
} CostSlice;

/* Phase numbering: p < model->n_enc is encoder p; p == n_enc is the LLM backbone. */
static inline uint32_t cost_n_phases(const ModelSpec *m) { return m->n_enc + 1; }

/* Forward FLOPs of one sequence of n positions through a stack, split in the linear part
 * (2 * n * layer_params * layers, + LM head when vocab > 0) and attention
 * (4 * n^2 * hidden * layers, no causal discount). */
typedef struct {
    double linear, attn;
} Flops;
Flops stack_forward_flops(const StackSpec *s, double n);

/* Memory-bound traffic of a stack per position (cost.c derives each term). */
typedef struct {
    double layer_fwd, layer_bwd;   /* bytes per position per layer (the sum of the two parts) */
    double layer_seq_fwd, layer_seq_bwd; /* norms and residual adds: sequence parallelism shards them */
    double stack_fwd, stack_bwd;   /* bytes per position once per stack (embedding, final norm,
                                      position table, loss over the vocabulary): the sum of */
    double emb_fwd, emb_bwd;       /* the embedding and position table (first stage) */
    double head_fwd, head_bwd;     /* the final norm (last stage) */
    double loss_fwd, loss_bwd;     /* the loss over the vocabulary (last stage, vocab-parallel) */
    double norm_fwd, norm_bwd;     /* of layer_seq_*: the two norms' bytes (LayerNorm: timed at
                                      calib_norm_bw on 2 of 2 (fwd) and 3 of 5 (bwd) of them) */
    double head_norm_fwd, head_norm_bwd; /* of head_*: the final norm's bytes, likewise */
    uint32_t kernels_layer_fwd, kernels_layer_bwd, kernels_stack_fwd, kernels_stack_bwd;
    uint32_t kernels_emb_fwd, kernels_emb_bwd; /* the first stage's part of kernels_stack_* */
} MemTraffic;
MemTraffic stack_mem_traffic(const StackSpec *s, uint32_t act_bytes);

/* What one micro-batch of a rank's share of one phase costs. lens: [n] unit lengths — for an
 * encoder phase the items' positions (before pad_to/ratio), for the LLM phase the examples'
 * sequence lengths S (text + projected items). The n units run together: one packed GEMM per
 * weight matrix and layer over all their positions. */
typedef struct {
    double fwd_s, bwd_s;      /* seconds on one GPU, as executed (causal skip, padding,
                                 recomputation inside bwd_s) */
    double gemm_s, attn_s, mem_s; /* the same seconds by kind: GEMMs, attention kernels,
                                     memory-bound kernels (fwd_s + bwd_s = their sum) */
    double model_flops;       /* paper convention: 6*params*tokens + 12*L*h*n^2, real tokens */
    double model_flops_noattn;/* the same without the attention term */
    double causal_flops;      /* model FLOPs with causal attention halved */
    double hw_flops;          /* FLOPs executed: padding and recomputation included */
    uint64_t tokens;          /* real positions processed (encoder) / LLM tokens */
} PhaseCost;

OsStatus cost_phase(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens,
                    uint32_t n);
/* The same for a pipeline stage's slice of the stack (NULL = the whole stack). */
OsStatus cost_phase_slice(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens,
                          uint32_t n, const CostSlice *slice);
/* Slow reference twin of cost_phase (STYLE habit 6): walks every layer of every pass and
 * every unit, one kernel at a time. Same results up to rounding; for tests. */
OsStatus cost_phase_ref(PhaseCost *out, const CostModel *cm, uint32_t phase,
                        const uint32_t *lens, uint32_t n);
OsStatus cost_phase_slice_ref(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens,
                              uint32_t n, const CostSlice *slice);
/* The optimizer step on params_per_gpu parameters (AdamW over fp32 master state, with
 * gradient-norm clipping): bytes per parameter over HBM bandwidth plus its kernels. Seconds. */
double cost_optimizer_s(const CostModel *cm, double params_per_gpu);
/* Bytes per parameter the optimizer step moves (cost.c derives it). */
double cost_optimizer_bytes_per_param(void);

/* The balancers' per-unit objective: seconds of one unit alone (fwd + bwd, recomputation
 * included), with the GEMMs at the rates of a large packed batch (a rank's GEMMs are big),
 * the unit's own attention rates and its memory-bound traffic; pad_to applies for encoders. */
double cost_unit_seconds(const CostModel *cm, uint32_t phase, uint32_t len);
/* The same with the per-phase parts computed once (cost_unit_prepare), for callers that price
 * many units of one phase: cost_unit_eval(u, len) == cost_unit_seconds(cm, phase, len).
 * cost_unit_coeffs: t(len) ~= a*len + c*len^2 with the long-sequence attention rates. */
typedef struct {
    const CostModel *cm; /* borrowed */
    uint32_t phase;
    double lin;          /* seconds per position: GEMMs + memory-bound, all passes */
    double proj;         /* seconds per projector output, all passes */
    int ok;
} CostUnit;
void cost_unit_prepare(CostUnit *u, const CostModel *cm, uint32_t phase);
double cost_unit_eval(const CostUnit *u, uint32_t len);
void cost_unit_coeffs(const CostModel *cm, uint32_t phase, double *a, double *c);
/* LLM tokens an item of encoder e contributes: ceil(len / ratio) of its REAL positions
 * (padding to pad_to is encoder work only; padded outputs are dropped, not spliced in). */
uint32_t cost_item_llm_tokens(const ModelSpec *m, uint32_t e, uint32_t len);
/* Positions encoder e actually runs for an item of len real positions: max(len, pad_to). */
uint32_t cost_item_enc_len(const ModelSpec *m, uint32_t e, uint32_t len);

#endif
