/* flash.h — fused variable-length attention (FlashAttention-2's algorithm), the part that is
 * plain C: the tile lists every launch reads, and a CPU emulation of the exact tiled
 * algorithm the GPU kernels run (exec/flash.cu), beside the naive float64 reference, so the
 * algorithm itself is tested in CI (tests/test_exec_flash.c) and the GPU only has to match.
 * Implements:
 *   - packed sequences: rows [t0, t0 + len) of a [T, (nh + 2 nkv) hd] QKV buffer (Q heads, K
 *     groups, V groups, exec/gemm.h), attention only inside each sequence: work per sequence
 *     ~ len^2 tile pairs, never (sum len)^2;
 *   - tiles of EXEC_FLASH_TILE rows of one sequence: the forward runs one block per (query
 *     tile, head) over the key tiles it sees (causal: up to its own), the backward one block
 *     per (key tile, KV group) over the heads of the group and the query tiles that see it;
 *     each list is ordered by decreasing work (the longest blocks start first);
 *   - forward: online softmax per query row (running max m and sum l, the output rescaled by
 *     exp(m_old - m_new) at every key tile), P rounded to bf16 before P V (as the tensor cores
 *     take it), fp32 accumulation, output O / l in bf16, log-sum-exp m + log l per (head, row)
 *     kept for the backward; masked scores are -inf, a fully masked prefix gives alpha 0;
 *   - backward: P = exp(scale q.k - lse) recomputed, dV += P^T dO, dP = dO V^T,
 *     dS = P (dP - D) scale with D = rowsum(dO * O), dK += dS^T Q, dQ += dS K (fp32 atomics
 *     on the GPU); P and dS rounded to bf16 where they feed a matrix product;
 *   - GQA: head h reads KV group h / (nh / nkv); the group's dK, dV sum over its heads.
 * Does not: run on a GPU (flash.cu), or handle head dims above 128 or not divisible by 8
 *   (exec_flash_supported; the stack then takes the cuBLAS twin, exec/attn.h).
 * Units: rows; scale 1 / sqrt(hd). Arrays row-major. */
#ifndef OS_EXEC_FLASH_H
#define OS_EXEC_FLASH_H

#include <stddef.h>
#include <stdint.h>

#define EXEC_FLASH_TILE 64 /* query rows per forward block = key rows per backward block */

/* One tile: rows [start, start + 64) of the sequence at rows [t0, t0 + len). work: the key
 * tiles (forward) or query tiles x 1 (backward, per head) the block visits. */
typedef struct {
    int32_t t0, len, start, work;
} ExecFlashTile;

static inline int exec_flash_supported(int hd) { return hd >= 8 && hd <= 128 && hd % 8 == 0; }
/* The padded head dim the kernel is instantiated for: 16, 32, 64 or 128. */
static inline int exec_flash_hdp(int hd) { return hd <= 16 ? 16 : hd <= 32 ? 32 : hd <= 64 ? 64 : 128; }

/* Entries of one tile list for sequences of total T rows (a bound: sum ceil(len / 64)). */
static inline uint64_t exec_flash_max_tiles(uint64_t T) { return T + T / EXEC_FLASH_TILE + 1; }

/* Fill fwd[] and bwd[] (each >= exec_flash_max_tiles(sum len) entries; either may be NULL)
 * for nseq sequences of len[q] rows packed in order; sequences of length 0 have no tiles.
 * Returns the tile count (the same for both lists). */
uint32_t exec_flash_tiles(ExecFlashTile *fwd, ExecFlashTile *bwd, const uint64_t *len, uint32_t nseq, int causal);

/* Tile pairs (query tile, key tile) the kernels visit per head: sum over sequences of t^2
 * (bidirectional) or t (t + 1) / 2 (causal), t = ceil(len / 64). */
uint64_t exec_flash_pairs(const uint64_t *len, uint32_t nseq, int causal);

/* CPU emulation of the forward kernel: att [T, nh hd] (bf16-rounded values), lse [nh, T];
 * *pairs (may be NULL) += tile pairs visited per head. */
void exec_flash_forward_cpu(float *att, float *lse, const float *qkv, const ExecFlashTile *fwd, uint32_t ntiles,
                            uint64_t T, int nh, int nkv, int hd, int causal, uint64_t *pairs);
/* CPU emulation of the backward: dqkv [T, (nh + 2 nkv) hd] += the gradient from datt
 * [T, nh hd], given the forward's att and lse; bwd: the backward tile list. */
void exec_flash_backward_cpu(float *dqkv, const float *datt, const float *qkv, const float *att, const float *lse,
                             const ExecFlashTile *bwd, uint32_t ntiles, uint64_t T, int nh, int nkv, int hd,
                             int causal, uint64_t *pairs);

/* The naive float64 references over the same packed layout (O(len^2) per sequence). */
void exec_attn_ref_forward(double *att, const float *qkv, const uint64_t *len, uint32_t nseq, int nh, int nkv,
                           int hd, int causal);
void exec_attn_ref_backward(double *dqkv, const float *datt, const float *qkv, const uint64_t *len, uint32_t nseq,
                            int nh, int nkv, int hd, int causal);

#endif
