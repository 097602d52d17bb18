/* test_advise.c — analysis/advise (paired statistics, ranking, GPU-hours, the oracle gap, the
 * diagnosis) on hand-computed cases, the policy cost model, and `orchsim advise` /
 * `compare --explain` as a user runs them: the advice, one-step traces, bad input with no file
 * left behind, determinism of the ranking, feasibility warnings. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/advise.h"
#include "helpers.h"
#include "sim/policy.h"

#define NEAR(a, b, tol) cr_assert(fabs((a) - (b)) <= (tol), "%s = %.12g, expected %.12g", #a, (double)(a), (double)(b))

/* ---------------------------------------------------------------- paired statistics */

Test(advise, pair_by_hand) {
    /* d = b - a = {1, 1, 2}: mean 4/3, s = sqrt(1/3), t(0.975, 2) = 4.302653,
     * half = 4.302653 * sqrt(1/3) / sqrt(3) = 1.434218: the interval covers 0 -> tied */
    const double a[] = {1, 2, 3}, b[] = {2, 3, 5};
    AdvisePair p;
    cr_assert_eq(advise_pair(&p, a, b, 3), OS_OK);
    NEAR(p.mean_s, 4.0 / 3.0, 1e-12);
    NEAR(p.ci95_s, 4.302652730 * sqrt(1.0 / 3.0) / sqrt(3.0), 1e-8);
    cr_assert_eq(p.wins, 3);
    cr_assert_eq(p.losses, 0);
    cr_assert(p.tied, "1.333 +- 1.434 covers 0");
    /* d = {0.1, 0.2, 0.1, 0.2}: mean 0.15, s = 0.0577350, t(0.975, 3) = 3.182446, half = 0.0918688 */
    const double c[] = {1, 1, 1, 1}, e[] = {1.1, 1.2, 1.1, 1.2};
    cr_assert_eq(advise_pair(&p, c, e, 4), OS_OK);
    NEAR(p.mean_s, 0.15, 1e-12);
    NEAR(p.ci95_s, 3.182446305 * sqrt(0.01 / 3.0) / 2.0, 1e-8);
    cr_assert(!p.tied);
    cr_assert_eq(p.wins, 4);
    /* b faster on one of three steps: a loss is counted, the mean keeps its sign */
    const double f[] = {2, 2, 2}, g[] = {3, 3, 1.5};
    cr_assert_eq(advise_pair(&p, f, g, 3), OS_OK);
    cr_assert_eq(p.wins, 2);
    cr_assert_eq(p.losses, 1);
    NEAR(p.mean_s, (1.0 + 1.0 - 0.5) / 3.0, 1e-12);
}

Test(advise, pair_edge_cases) {
    AdvisePair p;
    /* one step: no interval (NaN), tied only when equal */
    const double a[] = {5.0}, b[] = {5.5}, c[] = {5.0};
    cr_assert_eq(advise_pair(&p, a, b, 1), OS_OK);
    cr_assert(isnan(p.ci95_s), "one step has no confidence interval");
    cr_assert(!p.tied);
    NEAR(p.mean_s, 0.5, 0);
    cr_assert_eq(advise_pair(&p, a, c, 1), OS_OK);
    cr_assert(p.tied);
    /* identical on every step: zero spread, mean 0, tied, neither wins */
    const double x[] = {1, 2, 3};
    cr_assert_eq(advise_pair(&p, x, x, 3), OS_OK);
    NEAR(p.mean_s, 0, 0);
    NEAR(p.ci95_s, 0, 0);
    cr_assert(p.tied);
    cr_assert_eq(p.wins + p.losses, 0);
    /* a constant non-zero difference: zero spread, not tied */
    const double y[] = {2, 3, 4};
    cr_assert_eq(advise_pair(&p, x, y, 3), OS_OK);
    cr_assert(!p.tied);
    os_clear_error();
    cr_assert_eq(advise_pair(&p, x, y, 0), OS_ERR_ARG);
    os_clear_error();
}

Test(advise, gpu_hours) {
    /* the example: 0.280 s per step at 1024 GPUs over 1000 steps = 79.64 GPU-hours */
    NEAR(advise_gpu_hours(0.280, 1024, 1000), 0.280 * 1024 * 1000 / 3600.0, 1e-12);
    NEAR(advise_gpu_hours(0.280, 1024, 1000), 79.6444444, 1e-6);
    NEAR(advise_gpu_hours(-1.0, 8, 3600), -8.0, 1e-12);
}

/* ---------------------------------------------------------------- ranking and the decision */

static void fake_run(AdviseRun *r, const char *name, const double *steps, const double *oracle, size_t n, double charge,
                     uint32_t gpus) {
    advise_run_init(r, name, policy_find(name));
    r->step_s = malloc(n * sizeof *r->step_s);
    r->oracle_s = malloc(n * sizeof *r->oracle_s);
    memcpy(r->step_s, steps, n * sizeof *steps);
    memcpy(r->oracle_s, oracle, n * sizeof *oracle);
    r->n = r->cap = n;
    r->charge_s = charge;
    r->gpus = gpus;
    r->P = 1;
}

Test(advise, rank_is_by_mean_then_charge_then_order) {
    const double o[] = {1, 1}, s1[] = {3, 3}, s2[] = {2, 4}, s3[] = {2, 2};
    AdviseRun r[4];
    fake_run(&r[0], "none", s1, o, 2, 0.1e-3, 8);
    fake_run(&r[1], "kk", s2, o, 2, 14e-3, 8);  /* mean 3, costlier than lpt */
    fake_run(&r[2], "lpt", s2, o, 2, 1e-3, 8);  /* mean 3 to the bit */
    fake_run(&r[3], "post", s3, o, 2, 3e-3, 8); /* mean 2: the fastest */
    size_t order[4];
    advise_rank(order, r, 4);
    /* post (2), then the three at 3: none (charge 0.1 ms), lpt (1 ms), kk (14 ms) */
    cr_assert_eq(order[0], 3);
    cr_assert_eq(order[1], 0);
    cr_assert_eq(order[2], 2);
    cr_assert_eq(order[3], 1);
    for (int i = 0; i < 4; i++) advise_run_free(&r[i]);
}

Test(advise, decide_by_hand) {
    /* 4 steps at 1024 GPUs; none 10 s, lpt 9 s +- a bit, post-node 8.7 s; oracle 8 s */
    const double o[] = {8, 8, 8, 8};
    const double none[] = {10, 10.4, 9.6, 10}, lpt[] = {9.0, 9.1, 8.9, 9.0}, pn[] = {8.7, 8.8, 8.6, 8.7};
    AdviseRun r[3];
    fake_run(&r[0], "none", none, o, 4, 0, 1024);
    fake_run(&r[1], "lpt", lpt, o, 4, 0, 1024);
    fake_run(&r[2], "post-node", pn, o, 4, 0, 1024);
    Advice a;
    size_t order[3];
    cr_assert_eq(advise_decide(&a, order, r, 3, 250.0, 2.0), OS_OK, "%s", os_last_error());
    cr_assert_eq(a.best, 2);
    cr_assert_eq(a.runner_up, 1);
    cr_assert_eq(a.none, 0);
    /* lpt - post-node = 0.3 on every step: zero spread, not tied, 4 wins */
    NEAR(a.vs_runner_up.mean_s, 0.3, 1e-12);
    NEAR(a.vs_runner_up.ci95_s, 0.0, 1e-12);
    cr_assert(!a.vs_runner_up.tied);
    cr_assert_eq(a.vs_runner_up.wins, 4);
    /* none - post-node = {1.3, 1.6, 1.0, 1.3}: mean 1.3 */
    NEAR(a.vs_none.mean_s, 1.3, 1e-12);
    /* GPU-hours: 0.3 s x 1024 x 1000 / 3600 = 85.333; per pass of 250 steps = 21.333 */
    NEAR(a.h1000_vs_runner, 0.3 * 1024 * 1000 / 3600.0, 1e-9);
    NEAR(a.hpass_vs_runner, 0.3 * 1024 * 250 / 3600.0, 1e-9);
    NEAR(a.h1000_vs_none, 1.3 * 1024 * 1000 / 3600.0, 1e-9);
    NEAR(a.hpass_vs_none, 1.3 * 1024 * 250 / 3600.0, 1e-9);
    NEAR(a.price, 2.0, 0);
    /* oracle 8 s: post-node (8.7) is 8.75% above; none (10) had a 2 s gap, 1.3 s of it closed */
    NEAR(a.oracle_mean_s, 8.0, 0);
    NEAR(a.gap_frac, 8.7 / 8.0 - 1.0, 1e-12);
    NEAR(a.closed_frac, 1.3 / 2.0, 1e-12);
    /* a negative or non-finite price is refused, naming the option */
    os_clear_error();
    cr_assert_eq(advise_decide(&a, order, r, 3, 250.0, -1.0), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "--gpu-hour-price"), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(advise_decide(&a, order, r, 3, 250.0, INFINITY), OS_ERR_ARG);
    os_clear_error();
    for (int i = 0; i < 3; i++) advise_run_free(&r[i]);
}

/* ---------------------------------------------------------------- accumulation and diagnosis */

typedef struct {
    double ex_cost[4], it_cost[4];
    uint32_t ex_tokens[4], it_len[4], it_example[4], drawn[4];
    uint8_t it_phase[4];
    uint64_t zero[4];
    TraceExample ex[4];
    TraceStep ts;
    StepWork w;
    PolicyOptions opt;
} Fake;

/* D = 2, P = 2 (image, llm); 4 examples (ids 100..103) of {4000, 1000, 900, 500} tokens costing
 * {4, 1, 1, 0.5} s: share 3.25 s, the 4000-token example alone sets the floor (4 s); 4 image
 * items of 100 positions, 0.5 s each: share 1 s, no unit over it. */
static void fake_step(Fake *f, StepResult *s, uint64_t step, double llm_max, double img_max) {
    memset(f, 0, sizeof *f);
    const double ec[] = {4, 1, 1, 0.5};
    const uint32_t et[] = {4000, 1000, 900, 500};
    for (int i = 0; i < 4; i++) {
        f->ex_cost[i] = ec[i];
        f->ex_tokens[i] = et[i];
        f->it_cost[i] = 0.5;
        f->it_len[i] = 100;
        f->it_example[i] = (uint32_t)i;
        f->it_phase[i] = 0;
        f->drawn[i] = (uint32_t)i / 2;
        f->ex[i].id = 100 + (uint64_t)i;
    }
    f->ts.index = step;
    f->ts.n_examples = 4;
    f->ts.examples = f->ex;
    f->w = (StepWork){.D = 2, .P = 2, .N = 4, .M = 4, .dp_per_node = 2, .drawn = f->drawn, .ex_cost = f->ex_cost,
                      .ex_tokens = f->ex_tokens, .ex_bytes = f->zero, .it_example = f->it_example,
                      .it_phase = f->it_phase, .it_cost = f->it_cost, .it_len = f->it_len,
                      .it_in_bytes = f->zero, .it_out_bytes = f->zero, .opt = &f->opt};
    memset(s, 0, sizeof *s);
    s->step = step;
    s->D = 2;
    s->P = 2;
    s->n_examples = 4;
    s->n_items = 4;
    s->work = &f->w;
    s->trace_step = &f->ts;
    s->phase_oracle_s[0] = 1.0;
    s->phase_oracle_s[1] = 4.0;
    s->phase_mean_s[0] = 1.0;
    s->phase_mean_s[1] = 3.25;
    s->phase_max_s[0] = img_max;
    s->phase_max_s[1] = llm_max;
    s->phase_imbalance[0] = img_max / 1.0;
    s->phase_imbalance[1] = llm_max / 3.25;
    s->step_s = img_max + llm_max;
}

static void finish(AdviseRun *r) {
    ReplaySummary sum;
    memset(&sum, 0, sizeof sum);
    sum.P = 2;
    snprintf(sum.phase_name[0], 32, "image");
    snprintf(sum.phase_name[1], 32, "llm");
    advise_run_finish(r, &sum, NULL);
}

Test(advise, run_accumulates_the_floor_setters) {
    AdviseRun r;
    advise_run_init(&r, "post", policy_find("post"));
    Fake f;
    StepResult s;
    for (uint64_t k = 0; k < 3; k++) {
        fake_step(&f, &s, 7 + k, 4.0, 1.0);
        cr_assert_eq(advise_run_step(&r, &s), OS_OK);
    }
    finish(&r);
    cr_assert_eq(r.n, 3);
    NEAR(r.phase_share_s[1], 3 * 3.25, 1e-12);
    NEAR(r.phase_share_s[0], 3 * 1.0, 1e-12);
    cr_assert_eq(r.pinned_steps[1], 3, "the 4 s example is over the 3.25 s share in every step");
    cr_assert_eq(r.pinned_steps[0], 0, "no image item exceeds its share");
    cr_assert_eq(r.over_units[1], 3);
    cr_assert_eq(r.fit_len[1], 1000, "the longest example that fits the share");
    cr_assert_eq(r.n_top[1], ADVISE_TOP_UNITS);
    cr_assert_eq(r.top[1][0].example_id, 100);
    cr_assert_eq(r.top[1][0].length, 4000);
    cr_assert_eq(r.top[1][0].step, 7, "ties keep the earliest");
    NEAR(r.top[1][0].cost_s, 4.0, 0);
    NEAR(r.oracle_s[2], 5.0, 0);
    NEAR(advise_run_mean_s(&r), 5.0, 0);
    advise_run_free(&r);
}

static int has_line(const AdviseLine *l, size_t n, const char *tag, const char *needle) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i].tag, tag) && (!needle || strstr(l[i].text, needle))) return 1;
    return 0;
}

static void dump(const AdviseLine *l, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s: %s\n", l[i].tag, l[i].text);
}

Test(advise, diagnosis_names_the_phase_the_units_and_the_fix) {
    AdviseRun r[2];
    Fake f;
    StepResult s;
    advise_run_init(&r[0], "none", policy_find("none"));
    advise_run_init(&r[1], "post", policy_find("post"));
    for (uint64_t k = 0; k < 2; k++) {
        /* as drawn: image 2 s against a 1 s mean (excess 1 s), llm 5 s against 3.25 (1.75 s) */
        fake_step(&f, &s, k, 5.0, 2.0);
        cr_assert_eq(advise_run_step(&r[0], &s), OS_OK);
        /* post: both phases at their floors, 0.5 s of all-to-all on a 5.5 s step */
        fake_step(&f, &s, k, 4.0, 1.0);
        s.a2a_s = 0.5;
        s.step_s += 0.5;
        s.bytes_inter = 2000000000ull;
        cr_assert_eq(advise_run_step(&r[1], &s), OS_OK);
    }
    finish(&r[0]);
    finish(&r[1]);
    r[0].needs_recompute = r[1].needs_recompute = 5;
    r[0].mem_bytes = r[1].mem_bytes = 80e9;
    r[0].state_bytes_per_gpu = r[1].state_bytes_per_gpu = 20e9;
    AdviseLine l[32];
    size_t n = advise_diagnose(l, 32, r, 2, 1, 0);
    dump(l, n);
    /* the LLM phase holds 1.75 of the 2.75 s excess: 64% */
    cr_assert(has_line(l, n, "imbalance", "the llm phase holds most of the imbalance"));
    cr_assert(has_line(l, n, "imbalance", "1.54x the rank mean, 1.75 s per step above it (64%"));
    /* the floor: post sits at it, set by example 100 of 4000 tokens; 1000 tokens would fit */
    cr_assert(has_line(l, n, "floor", "the llm phase sits at its floor (1.00x)"));
    cr_assert(has_line(l, n, "floor", "example 100 of step 0 (4000 tokens, 4 s alone)"));
    cr_assert(has_line(l, n, "floor", "a maximum length of 1000 tokens"));
    cr_assert(has_line(l, n, "floor", "up to 0.75 s per step"));
    cr_assert(has_line(l, n, "floor", "context parallelism"));
    cr_assert(!has_line(l, n, "floor", "image phase"), "no image unit exceeds its share");
    /* 2 examples per rank */
    cr_assert(has_line(l, n, "granularity", "2.0 examples per rank"));
    /* post's all-to-all: 0.5 s on a 5.5 s step (9.1%) but more than the 1.75 s - ... saved? it
     * takes 0.5 s against 2 s of compute saved (1 + 1 per step): not a bottleneck */
    cr_assert(has_line(l, n, "all-to-all", "0.5 s per step on the critical path (9.1% of its 5.5 s step; 2 GB across"));
    cr_assert(has_line(l, n, "all-to-all", "against 2 s per step"));
    cr_assert(has_line(l, n, "all-to-all", "not a bottleneck"));
    /* memory: the count and the fixes */
    cr_assert(has_line(l, n, "memory", "5 examples"));
    cr_assert(has_line(l, n, "memory", "--recompute"));
    cr_assert(has_line(l, n, "memory", "80.0 GB per GPU, 20.0 GB of it model state"));
    cr_assert(!has_line(l, n, "length", NULL), "nothing was over the max length");
    /* one warning line per policy with a problem */
    size_t w = advise_warnings(l, 32, r, 2);
    cr_assert_eq(w, 2);
    cr_assert(strstr(l[0].text, "none: 5 examples need more activation memory"), "%s", l[0].text);
    r[0].needs_recompute = r[1].needs_recompute = 0;
    cr_assert_eq(advise_warnings(l, 32, r, 2), 0);
    for (int i = 0; i < 2; i++) advise_run_free(&r[i]);
}

Test(advise, diagnosis_of_a_balanced_batch) {
    AdviseRun r;
    Fake f;
    StepResult s;
    advise_run_init(&r, "none", policy_find("none"));
    fake_step(&f, &s, 0, 3.25, 1.0); /* every phase at its mean */
    cr_assert_eq(advise_run_step(&r, &s), OS_OK);
    finish(&r);
    AdviseLine l[16];
    size_t n = advise_diagnose(l, 16, &r, 1, 0, 0);
    dump(l, n);
    cr_assert(has_line(l, n, "imbalance", "the batches are balanced"));
    advise_run_free(&r);
}

/* ---------------------------------------------------------------- the cost model */

Test(advise, policy_charge_is_the_registry_model) {
    const Policy *lpt = policy_find("lpt"), *post = policy_find("post"), *none = policy_find("none");
    /* at the reference step the charge is the measured figure */
    NEAR(policy_charge_s(lpt, POLICY_COST_REF_N, POLICY_COST_REF_M), lpt->cost.ref_s, 1e-15);
    NEAR(policy_charge_s(post, POLICY_COST_REF_N, POLICY_COST_REF_M), post->cost.ref_s, 1e-15);
    NEAR(lpt->cost.ref_s, 1.04e-3, 1e-15); /* bench/RESULTS.md, D = 2560 x 16 */
    /* lpt orders examples only: items do not change its charge; post's does change */
    NEAR(policy_charge_s(lpt, 1000, 0), policy_charge_s(lpt, 1000, 5000), 0);
    cr_assert_gt(policy_charge_s(post, 1000, 5000), policy_charge_s(post, 1000, 0));
    /* n log2(n + 1) by hand: lpt at n = 1023 is ref * 1023 * 10 / (40960 * log2(40961)) */
    NEAR(policy_charge_s(lpt, 1023, 0), 1.04e-3 * 1023.0 * 10.0 / (40960.0 * log2(40961.0)), 1e-15);
    /* none is linear */
    NEAR(policy_charge_s(none, 2000, 1000), 0.11e-3 * 3000.0 / (40960.0 + 61125.0), 1e-15);
    NEAR(policy_charge_s(post, 0, 0), 0, 0);
    /* the share a post policy's step waits for: its first phase's f(n) over the phases it plans */
    const double n3[] = {100, 0, 1000}, n3e[] = {100, 300, 1000}, n1[] = {500};
    double f100 = 100 * log2(101.0), f300 = 300 * log2(301.0), f1000 = 1000 * log2(1001.0);
    NEAR(policy_charge_exposed_frac(post, n3, 3), f100 / (f100 + f1000), 1e-15);
    NEAR(policy_charge_exposed_frac(policy_find("post-node"), n3e, 3), f100 / (f100 + f300 + f1000), 1e-15);
    /* post-enc plans the encoders only: the LLM's 1000 examples are not planned */
    NEAR(policy_charge_exposed_frac(policy_find("post-enc"), n3e, 3), f100 / (f100 + f300), 1e-15);
    NEAR(policy_charge_exposed_frac(post, n1, 1), 1.0, 0);
    NEAR(policy_charge_exposed_frac(lpt, n3, 3), 0.0, 0); /* pre: planned in the data loader */
    /* every registry policy has a positive model */
    for (uint32_t i = 0; i < policy_count(); i++) cr_assert_gt(policy_at(i)->cost.ref_s, 0, "%s", policy_at(i)->name);
}

/* ---------------------------------------------------------------- the command */

static char g_trace[1024], g_one[1024];

static void make_traces(void) {
    char args[2048], *out = NULL;
    snprintf(g_trace, sizeof g_trace, "%s", th_tmp("adv.h5"));
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 7 --steps 3 --global-batch 64 --dp 16 -o %s", g_trace);
    cr_assert_eq(th_run(&out, args), 0, "gen failed: %s", out);
    free(out);
    snprintf(g_one, sizeof g_one, "%s", th_tmp("adv1.h5"));
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 8 --steps 1 --global-batch 64 --dp 16 -o %s", g_one);
    cr_assert_eq(th_run(&out, args), 0, "gen failed: %s", out);
    free(out);
}

TestSuite(advise_cli, .init = make_traces, .timeout = 240);

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

/* The CSV without the one host-timed column (balancer_measured_s_per_step) and the command. */
static char *csv_without_host_columns(const char *path) {
    char *s = slurp(path);
    cr_assert_not_null(s, "%s missing", path);
    char *out = malloc(strlen(s) + 1), *o = out;
    int drop[128] = {0}, ncol = 0;
    char *line = strtok(s, "\n");
    int header = 1;
    while (line) {
        int col = 0;
        char *c = line;
        if (header) {
            for (char *q = line;; q++) {
                if (*q == ',' || !*q) {
                    size_t len = (size_t)(q - c);
                    drop[col] = (len == 28 && !strncmp(c, "balancer_measured_s_per_step", 28)) ||
                                (len == 7 && !strncmp(c, "command", 7));
                    col++;
                    c = q + 1;
                }
                if (!*q) break;
            }
            ncol = col;
            header = 0;
            c = line;
            col = 0;
        }
        int inq = 0;
        for (char *q = line;; q++) {
            if (*q == '"') inq = !inq;
            if ((*q == ',' && !inq) || !*q) {
                if (col < ncol && !drop[col]) {
                    memcpy(o, c, (size_t)(q - c));
                    o += q - c;
                    *o++ = ',';
                }
                col++;
                c = q + 1;
            }
            if (!*q) break;
        }
        *o++ = '\n';
        line = strtok(NULL, "\n");
    }
    *o = '\0';
    free(s);
    return out;
}

Test(advise_cli, gives_the_advice_and_is_deterministic) {
    char args[4096], *out = NULL;
    const char *a = th_tmp("adv_a.csv"), *b = th_tmp("adv_b.csv"), *j = th_tmp("adv.json");
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --gpu-hour-price 2.5 --csv %s --json %s", g_trace, a, j);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    const char *want[] = {"recommended  ", "runner-up    ", "vs none      ", "GPU-hours saved by ", "per 1000 steps",
                          "per pass over the trace (3 steps)", "USD per GPU-hour", "oracle gap", "charge       ",
                          "modelled", "ranking (each policy paired against", "diagnosis:", "  - imbalance: "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) cr_assert(strstr(out, want[i]), "no '%s' in:\n%s", want[i], out);
    free(out);
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --gpu-hour-price 2.5 --csv %s", g_trace, b);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    /* the same numbers and ranking twice: only the measured runtime may differ */
    char *x = csv_without_host_columns(a), *y = csv_without_host_columns(b);
    cr_assert_str_eq(x, y);
    cr_assert(strstr(x, "\noracle,"), "the CSV has the oracle row:\n%s", x);
    cr_assert(strstr(x, ",modelled,"), "the charge is labelled:\n%s", x);
    free(x);
    free(y);
    char *js = slurp(j);
    cr_assert_not_null(js);
    cr_assert(strstr(js, "\"recommended\":"), "%s", js);
    cr_assert(strstr(js, "\"trace_hash\":\""), "%s", js);
    cr_assert(strstr(js, "\"command\":\"orchsim advise "), "%s", js);
    free(js);
    if (system("python3 -c 'import json' >/dev/null 2>&1") == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import json; d=json.load(open('%s')); a=d['advice']; "
                 "assert a['recommended'] == a['ranking'][0]; assert len(d['runs']) == %u; "
                 "assert a['gpu_hours_per_1000_steps_vs_none'] is None or a['gpu_hours_per_1000_steps_vs_none'] >= 0\"",
                 j, policy_count());
        cr_assert_eq(system(cmd), 0, "the advice JSON is not what it says");
    }
}

/* "-" is standard output for the machine-readable file; the human advice then goes to stderr. */
Test(advise_cli, json_on_stdout) {
    char args[4096], *out = NULL;
    const char *j = th_tmp("adv_stdout.json");
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --policies none,post --json - 2>/dev/null > %s; true", g_trace, j);
    th_run(&out, args);
    free(out);
    char *js = slurp(j);
    cr_assert_not_null(js);
    cr_assert_eq(js[0], '{', "stdout is not the JSON alone: %.200s", js);
    cr_assert(strstr(js, "\"recommended\":"), "%s", js);
    cr_assert_null(strstr(js, "advice for "), "the human advice went to stdout too");
    free(js);
}

Test(advise_cli, one_step_trace_still_gets_advice) {
    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --policies none,lpt,post", g_one);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "recommended  "), "%s", out);
    cr_assert(strstr(out, "one step: no confidence interval"), "%s", out);
    cr_assert_null(strstr(out, "nan"), "no NaN printed:\n%s", out);
    free(out);
}

Test(advise_cli, bad_input_is_one_error_before_any_work) {
    const char *csv = th_tmp("adv_bad.csv"), *html = th_tmp("adv_bad.html");
    struct {
        const char *args, *expect;
    } cases[] = {
        {"--policies none,lpz", "did you mean 'lpt'"},
        {"--policies none,oracle", "oracle"},
        {"--policies none,none", "given twice"},
        {"--gpu-hour-price -1", "--gpu-hour-price"},
        {"--gpu-hour-price nan", "--gpu-hour-price"},
        {"--gpu-hour-price abc", "--gpu-hour-price"},
        {"--measured-charge --balancer-cost 0.001", "--measured-charge"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096], *out = NULL;
        snprintf(args, sizeof args, "advise %s --model tiny --no-progress --csv %s --html %s %s", g_trace, csv, html,
                 cases[i].args);
        int rc = th_run(&out, args);
        cr_assert_neq(rc, 0, "'%s' exited 0:\n%s", cases[i].args, out);
        cr_assert(strstr(out, "orchsim: error: "), "'%s':\n%s", cases[i].args, out);
        cr_assert(strstr(out, cases[i].expect), "'%s' does not mention '%s':\n%s", cases[i].args, cases[i].expect, out);
        cr_assert_null(strstr(out, "# policy "), "'%s' replayed before failing:\n%s", cases[i].args, out);
        cr_assert(!th_exists(csv) && !th_exists(html), "'%s' left an output file", cases[i].args);
        free(out);
    }
}

/* Long examples on a small GPU: every policy flagged, as a CSV column and one warning line each,
 * and the diagnosis names the fixes; compare carries the same. */
Test(advise_cli, feasibility_everywhere) {
    ThEx ex[16];
    for (int i = 0; i < 16; i++) ex[i] = (ThEx){i % 8 == 0 ? 20000 : 300, 1, 1025, 0, 0};
    const char *tr = th_write_trace("adv_long.h5", ex, 16, 8, 2);
    cr_assert_not_null(tr, "%s", os_last_error());
    char args[4096], *out = NULL;
    const char *csv = th_tmp("adv_long.csv"), *ccsv = th_tmp("cmp_long.csv");
    snprintf(args, sizeof args, "advise %s --model mini-tri --gpus 8 --mem-gb 8 --no-progress --policies none,lpt,post --csv %s",
             tr, csv);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "NOT feasible as given"), "%s", out);
    cr_assert(strstr(out, "  - none: 4 examples need more activation memory"), "%s", out);
    cr_assert(strstr(out, "  - post: 4 examples need more activation memory"), "%s", out);
    cr_assert(strstr(out, "  - memory: 4 examples"), "%s", out);
    cr_assert(strstr(out, "--recompute"), "%s", out);
    free(out);
    char *c = slurp(csv);
    cr_assert_not_null(c);
    /* header ...,long_examples,needs_recompute,... and every row carries the counts */
    cr_assert(strstr(c, ",long_examples,needs_recompute,"), "%s", c);
    free(c);
    snprintf(args, sizeof args, "compare %s --model mini-tri --gpus 8 --mem-gb 8 --no-progress --policies none,post --explain --csv %s",
             tr, ccsv);
    rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "warning: none: 4 examples need more activation memory"), "%s", out);
    cr_assert(strstr(out, "warning: post: 4 examples need more activation memory"), "%s", out);
    cr_assert(strstr(out, "diagnosis (the fastest here"), "%s", out);
    free(out);
    /* with --recompute it fits: no warning */
    snprintf(args, sizeof args, "compare %s --model mini-tri --gpus 8 --mem-gb 8 --no-progress --policies none --recompute", tr);
    rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_null(strstr(out, "need more activation memory"), "%s", out);
    free(out);
}
