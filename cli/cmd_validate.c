/* cmd_validate.c — `orchsim validate TRACE --gpus N --policy P --model M --steps K`: run the
 * trace's steps on real GPUs and set the measured step times beside replay_run's prediction.
 * Order, each failure one line and nothing written: options and the policy; a CUDA device,
 * asked in a child process (exec/run.h: the parent must not initialise CUDA before it forks
 * the workers); --gpus against the devices present (unless --emulate); the model preset;
 * every one of the K steps prepared exactly as the workers will (exec/stepsrc.h: preset
 * limits, modalities, the policy's plan verified on the CPU) with the executor's device
 * memory replayed step by step (exec/memplan.h: every buffer grows to its rank's worst step
 * and never shrinks, so under --emulate GPU 0 holds the sum over ranks of each rank's worst
 * step) against the device; the prediction (replay_run on one node of N GPUs, the same
 * policy, model and calibration); then the run (exec/run.h: one process per GPU over NCCL,
 * one rank without NCCL, or under mpirun one MPI rank per GPU; --emulate: every rank one
 * after another on GPU 0 with the collectives modelled, exec/emucomm.h), one table row per step
 * (exec/valreport.h: measured, predicted, signed error, MFU, per-rank per-phase times, each
 * column labelled measured or modelled), MAPE at the end, --csv through OsOutFile. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/memplan.h"
#include "exec/emucomm.h"
#include "exec/gpumod.h"
#include "exec/run.h"
#include "exec/stepsrc.h"
#include "exec/valreport.h"
#include "exec/worker.h"
#include "base/util.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "sim/replay.h"
#include "traces/trace.h"

/* Prepare every step the run will execute; fail on the first that cannot run, or whose
 * memory (replayed with the executor's own growth rule, exec/memplan.h) would not fit. With
 * emu (--emulate), also model each step's collectives on cluster cl into emu[k]. */
static OsStatus check_steps(const char *trace, const ModelSpec *m, const Policy *pol, const PolicyOptions *popt,
                            const Calib *calib, const Cluster *cl, uint64_t steps, double mem_bytes,
                            ExecEmuComm *emu, int emulate, ExecMemCount *peak) {
    OsStatus st = OS_OK;
    ExecStepSource *src = NULL;
    NetScratch *ns = NULL;
    ExecMemTrack *mt = NULL;
    ExecStep s;
    /* one tracker per device: --emulate and one rank hold every rank on GPU 0 (LOCAL), NCCL
     * runs hold one rank per GPU */
    const uint32_t D = cl->dp, ntr = emulate || D == 1 ? 1 : D;
    const int attn = getenv("ORCHSIM_ATTN") && !strcmp(getenv("ORCHSIM_ATTN"), "cublas") ? EXEC_ATTN_CUBLAS : EXEC_ATTN_FUSED;
    memset(peak, 0, sizeof *peak);
    ALLOC_CHECK(mt = calloc(ntr, sizeof *mt));
    for (uint32_t d = 0; d < ntr; d++) OS_CHECK(exec_mem_track_init(&mt[d], m, D, ntr == 1, d, (ExecAttnImpl)attn));
    OS_CHECK(exec_src_create(&src, trace, m, pol, popt, calib, cl->dp, cl->dp_per_node));
    if (steps > exec_src_n_steps(src))
        OS_FAIL(OS_ERR_ARG, trace, "--steps", "ask for fewer steps", "%llu steps asked, the trace has %llu",
                (unsigned long long)steps, (unsigned long long)exec_src_n_steps(src));
    if (emu) OS_CHECK(net_scratch_create(&ns, cl));
    for (uint64_t k = 0; k < steps; k++) {
        OS_CHECK(exec_src_step(src, k, &s));
        for (uint32_t d = 0; d < ntr; d++) {
            ExecMemCount b;
            OS_CHECK(exec_mem_track_step(&mt[d], m, s.xp, s.ex_id));
            exec_mem_track_count(&mt[d], &b);
            if (b.total > peak->total) *peak = b;
            if (b.total > mem_bytes * (1.0 - EXEC_MEM_MARGIN))
                OS_FAIL(OS_ERR_RANGE, m->name, "memory",
                        ntr == 1 && D > 1 ? "use a trace with a smaller global batch (orchsim gen --global-batch), or a smaller preset"
                                          : "use a smaller preset, more --gpus, or a policy with caps",
                        "by step %llu %s needs %.2f GB (weights %.2f + grads %.2f + activations %.2f + index %.2f + "
                        "scratch %.2f + relays %.2f: every buffer grown to its worst step so far), the GPU has "
                        "%.2f GB (%.0f%% kept for CUDA/cuBLAS/NCCL)",
                        (unsigned long long)k, ntr == 1 && D > 1 ? "GPU 0 holding every rank (--emulate)" : "a rank's GPU",
                        b.total / 1e9, b.weights / 1e9, b.grads / 1e9, b.activations / 1e9, b.index / 1e9,
                        b.scratch / 1e9, b.relay / 1e9, mem_bytes / 1e9, EXEC_MEM_MARGIN * 100);
        }
        if (emu) OS_CHECK(exec_emu_comm(&emu[k], s.xp, m, cl, ns));
    }
fail:
    for (uint32_t d = 0; mt && d < ntr; d++) exec_mem_track_free(&mt[d]);
    free(mt);
    net_scratch_destroy(ns);
    exec_src_destroy(src);
    return st;
}

/* ---- the prediction ---------------------------------------------------------------------- */

typedef struct {
    double *step_s, *flops; /* [steps] */
    uint64_t n, cap;
} Pred;

static OsStatus on_pred(const StepResult *r, void *user) {
    Pred *p = user;
    if (p->n >= p->cap)
        return os_fail(OS_ERR_INTERNAL, "validate", "prediction", NULL, "replay gave more than %llu steps",
                       (unsigned long long)p->cap);
    p->step_s[p->n] = r->step_s, p->flops[p->n] = r->model_flops;
    p->n++;
    return OS_OK;
}

/* The simulator on the run's own terms: one node of D GPUs, DDP with the executor's single
 * gradient all-reduce after the backward (1 bucket), and no balancer time charged to the step
 * because the GPU run prepares each plan on the host before its first CUDA event. */
static OsStatus predict(Pred *p, const char *trace, const ModelSpec *m, const Calib *calib, const Cluster *cl,
                        const Policy *pol, const PolicyOptions *popt, uint64_t steps) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    ReplayConfig cfg;
    ReplaySummary sum;
    replay_config_init(&cfg);
    cfg.model = m, cfg.calib = calib, cfg.cluster = *cl, cfg.policy = pol, cfg.popt = *popt;
    cfg.first_step = 0, cfg.n_steps = steps, cfg.regroup = 1, cfg.ddp_buckets = 1, cfg.balancer_cost_s = 0;
    cfg.progress = 0;
    OS_CHECK(trace_open(&t, trace));
    OS_CHECK(replay_run(&sum, &cfg, t, on_pred, p));
    if (p->n != steps)
        OS_FAIL(OS_ERR_INTERNAL, trace, "prediction", NULL, "%llu of %llu steps predicted", (unsigned long long)p->n,
                (unsigned long long)steps);
fail:
    trace_close(t);
    return st;
}

/* ---- per step ---------------------------------------------------------------------------- */

typedef struct {
    ExecValTable tab;
    const Pred *pred;
    const ExecEmuComm *emu; /* [steps] or NULL */
    ExecValRow *rows;       /* [steps] */
    uint64_t n_rows;
    double *scratch;        /* [2 D P] */
    FILE *csv;              /* or NULL */
    FILE *human;            /* the table: stdout, or stderr when the CSV is on stdout */
} ValRun;

static OsStatus on_step(uint64_t k, const ExecReport *rep, uint32_t D, void *user) {
    OsStatus st = OS_OK;
    ValRun *v = user;
    ExecValStep s;
    const ExecEmuComm *emu = v->emu ? &v->emu[k] : NULL;
    if (D != v->tab.D || k >= v->pred->n)
        OS_FAIL(OS_ERR_INTERNAL, "validate", "step", NULL, "step %llu of %u ranks", (unsigned long long)k, D);
    OS_CHECK(exec_val_step(&s, &v->tab, k, rep, v->pred->step_s[k], v->pred->flops[k], emu, v->scratch));
    exec_val_print_step(v->human, &v->tab, &s, rep, emu);
    if (v->csv) exec_val_csv_row(v->csv, &v->tab, &s);
    v->rows[k] = s.row;
    v->n_rows = k + 1;
fail:
    return st;
}

static uint32_t env_u32(const char *name, uint32_t dflt) {
    const char *s = getenv(name);
    char *end = NULL;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    return (s && *s && end && !*end && v > 0 && v <= 4096) ? (uint32_t)v : dflt;
}

OsStatus cmd_validate(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *policy = "post", *model = "mini-tri", *calibration = NULL, *csv = NULL;
    uint32_t gpus = 1, warmup = 1;
    uint64_t steps = 4;
    double timeout = 60, setup_timeout = 120;
    int emulate = 0;
    const char *pos[1] = {NULL};
    const OptSpec specs[] = {
        {"gpus", 'g', OPT_U32, &gpus, "N", "data-parallel ranks (one process per GPU)", 1, 4096},
        {"policy", 'p', OPT_STR, &policy, "NAME", "balancing policy (see `orchsim compare --help`)", 0, 0},
        {"model", 'm', OPT_STR, &model, "NAME|FILE", "model preset or preset file (small enough to run on the GPUs)", 0, 0},
        OPTS_ROW_STEPS(&steps, "trace steps to run (from step 0)", 1, 1000000),
        {"warmup", 'w', OPT_U32, &warmup, "W", "untimed runs of the first step before timing", 0, 100},
        {"emulate", 0, OPT_FLAG, &emulate, NULL, "fewer GPUs than ranks: run ranks one after another, model the collectives", 0, 0},
        {"calibration", 'c', OPT_STR, &calibration, "FILE", "calibration for the prediction (default: built-in H100 estimate)", 0, 0},
        OPTS_ROW_CSV(&csv, "per-step measured/predicted table (validate schema, analysis/FORMATS.md)"),
        {"timeout", 0, OPT_F64, &timeout, "S", "seconds any step may take before workers are killed", 1, 86400},
        {"setup-timeout", 0, OPT_F64, &setup_timeout, "S", "seconds for setup (devices, NCCL) and the warm-up runs", 1, 86400},
    };
    const CmdHelp help = {
        "validate", "orchsim validate TRACE --gpus N --policy P --model M --steps K [options]",
        "run a trace on real GPUs and compare measured step times with the simulator's",
        "Runs one process per GPU (NCCL; one rank runs without NCCL), or one MPI rank per GPU\n"
        "under mpirun, and prints per\n"
        "step the measured step time (CUDA events, max over ranks), the simulator's prediction\n"
        "for the same step, the signed error and the measured MFU, then per-rank per-phase\n"
        "times, and the MAPE over steps. Every column is labelled measured or modelled.\n"
        "--emulate (fewer GPUs than ranks) runs the ranks one after another on GPU 0, times\n"
        "each rank's compute for real and models only the collectives: its step times are\n"
        "labelled meas+model and never fill a measured column (in --csv, measured_s stays\n"
        "empty and the emulated columns follow the schema's)."};
    ExecRunProbe pr;
    ModelSpec m;
    Calib calib;
    Cluster cl;
    const Policy *pol = NULL;
    PolicyOptions popt = {.objective = OBJ_COST, .seed = 1};
    uint32_t mrank = 0, msize = 0, gpn;
    int under_mpi, root;
    Pred pred = {NULL, NULL, 0, 0};
    ExecEmuComm *emu = NULL;
    ExecMemCount peak;
    ValRun vr;
    OsOutFile out;
    int out_open = 0;
    memset(&vr, 0, sizeof vr);
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, NULL));
    {
        const char *names[] = {"--csv"}, *paths[] = {csv};
        OS_CHECK(opts_stdout_claim(&vr.human, names, paths, 1));
    }
    if (!(pol = policy_find(policy))) {
        const char *s = policy_suggest(policy);
        char hint[96];
        snprintf(hint, sizeof hint, "did you mean '%s'?", s ? s : "post");
        OS_FAIL(OS_ERR_ARG, "validate", "--policy", hint, "unknown policy '%s'", policy);
    }
    under_mpi = exec_under_mpi(&mrank, &msize);
    root = !under_mpi || mrank == 0;
    OS_CHECK(exec_run_probe(&pr, under_mpi, 60));
    if (pr.n_dev <= 0 && pr.module_error) /* the loader's line: the file, what failed, the hint */
        OS_FAIL(OS_ERR_NODEV, "validate", NULL, NULL, "%s", pr.why);
    if (pr.n_dev <= 0)
        OS_FAIL(OS_ERR_NODEV, "validate", NULL, "run it on a machine with an NVIDIA GPU", "no CUDA device (%s)", pr.why);
    if (under_mpi) {
        if (emulate) OS_FAIL(OS_ERR_ARG, "validate", "--emulate", "run --emulate without mpirun", "under mpirun every rank has its own GPU");
        if (gpus != msize)
            OS_FAIL(OS_ERR_ARG, "validate", "--gpus", "pass --gpus equal to mpirun's -np", "%u ranks asked, mpirun started %u",
                    gpus, msize);
    } else if (emulate && gpus > 64) {
        /* mllm.h's LOCAL mode keeps one send/receive pointer per rank in a fixed table */
        OS_FAIL(OS_ERR_RANGE, "validate", "--gpus", "use --gpus <= 64 with --emulate", "%u ranks in one process", gpus);
    } else if ((int)gpus > pr.n_dev && !emulate) {
        OS_FAIL(OS_ERR_NODEV, "validate", "--gpus", "add --emulate to run the ranks one after another",
                "%u GPUs asked, %d present", gpus, pr.n_dev);
    }
    OS_CHECK(model_resolve(&m, model));
    if (m.n_enc + 1 > EXEC_VAL_MAX_PHASES) OS_FAIL(OS_ERR_ARG, model, "encoders", NULL, "%u encoders", m.n_enc);
    if (calibration) OS_CHECK(calib_load(&calib, calibration));
    else calib_default_h100(&calib);
    /* one node of N GPUs (mpirun: the ranks per node it reports) with the calibration's
     * measured figures where it has them, as `orchsim replay` takes them */
    gpn = under_mpi ? env_u32("OMPI_COMM_WORLD_LOCAL_SIZE", gpus) : gpus;
    OS_CHECK(cluster_init(&cl, gpus, gpn, 1));
    if (calib.peak_flops > 0) cl.peak_flops = calib.peak_flops;
    if (calib.intra_bw > 0) cl.intra_bw = calib.intra_bw;
    if (calib.inter_bw > 0) cl.inter_bw = calib.inter_bw;
    OS_CHECK(cluster_validate(&cl));
    if (emulate) ALLOC_CHECK(emu = calloc(steps, sizeof *emu));
    OS_CHECK(check_steps(pos[0], &m, pol, &popt, &calib, &cl, steps, pr.info.mem_bytes, emu, emulate, &peak));

    ExecRunConfig rc = {.trace = pos[0], .model = &m, .policy = pol, .popt = popt, .calib = &calib, .D = gpus,
                        .dp_per_node = cl.dp_per_node, .steps = steps, .warmup = warmup, .timeout_s = timeout,
                        .setup_timeout_s = setup_timeout, .emulate = emulate, .n_dev = pr.n_dev, .seed = 1};
    vr.tab = (ExecValTable){.D = gpus, .P = m.n_enc + 1, .emulate = emulate, .policy = pol->name,
                            .peak_flops = cl.peak_flops};
    for (uint32_t p = 0; p < m.n_enc; p++) snprintf(vr.tab.phase[p], sizeof vr.tab.phase[p], "%s", m.enc[p].modality);
    snprintf(vr.tab.phase[m.n_enc], sizeof vr.tab.phase[0], "llm");
    ALLOC_CHECK(vr.rows = calloc(steps, sizeof *vr.rows));
    ALLOC_CHECK(vr.scratch = calloc((size_t)2 * gpus * vr.tab.P, sizeof *vr.scratch));
    if (root) {
        ALLOC_CHECK(pred.step_s = calloc(steps, sizeof *pred.step_s));
        ALLOC_CHECK(pred.flops = calloc(steps, sizeof *pred.flops));
        pred.cap = steps;
        OS_CHECK(predict(&pred, pos[0], &m, &calib, &cl, pol, &popt, steps));
        if (csv) {
            OS_CHECK(os_outfile_open(&out, csv, 1));
            out_open = 1;
            vr.csv = out.fp;
            exec_val_csv_header(vr.csv, &vr.tab);
        }
        vr.pred = &pred, vr.emu = emu;
        fprintf(vr.human, "# validate: %s, steps 0..%llu (%u untimed warm-up run%s of step 0), policy %s, model %s\n", pos[0],
               (unsigned long long)steps - 1, warmup, warmup == 1 ? "" : "s", pol->name, m.name);
        if (emulate)
            fprintf(vr.human, "# run: --emulate, %u ranks one after another on GPU 0 (%s, %d present); collectives modelled on "
                   "one node of %u GPUs (net.h)\n", gpus, pr.info.name, pr.n_dev, gpus);
        else if (gpus == 1 && !under_mpi)
            fprintf(vr.human, "# run: 1 rank, one process on GPU 0 (%s), no NCCL: nothing crosses ranks\n", pr.info.name);
        else
            fprintf(vr.human, "# run: %u rank(s), one %s per GPU (%s), NCCL all-to-all moves and one gradient all-reduce\n", gpus,
                   under_mpi ? "MPI rank" : "process", pr.info.name);
        fprintf(vr.human, "# memory: %.2f GB of device buffers on %s by the last step (exec/memplan.h, the executor's own "
               "count), of %.2f GB\n", peak.total / 1e9, emulate ? "GPU 0" : "the fullest GPU", pr.info.mem_bytes / 1e9);
        fprintf(vr.human, "# prediction: replay_run on %u GPUs, %u per node, DDP with one gradient all-reduce, balancer time not "
               "charged (the run prepares plans on the host, untimed); calibration: %s%s\n", gpus, cl.gpus_per_node,
               calib.name, calibration ? "" : " (built-in estimate: run `orchsim calibrate` on this GPU)");
        fprintf(vr.human, "# MFU: paper convention (replay's model FLOPs) over %.1f TFLOP/s per GPU; timeout %.0f s per step, "
               "%.0f s for setup\n", cl.peak_flops / 1e12, timeout, setup_timeout);
        exec_val_print_header(vr.human, &vr.tab);
    }
    if (under_mpi) OS_CHECK(exec_run_mpi(&rc, on_step, &vr));
    else OS_CHECK(exec_run(&rc, exec_run_body, on_step, &vr));
    if (root) {
        exec_val_print_summary(vr.human, &vr.tab, vr.rows, vr.n_rows);
        if (out_open) {
            out_open = 0;
            OS_CHECK(os_outfile_commit(&out));
        }
    }
fail:
    if (out_open) os_outfile_abort(&out);
    free(pred.step_s);
    free(pred.flops);
    free(emu);
    free(vr.rows);
    free(vr.scratch);
    return st;
}
