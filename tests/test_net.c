/* test_net.c — cluster validation, alpha-beta collective costs computed by hand from the
 * literal link figures, all-to-allv on hand-made byte lists, and fast vs reference twins. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/net.h"

#define REL_EQ(got, want) \
    cr_assert(fabs((got) - (want)) <= 1e-12 + 1e-9 * fabs(want), "got %.17g want %.17g", \
              (double)(got), (double)(want))

/* Field by field: the struct has padding, so memcmp would compare garbage. */
static int stats_eq(const NetA2AStats *a, const NetA2AStats *b) {
    return a->intra_bytes == b->intra_bytes && a->inter_bytes == b->inter_bytes &&
           a->max_rank_bytes == b->max_rank_bytes && a->max_peers == b->max_peers &&
           a->intra_msgs == b->intra_msgs && a->inter_msgs == b->inter_msgs;
}

static Cluster mk(uint32_t gpus, uint32_t gpn, uint32_t tp) {
    Cluster c;
    os_clear_error();
    cr_assert_eq(cluster_init(&c, gpus, gpn, tp), OS_OK, "%s", os_last_error());
    return c;
}

/* ---- cluster_init --------------------------------------------------------------------------- */

Test(cluster, h100_defaults_and_layout) {
    Cluster c = mk(16, 8, 1);
    cr_assert_eq(c.nodes, 2);
    cr_assert_eq(c.dp, 16);
    cr_assert_eq(c.dp_per_node, 8);
    cr_assert_eq(cluster_node_of(&c, 7), 0);
    cr_assert_eq(cluster_node_of(&c, 8), 1);
    cr_assert_float_eq(c.peak_flops, 989.4e12, 1.0);
    cr_assert_float_eq(c.mem_bytes, 80e9, 1.0);
    cr_assert_float_eq(c.intra_bw, 450e9, 1.0);
    cr_assert_float_eq(c.inter_bw, 50e9, 1.0);
    cr_assert(c.intra_lat > 0 && c.intra_lat < 20e-6);
    cr_assert(c.inter_lat > c.intra_lat && c.inter_lat < 50e-6);
}

Test(cluster, tp_groups) {
    Cluster c = mk(16, 8, 2);
    cr_assert_eq(c.dp, 8);
    cr_assert_eq(c.dp_per_node, 4);
    cr_assert_eq(cluster_node_of(&c, 3), 0);
    cr_assert_eq(cluster_node_of(&c, 4), 1);
    c = mk(32, 8, 16); /* a DP rank spans 2 nodes */
    cr_assert_eq(c.dp, 2);
    cr_assert_eq(c.dp_per_node, 1);
    cr_assert_eq(cluster_node_of(&c, 1), 1);
}

Test(cluster, partial_node) {
    Cluster c = mk(4, 8, 1);
    cr_assert_eq(c.nodes, 1);
    cr_assert_eq(c.gpus_per_node, 4);
    cr_assert_eq(c.dp, 4);
    cr_assert_eq(c.dp_per_node, 4);
}

static void expect_err(uint32_t gpus, uint32_t gpn, uint32_t tp, const char *field) {
    Cluster c;
    os_clear_error();
    cr_assert_eq(cluster_init(&c, gpus, gpn, tp), OS_ERR_ARG, "%u/%u/%u accepted", gpus, gpn, tp);
    cr_assert(strstr(os_last_error(), field), "'%s' does not name %s", os_last_error(), field);
    cr_assert(strstr(os_last_error(), "hint:"), "no hint in '%s'", os_last_error());
}

Test(cluster, errors_name_the_field) {
    expect_err(12, 8, 1, "gpus");
    expect_err(0, 8, 1, "gpus");
    expect_err(16, 0, 1, "gpus_per_node");
    expect_err(16, 8, 0, "tp");
    expect_err(16, 8, 3, "tp");  /* does not divide the GPU count */
    expect_err(24, 8, 12, "tp"); /* divides 24 but neither divides 8 nor is a multiple of it */
    Cluster c = mk(16, 8, 1);
    c.intra_bw = 0;
    os_clear_error();
    cr_assert_eq(cluster_validate(&c), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "intra_bw"));
    c = mk(16, 8, 1);
    c.inter_bw = -5;
    os_clear_error();
    cr_assert_eq(cluster_validate(&c), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "inter_bw"));
    c = mk(16, 8, 1);
    c.inter_bw = 25e9; /* a user override that is fine */
    cr_assert_eq(cluster_validate(&c), OS_OK);
}

/* ---- collectives ---------------------------------------------------------------------------- */

/* The constants of sim/net.c, restated: NCCL baseLat 8.4 us; achieved ring busbw 358/450 of
 * NVLink, NVLS all-reduce 474/450 with 83.8 us, 47/50 of a NIC. Per-step latencies are set
 * explicitly below so the expected values depend only on literals. */
#define BASE 8.4e-6
#define RING_EFF (358.0 / 450.0)
#define NIC_EFF (47.0 / 50.0)

static Cluster two_nodes(void) {
    Cluster c = mk(16, 8, 1);
    c.intra_lat = 3.4e-6;
    c.inter_lat = 9.6e-6;
    return c;
}

/* 2 nodes x 8: NCCL runs one ring per NIC, so the node's 8 NICs carry the ring: 8 x 47 GB/s,
 * above NVLink's 358 achieved, so NVLink (358 GB/s) is the bottleneck. */
Test(collective, ring_allreduce_two_nodes_uses_every_nic) {
    Cluster c = two_nodes();
    double bw = 450e9 * RING_EFF; /* min(358, 8 x 47 = 376) */
    REL_EQ(net_ring_busbw(&c), bw);
    double want = BASE + 28 * 3.4e-6 + 2 * 9.6e-6 + 2 * 15.0 / 16.0 * 1e9 / bw;
    REL_EQ(net_allreduce_ring(&c, 1e9), want);
    /* 200 Gb/s NICs: now the NICs bind, 8 x 25 x 0.94 = 188 GB/s */
    c.inter_bw = 25e9;
    REL_EQ(net_ring_busbw(&c), 8 * 25e9 * NIC_EFF);
}

Test(collective, one_node_allreduce_is_nvls) {
    Cluster c = mk(8, 8, 1);
    /* NVLS: 83.8 us + 2 * 7/8 * 1e9 / (450e9 * 474/450) */
    REL_EQ(net_allreduce_ring(&c, 1e9), 83.8e-6 + 1.75e9 / 474e9);
    /* 4 GPUs in one node: a ring over NVLink, 6 steps */
    Cluster c4 = mk(4, 8, 1);
    c4.intra_lat = 3.4e-6;
    REL_EQ(net_allreduce_ring(&c4, 1e9), BASE + 6 * 3.4e-6 + 1.5e9 / (450e9 * RING_EFF));
}

Test(collective, rs_ag_two_nodes) {
    Cluster c = two_nodes();
    double want = BASE + 14 * 3.4e-6 + 1 * 9.6e-6 + 15.0 / 16.0 * 1e9 / (450e9 * RING_EFF);
    REL_EQ(net_reduce_scatter(&c, 1e9), want);
    REL_EQ(net_allgather(&c, 1e9), want);
}

/* TP 2 on 2 nodes: dp 8 (4 per node); each of the 2 DP groups moves its 1/2 shard over its
 * own 4 NICs per node (4 x 47 = 188 GB/s < NVLink's 358). */
Test(collective, tp_shards_the_bytes_over_more_groups) {
    Cluster c = mk(16, 8, 2);
    c.intra_lat = 3.4e-6;
    c.inter_lat = 9.6e-6;
    double bw = 4 * 50e9 * NIC_EFF;
    REL_EQ(net_ring_busbw(&c), bw);
    REL_EQ(net_allreduce_ring(&c, 1e9), BASE + 12 * 3.4e-6 + 2 * 9.6e-6 + 2 * 7.0 / 8.0 * 0.5e9 / bw);
}

Test(collective, tree_allreduce_two_nodes) {
    Cluster c = two_nodes();
    /* 2 * (7 intra + log2(2) = 1 inter) alphas; tree algbw = 0.5 * the ring busbw */
    REL_EQ(net_allreduce_tree(&c, 1e9), BASE + 2 * (7 * 3.4e-6 + 9.6e-6) + 1e9 / (0.5 * 450e9 * RING_EFF));
    /* in one node the tree is not NCCL's choice: the same as the ring / NVLS */
    Cluster one = mk(8, 8, 1);
    REL_EQ(net_allreduce_tree(&one, 1e9), net_allreduce_ring(&one, 1e9));
}

Test(collective, tree_vs_ring_scaling) {
    Cluster small = mk(512, 8, 1), big = mk(1024, 8, 1); /* 64 and 128 nodes */
    /* latency-bound (1 KB): the tree's latency grows by one inter hop per doubling, the
     * ring's by 2 * 512 steps */
    double ts = net_allreduce_tree(&small, 1e3), tb = net_allreduce_tree(&big, 1e3);
    double rs = net_allreduce_ring(&small, 1e3), rb = net_allreduce_ring(&big, 1e3);
    cr_assert_lt(ts, rs);
    REL_EQ(tb - ts, 2 * big.inter_lat);
    cr_assert_gt(rb - rs, 1000 * small.intra_lat);
    /* bandwidth-bound (4 GB on 2 nodes): the ring wins, 2(n-1)/n = 1.875 < 2 (NCCL's tree
     * algbw is 0.5 x busBw). At 64 nodes the ring's 1022 step latencies eat that 1/n edge. */
    Cluster two = mk(16, 8, 1);
    cr_assert_lt(net_allreduce_ring(&two, 4e9), net_allreduce_tree(&two, 4e9));
    cr_assert_lt(net_allreduce_tree(&small, 4e9), net_allreduce_ring(&small, 4e9));
}

Test(collective, single_rank_is_free) {
    Cluster c = mk(1, 8, 1);
    cr_assert_eq(net_allreduce_ring(&c, 1e9), 0.0);
    cr_assert_eq(net_allreduce_tree(&c, 1e9), 0.0);
    cr_assert_eq(net_reduce_scatter(&c, 1e9), 0.0);
    cr_assert_eq(net_allgather(&c, 1e9), 0.0);
    c = mk(8, 8, 8); /* one TP group: dp = 1 */
    cr_assert_eq(net_allreduce_ring(&c, 1e9), 0.0);
}

Test(collective, busbw_factors) {
    REL_EQ(net_busbw_factor_allreduce(16), 1.875);
    REL_EQ(net_busbw_factor_rs_ag_a2a(16), 0.9375);
    REL_EQ(net_busbw_factor_allreduce(2), 1.0);
    cr_assert_eq(net_busbw_factor_allreduce(1), 0.0);
    cr_assert_eq(net_busbw_factor_rs_ag_a2a(1), 0.0);
    /* busbw of the ring all-reduce at large S approaches the ring's achieved bandwidth */
    Cluster c = two_nodes();
    double S = 1e12, t = net_allreduce_ring(&c, S);
    double busbw = S / t * net_busbw_factor_allreduce(c.dp);
    cr_assert(busbw < 358e9 && busbw > 0.999 * 358e9, "busbw %g", busbw);
}

/* ---- all-to-allv ---------------------------------------------------------------------------- */

/* 2 nodes x 4 GPUs with round link figures: NVLink 100 GB/s, alpha 1 us; NIC 10 GB/s,
 * alpha 10 us. */
static Cluster small_a2a(void) {
    Cluster c = mk(8, 4, 1);
    c.intra_bw = 100e9;
    c.intra_lat = 1e-6;
    c.inter_bw = 10e9;
    c.inter_lat = 10e-6;
    cr_assert_eq(cluster_validate(&c), OS_OK);
    return c;
}

typedef struct {
    Cluster c;
    NetScratch *s;
} Fix;

static Fix fix_make(void) {
    Fix f = {small_a2a(), NULL};
    cr_assert_eq(net_scratch_create(&f.s, &f.c), OS_OK);
    return f;
}

/* Fast, and checks the reference twin agrees. */
static double a2a(Fix *f, const NetMove *m, size_t n, NetA2AStats *st) {
    NetA2AStats ref;
    double t = net_alltoallv(&f->c, m, n, f->s, st);
    double tr = net_alltoallv_ref(&f->c, m, n, &ref);
    REL_EQ(t, tr);
    cr_assert(stats_eq(st, &ref));
    return t;
}

Test(a2a, intra_only) {
    Fix f = fix_make();
    NetMove m[] = {{0, 1, 1000000000}, {0, 2, 500000000}, {3, 1, 200000000}};
    NetA2AStats st;
    /* rank 0: 1.5 GB out over NVLink + 2 peers */
    REL_EQ(a2a(&f, m, 3, &st), 1.5e9 / 100e9 + 2 * 1e-6);
    cr_assert_eq(st.intra_bytes, 1700000000ull);
    cr_assert_eq(st.inter_bytes, 0);
    cr_assert_eq(st.max_rank_bytes, 1500000000ull);
    cr_assert_eq(st.max_peers, 2);
    cr_assert_eq(st.intra_msgs, 3);
    cr_assert_eq(st.inter_msgs, 0);
    net_scratch_destroy(f.s);
}

Test(a2a, inter_only) {
    Fix f = fix_make();
    NetMove m[] = {{0, 4, 1000000000}, {1, 4, 1000000000}, {2, 5, 100000000}};
    NetA2AStats st;
    /* rank 4 receives 2 GB over its NIC from 2 peers */
    REL_EQ(a2a(&f, m, 3, &st), 2e9 / 10e9 + 2 * 10e-6);
    cr_assert_eq(st.inter_bytes, 2100000000ull);
    cr_assert_eq(st.intra_bytes, 0);
    cr_assert_eq(st.max_rank_bytes, 2000000000ull);
    cr_assert_eq(st.inter_msgs, 3);
    net_scratch_destroy(f.s);
}

Test(a2a, mixed_takes_slower_path_plus_both_alphas) {
    Fix f = fix_make();
    NetMove m[] = {{0, 1, 4000000000}, {0, 4, 1000000000}};
    NetA2AStats st;
    /* rank 0: max(4 GB / 100 GB/s, 1 GB / 10 GB/s) + 1 intra + 1 inter alpha */
    REL_EQ(a2a(&f, m, 2, &st), 0.1 + 1e-6 + 10e-6);
    cr_assert_eq(st.max_rank_bytes, 5000000000ull);
    cr_assert_eq(st.intra_msgs, 1);
    cr_assert_eq(st.inter_msgs, 1);
    net_scratch_destroy(f.s);
}

Test(a2a, self_and_zero_moves_are_free) {
    Fix f = fix_make();
    NetMove m[] = {{2, 2, 1000000000000ull}, {5, 6, 0}};
    NetA2AStats st;
    cr_assert_eq(a2a(&f, m, 2, &st), 0.0);
    cr_assert_eq(st.intra_bytes + st.inter_bytes + st.max_rank_bytes + st.max_peers, 0);
    cr_assert_eq(net_alltoallv(&f.c, m, 0, f.s, &st), 0.0);
    net_scratch_destroy(f.s);
}

Test(a2a, duplicate_pairs_are_summed_peers_counted_once) {
    Fix f = fix_make();
    NetMove dup[] = {{0, 1, 500000000}, {1, 0, 100000000}, {0, 1, 500000000}};
    NetMove one[] = {{0, 1, 1000000000}, {1, 0, 100000000}};
    NetA2AStats a, b;
    double ta = a2a(&f, dup, 3, &a), tb = a2a(&f, one, 2, &b);
    /* rank 0: 1 GB out, 1 peer (1 is both destination and source) */
    REL_EQ(ta, 1e9 / 100e9 + 1e-6);
    REL_EQ(ta, tb);
    cr_assert(stats_eq(&a, &b));
    cr_assert_eq(a.max_peers, 1);
    cr_assert_eq(a.intra_msgs, 2);
    net_scratch_destroy(f.s);
}

Test(a2a, bad_rank_is_an_error) {
    Fix f = fix_make();
    NetMove m[] = {{0, 8, 1}};
    os_clear_error();
    cr_assert(isnan(net_alltoallv(&f.c, m, 1, f.s, NULL)));
    cr_assert(strstr(os_last_error(), "moves"));
    net_scratch_destroy(f.s);
}

Test(a2a_hier, rail_relay_by_hand) {
    Fix f = fix_make();
    NetMove m[] = {{0, 5, 1000000000}, {1, 5, 1000000000}};
    NetA2AStats st, ref, flat;
    /* rank 5 is local index 1: node 0's rail-1 relay is rank 1.
     * stage 1: 0 -> 1, 1 GB over NVLink, 1 peer; stage 2: 1 -> 5, 2 GB over the NIC, 1 peer */
    double t = net_alltoallv_hier(&f.c, m, 2, f.s, &st);
    REL_EQ(t, (1e9 / 100e9 + 1e-6) + (2e9 / 10e9 + 10e-6));
    REL_EQ(net_alltoallv_hier_ref(&f.c, m, 2, &ref), t);
    cr_assert(stats_eq(&st, &ref));
    cr_assert_eq(st.inter_msgs, 1);
    cr_assert_eq(st.inter_bytes, 2000000000ull);
    cr_assert_eq(st.intra_bytes, 1000000000ull);
    net_alltoallv(&f.c, m, 2, f.s, &flat);
    cr_assert_eq(flat.inter_msgs, 2);
    cr_assert_eq(flat.inter_bytes, st.inter_bytes);
    net_scratch_destroy(f.s);
}

Test(a2a_hier, many_small_messages_win) {
    Fix f = fix_make();
    NetMove m[64];
    size_t n = 0;
    for (uint32_t s = 0; s < 8; s++)
        for (uint32_t d = 0; d < 8; d++)
            if (s / 4 != d / 4) m[n++] = (NetMove){s, d, 1000};
    NetA2AStats fs, hs;
    double tf = net_alltoallv(&f.c, m, n, f.s, &fs);
    double th = net_alltoallv_hier(&f.c, m, n, f.s, &hs);
    /* flat: 4 inter peers per rank; hierarchical: 3 NVLink peers then 1 NIC peer */
    REL_EQ(tf, 4000 / 10e9 + 4 * 10e-6);
    REL_EQ(th, 3000 / 100e9 + 3 * 1e-6 + 4000 / 10e9 + 10e-6);
    cr_assert_lt(th, tf);
    cr_assert_eq(fs.inter_msgs, 32);
    cr_assert_eq(hs.inter_msgs, 8);
    cr_assert_eq(hs.inter_bytes, fs.inter_bytes);
    net_scratch_destroy(f.s);
}

static uint64_t rng(uint64_t *x) { /* xorshift64* */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

Test(a2a, fast_matches_reference_random) {
    static const uint32_t shapes[][3] = {{8, 4, 1}, {32, 8, 1}, {32, 8, 2}, {32, 8, 16},
                                         {6, 8, 1}, {64, 8, 4}};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    NetMove *m = malloc(4000 * sizeof *m);
    cr_assert(m);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        Cluster c = mk(shapes[k][0], shapes[k][1], shapes[k][2]);
        NetScratch *s = NULL;
        cr_assert_eq(net_scratch_create(&s, &c), OS_OK);
        for (int rep = 0; rep < 20; rep++) {
            size_t n = rng(&x) % 4000;
            for (size_t i = 0; i < n; i++) {
                /* few distinct pairs so duplicates are common; some self and zero moves */
                m[i].src = (uint32_t)(rng(&x) % c.dp);
                m[i].dst = (rng(&x) % 8) ? (uint32_t)(rng(&x) % c.dp) : m[i].src;
                m[i].bytes = (rng(&x) % 10) ? rng(&x) % 100000000 : 0;
            }
            NetA2AStats a, b, ha, hb;
            double t = net_alltoallv(&c, m, n, s, &a), tr = net_alltoallv_ref(&c, m, n, &b);
            double th = net_alltoallv_hier(&c, m, n, s, &ha);
            double thr = net_alltoallv_hier_ref(&c, m, n, &hb);
            REL_EQ(t, tr);
            REL_EQ(th, thr);
            cr_assert(stats_eq(&a, &b), "flat stats, shape %zu rep %d", k, rep);
            cr_assert(stats_eq(&ha, &hb), "hier stats, shape %zu rep %d", k, rep);
            cr_assert_leq(ha.inter_msgs, a.inter_msgs);
            cr_assert_eq(ha.inter_bytes, a.inter_bytes);
            if (c.dp_per_node == 1) REL_EQ(th, t); /* nothing to relay inside a node */
        }
        net_scratch_destroy(s);
    }
    free(m);
}
