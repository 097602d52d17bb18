/* advise.c — see advise.h. The thresholds that decide whether a diagnosis line is printed are
 * named below with their reason; every number a line prints comes from the runs. */
#include "analysis/advise.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/stats.h"
#include "base/util.h"

/* A phase "sits at its floor" when its slowest rank is within 5% of max(share, largest unit);
 * the floor is "set by single units" when it is more than 2% above the balanced share. */
#define AT_FLOOR 1.05
#define UNIT_FLOOR 1.02
/* Pre-balancing moves whole examples: with this few per rank it has little to choose from. */
#define FEW_PER_RANK 4.0
/* A gain under 2% of the step is "nearly a no-op". */
#define SMALL_GAIN 0.02
/* The all-to-all is called communication-bound when it takes this share of the step or more,
 * or more time than the balancing takes off the slowest ranks' compute. */
#define A2A_SHARE 0.10
/* The as-drawn batch counts as balanced when no phase's slowest rank exceeds the mean by 1%
 * of the step. */
#define BALANCED_EXCESS 0.01

void advise_run_init(AdviseRun *r, const char *policy, const Policy *pol) {
    memset(r, 0, sizeof *r);
    snprintf(r->policy, sizeof r->policy, "%s", policy ? policy : "");
    r->pol = pol;
}

void advise_run_free(AdviseRun *r) {
    if (!r) return;
    free(r->step_s);
    free(r->oracle_s);
    r->step_s = r->oracle_s = NULL;
    r->n = r->cap = 0;
}

/* Keep the ADVISE_TOP_UNITS costliest units, costliest first (ties: the earlier stays). */
static void top_insert(AdviseUnit *top, uint32_t *n, const AdviseUnit *u) {
    uint32_t k = *n < ADVISE_TOP_UNITS ? (*n)++ : ADVISE_TOP_UNITS;
    if (k == ADVISE_TOP_UNITS && !(u->cost_s > top[k - 1].cost_s)) return;
    if (k == ADVISE_TOP_UNITS) k--;
    while (k > 0 && u->cost_s > top[k - 1].cost_s) {
        top[k] = top[k - 1];
        k--;
    }
    top[k] = *u;
}

/* The units of phase p in step s: share, floor-setters, the longest that fits, the largest. */
static void phase_units(AdviseRun *r, const StepResult *s, uint32_t p) {
    const StepWork *w = s->work;
    int llm = p + 1 == s->P;
    uint32_t n = llm ? w->N : w->M;
    double total = 0.0, top = 0.0;
    for (uint32_t u = 0; u < n; u++) {
        if (!llm && w->it_phase[u] != p) continue;
        double c = llm ? w->ex_cost[u] : w->it_cost[u];
        total += c;
        top = c > top ? c : top;
    }
    double share = w->D ? total / w->D : total;
    r->phase_share_s[p] += share;
    uint32_t fit = 0;
    for (uint32_t u = 0; u < n; u++) {
        if (!llm && w->it_phase[u] != p) continue;
        double c = llm ? w->ex_cost[u] : w->it_cost[u];
        uint32_t len = llm ? w->ex_tokens[u] : w->it_len[u];
        if (c > share) r->over_units[p]++;
        else if (len > fit) fit = len;
        uint32_t ex = llm ? u : w->it_example[u];
        AdviseUnit au = {.step = s->step, .length = len, .cost_s = c, .share_s = share,
                         .example_id = s->trace_step && ex < s->trace_step->n_examples ? s->trace_step->examples[ex].id : ex};
        top_insert(r->top[p], &r->n_top[p], &au);
    }
    if (top > share && n) {
        r->fit_len[p] = r->pinned_steps[p] ? OS_MIN(r->fit_len[p], fit) : fit;
        r->pinned_steps[p]++;
    }
}

OsStatus advise_run_step(AdviseRun *r, const StepResult *s) {
    OsStatus st = OS_OK;
    if (s->P == 0 || s->P > REPLAY_MAX_PHASES)
        OS_FAIL(OS_ERR_ARG, "advise", r->policy, NULL, "step %llu has %u phases", (unsigned long long)s->step, s->P);
    if (r->n && s->P != r->P)
        OS_FAIL(OS_ERR_ARG, "advise", r->policy, NULL, "step %llu has %u phases, earlier steps %u",
                (unsigned long long)s->step, s->P, r->P);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        double *a = realloc(r->step_s, cap * sizeof *a);
        ALLOC_CHECK(a);
        r->step_s = a;
        a = realloc(r->oracle_s, cap * sizeof *a);
        ALLOC_CHECK(a);
        r->oracle_s = a;
        r->cap = cap;
    }
    r->P = s->P;
    if (s->D) r->D = s->D;
    double orc = 0.0;
    for (uint32_t p = 0; p < s->P; p++) {
        r->phase_max_s[p] += s->phase_max_s[p];
        r->phase_mean_s[p] += s->phase_mean_s[p];
        r->phase_oracle_s[p] += s->phase_oracle_s[p];
        r->phase_imb[p] += s->phase_imbalance[p];
        orc += s->phase_oracle_s[p];
        if (s->work) phase_units(r, s, p);
    }
    r->step_s[r->n] = s->step_s;
    r->oracle_s[r->n] = orc;
    r->n++;
    r->a2a_s += s->a2a_s;
    r->bytes_intra += (double)s->bytes_intra;
    r->bytes_inter += (double)s->bytes_inter;
    r->idle_s += s->idle_s;
    r->examples += s->n_examples;
    r->llm_tokens += (double)s->llm_tokens;
    r->charge_s += (s->balancer_s - r->charge_s) / (double)r->n; /* running mean */
fail:
    return st;
}

void advise_run_finish(AdviseRun *r, const ReplaySummary *sum, const ReplayConfig *cfg) {
    if (sum) {
        r->long_examples = sum->long_examples;
        r->needs_recompute = sum->needs_recompute;
        r->state_bytes_per_gpu = sum->state_bytes_per_gpu;
        for (uint32_t p = 0; p < sum->P && p < REPLAY_MAX_PHASES; p++)
            snprintf(r->phase_name[p], sizeof r->phase_name[p], "%s", sum->phase_name[p]);
        if (!r->P) r->P = sum->P;
    }
    if (cfg) {
        r->mem_bytes = cfg->cluster.mem_bytes;
        r->recompute = cfg->recompute;
        r->padded = cfg->layout == ATTN_PADDED;
        r->tp = cfg->cluster.tp;
        r->gpus = cfg->cluster.gpus;
        r->max_seq = cfg->model ? cfg->model->max_seq : 0;
    }
}

double advise_run_mean_s(const AdviseRun *r) {
    if (!r->n) return NAN;
    double s = 0.0;
    for (uint64_t k = 0; k < r->n; k++) s += r->step_s[k];
    return s / (double)r->n;
}

/* ---------------------------------------------------------------- the charge */

OsStatus advise_units(AdviseUnits *u, Trace *t, const ReplayConfig *cfg) {
    OsStatus st = OS_OK;
    uint64_t total = trace_n_steps(t), first = cfg->first_step;
    memset(u, 0, sizeof *u);
    u->P = cfg->model->n_enc + 1;
    if (first >= total) return OS_OK; /* replay_run names the bad --skip */
    uint64_t n = cfg->n_steps && cfg->n_steps < total - first ? cfg->n_steps : total - first;
    const TraceStep *s;
    OS_CHECK(trace_read_step(t, first, &s));
    /* encoder phase of each trace modality (-1: none; replay refuses such a trace itself) */
    int enc_of[256];
    for (uint32_t m = 0; m < 256; m++) enc_of[m] = -1;
    for (uint32_t m = 0; m < trace_n_modalities(t) && m < 256; m++)
        for (uint32_t e = 0; e < cfg->model->n_enc; e++)
            if (!strcmp(trace_modality(t, m)->name, cfg->model->enc[e].modality)) enc_of[m] = (int)e;
    for (uint32_t j = 0; j < s->n_items; j++)
        if (enc_of[s->items[j].modality] >= 0) u->phase_units[enc_of[s->items[j].modality]] += 1.0;
    u->phase_units[u->P - 1] = s->n_examples;
    if (first == 0 && n == total) {
        u->mean_n = (double)trace_n_examples(t) / (double)total;
        u->mean_m = (double)trace_n_items(t) / (double)total;
        return OS_OK;
    }
    for (uint64_t k = 0; k < n; k++) {
        OS_CHECK(trace_read_step(t, first + k, &s));
        u->mean_n += (double)s->n_examples / (double)n;
        u->mean_m += (double)s->n_items / (double)n;
    }
fail:
    return st;
}

void advise_charge(double *charge_s, double *model_s, const Policy *p, const AdviseUnits *u) {
    double m = policy_charge_s(p, (uint64_t)llround(u->mean_n), (uint64_t)llround(u->mean_m));
    *model_s = m;
    *charge_s = p && p->kind == POLICY_POST ? m * policy_charge_exposed_frac(p, u->phase_units, u->P) : m;
}

/* ---------------------------------------------------------------- decision */

OsStatus advise_pair(AdvisePair *out, const double *a, const double *b, size_t n) {
    OsStatus st = OS_OK;
    double *d = NULL;
    memset(out, 0, sizeof *out);
    if (n == 0) OS_FAIL(OS_ERR_ARG, "advise", "steps", NULL, "no steps to compare");
    d = malloc(n * sizeof *d);
    ALLOC_CHECK(d);
    for (size_t k = 0; k < n; k++) {
        d[k] = b[k] - a[k];
        out->wins += d[k] > 0;
        out->losses += d[k] < 0;
    }
    out->n = n;
    OS_CHECK(stats_mean_ci(&out->mean_s, &out->ci95_s, d, n, 0.95));
    /* one step: no spread, so no interval; "tied" then means exactly equal */
    out->tied = n == 1 ? out->mean_s == 0.0 : fabs(out->mean_s) <= out->ci95_s;
fail:
    free(d);
    return st;
}

double advise_gpu_hours(double diff_s, uint32_t gpus, double steps) { return diff_s * (double)gpus * steps / 3600.0; }

void advise_rank(size_t *order, const AdviseRun *runs, size_t n) {
    double *m = malloc((n ? n : 1) * sizeof *m);
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (m) m[i] = advise_run_mean_s(&runs[i]);
    }
    /* insertion sort: stable, so equal keys keep the runs' (registry) order */
    for (size_t i = 1; i < n; i++) {
        size_t k = order[i], j = i;
        double mk = m ? m[k] : advise_run_mean_s(&runs[k]);
        while (j > 0) {
            size_t q = order[j - 1];
            double mq = m ? m[q] : advise_run_mean_s(&runs[q]);
            int before = mk < mq || (mk == mq && runs[k].charge_s < runs[q].charge_s);
            if (!before) break;
            order[j] = q;
            j--;
        }
        order[j] = k;
    }
    free(m);
}

OsStatus advise_decide(Advice *a, size_t *order, const AdviseRun *runs, size_t n, double trace_steps,
                       double price) {
    OsStatus st = OS_OK;
    memset(a, 0, sizeof *a);
    a->best = a->runner_up = a->none = -1;
    if (n == 0) OS_FAIL(OS_ERR_ARG, "advise", "--policies", NULL, "no policy was replayed");
    if (!isnan(price) && !(price >= 0.0 && isfinite(price)))
        OS_FAIL(OS_ERR_ARG, "--gpu-hour-price", NULL, "a price per GPU-hour >= 0, e.g. 2.5", "%g is not a price", price);
    for (size_t i = 0; i < n; i++) {
        if (runs[i].n != runs[0].n || runs[i].n == 0)
            OS_FAIL(OS_ERR_ARG, "advise", runs[i].policy, NULL, "%llu steps, %s has %llu: runs must replay the same steps",
                    (unsigned long long)runs[i].n, runs[0].policy, (unsigned long long)runs[0].n);
        if (!strcmp(runs[i].policy, "none")) a->none = (int)i;
    }
    advise_rank(order, runs, n);
    a->best = (int)order[0];
    a->runner_up = n > 1 ? (int)order[1] : -1;
    const AdviseRun *b = &runs[a->best];
    a->gpus = b->gpus;
    a->price = price;
    a->trace_steps = trace_steps;
    for (uint64_t k = 0; k < b->n; k++) a->oracle_mean_s += b->oracle_s[k];
    a->oracle_mean_s /= (double)b->n; /* summed then divided, as the oracle row is */
    double best_s = advise_run_mean_s(b);
    a->gap_frac = a->oracle_mean_s > 0 ? best_s / a->oracle_mean_s - 1.0 : NAN;
    a->closed_frac = NAN;
    a->h1000_vs_none = a->h1000_vs_none_ci = a->hpass_vs_none = a->hpass_vs_none_ci = NAN;
    a->h1000_vs_runner = a->h1000_vs_runner_ci = a->hpass_vs_runner = a->hpass_vs_runner_ci = NAN;
    if (a->runner_up >= 0) {
        OS_CHECK(advise_pair(&a->vs_runner_up, b->step_s, runs[a->runner_up].step_s, b->n));
        a->h1000_vs_runner = advise_gpu_hours(a->vs_runner_up.mean_s, a->gpus, 1000.0);
        a->h1000_vs_runner_ci = advise_gpu_hours(a->vs_runner_up.ci95_s, a->gpus, 1000.0);
        a->hpass_vs_runner = advise_gpu_hours(a->vs_runner_up.mean_s, a->gpus, trace_steps);
        a->hpass_vs_runner_ci = advise_gpu_hours(a->vs_runner_up.ci95_s, a->gpus, trace_steps);
    }
    if (a->none >= 0) {
        OS_CHECK(advise_pair(&a->vs_none, b->step_s, runs[a->none].step_s, b->n));
        a->h1000_vs_none = advise_gpu_hours(a->vs_none.mean_s, a->gpus, 1000.0);
        a->h1000_vs_none_ci = advise_gpu_hours(a->vs_none.ci95_s, a->gpus, 1000.0);
        a->hpass_vs_none = advise_gpu_hours(a->vs_none.mean_s, a->gpus, trace_steps);
        a->hpass_vs_none_ci = advise_gpu_hours(a->vs_none.ci95_s, a->gpus, trace_steps);
        double none_s = advise_run_mean_s(&runs[a->none]);
        if (none_s > a->oracle_mean_s && a->none != a->best) a->closed_frac = (none_s - best_s) / (none_s - a->oracle_mean_s);
    }
fail:
    return st;
}

/* ---------------------------------------------------------------- diagnosis */

typedef struct {
    AdviseLine *lines;
    size_t n, cap;
} Lines;

static AdviseLine *line_add(Lines *L, const char *tag) {
    if (L->n >= L->cap) return NULL;
    AdviseLine *l = &L->lines[L->n++];
    snprintf(l->tag, sizeof l->tag, "%s", tag);
    l->text[0] = '\0';
    return l;
}

/* printf onto a line's text */
static void lput(AdviseLine *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lput(AdviseLine *l, const char *fmt, ...) {
    if (!l) return;
    size_t k = strlen(l->text);
    if (k + 1 >= sizeof l->text) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text + k, sizeof l->text - k, fmt, ap);
    va_end(ap);
}

static int is_llm(const AdviseRun *r, uint32_t p) { return p + 1 == r->P; }
static const char *unit_word(const AdviseRun *r, uint32_t p) { return is_llm(r, p) ? "example" : "item"; }
static const char *len_word(const AdviseRun *r, uint32_t p) { return is_llm(r, p) ? "tokens" : "positions"; }

static void line_imbalance(Lines *L, const AdviseRun *runs, int ref) {
    const AdviseRun *r = &runs[ref];
    double nn = (double)r->n, step = advise_run_mean_s(r), tot = 0.0, ex[REPLAY_MAX_PHASES];
    uint32_t worst = 0;
    for (uint32_t p = 0; p < r->P; p++) {
        ex[p] = (r->phase_max_s[p] - r->phase_mean_s[p]) / nn;
        tot += ex[p];
        if (ex[p] > ex[worst]) worst = p;
    }
    AdviseLine *l = line_add(L, "imbalance");
    if (!(tot > BALANCED_EXCESS * step)) {
        lput(l, "under %s the batches are balanced: the slowest rank is %.4g s per step above the mean over all "
                "phases (%.1f%% of the %.4g s step); balancing has little to gain.",
             r->policy, tot, step > 0 ? 100.0 * tot / step : 0.0, step);
        return;
    }
    char who[96];
    if (!strcmp(r->policy, "none")) snprintf(who, sizeof who, "as drawn (none)");
    else snprintf(who, sizeof who, "under %s", r->policy);
    lput(l, "%s, the %s phase holds most of the imbalance: its slowest rank computes %.2fx the rank mean, %.4g s per "
            "step above it (%.0f%% of the excess over all phases)",
         who, r->phase_name[worst], r->phase_imb[worst] / nn, ex[worst], tot > 0 ? 100.0 * ex[worst] / tot : 0.0);
    for (uint32_t p = 0; p < r->P; p++)
        if (p != worst) lput(l, "; %s %.2fx (%.4g s)", r->phase_name[p], r->phase_imb[p] / nn, ex[p]);
    lput(l, ".");
}

static void line_floor(Lines *L, const AdviseRun *r, uint32_t p) {
    double nn = (double)r->n, floor_s = r->phase_oracle_s[p] / nn, share = r->phase_share_s[p] / nn;
    double at = floor_s > 0 ? (r->phase_max_s[p] / nn) / floor_s : NAN;
    if (!r->pinned_steps[p] || !(floor_s > UNIT_FLOOR * share) || !r->n_top[p]) return;
    AdviseLine *l = line_add(L, "floor");
    const char *u = unit_word(r, p), *lw = len_word(r, p);
    lput(l, "under %s the %s phase %s its floor (%.2fx), and the floor is set by single %ss: in %llu of %llu steps "
            "the largest %s alone costs more than a rank's balanced share (floor %.4g s against a %.4g s share per step; "
            "%llu %ss over their step's share). Largest:",
         r->policy, r->phase_name[p], at <= AT_FLOOR ? "sits at" : "is above", at, u,
         (unsigned long long)r->pinned_steps[p], (unsigned long long)r->n, u, floor_s, share,
         (unsigned long long)r->over_units[p], u);
    for (uint32_t k = 0; k < r->n_top[p]; k++) {
        const AdviseUnit *t = &r->top[p][k];
        lput(l, "%s %s %llu of step %llu (%u %s, %.4g s alone)", k ? ";" : "", is_llm(r, p) ? "example" : "an item of example",
             (unsigned long long)t->example_id, (unsigned long long)t->step, t->length, lw, t->cost_s);
    }
    lput(l, ". What would lift it:");
    if (r->fit_len[p])
        lput(l, " a maximum length of %u %s (the longest %s that fits its step's share) would let the phase reach its "
                "share, up to %.4g s per step;",
             r->fit_len[p], lw, u, floor_s - share);
    else
        lput(l, " no %s fits its step's share: lengths alone cannot lift it (up to %.4g s per step);", u, floor_s - share);
    if (is_llm(r, p))
        lput(l, " or splitting the longest sequences over GPUs (context parallelism, --parallel cp=2)%s.",
             r->padded ? "; sequence packing (drop --padded) removes the padding the floor includes" : "");
    else
        lput(l, " or splitting such %s items into smaller pieces (tiles, windows) before the encoder%s.", r->phase_name[p],
             r->padded ? "; packing (drop --padded) removes the padding the floor includes" : "");
}

static void line_granularity(Lines *L, const AdviseRun *runs, size_t n, int none) {
    const AdviseRun *r0 = &runs[none >= 0 ? none : 0];
    double per_rank = r0->D && r0->n ? r0->examples / (double)r0->n / r0->D : 0.0;
    int pre = -1, post = -1;
    for (size_t i = 0; i < n; i++) {
        if (!runs[i].pol || (int)i == none) continue;
        double m = advise_run_mean_s(&runs[i]);
        int *slot = runs[i].pol->kind == POLICY_PRE ? &pre : &post;
        if (*slot < 0 || m < advise_run_mean_s(&runs[*slot])) *slot = (int)i;
    }
    if (pre < 0 || none < 0) {
        if (per_rank > 0 && per_rank <= FEW_PER_RANK) {
            AdviseLine *l = line_add(L, "granularity");
            lput(l, "%.1f examples per rank: pre-balancing can only move whole examples, so it has little to choose from.",
                 per_rank);
        }
        return;
    }
    double ns = advise_run_mean_s(&runs[none]), gain = ns > 0 ? 1.0 - advise_run_mean_s(&runs[pre]) / ns : 0.0;
    if (!(per_rank <= FEW_PER_RANK || gain < SMALL_GAIN)) return;
    AdviseLine *l = line_add(L, "granularity");
    lput(l, "%.1f examples per rank: pre-balancing moves whole examples between ranks, and the best pre-balancing "
            "policy (%s) is %.1f%% faster than none",
         per_rank, runs[pre].policy, 100.0 * gain);
    if (post >= 0)
        lput(l, " against %.1f%% for the best post-balancing one (%s), which splits the work per phase",
             ns > 0 ? 100.0 * (1.0 - advise_run_mean_s(&runs[post]) / ns) : 0.0, runs[post].policy);
    lput(l, "%s.", per_rank <= FEW_PER_RANK ? ": too few examples per rank for pre-balancing to act" : "");
}

static void line_a2a(Lines *L, const AdviseRun *runs, size_t n, int best, int none) {
    int said = 0;
    for (size_t i = 0; i < n; i++) {
        const AdviseRun *r = &runs[i];
        if (!r->pol || r->pol->kind != POLICY_POST || !r->n) continue;
        double nn = (double)r->n, a2a = r->a2a_s / nn, step = advise_run_mean_s(r), saved = NAN;
        if (none >= 0) {
            saved = 0.0;
            for (uint32_t p = 0; p < r->P; p++) saved += (runs[none].phase_max_s[p] - r->phase_max_s[p]) / nn;
        }
        int bound = a2a >= A2A_SHARE * step || (isfinite(saved) && a2a > saved);
        if (!bound && (int)i != best) continue;
        AdviseLine *l = line_add(L, "all-to-all");
        lput(l, "%s: the rebalancing all-to-all costs %.4g s per step on the critical path (%.2g%% of its %.4g s step; "
                "%.4g GB across nodes and %.4g GB inside nodes per step)",
             r->policy, a2a, step > 0 ? 100.0 * a2a / step : 0.0, step, r->bytes_inter / nn / 1e9, r->bytes_intra / nn / 1e9);
        if (isfinite(saved)) lput(l, " against %.4g s per step its balancing takes off the slowest ranks' compute", saved);
        lput(l, bound ? ": communication-bound" : ": not a bottleneck");
        if (bound && strcmp(r->policy, "post-node"))
            lput(l, " (post-node keeps moves inside a node where it can; faster NICs, --inter-bw, shrink it)");
        lput(l, ".");
        said = 1;
    }
    (void)said;
}

static void line_memory(Lines *L, const AdviseRun *runs, size_t n) {
    const AdviseRun *r = NULL;
    for (size_t i = 0; i < n && !r; i++)
        if (runs[i].needs_recompute) r = &runs[i];
    if (r) {
        AdviseLine *l = line_add(L, "memory");
        lput(l, "%llu examples (with a pipeline: stage-steps) need more activation memory than a GPU has without "
                "recomputation (%.1f GB per GPU, %.1f GB of it model state): the configuration as given does not fit. "
                "Fixes: --recompute (or --recompute-mode selective); tensor parallelism (--parallel tp=2 splits each "
                "example's activations over 2 GPUs; now tp %u); more GPUs (FSDP shards the %.1f GB of state over more ranks).",
             (unsigned long long)r->needs_recompute, r->mem_bytes / 1e9, r->state_bytes_per_gpu / 1e9, r->tp,
             r->state_bytes_per_gpu / 1e9);
    }
    r = NULL;
    for (size_t i = 0; i < n && !r; i++)
        if (runs[i].long_examples) r = &runs[i];
    if (r) {
        AdviseLine *l = line_add(L, "length");
        lput(l, "%llu examples/items are longer than the model's maximum lengths", (unsigned long long)r->long_examples);
        if (r->max_seq) lput(l, " (LLM max_seq %u)", r->max_seq);
        lput(l, ": they were replayed as given; truncate or split them upstream, or use a model preset with longer limits.");
    }
}

size_t advise_diagnose(AdviseLine *lines, size_t cap, const AdviseRun *runs, size_t n, int best, int none) {
    Lines L = {lines, 0, cap};
    if (!n || best < 0 || (size_t)best >= n || !runs[best].n) return 0;
    line_imbalance(&L, runs, none >= 0 ? none : best);
    for (uint32_t p = 0; p < runs[best].P; p++) line_floor(&L, &runs[best], p);
    line_granularity(&L, runs, n, none);
    line_a2a(&L, runs, n, best, none);
    line_memory(&L, runs, n);
    return L.n;
}

size_t advise_warnings(AdviseLine *lines, size_t cap, const AdviseRun *runs, size_t n) {
    Lines L = {lines, 0, cap};
    for (size_t i = 0; i < n; i++) {
        const AdviseRun *r = &runs[i];
        if (!r->needs_recompute && !r->long_examples) continue;
        AdviseLine *l = line_add(&L, "warning");
        lput(l, "%s:", r->policy);
        if (r->needs_recompute)
            lput(l, " %llu examples need more activation memory than a GPU has unless --recompute (infeasible as given)%s",
                 (unsigned long long)r->needs_recompute, r->long_examples ? ";" : "");
        if (r->long_examples)
            lput(l, " %llu examples/items exceed the model's max length (flagged, still replayed)",
                 (unsigned long long)r->long_examples);
    }
    return L.n;
}
