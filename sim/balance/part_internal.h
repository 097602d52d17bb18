/* part_internal.h — private to sim/balance/: the PartScratch layout and the shared sort.
 * Implements: the scratch block the partition algorithms carve their arrays from (grown to
 *   the largest n, D seen, never shrunk: no malloc in a balancer once warm, STYLE habit 4),
 *   and a stable LSD radix sort of unit indices by a 64-bit key.
 * Does not: appear in any public header; nothing outside sim/balance/ includes it.
 * Source: STYLE.md habit 4 (per-step scratch reused). */
#ifndef OS_PART_INTERNAL_H
#define OS_PART_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sim/balance/partition.h"
#include "base/util.h"

/* One subset of a Karmarkar-Karp partial partition: its sum and a linked list of units. */
typedef struct {
    double sum;
    uint32_t head, tail; /* units linked through PartScratch.next */
} KkSub;

/* A KK partial partition: cnt non-empty subsets (sorted by sum, descending) at pool[off]. */
typedef struct {
    uint32_t off, cnt;
    uint32_t gap;  /* free pool slots just before off (an absorb can shift left into them) */
    double spread; /* largest sum - smallest sum (0 for the implicit empty subsets) */
} KkState;

/* A (key, unit) pair for the rare long runs the radix sort leaves to a comparison sort. */
typedef struct {
    uint64_t key;
    uint32_t idx;
} PartPair;

struct PartScratch {
    /* sort: [n] */
    uint32_t *idx, *idx2;
    uint64_t *key, *key2;
    PartPair *pairs;
    size_t idx_cap, idx2_cap, key_cap, key2_cap, pairs_cap;
    /* bins: [D] */
    uint64_t *lt_k; /* loser tree: [0] the winner, [1, D) the loser of each match; an entry
                       is a load's bits with its bin in the low mantissa bits (partition.c) */
    size_t lt_k_cap;
    uint32_t *heap, *pos, *cnt;
    double *load;
    uint64_t *used;
    size_t heap_cap, pos_cap, cnt_cap, load_cap, used_cap;
    /* Karmarkar-Karp: [2n] states and heap, [n] list links, two pools of [2n + 16] subsets */
    KkState *st;
    uint32_t *kheap, *next;
    KkSub *pool[2], *ktmp; /* ktmp: [2D] merge buffers */
    size_t st_cap, kheap_cap, next_cap, pool_cap[2], ktmp_cap;
    /* Hungarian: [n + 1] */
    double *hu, *hv, *hmin;
    uint32_t *hp, *hway;
    unsigned char *hused;
    size_t hu_cap, hv_cap, hmin_cap, hp_cap, hway_cap, hused_cap;
    uint32_t fail_unit; /* the unit a capacity failure was about (part_last_fail_unit) */
};

/* Grow a scratch array (ptr, cap) to hold n elements. Relays OS_ERR_NOMEM. */
#define PART_GROW(ptr, capv, n) os_grow((void **)&(ptr), &(capv), (size_t)(n), sizeof(*(ptr)))

/* s->idx[0..n) = 0..n-1 stably sorted by key[] ascending, and s->key[0..n) the keys in that
 * order (key may be s->key itself). LSD radix on the 33 highest bits that vary (3 passes of
 * 11 bits), then runs equal on those bits are finished by comparison: O(n) for real data. */
OsStatus part_sort_u64(PartScratch *s, const uint64_t *key, uint32_t n);
/* s->idx[0..n) = units by weight descending, ties lower index first. Checks w[i] >= 0 and
 * finite (OS_ERR_ARG naming the unit). */
OsStatus part_sort_desc(PartScratch *s, const double *w, uint32_t n);
/* Grow the [D] bin arrays. */
OsStatus part_bins(PartScratch *s, uint32_t D);
/* max over bins of sum w[i] for bin[i] == b (recomputed from the assignment). */
double part_max_load(const uint32_t *bin, const double *w, uint32_t n, uint32_t D, double *load);

#endif
