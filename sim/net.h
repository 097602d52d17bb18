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

#include "base/status.h"

typedef struct {
    uint32_t gpus, gpus_per_node, nodes, tp, dp;
    uint32_t pp, cp;        /* pipeline stages and context-parallel degree (1: none); DP =
                               GPUs / (tp * pp * cp). GPUs in Megatron-LM's order: TP innermost,
                               then CP, DP, PP (layout.h) */
    uint32_t dp_per_node;   /* DP replicas of one stage whose GPUs sit in one node:
                               gpus_per_node / (tp * cp), >= 1 */
    double peak_flops;      /* per GPU, FLOP/s */
    double mem_bytes;       /* per GPU HBM, bytes */
    double intra_bw;        /* NVLink, bytes/s per direction per GPU */
    double intra_lat;       /* seconds per intra-node ring step / all-to-all peer */
    double inter_bw;        /* NIC, bytes/s per direction per GPU */
    double inter_lat;       /* seconds per inter-node ring step / all-to-all peer */
    double base_lat;        /* seconds per collective launch (NCCL's baseLat) */
    double nvls_lat;        /* seconds of an NVLS all-reduce beyond its bytes */
    int nvls;               /* the node's NVSwitch does NVLink SHARP (Hopper's third-generation
                               NVSwitch; A100's has none): 1 by default */
} Cluster;

/* Defaults for H100 SXM nodes (REFERENCE §D.4-D.5), then checks: gpus % gpus_per_node == 0
 * (or gpus < gpus_per_node: one partial node), gpus % tp == 0, tp divides gpus_per_node or is
 * a multiple of it, bandwidths > 0. */
OsStatus cluster_init(Cluster *c, uint32_t gpus, uint32_t gpus_per_node, uint32_t tp);
/* The same with pipeline and context parallelism: tp * cp must divide gpus_per_node or be a
 * multiple of it, tp * pp * cp must divide gpus. */
OsStatus cluster_init_parallel(Cluster *c, uint32_t gpus, uint32_t gpus_per_node, uint32_t tp, uint32_t pp,
                               uint32_t cp);
OsStatus cluster_validate(const Cluster *c);
/* Another layout on the same machine: set tp, pp, cp and re-derive dp and dp_per_node, keeping
 * every link and GPU figure; then validate. */
OsStatus cluster_set_parallel(Cluster *c, uint32_t tp, uint32_t pp, uint32_t cp);
/* Views of one parallel group for the collective functions below, which read a view's dp as
 * the group's size and dp_per_node as how many of its members share a node (a view is not a
 * cluster: cluster_validate refuses it):
 *  - the gradient group of a stage: its dp * cp GPUs at one TP index (Megatron reduces
 *    gradients over DP x CP), gpus_per_node / tp of them per node;
 *  - the TP group: tp GPUs, inside a node unless tp > gpus_per_node; tp of the view is 1 (each
 *    member moves the whole message). */
Cluster cluster_grad_group(const Cluster *c);
Cluster cluster_tp_group(const Cluster *c);
/* Node of global GPU rank g. */
static inline uint32_t cluster_node_of_gpu(const Cluster *c, uint64_t g) { return (uint32_t)(g / c->gpus_per_node); }
/* One point-to-point message of `bytes` (NCCL send/recv): baseLat + a link step + bytes over
 * the achieved NVLink rate, or over one NIC when cross_node. Seconds. */
double net_p2p(const Cluster *c, double bytes, int cross_node);
/* Node that DP rank d's GPUs live in (TP groups are packed inside nodes): d / dp_per_node.
 * When tp > gpus_per_node a DP rank spans tp / gpus_per_node nodes and this is the index of
 * its group of nodes: no two DP ranks then share a node, which is what the costs need. */
uint32_t cluster_node_of(const Cluster *c, uint32_t d);

/* Collectives over the whole DP group, S = bytes of the whole module's buffer (the full
 * gradient for all-reduce; the full gathered array for RS/AG, as nccl-tests counts), of which
 * each of the tp GPUs of a DP rank moves S/tp in its own DP group. Seconds; 0 for n = 1.
 * n = dp ranks, ppn = dp_per_node of them per node, nNodes = n / ppn. Alpha-beta forms
 * (REFERENCE §D.6) with NCCL's latency structure and measured bus bandwidths (net.c cites each):
 *   ring RS / AG     baseLat + (n-1-(nNodes-1)) intra_lat + (nNodes-1) inter_lat
 *                    + (n-1)/n * (S/tp) / net_ring_busbw
 *   ring all-reduce  the same with 2(n-1) steps, 2(nNodes-1) of them inter, 2(n-1)/n * ...;
 *                    NVLS (NVLink SHARP) instead when the group is one whole 8-GPU node
 *   tree all-reduce  baseLat + 2 * ((ppn-1) * intra_lat + ceil(log2 nNodes) * inter_lat)
 *                    + (S/tp) / (0.5 * net_ring_busbw)  (NCCL's tree algbw = 0.5 x busBw) */
double net_allreduce_ring(const Cluster *c, double bytes);
double net_allreduce_pure_ring(const Cluster *c, double bytes); /* a ring even where NVLS applies */
double net_allreduce_tree(const Cluster *c, double bytes);
double net_reduce_scatter(const Cluster *c, double bytes);
double net_allgather(const Cluster *c, double bytes);
/* Achieved ring bus bandwidth of one DP group, bytes/s: NVLink's inside a node, else
 * min(NVLink, dp_per_node NICs) — NCCL runs one ring per NIC. */
double net_ring_busbw(const Cluster *c);
/* nccl-tests bus-bandwidth factors (REFERENCE §D.6) for reporting. */
double net_busbw_factor_allreduce(uint32_t n);
double net_busbw_factor_rs_ag_a2a(uint32_t n);

/* One aggregated transfer of the rebalancing all-to-allv: DP rank src -> dst. */
typedef struct {
    uint32_t src, dst;
    uint64_t bytes;
} NetMove;

/* Same meaning for the flat and the hierarchical form: what crosses NVLink and what crosses
 * the NICs (the hierarchical relays count on every hop), summed over its stages. */
typedef struct {
    uint64_t intra_bytes, inter_bytes; /* total over all moves / hops, bytes */
    uint64_t max_rank_bytes;           /* busiest rank's max(out, in), bytes (all stages) */
    uint32_t max_peers;                /* most distinct peers of one rank (summed over stages) */
    uint64_t intra_msgs, inter_msgs;   /* distinct (src, dst) messages over NVLink / NICs */
} NetA2AStats;

typedef struct NetScratch NetScratch; /* per-rank accumulators, reused across calls */
OsStatus net_scratch_create(NetScratch **out, const Cluster *c);
void net_scratch_destroy(NetScratch *s);

/* Flat all-to-allv: time = max over ranks of max(intra out/in over NVLink, inter out/in over
 * the NIC) + alpha * peers (intra_lat per intra-node peer, inter_lat per inter-node peer; a
 * peer is a rank this one sends to or receives from, counted once). src == dst moves and
 * zero-byte moves cost nothing; duplicate (src, dst) pairs are summed. stats may be NULL.
 * Seconds. The scratch grows to the largest move list seen (amortised: no allocation per
 * call in steady state). Returns NAN, with the error recorded (os_fail), when a rank index
 * is >= dp or growing the scratch fails. O(n + dp). */
double net_alltoallv(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                     NetA2AStats *stats);
/* Node-wise hierarchical all-to-allv (intra-node gather over NVLink, rail-aligned inter-node
 * exchange with every node-pair's bytes sent once, intra-node scatter). */
double net_alltoallv_hier(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                          NetA2AStats *stats);

/* Slow, obvious twins of the two above (STYLE habit 6): a dense dp x dp byte matrix per stage,
 * O(dp^2) memory and time, allocated per call. For tests on small clusters only. */
double net_alltoallv_ref(const Cluster *c, const NetMove *moves, size_t n, NetA2AStats *stats);
double net_alltoallv_hier_ref(const Cluster *c, const NetMove *moves, size_t n,
                              NetA2AStats *stats);

#endif
