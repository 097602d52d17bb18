/* advise.h — what `orchsim advise` decides, and the diagnosis advise and `compare --explain`
 * print.
 * Implements: per-policy accumulation of a replay's steps (AdviseRun: step times, per-phase
 *   max/mean/oracle, the units that set each phase's floor, moves, feasibility); the
 *   deterministic ranking; the paired comparison of two policies over the same steps (mean
 *   difference, Student-t 95% interval, wins); GPU-hours and cost saved per 1000 steps and per
 *   pass over the trace; the oracle gap; diagnosis lines, each computed from those numbers.
 * Does not: run replays (cli/cmd_advise.c, cli/cmd_compare.c), print tables, or time anything
 *   (the balancer charge is sim/policy.h's model; the runs arrive already charged).
 * Source: DESIGN.md §4 (oracle floor, deterministic charge), §7; analysis/stats.h (t interval).
 * Units: seconds, GPU-hours, the caller's currency per GPU-hour; lengths in LLM tokens
 *   (examples) or encoder positions (items). Letters: P phases, D DP ranks. */
#ifndef OS_ANALYSIS_ADVISE_H
#define OS_ANALYSIS_ADVISE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "sim/replay.h"

#define ADVISE_TOP_UNITS 3 /* largest units remembered per phase */

/* One unit (an example in the LLM phase, an item in an encoder phase) and its step. */
typedef struct {
    uint64_t step;       /* trace step index */
    uint64_t example_id; /* the example's id in the trace (an item's owner) */
    uint32_t length;     /* LLM tokens (example) or encoder positions (item) */
    double cost_s;       /* the unit alone, forward + backward */
    double share_s;      /* that step's balanced share of the phase, total / D */
} AdviseUnit;

/* One policy's replay, accumulated step by step (advise_run_step). Sums are over steps. */
typedef struct {
    char policy[64];
    const Policy *pol;       /* borrowed registry row; NULL for a non-registry row */
    uint32_t P, D, gpus;
    char phase_name[REPLAY_MAX_PHASES][32];
    uint64_t n, cap;         /* steps, allocated */
    double *step_s;          /* [n] simulated step time, s (the charge included for post policies) */
    double *oracle_s;        /* [n] sum over phases of the phase floors, s */
    double phase_max_s[REPLAY_MAX_PHASES];    /* slowest rank's compute */
    double phase_mean_s[REPLAY_MAX_PHASES];   /* rank-mean compute */
    double phase_oracle_s[REPLAY_MAX_PHASES]; /* max(share, largest unit) */
    double phase_share_s[REPLAY_MAX_PHASES];  /* total / D of the unit costs */
    double phase_imb[REPLAY_MAX_PHASES];      /* per-step max/mean imbalance, summed */
    uint64_t pinned_steps[REPLAY_MAX_PHASES]; /* steps whose floor is one unit (largest > share) */
    uint64_t over_units[REPLAY_MAX_PHASES];   /* units costing more than their step's share */
    uint32_t fit_len[REPLAY_MAX_PHASES];      /* longest unit that fits its step's share, min over
                                                 pinned steps (0 = none fits / no pinned step) */
    AdviseUnit top[REPLAY_MAX_PHASES][ADVISE_TOP_UNITS]; /* largest by cost, over the run */
    uint32_t n_top[REPLAY_MAX_PHASES];
    double a2a_s, bytes_intra, bytes_inter, idle_s, examples, llm_tokens;
    double charge_s;         /* balancer charge per step (as replay charged it), s */
    double model_s;          /* the policy's modelled planning time per step, all phases, s */
    double measured_s;       /* sum over steps of the policy's measured runtime, s */
    uint64_t measured_n;     /* steps measured (0 = not measured) */
    /* from the summary (advise_run_finish) */
    uint64_t long_examples, needs_recompute;
    double state_bytes_per_gpu, mem_bytes; /* per GPU */
    int recompute;           /* RecomputeMode the run used */
    int padded;              /* padded batches */
    uint32_t tp, max_seq;    /* tensor parallelism; the model's LLM length limit (0 = none) */
} AdviseRun;

void advise_run_init(AdviseRun *r, const char *policy, const Policy *pol);
void advise_run_free(AdviseRun *r); /* NULL-safe; leaves r re-initialisable */
/* Add one replayed step (its detail is borrowed: call inside the ReplayStepFn). */
OsStatus advise_run_step(AdviseRun *r, const StepResult *s);
/* After replay_run: feasibility and the configuration the diagnosis needs. */
void advise_run_finish(AdviseRun *r, const ReplaySummary *sum, const ReplayConfig *cfg);
double advise_run_mean_s(const AdviseRun *r); /* mean step time, s (NaN for no steps) */

/* The sizes the deterministic balancer charge is computed at (advise_charge). */
typedef struct {
    double mean_n, mean_m;                 /* mean examples / items per replayed step */
    double phase_units[REPLAY_MAX_PHASES]; /* the first replayed step's units per phase: items of
                                              each encoder (by modality), then examples */
    uint32_t P;
} AdviseUnits;
/* Measure them over the steps cfg replays (the trace's totals when it replays them all; one
 * step read otherwise per replayed step). cfg->model must be set. */
OsStatus advise_units(AdviseUnits *u, Trace *t, const ReplayConfig *cfg);
/* The deterministic charge of policy p: *model_s = its modelled planning time per step (all
 * phases, sim/policy.h), *charge_s = what to put in ReplayConfig.balancer_cost_s: for a post
 * policy the share before its first all-to-all (policy_charge_exposed_frac), for a pre policy
 * the whole (replay reports it and never waits for it). Every command that should reproduce
 * `compare`/`advise` rows (sweep) charges this way. */
void advise_charge(double *charge_s, double *model_s, const Policy *p, const AdviseUnits *u);

/* Policy b against policy a over the same steps: d_k = b_k - a_k (positive: a faster). */
typedef struct {
    uint64_t n;
    double mean_s;          /* mean of d */
    double ci95_s;          /* half-width of the 95% Student-t interval of the mean; NaN for n = 1 */
    uint64_t wins, losses;  /* steps where a is faster / slower (the rest are equal) */
    int tied;               /* the interval covers 0; with one step, d = 0 */
} AdvisePair;
/* a[n], b[n]; n >= 1. */
OsStatus advise_pair(AdvisePair *out, const double *a, const double *b, size_t n);

/* GPU-hours over `steps` steps that a per-step saving of diff_s seconds frees on gpus GPUs. */
double advise_gpu_hours(double diff_s, uint32_t gpus, double steps);

/* order[n]: runs by mean step time, fastest first; equal means (to the bit) by lower charge,
 * then by position in runs (the registry order). Deterministic: no host timing enters. */
void advise_rank(size_t *order, const AdviseRun *runs, size_t n);

typedef struct {
    int best, runner_up, none; /* indices into runs; -1 when absent */
    AdvisePair vs_runner_up;   /* runner-up's steps against the best's */
    AdvisePair vs_none;
    double oracle_mean_s;      /* mean over steps of the per-phase floors' sum */
    double gap_frac;           /* best / oracle - 1 */
    double closed_frac;        /* (none - best) / (none - oracle): share of none's gap closed; NaN without none */
    double trace_steps;        /* steps in one pass over the trace */
    uint32_t gpus;
    double price;              /* per GPU-hour; NaN = not given */
    /* GPU-hours saved by the best (and their 95% half-widths; NaN with one step) */
    double h1000_vs_none, h1000_vs_none_ci, hpass_vs_none, hpass_vs_none_ci;
    double h1000_vs_runner, h1000_vs_runner_ci, hpass_vs_runner, hpass_vs_runner_ci;
} Advice;
/* Rank the runs (which must hold the same steps) and fill the advice. price < 0 is an error
 * naming --gpu-hour-price; NaN means "not given". */
OsStatus advise_decide(Advice *a, size_t *order, const AdviseRun *runs, size_t n, double trace_steps,
                       double price);

/* One diagnosis line: a tag ("imbalance", "floor", "granularity", "all-to-all", "memory",
 * "length") and the sentence, every number in it computed from the runs. */
typedef struct {
    char tag[16];
    char text[1024];
} AdviseLine;
/* Up to cap lines into lines; returns how many. best = the run to diagnose (the recommended or
 * fastest), none = the as-drawn run (-1 when it was not replayed). */
size_t advise_diagnose(AdviseLine *lines, size_t cap, const AdviseRun *runs, size_t n, int best, int none);

/* One warning line per run with feasibility problems ("post: 12 examples need ..."); returns how
 * many were written (at most cap). */
size_t advise_warnings(AdviseLine *lines, size_t cap, const AdviseRun *runs, size_t n);

#endif
