/* bench_balance.c — balancer runtime and quality: every partition algorithm and every policy
 * on synthetic steps, D = 8 .. 2560 ranks, 8-32 units per rank, one core.
 * Implements: the bench_balance section of bench/RESULTS.md. Quality beside time: max/mean
 *   and max/lower-bound (partitions), per-phase max/oracle and inter-node bytes (policies),
 *   with `none` measured in the same run as the baseline.
 * Does not: model time (bench_replay does). Units: lengths a*len + c*len^2 seconds.
 * Usage: bench_balance [--quick] [--check]   (--check: exit 1 when LPT at D=2560 x 16 units
 *   takes >= 1 ms, node-wise placement at 320 nodes >= 20 ms, or the post-node policy at
 *   D=2560 x 16 examples >= 20 ms: the targets of the issues). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/partition.h"
#include "base/util.h"
#include "sim/policy.h"

#define G_PER_NODE 8
#define A_LIN 1e-6  /* s per token: an illustrative a*len + c*len^2, not a calibrated model */
#define C_QUAD 2e-10

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Lengths with a heavy tail (1 in 10 four times longer), like image tiles / long captions. */
static uint32_t rnd_len(void) {
    uint32_t l = 64 + (uint32_t)(rnd() % 4000);
    return rnd() % 10 == 0 ? 4 * l : l;
}

typedef struct {
    double best, mean; /* seconds per call */
} Timing;

/* Warm-up once, then repeat for >= min_s (and >= 3 calls). */
#define TIME_IT(tm, min_s, stmt)                                           \
    do {                                                                   \
        stmt;                                                              \
        double t_tot_ = 0.0, t_best_ = INFINITY;                           \
        int n_ = 0;                                                        \
        while (n_ < 3 || t_tot_ < (min_s)) {                               \
            double t0_ = os_now();                                         \
            stmt;                                                          \
            double dt_ = os_now() - t0_;                                   \
            t_tot_ += dt_;                                                 \
            t_best_ = dt_ < t_best_ ? dt_ : t_best_;                       \
            n_++;                                                          \
        }                                                                  \
        (tm).best = t_best_;                                               \
        (tm).mean = t_tot_ / n_;                                           \
    } while (0)

/* ---- partitions ---------------------------------------------------------------------------- */

static double max_over_mean(const uint32_t *bin, const double *w, uint32_t n, uint32_t D, double *load) {
    double tot = 0.0, mx = 0.0;
    memset(load, 0, D * sizeof *load);
    for (uint32_t i = 0; i < n; i++) {
        load[bin[i]] += w[i];
        tot += w[i];
    }
    for (uint32_t b = 0; b < D; b++) mx = fmax(mx, load[b]);
    return tot > 0 ? mx / (tot / D) : 1.0;
}

static int bench_partitions(uint32_t D, uint32_t per, double min_s, double *lpt_2560_16) {
    OsStatus st = OS_OK;
    uint32_t n = D * per;
    PartScratch *s = NULL;
    double *w = malloc(n * sizeof *w), *load = malloc(D * sizeof *load), mx = 0;
    uint32_t *len = malloc(n * sizeof *len), *bin = malloc(n * sizeof *bin);
    uint64_t *size = malloc(n * sizeof *size), *cap = malloc(D * sizeof *cap), tot = 0;
    if (!w || !load || !len || !bin || !size || !cap) {
        st = OS_ERR_NOMEM;
        goto fail;
    }
    OS_CHECK(part_scratch_create(&s));
    rng_state = 1000 + D * 37 + per;
    for (uint32_t i = 0; i < n; i++) {
        len[i] = rnd_len();
        w[i] = A_LIN * len[i] + C_QUAD * (double)len[i] * len[i];
        size[i] = len[i];
        tot += len[i];
    }
    /* none: unit i stays in bin i / per, as drawn */
    for (uint32_t i = 0; i < n; i++) bin[i] = i / per;
    double lb = part_lower_bound(w, n, D), mean = 0;
    for (uint32_t i = 0; i < n; i++) mean += w[i];
    mean /= D;
    printf("%-6u %-4u %-12s %12s %9.3f %9.3f\n", D, per, "none(drawn)", "-", max_over_mean(bin, w, n, D, load),
           max_over_mean(bin, w, n, D, load) * mean / lb);
    Timing t;
    TIME_IT(t, min_s, OS_CHECK(part_lpt(bin, &mx, w, n, D, NULL, NULL, s)));
    printf("%-6u %-4u %-12s %12.1f %9.3f %9.3f\n", D, per, "lpt", t.best * 1e6, mx / mean, mx / lb);
    if (D == 2560 && per == 16) *lpt_2560_16 = t.best;
    for (uint32_t b = 0; b < D; b++) cap[b] = tot / D + tot / D / 10 + 4 * 4064; /* mean + 10% + a tail unit */
    TIME_IT(t, min_s, OS_CHECK(part_lpt(bin, &mx, w, n, D, size, cap, s)));
    printf("%-6u %-4u %-12s %12.1f %9.3f %9.3f\n", D, per, "lpt+cap", t.best * 1e6, mx / mean, mx / lb);
    TIME_IT(t, min_s, OS_CHECK(part_kk(bin, &mx, w, n, D, s)));
    printf("%-6u %-4u %-12s %12.1f %9.3f %9.3f\n", D, per, "kk", t.best * 1e6, mx / mean, mx / lb);
    TIME_IT(t, min_s, OS_CHECK(part_sorted_rr(bin, &mx, w, n, D, s)));
    printf("%-6u %-4u %-12s %12.1f %9.3f %9.3f\n", D, per, "sorted_rr", t.best * 1e6, mx / mean, mx / lb);
    TIME_IT(t, min_s, OS_CHECK(part_padded(bin, &mx, len, n, D, s)));
    /* padded quality is in its own units (count x max len), against its own sum of lengths */
    printf("%-6u %-4u %-12s %12.1f %9.3f %9s\n", D, per, "padded", t.best * 1e6, mx / ((double)tot / D), "-");
fail:
    part_scratch_destroy(s);
    free(w);
    free(load);
    free(len);
    free(bin);
    free(size);
    free(cap);
    return st != OS_OK;
}

static int bench_hungarian(uint32_t n, double min_s) {
    OsStatus st = OS_OK;
    PartScratch *s = NULL;
    double *c = malloc((size_t)n * n * sizeof *c), tot = 0;
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!c || !perm) {
        st = OS_ERR_NOMEM;
        goto fail;
    }
    OS_CHECK(part_scratch_create(&s));
    rng_state = n;
    for (size_t i = 0; i < (size_t)n * n; i++) c[i] = (double)(rnd() % 1000000);
    Timing t;
    TIME_IT(t, min_s, OS_CHECK(part_hungarian(perm, &tot, c, n, s)));
    printf("%-6s %-4u %-12s %12.1f %9s %9s   (uniform random %ux%u costs: worst case)\n", "-", n,
           "hungarian", t.best * 1e6, "-", "-", n, n);
fail:
    part_scratch_destroy(s);
    free(c);
    free(perm);
    return st != OS_OK;
}

/* ---- policies ------------------------------------------------------------------------------ */

typedef struct {
    uint32_t *drawn, *ex_tokens, *it_example, *it_len;
    uint8_t *it_phase;
    double *ex_cost, *it_cost;
    uint64_t *ex_bytes, *it_in, *it_out;
    PolicyOptions opt;
    StepWork w;
} Step;

/* per examples per rank; 0-3 items per example over 2 encoders (image, audio); P = 3. */
static int step_make(Step *s, uint32_t D, uint32_t per) {
    memset(s, 0, sizeof *s);
    uint32_t N = D * per, M = 0, P = 3;
    s->drawn = malloc(N * sizeof *s->drawn);
    s->ex_tokens = malloc(N * sizeof *s->ex_tokens);
    s->ex_cost = malloc(N * sizeof *s->ex_cost);
    s->ex_bytes = malloc(N * sizeof *s->ex_bytes);
    s->it_example = malloc(3 * N * sizeof *s->it_example);
    s->it_len = malloc(3 * N * sizeof *s->it_len);
    s->it_phase = malloc(3 * N);
    s->it_cost = malloc(3 * N * sizeof *s->it_cost);
    s->it_in = malloc(3 * N * sizeof *s->it_in);
    s->it_out = malloc(3 * N * sizeof *s->it_out);
    if (!s->drawn || !s->ex_tokens || !s->ex_cost || !s->ex_bytes || !s->it_example || !s->it_len ||
        !s->it_phase || !s->it_cost || !s->it_in || !s->it_out)
        return 1;
    rng_state = 77 + D * 13 + per;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t text = 32 + (uint32_t)(rnd() % 2000), S = text, k = (uint32_t)(rnd() % 4);
        for (uint32_t q = 0; q < k; q++) {
            uint32_t len = rnd_len();
            s->it_example[M] = i;
            s->it_phase[M] = (uint8_t)(rnd() % 2);
            s->it_len[M] = len;
            s->it_cost[M] = 0.5 * A_LIN * len + C_QUAD * (double)len * len;
            s->it_in[M] = (uint64_t)len * 588; /* 14x14x3 bytes per patch */
            s->it_out[M] = (uint64_t)((len + 3) / 4) * 2 * 4096; /* 4:1 projector, bf16, h = 4096 */
            S += (len + 3) / 4;
            M++;
        }
        s->drawn[i] = i / per;
        s->ex_tokens[i] = S;
        s->ex_cost[i] = 2 * A_LIN * S + C_QUAD * (double)S * S;
        s->ex_bytes[i] = (uint64_t)text * 4;
    }
    s->opt = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    s->w = (StepWork){.D = D, .P = P, .N = N, .M = M, .dp_per_node = G_PER_NODE < D ? G_PER_NODE : D,
                      .drawn = s->drawn, .ex_cost = s->ex_cost, .ex_tokens = s->ex_tokens,
                      .ex_bytes = s->ex_bytes, .it_example = s->it_example, .it_phase = s->it_phase,
                      .it_cost = s->it_cost, .it_len = s->it_len, .it_in_bytes = s->it_in,
                      .it_out_bytes = s->it_out, .opt = &s->opt};
    return 0;
}

static void step_free(Step *s) {
    free(s->drawn);
    free(s->ex_tokens);
    free(s->ex_cost);
    free(s->ex_bytes);
    free(s->it_example);
    free(s->it_len);
    free(s->it_phase);
    free(s->it_cost);
    free(s->it_in);
    free(s->it_out);
}

/* Worst phase max/oracle, and bytes crossing nodes for the whole step's forward moves:
 * encoder inputs home -> it_rank, encoder outputs it_rank -> ex_rank, text home -> ex_rank. */
static void plan_quality(double *worst, double *ratio, double *inter_gb, const Plan *p, const StepWork *w,
                         double *load) {
    *worst = 0.0;
    for (uint32_t ph = 0; ph < w->P; ph++) {
        memset(load, 0, w->D * sizeof *load);
        double tot = 0.0, mx = 0.0;
        if (ph + 1 == w->P)
            for (uint32_t i = 0; i < w->N; i++) load[p->ex_rank[i]] += w->ex_cost[i], tot += w->ex_cost[i];
        else
            for (uint32_t j = 0; j < w->M; j++)
                if (w->it_phase[j] == ph) load[p->it_rank[j]] += w->it_cost[j], tot += w->it_cost[j];
        for (uint32_t r = 0; r < w->D; r++) mx = fmax(mx, load[r]);
        double o = policy_oracle_phase(w, ph);
        ratio[ph] = tot > 0 ? mx / (tot / w->D) : 1.0;
        if (o > 0) *worst = fmax(*worst, mx / o);
    }
    uint32_t g = w->dp_per_node;
    uint64_t x = 0;
    for (uint32_t i = 0; i < w->N; i++)
        if (p->home[i] / g != p->ex_rank[i] / g) x += w->ex_bytes[i];
    for (uint32_t j = 0; j < w->M; j++) {
        uint32_t h = p->home[w->it_example[j]], r = p->it_rank[j], e = p->ex_rank[w->it_example[j]];
        if (h / g != r / g) x += w->it_in_bytes[j];
        if (r / g != e / g) x += w->it_out_bytes[j];
    }
    *inter_gb = (double)x / 1e9;
}

static int bench_policies(uint32_t D, uint32_t per, double min_s, double *post_node_s) {
    OsStatus st = OS_OK;
    Step s;
    Plan p = {0};
    PolicyScratch *ps = NULL;
    double *load = malloc(D * sizeof *load);
    if (step_make(&s, D, per) || !load) {
        st = OS_ERR_NOMEM;
        goto fail;
    }
    OS_CHECK(policy_scratch_create(&ps));
    p.home = malloc(s.w.N * sizeof *p.home);
    p.ex_rank = malloc(s.w.N * sizeof *p.ex_rank);
    p.it_rank = malloc((s.w.M + 1) * sizeof *p.it_rank);
    if (!p.home || !p.ex_rank || !p.it_rank) {
        st = OS_ERR_NOMEM;
        goto fail;
    }
    double none_t = 0.0;
    for (uint32_t k = 0; k < policy_count(); k++) {
        const Policy *pol = policy_at(k);
        Timing t;
        TIME_IT(t, min_s, OS_CHECK(pol->fn(&p, &s.w, ps)));
        OS_CHECK(plan_check(&p, &s.w, pol->name));
        if (k == 0) none_t = t.best;
        if (!strcmp(pol->name, "post-node")) *post_node_s = t.best;
        double worst, ratio[3], gb;
        plan_quality(&worst, ratio, &gb, &p, &s.w, load);
        printf("%-6u %-4u %-10s %12.1f %8.1fx %9.3f %9.3f %9.3f %10.3f %9.3f\n", D, per, pol->name,
               t.best * 1e6, none_t > 0 ? t.best / none_t : 1.0, ratio[0], ratio[1], ratio[2], worst, gb);
    }
fail:
    if (st != OS_OK) fprintf(stderr, "bench_balance: %s\n", os_last_error());
    policy_scratch_destroy(ps);
    free(p.home);
    free(p.ex_rank);
    free(p.it_rank);
    free(load);
    step_free(&s);
    return st != OS_OK;
}

/* Node-wise placement alone: the LLM phase of post at D ranks (per examples + their items). */
static int bench_node_place(uint32_t D, uint32_t per, double min_s, double *out_s) {
    OsStatus st = OS_OK;
    uint32_t n = D * per;
    PolicyScratch *ps = NULL;
    uint32_t *bin = malloc(n * sizeof *bin), *src = malloc(n * sizeof *src), *rob = malloc(D * sizeof *rob);
    uint64_t *by = malloc(n * sizeof *by);
    if (!bin || !src || !rob || !by) {
        st = OS_ERR_NOMEM;
        goto fail;
    }
    OS_CHECK(policy_scratch_create(&ps));
    rng_state = 5 + D;
    /* Post-balanced bins hold units from anywhere: bin of unit = random, source = drawn rank. */
    for (uint32_t u = 0; u < n; u++) {
        src[u] = u / per;
        bin[u] = (uint32_t)(rnd() % D);
        by[u] = (uint64_t)rnd_len() * 588;
    }
    Timing t;
    TIME_IT(t, min_s, OS_CHECK(policy_node_place(rob, bin, src, by, n, D, G_PER_NODE, NODE_PLACE_HIER, ps)));
    uint64_t e, a, e0, a0;
    policy_node_bytes(&e, &a, rob, bin, src, by, n, G_PER_NODE);
    for (uint32_t b = 0; b < D; b++) rob[b] = b;
    policy_node_bytes(&e0, &a0, rob, bin, src, by, n, G_PER_NODE);
    printf("%-6u %-4u %-10s %12.1f   inter-node bytes %.3f GB vs identity %.3f GB (%u nodes)\n", D, per,
           "node_place", t.best * 1e6, e / 1e9, e0 / 1e9, D / G_PER_NODE);
    *out_s = t.best;
fail:
    policy_scratch_destroy(ps);
    free(bin);
    free(src);
    free(rob);
    free(by);
    return st != OS_OK;
}

int main(int argc, char **argv) {
    int quick = 0, check = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--check"))
            check = 1;
        else {
            fprintf(stderr, "bench_balance: error: unknown option '%s' (hint: --quick, --check)\n", argv[i]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    double min_s = quick ? 0.02 : 0.2, lpt_s = NAN, np_s = NAN, pn_s = NAN, pn_2560_16 = NAN;
    const uint32_t Ds[] = {8, 64, 512, 2560}, pers[] = {8, 16, 32};
    printf("# bench_balance: one core, best of repeated calls after a warm-up (>= %.2f s per row)\n", min_s);
    printf("# unit cost a*len + c*len^2, a = %g s, c = %g s; lengths 64..4064, 1 in 10 x4\n", A_LIN, C_QUAD);
    printf("## partitions: n = D x per units; max/mean and max/LB = max(total/D, largest)\n");
    printf("%-6s %-4s %-12s %12s %9s %9s\n", "D", "per", "algo", "time_us", "max/mean", "max/LB");
    for (size_t d = 0; d < OS_ARRAY_LEN(Ds); d++)
        for (size_t k = 0; k < OS_ARRAY_LEN(pers); k++) bad |= bench_partitions(Ds[d], pers[k], min_s, &lpt_s);
    for (uint32_t n = 40; n <= 320; n *= 2) bad |= bench_hungarian(n, min_s);
    printf("## policies: per = examples per rank (0-3 items each, 2 encoders, P = 3); ratios per phase\n");
    printf("%-6s %-4s %-10s %12s %9s %9s %9s %9s %10s %9s\n", "D", "per", "policy", "time_us", "vs_none",
           "img_m/m", "aud_m/m", "llm_m/m", "max/orcl", "inter_GB");
    for (size_t d = 0; d < OS_ARRAY_LEN(Ds); d++)
        for (size_t k = 0; k < OS_ARRAY_LEN(pers); k += quick ? 2 : 1) {
            bad |= bench_policies(Ds[d], pers[k], min_s, &pn_s);
            if (Ds[d] == 2560 && pers[k] == 16) pn_2560_16 = pn_s;
        }
    if (quick) bad |= bench_policies(2560, 16, min_s, &pn_2560_16); /* the target's row */
    printf("## node-wise placement alone (hierarchical), g = %d\n", G_PER_NODE);
    double np512 = NAN;
    bad |= bench_node_place(512, 16, min_s, &np512);
    bad |= bench_node_place(2560, 16, min_s, &np_s);
    printf("# targets: LPT D=2560 x 16 units %.3f ms (< 1 ms); node placement 320 nodes %.3f ms (< 20 ms); "
           "post-node D=2560 x 16 %.3f ms (< 20 ms)\n",
           lpt_s * 1e3, np_s * 1e3, pn_2560_16 * 1e3);
    if (check && (!(lpt_s < 1e-3) || !(np_s < 20e-3) || !(pn_2560_16 < 20e-3))) {
        fprintf(stderr, "bench_balance: error: a runtime target was missed\n");
        bad = 1;
    }
    return bad ? 1 : 0;
}
