/* net.c — cluster defaults and alpha-beta collective costs (contract: net.h).
 * Two all-to-allv paths: the fast one groups the moves by rank in reusable scratch (CSR by
 * source and by destination, O(n + dp)); the reference one fills a dense dp x dp matrix
 * (O(dp^2)) and reads the same quantities off its rows and columns. tests/test_net.c
 * compares them on random move lists with duplicate pairs. */
#include "sim/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- defaults (H100 SXM node) ---------------------------------------------------------- */

/* REFERENCE §D.4: BF16 dense peak 989.4 TFLOP/s, 80 GB HBM3. */
#define NET_H100_PEAK_FLOPS 989.4e12
#define NET_H100_MEM_BYTES 80e9
/* REFERENCE §D.5: NVLink 4, 18 links x 25 GB/s per direction = 450 GB/s per direction. */
#define NET_NVLINK4_BW 450e9
/* REFERENCE §D.5: NDR InfiniBand 400 Gb/s per ConnectX-7 port = 50 GB/s per direction, one
 * NIC per GPU on a DGX/HGX H100. */
#define NET_NDR_BW 50e9
/* Collective latencies and achieved bus bandwidths. The alpha-beta form is REFERENCE §D.6's
 * (t = alpha + f * S / B); its constants come from published nccl-tests measurements on
 * 8x H100 SXM (bench/fidelity/data/SOURCES-research.md §4), fitted per (collective, scope) at
 * messages >= 64 MiB by bench/fidelity/data/fit_collectives.py as REFERENCE §D.6 recommends,
 * and from NCCL's own tuning model where no table exists:
 *  - ring inside a node (reduce-scatter, all-gather, ring all-reduce): busbw 358 GB/s of the
 *    450 GB/s NVLink line rate (nccl-tests fit to NVIDIA/nccl #1047's ring reduce_scatter,
 *    128 MiB-8 GiB; "~370 GB/s" per NVIDIA, nccl-tests #212), alpha 51.1 us for 7 steps: NCCL's
 *    baseLat Ring Simple 8.4 us (tuning.cc) + 7 x 6.1 us per intra-node step;
 *  - NVLS all-reduce, a whole 8-GPU node: busbw 474 GB/s, alpha 83.8 us (fit to the
 *    NVIDIA/dgxc-benchmarking nccl-tests table, 64 MiB-16 GiB; ~480 per nccl-tests #212);
 *  - across nodes NCCL runs one ring per NIC (nccl-tests #290: 46-48 GB/s per 400 Gb/s NIC;
 *    47 taken), so a DP group with k members per node moves its ring traffic over k NICs;
 *    each inter-node step costs NCCL's hwLat NET Ring Simple, 14.0 us (tuning.cc, NCCL
 *    2.30.7). The rebalancing all-to-all is NOT a ring: it stays one NIC per GPU (nccl-tests
 *    #130, #267) and uses the raw link figures. */
#define NET_BASE_LAT 8.4e-6
#define NET_NVLINK_STEP_LAT 6.1e-6
#define NET_NET_STEP_LAT 14.0e-6
#define NET_RING_NVLINK_EFF (358.0 / 450.0)
#define NET_NVLS_BUSBW_EFF (474.0 / 450.0)
#define NET_NVLS_LAT 83.8e-6
#define NET_NVLS_MIN_GPUS 8
#define NET_NIC_EFF (47.0 / 50.0)

OsStatus cluster_validate(const Cluster *c) {
    OsStatus st = OS_OK;
    const char *hint_bw = "bandwidths are bytes/s per direction per GPU and must be > 0";
    if (!c) OS_FAIL(OS_ERR_ARG, "cluster", "cluster", NULL, "no cluster given");
    if (c->gpus == 0) OS_FAIL(OS_ERR_ARG, "cluster", "gpus", "give at least 1 GPU", "gpus is 0");
    if (c->gpus_per_node == 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "gpus_per_node", "a node has >= 1 GPU (H100 nodes: 8)",
                "gpus_per_node is 0");
    if (c->tp == 0) OS_FAIL(OS_ERR_ARG, "cluster", "tp", "use tp = 1 for no tensor parallelism",
                            "tp is 0");
    if (c->gpus % c->gpus_per_node != 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "gpus", "use a multiple of gpus_per_node",
                "%u GPUs do not fill whole nodes of %u", c->gpus, c->gpus_per_node);
    if (c->pp == 0 || c->cp == 0)
        OS_FAIL(OS_ERR_ARG, "cluster", c->pp == 0 ? "pp" : "cp", "use 1 for none", "is 0");
    uint64_t mp = (uint64_t)c->tp * c->pp * c->cp, tc = (uint64_t)c->tp * c->cp;
    if (c->gpus % c->tp != 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "tp", "tp must divide the GPU count",
                "%u GPUs do not split into TP groups of %u", c->gpus, c->tp);
    if (c->gpus % mp != 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "tp*pp*cp", "tp * pp * cp must divide the GPU count",
                "%u GPUs do not split into model replicas of %llu", c->gpus, (unsigned long long)mp);
    if (c->gpus_per_node % c->tp != 0 && c->tp % c->gpus_per_node != 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "tp",
                "tp must divide gpus_per_node or be a multiple of it (TP groups pack in nodes)",
                "tp %u vs %u GPUs per node", c->tp, c->gpus_per_node);
    if (c->gpus_per_node % tc != 0 && tc % c->gpus_per_node != 0)
        OS_FAIL(OS_ERR_ARG, "cluster", "tp*cp",
                "tp * cp must divide gpus_per_node or be a multiple of it (TP x CP groups pack in nodes)",
                "tp * cp = %llu vs %u GPUs per node", (unsigned long long)tc, c->gpus_per_node);
    uint32_t dpn = (uint32_t)(c->gpus_per_node / tc);
    if (dpn == 0) dpn = 1;
    if (c->nodes != c->gpus / c->gpus_per_node || c->dp != c->gpus / mp || c->dp_per_node != dpn)
        OS_FAIL(OS_ERR_ARG, "cluster", "nodes/dp/dp_per_node",
                "set them with cluster_init, then override only link figures",
                "derived counts disagree with gpus=%u gpus_per_node=%u tp=%u pp=%u cp=%u", c->gpus,
                c->gpus_per_node, c->tp, c->pp, c->cp);
    if (!(c->intra_bw > 0) || !isfinite(c->intra_bw))
        OS_FAIL(OS_ERR_ARG, "cluster", "intra_bw", hint_bw, "intra_bw is %g", c->intra_bw);
    if (!(c->inter_bw > 0) || !isfinite(c->inter_bw))
        OS_FAIL(OS_ERR_ARG, "cluster", "inter_bw", hint_bw, "inter_bw is %g", c->inter_bw);
    if (!(c->intra_lat >= 0) || !isfinite(c->intra_lat))
        OS_FAIL(OS_ERR_ARG, "cluster", "intra_lat", "seconds per step, >= 0", "intra_lat is %g",
                c->intra_lat);
    if (!(c->inter_lat >= 0) || !isfinite(c->inter_lat))
        OS_FAIL(OS_ERR_ARG, "cluster", "inter_lat", "seconds per step, >= 0", "inter_lat is %g",
                c->inter_lat);
    if (!(c->base_lat >= 0) || !isfinite(c->base_lat) || !(c->nvls_lat >= 0) || !isfinite(c->nvls_lat))
        OS_FAIL(OS_ERR_ARG, "cluster", c->base_lat >= 0 ? "nvls_lat" : "base_lat", "seconds, >= 0", "must be >= 0");
    if (!(c->peak_flops > 0) || !isfinite(c->peak_flops))
        OS_FAIL(OS_ERR_ARG, "cluster", "peak_flops", "FLOP/s per GPU, > 0", "peak_flops is %g",
                c->peak_flops);
    if (!(c->mem_bytes > 0) || !isfinite(c->mem_bytes))
        OS_FAIL(OS_ERR_ARG, "cluster", "mem_bytes", "bytes of HBM per GPU, > 0",
                "mem_bytes is %g", c->mem_bytes);
fail:
    return st;
}

OsStatus cluster_init(Cluster *c, uint32_t gpus, uint32_t gpus_per_node, uint32_t tp) {
    return cluster_init_parallel(c, gpus, gpus_per_node, tp, 1, 1);
}

OsStatus cluster_init_parallel(Cluster *c, uint32_t gpus, uint32_t gpus_per_node, uint32_t tp, uint32_t pp,
                               uint32_t cp) {
    OsStatus st = OS_OK;
    memset(c, 0, sizeof *c);
    /* Fewer GPUs than a node holds: one partial node of `gpus` GPUs. */
    if (gpus > 0 && gpus < gpus_per_node) gpus_per_node = gpus;
    c->gpus = gpus;
    c->gpus_per_node = gpus_per_node;
    c->nodes = gpus_per_node ? gpus / gpus_per_node : 0;
    c->peak_flops = NET_H100_PEAK_FLOPS;
    c->mem_bytes = NET_H100_MEM_BYTES;
    c->intra_bw = NET_NVLINK4_BW;
    c->intra_lat = NET_NVLINK_STEP_LAT;
    c->inter_bw = NET_NDR_BW;
    c->inter_lat = NET_NET_STEP_LAT;
    c->base_lat = NET_BASE_LAT;
    c->nvls_lat = NET_NVLS_LAT;
    c->nvls = 1;
    OS_CHECK(cluster_set_parallel(c, tp, pp, cp));
fail:
    return st;
}

OsStatus cluster_set_parallel(Cluster *c, uint32_t tp, uint32_t pp, uint32_t cp) {
    c->tp = tp;
    c->pp = pp;
    c->cp = cp;
    uint64_t mp = (uint64_t)tp * pp * cp, tc = (uint64_t)tp * cp;
    c->dp = mp ? (uint32_t)(c->gpus / mp) : 0;
    c->dp_per_node = (tc && c->gpus_per_node / tc) ? (uint32_t)(c->gpus_per_node / tc) : 1;
    return cluster_validate(c);
}

uint32_t cluster_node_of(const Cluster *c, uint32_t d) { return d / c->dp_per_node; }

Cluster cluster_grad_group(const Cluster *c) {
    Cluster g = *c;
    uint32_t n = c->dp * c->cp, per = c->tp <= c->gpus_per_node ? c->gpus_per_node / c->tp : 1;
    g.dp = n;
    g.dp_per_node = per < n ? per : n;
    if (g.dp_per_node == 0) g.dp_per_node = 1;
    return g;
}

Cluster cluster_tp_group(const Cluster *c) {
    Cluster g = *c;
    g.dp = c->tp;
    g.dp_per_node = c->tp <= c->gpus_per_node ? c->tp : c->gpus_per_node;
    g.tp = 1;
    return g;
}

double net_p2p(const Cluster *c, double bytes, int cross_node) {
    if (bytes <= 0) return 0.0;
    if (cross_node) return c->base_lat + c->inter_lat + bytes / (c->inter_bw * NET_NIC_EFF);
    return c->base_lat + c->intra_lat + bytes / (c->intra_bw * NET_RING_NVLINK_EFF);
}

/* ---- collectives over the DP group --------------------------------------------------------- */

/* Node groups the DP ranks occupy: nodes when TP groups pack inside nodes, else one per DP
 * rank (a DP rank that spans several nodes shares none with another rank). */
static uint32_t dp_nodes(const Cluster *c) {
    uint32_t per = c->dp_per_node ? c->dp_per_node : 1;
    return (c->dp + per - 1) / per; /* a group smaller than a node's share sits in one node */
}

/* Achieved ring bus bandwidth of one DP group (the GPUs at one TP index, one per DP rank):
 * NVLink's inside a node; across nodes the group's members in a node each drive their own NIC
 * (one NIC per GPU), so the node moves ring traffic over dp_per_node NICs — never faster than
 * NVLink, which carries the intra-node hops of the same rings. */
double net_ring_busbw(const Cluster *c) {
    double intra = c->intra_bw * NET_RING_NVLINK_EFF;
    if (dp_nodes(c) <= 1) return intra;
    double inter = c->inter_bw * NET_NIC_EFF * (double)c->dp_per_node;
    return inter < intra ? inter : intra;
}

/* NCCL's ring latency: baseLat + (nsteps - nInterSteps) intra + nInterSteps inter. */
static double ring_lat(const Cluster *c, uint32_t steps, uint32_t inter_steps) {
    return c->base_lat + (double)(steps - inter_steps) * c->intra_lat + (double)inter_steps * c->inter_lat;
}

/* The DP group's bytes per GPU: TP shards every module over tp GPUs, each in its own group. */
static double shard(const Cluster *c, double bytes) { return bytes / (double)c->tp; }

/* NVLS: NVLink SHARP all-reduce inside one NVSwitch node of >= 8 GPUs, every GPU in the group. */
static int use_nvls(const Cluster *c) {
    return c->nvls && dp_nodes(c) <= 1 && c->tp == 1 && c->dp >= NET_NVLS_MIN_GPUS && c->dp == c->gpus_per_node;
}

double net_allreduce_pure_ring(const Cluster *c, double bytes) {
    uint32_t n = c->dp, nn = dp_nodes(c);
    if (n <= 1) return 0.0;
    double f = 2.0 * (double)(n - 1) / (double)n;
    return ring_lat(c, 2 * (n - 1), 2 * (nn - 1)) + f * shard(c, bytes) / net_ring_busbw(c);
}

double net_allreduce_ring(const Cluster *c, double bytes) {
    uint32_t n = c->dp;
    if (n <= 1) return 0.0;
    double f = 2.0 * (double)(n - 1) / (double)n;
    if (use_nvls(c)) return c->nvls_lat + f * shard(c, bytes) / (c->intra_bw * NET_NVLS_BUSBW_EFF);
    return net_allreduce_pure_ring(c, bytes);
}

static double ring_half(const Cluster *c, double bytes) {
    uint32_t n = c->dp, nn = dp_nodes(c);
    if (n <= 1) return 0.0;
    return ring_lat(c, n - 1, nn - 1) + (double)(n - 1) / (double)n * shard(c, bytes) / net_ring_busbw(c);
}

double net_reduce_scatter(const Cluster *c, double bytes) { return ring_half(c, bytes); }
double net_allgather(const Cluster *c, double bytes) { return ring_half(c, bytes); }

double net_allreduce_tree(const Cluster *c, double bytes) {
    uint32_t n = c->dp, nn = dp_nodes(c), ppn = c->dp_per_node;
    if (n <= 1) return 0.0;
    if (nn <= 1) return net_allreduce_ring(c, bytes); /* NCCL's tree is a cross-node algorithm */
    /* Depth of a binary tree over nNodes: ceil(log2 nNodes) (equals NCCL's log2i at powers
     * of two, which is what clusters are built of). */
    uint32_t depth = 0;
    while ((1u << depth) < nn) depth++;
    double lat = c->base_lat + 2.0 * ((double)(ppn - 1) * c->intra_lat + (double)depth * c->inter_lat);
    /* NCCL tuning.cc: tree algbw = busBw * 0.5 (REFERENCE §D.6). */
    return lat + shard(c, bytes) / (0.5 * net_ring_busbw(c));
}

/* nccl-tests doc/PERFORMANCE.md (REFERENCE §D.6). */
double net_busbw_factor_allreduce(uint32_t n) {
    return n ? 2.0 * (double)(n - 1) / (double)n : 0.0;
}
double net_busbw_factor_rs_ag_a2a(uint32_t n) { return n ? (double)(n - 1) / (double)n : 0.0; }

/* ---- all-to-allv: fast path ------------------------------------------------------------------ */

struct NetScratch {
    uint32_t dp;
    uint32_t *off_src, *off_dst; /* [dp+1] CSR offsets of one stage's edges by src / by dst */
    uint64_t *stamp;             /* [dp] epoch of the last rank pass that saw this peer */
    uint64_t epoch;              /* bumped per rank pass; never reset, so stamps never clear */
    uint64_t *tot_out, *tot_in;  /* [dp] bytes over the stages of one call */
    uint32_t *tot_peers;         /* [dp] peers summed over the stages of one call */
    size_t *idx_src, *idx_dst;   /* [edges] edge indices grouped by src / by dst */
    size_t idx_src_cap, idx_dst_cap;
    NetMove *edges;              /* [edges] the hierarchical form's stage lists */
    size_t edges_cap;
};

OsStatus net_scratch_create(NetScratch **out, const Cluster *c) {
    OsStatus st = OS_OK;
    NetScratch *s = NULL;
    *out = NULL;
    OS_CHECK(cluster_validate(c));
    s = calloc(1, sizeof *s);
    ALLOC_CHECK(s);
    s->dp = c->dp;
    s->off_src = calloc((size_t)c->dp + 1, sizeof *s->off_src);
    ALLOC_CHECK(s->off_src);
    s->off_dst = calloc((size_t)c->dp + 1, sizeof *s->off_dst);
    ALLOC_CHECK(s->off_dst);
    s->stamp = calloc(c->dp, sizeof *s->stamp);
    ALLOC_CHECK(s->stamp);
    s->tot_out = calloc(c->dp, sizeof *s->tot_out);
    ALLOC_CHECK(s->tot_out);
    s->tot_in = calloc(c->dp, sizeof *s->tot_in);
    ALLOC_CHECK(s->tot_in);
    s->tot_peers = calloc(c->dp, sizeof *s->tot_peers);
    ALLOC_CHECK(s->tot_peers);
    *out = s;
    return OS_OK;
fail:
    net_scratch_destroy(s);
    return st;
}

void net_scratch_destroy(NetScratch *s) {
    if (!s) return;
    free(s->off_src);
    free(s->off_dst);
    free(s->stamp);
    free(s->tot_out);
    free(s->tot_in);
    free(s->tot_peers);
    free(s->idx_src);
    free(s->idx_dst);
    free(s->edges);
    free(s);
}

/* Check the move list and size the scratch for `edges` edges. */
static OsStatus a2a_prepare(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                            size_t edges) {
    OsStatus st = OS_OK;
    if (!s || s->dp != c->dp)
        OS_FAIL(OS_ERR_ARG, "net_alltoallv", "scratch", "create the scratch for this cluster",
                "scratch was made for dp=%u, cluster has dp=%u", s ? s->dp : 0, c->dp);
    for (size_t i = 0; i < n; i++)
        if (moves[i].src >= c->dp || moves[i].dst >= c->dp)
            OS_FAIL(OS_ERR_ARG, "net_alltoallv", "moves", "rank indices are DP ranks < dp",
                    "move %zu: %u -> %u with dp=%u", i, moves[i].src, moves[i].dst, c->dp);
    OS_CHECK(os_grow((void **)&s->idx_src, &s->idx_src_cap, edges, sizeof *s->idx_src));
    OS_CHECK(os_grow((void **)&s->idx_dst, &s->idx_dst_cap, edges, sizeof *s->idx_dst));
    memset(s->tot_out, 0, (size_t)c->dp * sizeof *s->tot_out);
    memset(s->tot_in, 0, (size_t)c->dp * sizeof *s->tot_in);
    memset(s->tot_peers, 0, (size_t)c->dp * sizeof *s->tot_peers);
fail:
    return st;
}

/* Group the non-trivial edges by `key` (src or dst) into idx, CSR style. After the fill,
 * off[r] is the END of rank r's range; its start is off[r-1] (0 for r = 0). */
static void csr_build(uint32_t *off, size_t *idx, const NetMove *e, size_t m, uint32_t dp,
                      int by_dst) {
    memset(off, 0, ((size_t)dp + 1) * sizeof *off);
    for (size_t i = 0; i < m; i++) {
        if (e[i].src == e[i].dst || e[i].bytes == 0) continue;
        off[(by_dst ? e[i].dst : e[i].src) + 1]++;
    }
    for (uint32_t r = 0; r < dp; r++) off[r + 1] += off[r];
    for (size_t i = 0; i < m; i++) {
        if (e[i].src == e[i].dst || e[i].bytes == 0) continue;
        idx[off[by_dst ? e[i].dst : e[i].src]++] = i;
    }
}

/* Cost one all-to-allv stage given as an edge list (duplicates allowed, self/zero edges free):
 * max over ranks of max(bytes / B per path and direction) + alpha * distinct peers. Adds the
 * stage's byte and message totals to acc and its per-rank totals to s->tot_*. */
static double a2a_stage(const Cluster *c, NetScratch *s, const NetMove *e, size_t m,
                        NetA2AStats *acc) {
    const uint32_t dp = c->dp;
    const double bi = c->intra_bw * (double)c->tp, be = c->inter_bw * (double)c->tp;
    double tmax = 0.0;
    csr_build(s->off_src, s->idx_src, e, m, dp, 0);
    csr_build(s->off_dst, s->idx_dst, e, m, dp, 1);
    for (uint32_t r = 0; r < dp; r++) {
        uint64_t ep = ++s->epoch;
        uint64_t out_i = 0, out_e = 0, in_i = 0, in_e = 0;
        uint32_t pi = 0, pe = 0, node = cluster_node_of(c, r);
        for (uint32_t k = r ? s->off_src[r - 1] : 0; k < s->off_src[r]; k++) {
            const NetMove *mv = &e[s->idx_src[k]];
            int intra = cluster_node_of(c, mv->dst) == node;
            if (intra) out_i += mv->bytes; else out_e += mv->bytes;
            if (s->stamp[mv->dst] != ep) { /* first message r -> dst this call */
                s->stamp[mv->dst] = ep;
                if (intra) { pi++; acc->intra_msgs++; } else { pe++; acc->inter_msgs++; }
            }
        }
        for (uint32_t k = r ? s->off_dst[r - 1] : 0; k < s->off_dst[r]; k++) {
            const NetMove *mv = &e[s->idx_dst[k]];
            int intra = cluster_node_of(c, mv->src) == node;
            if (intra) in_i += mv->bytes; else in_e += mv->bytes;
            if (s->stamp[mv->src] != ep) { /* a peer r only receives from */
                s->stamp[mv->src] = ep;
                if (intra) pi++; else pe++;
            }
        }
        double bw = OS_MAX(OS_MAX((double)out_i / bi, (double)in_i / bi),
                           OS_MAX((double)out_e / be, (double)in_e / be));
        double t = bw + (double)pi * c->intra_lat + (double)pe * c->inter_lat;
        if (t > tmax) tmax = t;
        acc->intra_bytes += out_i;
        acc->inter_bytes += out_e;
        s->tot_out[r] += out_i + out_e;
        s->tot_in[r] += in_i + in_e;
        s->tot_peers[r] += pi + pe;
    }
    return tmax;
}

static void a2a_finish(const NetScratch *s, NetA2AStats *acc, NetA2AStats *stats) {
    for (uint32_t r = 0; r < s->dp; r++) {
        uint64_t b = OS_MAX(s->tot_out[r], s->tot_in[r]);
        if (b > acc->max_rank_bytes) acc->max_rank_bytes = b;
        if (s->tot_peers[r] > acc->max_peers) acc->max_peers = s->tot_peers[r];
    }
    if (stats) *stats = *acc;
}

double net_alltoallv(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                     NetA2AStats *stats) {
    NetA2AStats acc = {0};
    if (stats) memset(stats, 0, sizeof *stats);
    if (a2a_prepare(c, moves, n, s, n) != OS_OK) return NAN;
    double t = a2a_stage(c, s, moves, n, &acc);
    a2a_finish(s, &acc, stats);
    return t;
}

/* Node-wise hierarchical form (OrchMLLM's node-wise communicator, REFERENCE §D.6: inter-node
 * bytes cross once per node pair and rail). Ranks are (node a, local index k), ppn per node.
 * A move s -> t with node(s) = a != node(t) = b, k = local(t):
 *   stage 1 (NVLink): s -> relay (a, k)        gather onto the destination's rail
 *   stage 2 (NICs):   (a, k) -> (b, k) = t     one aggregated message per (a, b, k)
 *   stage 3 (NVLink): (b, k) -> t              the scatter — empty here, because the relay
 *                     is aligned on the destination's own rail, so stage 2 already lands
 *                     on t; it is therefore not built.
 * Moves inside one node travel in stage 1 beside the gather (one NVLink all-to-all per node
 * rather than two). Time = sum of the stage times, each costed like the flat form. */
static size_t hier_stage(const Cluster *c, const NetMove *moves, size_t n, NetMove *out,
                         int stage) {
    const uint32_t ppn = c->dp_per_node;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const NetMove *mv = &moves[i];
        if (mv->src == mv->dst || mv->bytes == 0) continue;
        uint32_t a = cluster_node_of(c, mv->src), b = cluster_node_of(c, mv->dst);
        uint32_t relay = a * ppn + mv->dst % ppn;
        if (stage == 1) {
            if (a == b) out[m++] = *mv;
            else if (relay != mv->src) out[m++] = (NetMove){mv->src, relay, mv->bytes};
        } else if (a != b) {
            out[m++] = (NetMove){relay, mv->dst, mv->bytes};
        }
    }
    return m;
}

double net_alltoallv_hier(const Cluster *c, const NetMove *moves, size_t n, NetScratch *s,
                          NetA2AStats *stats) {
    NetA2AStats acc = {0};
    if (stats) memset(stats, 0, sizeof *stats);
    if (a2a_prepare(c, moves, n, s, n) != OS_OK) return NAN;
    if (os_grow((void **)&s->edges, &s->edges_cap, n, sizeof *s->edges) != OS_OK) return NAN;
    double t = 0.0;
    for (int stage = 1; stage <= 2; stage++) {
        size_t m = hier_stage(c, moves, n, s->edges, stage);
        t += a2a_stage(c, s, s->edges, m, &acc);
    }
    a2a_finish(s, &acc, stats);
    return t;
}

/* ---- all-to-allv: reference twins (dense matrices) ----------------------------------------- */

/* Cost one stage from its dense byte matrix M[src * dp + dst]; per-rank totals go to tot_*. */
static double ref_stage(const Cluster *c, const uint64_t *M, uint64_t *tot_out,
                        uint64_t *tot_in, uint32_t *tot_peers, NetA2AStats *acc) {
    const uint32_t dp = c->dp;
    const double bi = c->intra_bw * (double)c->tp, be = c->inter_bw * (double)c->tp;
    double tmax = 0.0;
    for (uint32_t r = 0; r < dp; r++) {
        uint64_t oi = 0, oe = 0, ii = 0, ie = 0;
        uint32_t pi = 0, pe = 0;
        for (uint32_t q = 0; q < dp; q++) {
            if (q == r) continue;
            uint64_t out = M[(size_t)r * dp + q], in = M[(size_t)q * dp + r];
            int intra = cluster_node_of(c, q) == cluster_node_of(c, r);
            if (intra) { oi += out; ii += in; } else { oe += out; ie += in; }
            if (out || in) { if (intra) pi++; else pe++; }
            if (out) { if (intra) acc->intra_msgs++; else acc->inter_msgs++; }
        }
        double bw = fmax(fmax((double)oi / bi, (double)ii / bi),
                         fmax((double)oe / be, (double)ie / be));
        double t = bw + (double)pi * c->intra_lat + (double)pe * c->inter_lat;
        tmax = fmax(tmax, t);
        acc->intra_bytes += oi;
        acc->inter_bytes += oe;
        tot_out[r] += oi + oe;
        tot_in[r] += ii + ie;
        tot_peers[r] += pi + pe;
    }
    return tmax;
}

static double ref_run(const Cluster *c, const NetMove *moves, size_t n, NetA2AStats *stats,
                      int hier) {
    const uint32_t dp = c->dp, ppn = c->dp_per_node;
    uint64_t *M = NULL, *tot_out = NULL, *tot_in = NULL;
    uint32_t *tot_peers = NULL;
    NetA2AStats acc = {0};
    double t = NAN;
    if (stats) memset(stats, 0, sizeof *stats);
    for (size_t i = 0; i < n; i++)
        if (moves[i].src >= dp || moves[i].dst >= dp) {
            os_fail(OS_ERR_ARG, "net_alltoallv_ref", "moves", "rank indices are DP ranks < dp",
                    "move %zu: %u -> %u with dp=%u", i, moves[i].src, moves[i].dst, dp);
            return NAN;
        }
    M = calloc((size_t)dp * dp, sizeof *M);
    tot_out = calloc(dp, sizeof *tot_out);
    tot_in = calloc(dp, sizeof *tot_in);
    tot_peers = calloc(dp, sizeof *tot_peers);
    if (!M || !tot_out || !tot_in || !tot_peers) {
        os_fail(OS_ERR_NOMEM, "memory", "net_alltoallv_ref", "use a smaller cluster",
                "dense %u x %u matrix", dp, dp);
        goto done;
    }
    t = 0.0;
    for (int stage = 1; stage <= (hier ? 2 : 1); stage++) {
        memset(M, 0, (size_t)dp * dp * sizeof *M);
        for (size_t i = 0; i < n; i++) {
            uint32_t s = moves[i].src, d = moves[i].dst;
            uint32_t a = cluster_node_of(c, s), b = cluster_node_of(c, d);
            uint32_t relay = a * ppn + d % ppn;
            if (!hier || a == b) {
                if (stage == 1) M[(size_t)s * dp + d] += moves[i].bytes;
            } else if (stage == 1) {
                M[(size_t)s * dp + relay] += moves[i].bytes;
            } else {
                M[(size_t)relay * dp + d] += moves[i].bytes;
            }
        }
        t += ref_stage(c, M, tot_out, tot_in, tot_peers, &acc);
    }
    for (uint32_t r = 0; r < dp; r++) {
        acc.max_rank_bytes = OS_MAX(acc.max_rank_bytes, OS_MAX(tot_out[r], tot_in[r]));
        acc.max_peers = OS_MAX(acc.max_peers, tot_peers[r]);
    }
    if (stats) *stats = acc;
done:
    free(M);
    free(tot_out);
    free(tot_in);
    free(tot_peers);
    return t;
}

double net_alltoallv_ref(const Cluster *c, const NetMove *moves, size_t n, NetA2AStats *stats) {
    return ref_run(c, moves, n, stats, 0);
}

double net_alltoallv_hier_ref(const Cluster *c, const NetMove *moves, size_t n,
                              NetA2AStats *stats) {
    return ref_run(c, moves, n, stats, 1);
}
