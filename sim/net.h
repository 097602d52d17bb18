/* net.h — the cluster and its collectives: alpha-beta costs on NVLink and InfiniBand.
 * Implements: Cluster (nodes x GPUs per node, TP, DP = GPUs / TP, link figures), ring and
 *   tree all-reduce, reduce-scatter, all-gather over the DP group, and the non-uniform
 *   all-to-allv of the rebalancing moves costed from its byte list (flat and node-wise
 *   hierarchical), with intra- and inter-node bytes separated.
 * Does not: schedule anything in time (engine.h) or decide who sends what (balance.h).
 * Source: REFERENCE.md §D.4 (H100), §D.5 (NVLink 4: 450 GB/s per direction; NDR 400 Gb/s =
 *   50 GB/s per NIC, one NIC per GPU), §D.6 (alpha-beta forms, nccl-tests busbw factors). */
#ifndef OS_NET_H
#define OS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "sim/base/status.h"

typedef struct {
    uint32_t gpus, gpus_per_node, nodes, tp, dp;
    uint32_t dp_per_node;   /* DP ranks whose GPUs sit in one node: gpus_per_node / tp, >= 1 */
    double peak_flops;      /* per GPU, FLOP/s */
    double mem_bytes;       /* per GPU HBM, bytes */
    double intra_bw;        /* NVLink, bytes/s per direction per GPU */
    double intra_lat;       /* seconds per intra-node step */
    double inter_bw;        /* NIC, bytes/s per direction per GPU */
    double inter_lat;       /* seconds per inter-node step */
} Cluster;

/* Defaults for H100 SXM nodes (REFERENCE §D.4-D.5), then checks: gpus % gpus_per_node == 0
 * (or gpus < gpus_per_node: one partial node), gpus % tp == 0, tp divides gpus_per_node or is
 * a multiple of it, bandwidths > 0. */
OsStatus cluster_init(Cluster *c, uint32_t gpus, uint32_t gpus_per_node, uint32_t tp);
OsStatus cluster_validate(const Cluster *c);
/* Node that DP rank d's GPUs live in (TP groups are packed inside nodes). */
uint32_t cluster_node_of(const Cluster *c, uint32_t d);

/* Collectives over the whole DP group, S = bytes per rank's buffer (the full gradient for
 * all-reduce; the full gathered array for RS/AG, as nccl-tests counts). Seconds. */
double net_allreduce_ring(const Cluster *c, double bytes);
double net_allreduce_tree(const Cluster *c, double bytes);
double net_reduce_scatter(const Cluster *c, double bytes);
double net_allgather(const Cluster *c, double bytes);
/* nccl-tests bus-bandwidth factors (REFERENCE §D.6) for reporting. */
double net_busbw_factor_allreduce(uint32_t n);
double net_busbw_factor_rs_ag_a2a(uint32_t n);

/* One aggregated transfer of the rebalancing all-to-allv: DP rank src -> dst. */
typedef struct {
    uint32_t src, dst;
    uint64_t bytes;
} NetMove;

typedef struct {
    uint64_t intra_bytes, inter_bytes; /* total over all moves */
    uint64_t max_rank_bytes;           /* busiest rank's max(out, in) */
    uint32_t max_peers;                /* most distinct peers of one rank */
} NetA2AStats;

typedef struct NetScratch NetScratch; /* per-rank accumulators, reused across calls */
OsStatus net_scratch_create(NetScratch **out, const Cluster *c);
void net_scratch_destroy(NetScratch *s);

/* Flat all-to-allv: time = max over ranks of max(intra out/in over NVLink, inter out/in over
 * the NIC) + alpha * peers. src == dst moves cost nothing. stats may be NULL. */
double net_alltoallv(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                     NetA2AStats *stats);
/* Node-wise hierarchical all-to-allv (intra-node gather over NVLink, rail-aligned inter-node
 * exchange with every node-pair's bytes sent once, intra-node scatter). */
double net_alltoallv_hier(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                          NetA2AStats *stats);

#endif
