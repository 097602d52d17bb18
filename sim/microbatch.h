/* microbatch.h — one DP rank's mini-batch split into micro-batches.
 * Implements: the micro-batch count for a token budget (verl's rule plus a first-fit-decreasing
 *   floor), Karmarkar-Karp micro-batches on the workload a*s + s^2 with the small ones at the
 *   pipeline's ends (verl rearrange_micro_batches), and the drawn-order split replay has always
 *   used (fixed count per micro-batch, optionally a token budget).
 * Does not: know ranks, phases or the cost model (the caller passes each rank's sequences and
 *   their workloads), or make ranks agree on a count (replay takes the max over ranks, as verl's
 *   same_micro_num_in_dp all-reduce does).
 * Source: REFERENCE.md "Karmarkar–Karp (verl)"; verl verl/utils/seqlen_balancing.py
 *   (rearrange_micro_batches, get_seqlen_balanced_partitions with equal_size = False).
 * Letters: n sequences of one rank, M micro-batches. */
#ifndef OS_MICROBATCH_H
#define OS_MICROBATCH_H

#include <stdint.h>

#include "base/status.h"

/* Micro-batches per rank per step; equals PROG_MAX_MB (sim/program.h, checked in
 * microbatch.c). mb_of[] values are < MB_MAX. */
#define MB_MAX 4096u

/* Scratch for the calls below: grows to the largest n, M seen, never shrinks, so a warm
 * scratch allocates nothing (STYLE habit 4). One per thread. */
typedef struct MbScratch MbScratch;
OsStatus mb_scratch_create(MbScratch **out);
void mb_scratch_destroy(MbScratch *s); /* NULL: no-op */

/* *count = the number of micro-batches for a token budget (tokens: [n] LLM tokens):
 *   max(1, ceil(sum / budget), F), capped at min(n, MB_MAX), where F = the micro-batches that
 *   first-fit decreasing opens (tokens descending, ties lower index first, each sequence into
 *   the first micro-batch whose tokens stay <= budget) with every sequence longer than the
 *   budget in a micro-batch of its own. F >= ceil(sum / budget) whenever every sequence fits,
 *   so the count is F then; verl's own rule is min(n, ceil(sum / budget)), which may be one or
 *   more too few for any packing to fit. budget == 0 (no budget) or n == 0: *count = 1.
 *   O(n log n). The count bounds the tokens of a first-fit packing; mb_partition_kk balances
 *   workload instead, so one of its micro-batches can still exceed the budget (as in verl). */
OsStatus mb_count_for_budget(uint32_t *count, const uint32_t *tokens, uint32_t n,
                             uint64_t budget, MbScratch *s);
/* Slow twin: the same count by linear first-fit scans, O(n^2); no scratch. Tests only. */
uint32_t mb_count_for_budget_ref(const uint32_t *tokens, uint32_t n, uint64_t budget);

/* mb_of[i] in [0, M) = the pipeline position of sequence i's micro-batch. work: [n] workload
 *   of sequence i (the caller passes a*s + s^2 with the cost model's coefficients, or seconds),
 *   finite and >= 0. Karmarkar-Karp k-way largest differencing into M groups (part_kk), then
 *   the groups sorted ascending by workload g0 <= g1 <= ... (ties: the group holding the lower
 *   sequence index first; empty groups, n < M only, have workload 0) and laid out
 *   g0, g2, g4, ..., g5, g3, g1: the two smallest at the ends, the largest in the middle,
 *   workload rising to the middle and falling after it. (verl sorts descending and lays out
 *   [::2][::-1] + [1::2]; that puts the smallest first only when M is odd.) Every position
 *   holds a sequence when n >= M. 1 <= M <= MB_MAX, else OS_ERR_ARG. O(n log n + M log M). */
OsStatus mb_partition_kk(uint16_t *mb_of, const double *work, uint32_t n, uint32_t M,
                         MbScratch *s);
/* Slow twin: the optimum max group workload over all M^n assignments (n <= 10, M <= 16,
 *   M^n <= 2^24, else OS_ERR_RANGE; with no empty group when n >= M; the first optimum in
 *   odometer order, sequence 0 the fastest digit), laid out by the same end
 *   placement, computed by plain scans. *max_work = that optimum. Tests only (brute.c). */
OsStatus mb_partition_brute(uint16_t *mb_of, double *max_work, const double *work, uint32_t n,
                            uint32_t M);

/* Drawn order, per_mb sequences per micro-batch: mb_of[i] = min(i / per_mb, MB_MAX - 1)
 *   (per_mb == 0: the whole share is one micro-batch). Returns the count, max(mb_of) + 1
 *   (1 when n == 0). */
uint32_t mb_partition_fixed(uint16_t *mb_of, uint32_t n, uint32_t per_mb);
/* Drawn order with both limits, replay's pack_microbatches rule for one rank: a sequence
 *   starts a new micro-batch when the current one is non-empty and holds per_mb sequences
 *   (per_mb > 0) or its tokens plus this one's would pass budget (budget > 0); a sequence
 *   longer than the budget runs alone; after MB_MAX - 1 the rest stay in the last one.
 *   tokens: [n], may be NULL when budget == 0. Returns the count (1 when n == 0).
 *   mb_partition_fixed(m, n, k) == mb_partition_drawn(m, NULL, n, k, 0). */
uint32_t mb_partition_drawn(uint16_t *mb_of, const uint32_t *tokens, uint32_t n, uint32_t per_mb,
                            uint64_t budget);

#endif
