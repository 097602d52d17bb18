/* partition.h — the number-partitioning and assignment algorithms under the policies.
 * Implements: k-way partitioning of weighted units into D bins (LPT greedy with a min-heap,
 *   Karmarkar-Karp largest differencing, round-robin of a sorted order, a padded-batch
 *   greedy for b*max_len loads, capacity-constrained LPT), the assignment problem (Hungarian,
 *   O(n^3)), and exhaustive references for tiny inputs (the slow twins of habit 6).
 * Does not: know phases, examples or the cluster (policy.h does); allocate per call beyond
 *   the scratch it is given.
 * Source: REFERENCE.md "Balancing algorithms of peer systems" (LLaVA split_to_even_chunks,
 *   verl Karmarkar-Karp, OmniBal ISF). Letters: n units, D bins. */
#ifndef OS_PARTITION_H
#define OS_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Scratch reused across calls; grows to the largest (n, D) seen. */
typedef struct PartScratch PartScratch;
OsStatus part_scratch_create(PartScratch **out);
void part_scratch_destroy(PartScratch *s);

/* All functions: bin[i] in [0, D) for every unit i (output first), w[i] >= 0 weights.
 * Deterministic: ties broken by lower index / lower bin. Return the max bin load. */

/* LPT: units in decreasing weight, each to the least-loaded bin, ties to the lower bin.
 * O(n) radix sort + O(n log D) loser-tree updates; loads within 2^-(52 - log2 D) relative of
 * each other count as tied (1e-12 at D = 2560; see partition.c). cap[b] (may be NULL) bounds
 * sum(size[i]) per bin: a unit goes to the least-loaded bin that still fits (O(D) when the
 * least-loaded one is full), and one that fits no bin fails with OS_ERR_RANGE naming it.
 * size may be NULL when cap is NULL. */
OsStatus part_lpt(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                  const uint64_t *size, const uint64_t *cap, PartScratch *s);
/* Karmarkar-Karp k-way largest differencing (heap of partial partitions, sparse subsets;
 * absorbs insert in place, shifting the shorter side: see kk.c and bench/RESULTS.md). */
OsStatus part_kk(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                 PartScratch *s);
/* Its slow twin: the same differencing on dense D-subset partitions, O(n^2 + n D log D) time,
 * O(n D) memory (allocated per call); the same bins as part_kk. Tests only. */
OsStatus part_kk_ref(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D);
/* Sort by weight (descending), deal round-robin: unit of rank r goes to bin r % D. */
OsStatus part_sorted_rr(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                        PartScratch *s);
/* Padded batches: bin load = count * max(len in bin); greedy over decreasing len. */
OsStatus part_padded(uint32_t *bin, double *max_load, const uint32_t *len, uint32_t n, uint32_t D,
                     PartScratch *s);
/* Exhaustive optimum of max bin load (D^n search with symmetry pruning: a unit opens at most
 * one empty bin; branches that cannot beat the best so far are cut); n <= 16, D <= 16. */
OsStatus part_brute(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D);

/* Hungarian (Kuhn-Munkres, O(n^3)): perm[r] = column assigned to row r minimising
 * sum cost[r*n + perm[r]]. cost: [n*n] row-major. */
OsStatus part_hungarian(uint32_t *perm, double *total, const double *cost, uint32_t n,
                        PartScratch *s);
/* Exhaustive assignment (n! permutations), n <= 9. */
OsStatus part_assign_brute(uint32_t *perm, double *total, const double *cost, uint32_t n);

/* max(sum w / D, max w): no partition does better. */
double part_lower_bound(const double *w, uint32_t n, uint32_t D);

/* After part_lpt failed with OS_ERR_RANGE: the unit that fit no bin (callers map it back to
 * an example or item for their own message). */
uint32_t part_last_fail_unit(const PartScratch *s);

#endif
