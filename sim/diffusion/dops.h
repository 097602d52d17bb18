/* dops.h — a text-to-image model as a list of ops, and what the list costs on one GPU.
 * Implements: the op list of one sample through a DiffModel at a resolution (dops_build):
 *   convolutions as implicit GEMMs (M = output positions, N = output channels, K = input
 *   channels x kernel area), linear layers as GEMMs, attention per sample at its query and key
 *   counts (each level's latent tokens; 77 text keys for cross-attention), memory-bound kernels
 *   (norms, activations, residual adds, bias adds, concatenations, upsampling) as bytes; their
 *   multiply-adds by block kind (dops_macs); and their time at a batch on a calibration table
 *   (dops_time): GEMMs at calib_gemm_rate of their shape, convolutions at that rate times the
 *   table's `conv` fraction, attention at calib_attn_rate, bytes over hbm_bw plus a launch per
 *   kernel — cost.h's conventions (DESIGN.md §2), forward and, for fine-tuning, backward
 *   (data and weight gradients at their own shapes, attention backward 2.5x at its rate).
 * Does not: know about requests, stages or ranks (stage.h), or run anything.
 * Source: ../shared/CPDM.md "Cost anchors" (checked by tests, never tuned to); CUTLASS
 *   "Implicit GEMM Convolution" (the conv -> GEMM mapping). Time: seconds; MACs per sample. */
#ifndef OS_DIFFUSION_DOPS_H
#define OS_DIFFUSION_DOPS_H

#include <stdint.h>

#include "base/status.h"
#include "sim/cost.h"
#include "sim/diffusion/dmodel.h"

typedef enum { DOP_GEMM = 0, DOP_CONV, DOP_ATTN, DOP_MEM } DopKind;

/* What an op belongs to, for MAC breakdowns: the anchors' "convolution share" is DB_CONV
 * (every k x k and 1x1 convolution of the ResBlocks, samplers, stems; 1x1 proj_in/out of the
 * transformers count as attention projections, as the anchors do). */
typedef enum {
    DB_CONV = 0,   /* convolutions */
    DB_SELF_ATTN,  /* self-attention scores and values */
    DB_CROSS_ATTN, /* cross-attention scores and values (77 text keys, or image tokens) */
    DB_PROJ,       /* q, k, v, out projections, proj_in / proj_out */
    DB_FF,         /* feed-forward (GEGLU / GELU MLP) */
    DB_OTHER,      /* embeddings, time / label MLPs, adaLN, heads, patchify, lumped CNNs */
    DB_N
} DopBlock;

typedef struct {
    uint8_t kind, block, causal;
    uint32_t heads, hdim;    /* ATTN */
    double count;            /* identical instances of this op per sample */
    double m, n, k;          /* GEMM / CONV per sample: rows (positions), outputs, reduction */
    double q, kv;            /* ATTN per sample: query and key positions */
    double bytes_f, bytes_b; /* MEM per sample: forward / backward bytes read + written */
    uint32_t kern_f, kern_b; /* MEM: kernels per instance, forward / backward */
} Dop;

typedef struct {
    Dop *op;                 /* [n] owned */
    uint32_t n, cap;
    const DiffModel *model;  /* borrowed */
    uint32_t width, height;  /* pixels (denoisers, VAE), 0 for the others */
} DopList;

void dops_init(DopList *l);
void dops_free(DopList *l);
/* The ops of one sample of model m: denoisers and the VAE at width x height pixels (each a
 * multiple of dm_res_multiple(m), else OS_ERR_ARG naming the multiple), the others at their own
 * fixed input (77 tokens, 224/384/299 px). Replaces l's contents. */
OsStatus dops_build(DopList *l, const DiffModel *m, uint32_t width, uint32_t height);
/* Forward multiply-adds per sample; by_block[DB_N] (may be NULL) gets the split. */
double dops_macs(const DopList *l, double *by_block);

typedef struct {
    double fwd_s, bwd_s;              /* seconds on one GPU for the whole batch */
    double gemm_s, conv_s, attn_s, mem_s; /* the same seconds by kind */
    double flops;                     /* FLOPs executed (forward, + backward when asked) */
} DopTime;

/* The built-in `conv` fraction: the achieved rate of a convolution run as an implicit GEMM
 * over a dense GEMM of the same (M, N, K). An estimate (UNCONFIRMED): implicit GEMM is the
 * GEMM's main loop with the im2col gather done while loading tiles (CUTLASS), so it trails the
 * GEMM by that gather and the halo reloads; no published H100 measurement was found. Measure it
 * and put `conv = F` in the calibration table. */
#define DOPS_CONV_FRAC_DEFAULT 0.80
/* The table's conv fraction (Calib.conv_frac), or the default when it is 0 (not measured). */
double dops_conv_frac(const Calib *c);
/* Time of `batch` samples run together (every GEMM's M scaled by batch); backward adds the
 * data- and weight-gradient GEMMs and the attention and memory-bound backward. */
void dops_time(DopTime *t, const DopList *l, const Calib *c, double batch, int backward);

#endif
