/* bench_replay.c — how fast the simulator replays: wall time and engine events/s for the
 * 84B three-modality model under FSDP at 64..10240 GPUs and 25..100 steps, one core.
 * Baseline in the same run: the smallest configuration (64 GPUs); ratios show how time grows
 * with GPUs and with steps (it must be near-linear in both).
 * Usage: bench_replay [--steps N] [--per-rank K] [--csv] [--policy P] [--groups G] [--tmp DIR] [--twin]
 * --twin: also replay the 2560-GPU case with program.c's reference twin of the overlap slowdown
 * (every in-flight op re-timed at every collective start and end) and print the work clock's
 * speed-up over it, with a check that both give the same step time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "sim/replay.h"
#include "traces/gen.h"

typedef struct {
    uint32_t gpus;
    uint64_t steps;
} Case;

/* Generate the case's trace, replay it (ref: the slowdown's reference twin), remove the trace.
 * *cpu: this thread's CPU seconds for opening and replaying. 0 on success. */
static int one_case(ReplaySummary *sum, double *cpu, const Case *c, const ModelSpec *model, const Calib *calib,
                    uint32_t groups, const char *policy, uint32_t per_rank, const char *tmp, int ref) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bench_replay_%ld_%u.h5", tmp, (long)getpid(), c->gpus);
    GenConfig g = {.profile = "tri-modal-mix", .seed = 1, .steps = c->steps, .global_batch = c->gpus * per_rank,
                   .dp = c->gpus};
    if (gen_write(path, &g) != OS_OK) {
        fprintf(stderr, "bench_replay: %s\n", os_last_error());
        return 1;
    }
    Trace *t = NULL;
    ReplayConfig cfg;
    replay_config_init(&cfg);
    cfg.model = model;
    cfg.calib = calib;
    cfg.recompute = 1;
    cfg.fsdp_groups = groups; /* 0: one FSDP unit per layer (the default) */
    cfg.policy = policy_find(policy);
    cfg.ref_slowdown = ref;
    double cpu0 = os_thread_cpu_now();
    if (trace_open(&t, path) != OS_OK || cluster_init(&cfg.cluster, c->gpus, 8, 1) != OS_OK ||
        replay_run(sum, &cfg, t, NULL, NULL) != OS_OK) {
        fprintf(stderr, "bench_replay: %s\n", os_last_error());
        trace_close(t);
        remove(path);
        return 1;
    }
    trace_close(t);
    remove(path);
    /* CPU time of this thread: what the replay costs one core, whatever else the host runs
     * (wall time is printed beside it) */
    *cpu = os_thread_cpu_now() - cpu0;
    return 0;
}

int main(int argc, char **argv) {
    uint32_t groups = 0;
    setlinebuf(stdout);
    uint64_t max_steps = 100;
    uint32_t per_rank = 8;
    int csv = 0, twin = 0;
    const char *policy = "none", *tmp = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) max_steps = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-rank") && i + 1 < argc) per_rank = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--policy") && i + 1 < argc) policy = argv[++i];
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--groups") && i + 1 < argc) groups = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--csv")) csv = 1;
        else if (!strcmp(argv[i], "--twin")) twin = 1;
        else {
            fprintf(stderr, "usage: bench_replay [--steps N] [--per-rank K] [--policy P] [--groups G] [--tmp DIR] [--csv] [--twin]\n");
            return 2;
        }
    }
    const Case cases[] = {{64, max_steps},       {512, max_steps},      {2560, max_steps / 4},
                          {2560, max_steps / 2}, {2560, max_steps},     {10240, max_steps / 4}};
    ModelSpec model;
    Calib calib;
    calib_default_h100(&calib);
    if (model_resolve(&model, "orch-84b") != OS_OK || !policy_find(policy)) {
        fprintf(stderr, "bench_replay: %s\n", os_last_error()[0] ? os_last_error() : "unknown policy");
        return 1;
    }
    printf("# bench_replay: orch-84b, FSDP (%s), recompute, optimizer, overlap slowdown, policy %s, tri-modal-mix, "
           "%u examples per rank\n", groups ? "fixed layer groups" : "one unit per layer", policy, per_rank);
    printf(csv ? "gpus,steps,events,wall_s,cpu_s,events_per_cpu_s,cpu_per_step_ms,ratio_vs_64\n"
               : "#  gpus  steps      events   wall s    cpu s   events/s  cpu ms/step   x(64 GPUs, same steps)\n");
    double base_per_step = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const Case *c = &cases[k];
        if (c->steps == 0) continue;
        ReplaySummary sum;
        double cpu = 0;
        if (one_case(&sum, &cpu, c, &model, &calib, groups, policy, per_rank, tmp, 0) != 0) return 1;
        /* CPU time of this thread: what the replay costs one core, whatever else the host runs
         * (wall time is printed beside it) */
        double per_step = cpu / (double)c->steps;
        if (c->gpus == 64) base_per_step = per_step;
        double ratio = base_per_step > 0 ? per_step / base_per_step : 0;
        if (csv)
            printf("%u,%llu,%llu,%.4f,%.4f,%.4g,%.3f,%.2f\n", c->gpus, (unsigned long long)c->steps,
                   (unsigned long long)sum.events, sum.wall_s, cpu, (double)sum.events / cpu, 1e3 * per_step, ratio);
        else
            printf("%7u %6llu %11llu %8.3f %8.3f %10.3g %12.3f   %.2f\n", c->gpus, (unsigned long long)c->steps,
                   (unsigned long long)sum.events, sum.wall_s, cpu, (double)sum.events / cpu, 1e3 * per_step, ratio);
    }
    if (twin) {
        /* the same 2560-GPU replay, the overlap slowdown priced both ways */
        Case c = {2560, max_steps};
        ReplaySummary a, b;
        double ca = 0, cb = 0;
        if (one_case(&a, &ca, &c, &model, &calib, groups, policy, per_rank, tmp, 0) != 0 ||
            one_case(&b, &cb, &c, &model, &calib, groups, policy, per_rank, tmp, 1) != 0)
            return 1;
        printf("# 2560 GPUs, %llu steps: work clock %.3f CPU s, reference twin %.3f CPU s: %.2fx; step time %s "
               "(%.9f s vs %.9f s)\n", (unsigned long long)c.steps, ca, cb, ca > 0 ? cb / ca : 0.0,
               a.step_mean_s == b.step_mean_s ? "identical" : "DIFFERS", a.step_mean_s, b.step_mean_s);
        if (a.step_mean_s != b.step_mean_s) return 1;
    }
    return 0;
}
