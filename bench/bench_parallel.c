/* bench_parallel.c — how fast the simulator replays a 3-D parallel layout: orch-84b on the
 * tri-modal-mix trace under TP 8 x PP 16 (1F1B, and interleaved with 2 chunks) with one example
 * per micro-batch, the distributed optimizer, post-balancing off (policy none) and on
 * (post-node), one core. The 16,384-GPU case (DP 128, every replica simulated exactly: no subset)
 * is the target (10 steps in under 10 s); the baseline measured in the same run is the
 * same layout at 1,024 GPUs (DP 8), so the ratio shows how the cost grows with DP.
 * Usage: bench_parallel [--steps N] [--per-rank K] [--tmp DIR] [--csv] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "sim/replay.h"
#include "traces/gen.h"

typedef struct {
    uint32_t gpus, vp;
    const char *policy;
} Case;

int main(int argc, char **argv) {
    setlinebuf(stdout);
    uint64_t steps = 10;
    uint32_t per_rank = 16;
    int csv = 0;
    const char *tmp = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-rank") && i + 1 < argc) per_rank = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--csv")) csv = 1;
        else {
            fprintf(stderr, "usage: bench_parallel [--steps N] [--per-rank K] [--tmp DIR] [--csv]\n");
            return 2;
        }
    }
    const Case cases[] = {{1024, 1, "none"}, {16384, 1, "none"}, {16384, 2, "none"}, {16384, 1, "post-node"}};
    ModelSpec model;
    Calib calib;
    calib_default_h100(&calib);
    if (model_resolve(&model, "orch-84b") != OS_OK) {
        fprintf(stderr, "bench_parallel: %s\n", os_last_error());
        return 1;
    }
    printf("# bench_parallel: orch-84b, TP 8 x PP 16, distributed optimizer, 1 example per micro-batch, %u examples "
           "per DP rank, tri-modal-mix, %llu steps, every replica simulated\n", per_rank, (unsigned long long)steps);
    printf(csv ? "gpus,dp,vp,policy,steps,events,wall_s,cpu_s,cpu_ms_per_step,ratio_vs_1024\n"
               : "#  gpus    dp  vp  policy      steps      events   wall s    cpu s  cpu ms/step  x(1024 GPUs)\n");
    double base = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const Case *c = &cases[k];
        uint32_t dp = c->gpus / (8 * 16);
        char path[1024];
        snprintf(path, sizeof path, "%s/bench_parallel_%ld_%u.h5", tmp, (long)getpid(), c->gpus);
        GenConfig g = {.profile = "tri-modal-mix", .seed = 1, .steps = steps, .global_batch = dp * per_rank, .dp = dp};
        if (gen_write(path, &g) != OS_OK) {
            fprintf(stderr, "bench_parallel: %s\n", os_last_error());
            return 1;
        }
        Trace *t = NULL;
        ReplayConfig cfg;
        replay_config_init(&cfg);
        cfg.model = &model;
        cfg.calib = &calib;
        cfg.setup = SETUP_FSDP_GRAD_OP;
        cfg.policy = policy_find(c->policy);
        cfg.micro_batch = 1;
        cfg.balancer_cost_s = 0.001;
        cfg.par.tp = 8, cfg.par.pp = 16, cfg.par.vp = c->vp;
        ReplaySummary sum;
        double cpu0 = os_thread_cpu_now();
        if (cluster_init_parallel(&cfg.cluster, c->gpus, 8, 8, 16, 1) != OS_OK || trace_open(&t, path) != OS_OK ||
            replay_run(&sum, &cfg, t, NULL, NULL) != OS_OK) {
            fprintf(stderr, "bench_parallel: %s\n", os_last_error());
            trace_close(t);
            unlink(path);
            return 1;
        }
        trace_close(t);
        unlink(path);
        double cpu = os_thread_cpu_now() - cpu0; /* one core's cost, whatever else the host runs */
        double per = 1e3 * cpu / (double)sum.steps;
        if (k == 0) base = per;
        if (csv)
            printf("%u,%u,%u,%s,%llu,%llu,%.4f,%.4f,%.3f,%.2f\n", c->gpus, dp, c->vp, c->policy, (unsigned long long)sum.steps,
                   (unsigned long long)sum.events, sum.wall_s, cpu, per, base > 0 ? per / base : 0);
        else
            printf("%7u %5u %3u  %-10s %6llu %11llu %8.3f %8.3f %12.2f %8.2fx\n", c->gpus, dp, c->vp, c->policy,
                   (unsigned long long)sum.steps, (unsigned long long)sum.events, sum.wall_s, cpu, per,
                   base > 0 ? per / base : 0);
    }
    return 0;
}
