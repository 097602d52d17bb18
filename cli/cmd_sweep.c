/* cmd_sweep.c — `orchsim sweep TRACE ...`: `orchsim compare` over a grid of policies x models x
 * setups x cluster shapes, one run-level table (analysis/sweep.h).
 * Every replay option is accepted (cli/simopts.c's rows: the same names, letters and defaults);
 * --model, --setup, --gpus, --gpus-per-node and --tp take comma lists, which are the grid's
 * axes. Each point is resolved and replayed exactly as `orchsim compare` replays one policy
 * (simopts_resolve + polrun_one: the same deterministic balancer charge, feasibility and
 * provenance columns), so a point's row is compare's row. Under `mpirun -np K` the points are
 * spread over the K ranks through the MPI module (exec/mpimod.h) and rank 0 writes the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/sweep.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "cli/polrun.h"
#include "cli/simopts.h"
#include "exec/mpimod.h"
#include "exec/worker.h"
#include "sim/model.h"

/* What every point shares: the replay options (axes overwritten per point), the charge and
 * the provenance. */
typedef struct {
    const char *trace;
    const SimOpts *base;
    ChargeMode charge;
    const RunProv *prov;
} SweepCli;

/* One point, as `orchsim compare` replays one policy (SweepRunFn). */
static OsStatus run_point(RunRow *row, RunSeries *series, const SweepPoint *p, void *user) {
    OsStatus st = OS_OK;
    const SweepCli *c = user;
    Trace *t = NULL;
    PolRun *run = NULL;
    ReplayConfig cfg;
    SimOpts *so = malloc(sizeof *so);
    ALLOC_CHECK(so);
    *so = *c->base;
    so->model = p->model;
    so->setup = p->setup;
    so->gpus = p->gpus;
    so->gpus_per_node = p->gpus_per_node;
    so->tp = p->tp;
    so->regroup = 1; /* a sweep over GPU counts re-deals every global batch (FORMATS.md) */
    ALLOC_CHECK(run = calloc(1, sizeof *run));
    OS_CHECK(trace_open(&t, c->trace));
    replay_config_init(&cfg);
    OS_CHECK(simopts_resolve(&cfg, so, t));
    PolRunOpts po = {.charge = c->charge, .fixed_s = so->balancer_cost_s, .prov = c->prov, .progress = 0};
    OS_CHECK(advise_units(&po.units, t, &cfg)); /* the sizes compare charges at */
    OS_CHECK(polrun_one(run, &cfg, t, p->policy, NULL, &po));
    *row = run->row;
    *series = run->series; /* moved: the caller owns it */
    memset(&run->series, 0, sizeof run->series);
fail:
    if (run) polrun_free(run);
    free(run);
    trace_close(t);
    free(so);
    return st;
}

/* ---- the MPI ranks (SweepComm on the MPI module) ---------------------------------------- */

typedef struct {
    const ExecMpiApi *mp;
    int rank, size;
} MpiCtx;

static OsStatus mpi_gatherv(void *user, const void *send, size_t n, char **recv, size_t *counts) {
    OsStatus st = OS_OK;
    MpiCtx *m = user;
    uint64_t n64 = n, *all = NULL;
    *recv = NULL;
    if (m->rank == 0) ALLOC_CHECK(all = calloc((size_t)m->size, sizeof *all));
    OS_CHECK(m->mp->gather(&n64, sizeof n64, all, 0));
    if (m->rank == 0) {
        size_t total = 0;
        for (int r = 0; r < m->size; r++) counts[r] = (size_t)all[r], total += (size_t)all[r];
        ALLOC_CHECK(*recv = malloc(total ? total : 1));
    }
    OS_CHECK(m->mp->gatherv(send, n, *recv, m->rank == 0 ? counts : NULL, 0));
fail:
    free(all);
    return st;
}

static OsStatus mpi_bcast(void *user, void *buf, size_t n) {
    MpiCtx *m = user;
    return m->mp->bcast(buf, n, 0);
}

/* ---- the command ------------------------------------------------------------------------ */

/* The row of specs named lname (the shared rows are found by name, not position). */
static OptSpec *row_named(OptSpec *specs, size_t n, const char *lname) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].lname, lname)) return &specs[i];
    return NULL;
}

/* An axis given as a list: a private copy split in place (the list strings point into it). */
static OsStatus axis_copy(char **keep, const char *list) {
    *keep = strdup(list);
    return *keep ? OS_OK : os_fail(OS_ERR_NOMEM, "sweep", NULL, NULL, "out of memory");
}

#define SWEEP_KEEP 8

OsStatus cmd_sweep(int argc, char **argv) {
    OsStatus st = OS_OK;
    SweepGrid g;
    SweepOptions o;
    SweepReport rep = {0};
    SweepCli cli;
    char *grid_text = NULL, *keep[SWEEP_KEEP] = {0};
    RunProv *prov = NULL;
    ModelSpec *ms = NULL;
    SimOpts *so = NULL;
    MpiCtx mctx = {0};
    SweepComm comm = {0};
    int mpi_inited = 0, held = 0, measured = 0, quiet = 0, no_progress = 0, root = 1, keep_going = 0;
    OptsBinOut h5out = {0};
    uint64_t out_mark = 0;
    sweep_grid_init(&g);
    sweep_options_init(&o);
    ALLOC_CHECK(so = malloc(sizeof *so));
    simopts_init(so);
    /* the axes: replay's rows taking lists, with replay's defaults (as text, so --help shows them) */
    static const char D_MODEL[] = "orch-84b", D_GPUS[] = "0", D_GPN[] = "8", D_TP[] = "1", D_SETUP[] = "fsdp";
    const char *models = D_MODEL, *gpus = D_GPUS, *gpn = D_GPN, *tp = D_TP, *setups = D_SETUP;
    const char *policies = NULL, *grid = NULL, *csv = NULL, *h5 = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t jobs = ncpu > 0 ? (uint32_t)ncpu : 1;
    OptSpec specs[SIMOPTS_N + 12];
    simopts_specs(specs, so);
    size_t ns = SIMOPTS_N;
    {
        OptSpec *r;
        r = row_named(specs, ns, "model");
        r->dest = &models, r->metavar = "NAME|FILE,..";
        r->help = "model presets or preset files (see sim/README-models.md); a list is a grid axis";
        r = row_named(specs, ns, "gpus");
        r->type = OPT_STR, r->dest = &gpus, r->metavar = "N,..";
        r->help = "GPUs in the simulated cluster (0: the trace's DP x TP); a list is a grid axis";
        r = row_named(specs, ns, "gpus-per-node");
        r->type = OPT_STR, r->dest = &gpn, r->metavar = "N,..", r->help = "GPUs per node; a list is a grid axis";
        r = row_named(specs, ns, "tp");
        r->type = OPT_STR, r->dest = &tp, r->metavar = "N,..";
        r->help = "tensor-parallel size (DP = GPUs / TP); a list is a grid axis";
        r = row_named(specs, ns, "setup");
        r->dest = &setups, r->metavar = "ddp|fsdp|fsdp-grad-op,..";
        r->help = "training setup: DDP all-reduce, FSDP FULL_SHARD (ZeRO-3) or SHARD_GRAD_OP (ZeRO-2) per layer "
                  "group; a list is a grid axis";
        r = row_named(specs, ns, "regroup");
        r->help = "re-deal each global batch to the point's DP: always on in a sweep (accepted for symmetry)";
    }
    specs[ns++] = (OptSpec)OPTS_ROW_POLICIES(&policies);
    specs[ns++] = (OptSpec){"grid", 0, OPT_STR, &grid, "FILE", "grid file of 'key = v1, v2' lines (analysis/FORMATS.md)", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_OUTPUT(&csv, "FILE", "run-level CSV, one row per grid point (required; '-' = stdout)");
    specs[ns++] = (OptSpec)OPTS_ROW_CSV(&csv, "the same as -o");
    specs[ns++] = (OptSpec){"h5", 0, OPT_STR, &h5, "FILE", "HDF5 copy with per-run per-step series ('-' = stdout)", 0, 0};
    specs[ns++] = (OptSpec){"jobs", 'j', OPT_U32, &jobs, "J", "worker processes (not under mpirun: each rank runs its points itself)", 1, 1024};
    specs[ns++] = (OptSpec){"measured-charge", 0, OPT_FLAG, &measured, NULL, "charge the balancer's measured host runtime instead of its modelled cost (numbers then vary run to run)", 0, 0};
    specs[ns++] = (OptSpec){"keep-going", 0, OPT_FLAG, &keep_going, NULL, "when grid points fail, write the others and exit 0 (they are listed on stderr); default: fail, writing nothing", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_NO_PROGRESS(&no_progress);
    specs[ns++] = (OptSpec)OPTS_ROW_QUIET(&quiet);
    const CmdHelp help = {
        "sweep", "orchsim sweep TRACE [--policies all|A,B] [--model M,..] [--gpus N,..] [--setup S,..] -o FILE [options]",
        "Replay a trace over a grid of policies, models, setups and cluster shapes: `orchsim compare`\n"
        "at every point, one run-level table.",
        "The grid is the cartesian product of the lists (--policies, --model, --setup, --gpus,\n"
        "--gpus-per-node, --tp, or a --grid file); every other option is replay's and applies to every\n"
        "point. Each point is replayed as `orchsim compare` replays one policy, with the same\n"
        "deterministic balancer charge, so its row equals compare's (but for the command and the\n"
        "measured balancer runtime). The trace's global batches are always re-dealt to each point's DP\n"
        "(--regroup is implied: a sweep over GPU counts has to).\n"
        "Processes: one worker per point, -j at a time (each opens the trace itself). Under\n"
        "`mpirun -np K orchsim sweep ...` the points are dealt round-robin to the K ranks (the MPI module,\n"
        "liborchsim_mpi.so, is loaded then and only then); each rank runs its points itself and rank 0\n"
        "writes the table, in grid order, the same as one machine's.\n"
        "Output: one row per point, columns as analysis/FORMATS.md \"Run-level\" says; speedup_vs_none is\n"
        "filled in after all runs. A failing point (e.g. TP not dividing the GPUs) is listed on stderr\n"
        "with its parameters and the sweep fails, writing nothing (like every command); with\n"
        "--keep-going the other rows are written and the exit status is 0."};
    const char *pos[1];
    static char command[RUNPROV_CMD];
    runprov_command(command, sizeof command, argc, argv); /* before getopt reorders argv */
    OS_CHECK(opts_parse(specs, ns, &help, argc, argv, pos, 1, 1, NULL));

    /* every argument checked before any work */
    if (!csv) OS_FAIL(OS_ERR_ARG, "sweep", "-o", "add -o sweep.csv (or -o - for standard output)", "no output file given");
    {
        const char *names[] = {"-o", "--h5"}, *paths[] = {csv, h5};
        OS_CHECK(opts_stdout_claim(NULL, names, paths, 2));
    }
    if (measured && so->balancer_cost_s >= 0)
        OS_FAIL(OS_ERR_ARG, "--measured-charge", NULL, "give one of --measured-charge and --balancer-cost",
                "both set the balancer charge");
    /* command-line axes first (only those given), so the grid file can refuse a duplicate */
    if (policies) OS_CHECK(axis_copy(&keep[0], policies));
    if (policies) OS_CHECK(sweep_axis_policies(g.policies, &g.n_policies, keep[0], "--policies"));
    if (models != D_MODEL) OS_CHECK(axis_copy(&keep[1], models));
    if (models != D_MODEL) OS_CHECK(sweep_axis_strs(g.models, &g.n_models, keep[1], "--model"));
    if (setups != D_SETUP) OS_CHECK(axis_copy(&keep[2], setups));
    if (setups != D_SETUP) OS_CHECK(sweep_axis_strs(g.setups, &g.n_setups, keep[2], "--setup"));
    if (gpus != D_GPUS) OS_CHECK(axis_copy(&keep[3], gpus));
    if (gpus != D_GPUS) OS_CHECK(sweep_axis_u32(g.gpus, &g.n_gpus, keep[3], 0, 1u << 24, "--gpus"));
    if (gpn != D_GPN) OS_CHECK(axis_copy(&keep[4], gpn));
    if (gpn != D_GPN) OS_CHECK(sweep_axis_u32(g.gpus_per_node, &g.n_gpus_per_node, keep[4], 1, 1024, "--gpus-per-node"));
    if (tp != D_TP) OS_CHECK(axis_copy(&keep[5], tp));
    if (tp != D_TP) OS_CHECK(sweep_axis_u32(g.tp, &g.n_tp, keep[5], 1, 1024, "--tp"));
    g.steps = so->steps;
    if (grid) OS_CHECK(sweep_grid_load(&g, &grid_text, grid));
    so->steps = g.steps;
    if (!g.n_models) g.models[g.n_models++] = D_MODEL;
    if (!g.n_gpus) g.gpus[g.n_gpus++] = 0;
    OS_CHECK(sweep_grid_finish(&g));
    /* names that would fail every point: one error now (a bad model, setup) */
    ALLOC_CHECK(ms = malloc(sizeof *ms));
    for (uint32_t i = 0; i < g.n_models; i++) OS_CHECK(model_resolve(ms, g.models[i]));
    for (uint32_t i = 0; i < g.n_setups; i++) OS_CHECK(simopts_check_setup(g.setups[i], "--setup"));
    ALLOC_CHECK(prov = malloc(sizeof *prov));
    OS_CHECK(runprov_init(prov, pos[0], command, ORCHSIM_VERSION));
    cli = (SweepCli){pos[0], so, polrun_charge_pick(measured, so->balancer_cost_s), prov};

    /* under mpirun: the ranks (the MPI module is loaded now, and only here) */
    uint32_t mrank = 0, msize = 0;
    if (exec_under_mpi(&mrank, &msize) && msize > 1) {
        OS_CHECK(exec_mpi_api(&mctx.mp));
        OS_CHECK(mctx.mp->init(&mctx.rank, &mctx.size));
        mpi_inited = 1;
        comm = (SweepComm){mctx.rank, mctx.size, &mctx, mpi_gatherv, mpi_bcast};
        root = mctx.rank == 0;
    }
    out_mark = os_outputs_hold(); /* the CSV and the HDF5 copy together, or neither */
    held = 1;
    {
        /* rank 0's own checks, agreed by every rank (nobody may wait for a rank that stopped) */
        OsStatus cs = root ? opts_binout_begin(&h5out, h5, "--h5") : OS_OK;
        cs = sweep_agree(mpi_inited ? &comm : NULL, cs);
        if (cs == OS_DONE) {
            st = OS_DONE;
            goto fail;
        }
        OS_CHECK(cs);
    }
    o.trace_path = pos[0];
    o.jobs = jobs;
    o.csv_path = csv;
    o.h5_path = h5 ? h5out.path : NULL;
    o.progress = !quiet && !no_progress;
    o.keep_going = keep_going;
    o.run = run_point;
    o.run_user = &cli;
    o.comm = mpi_inited ? &comm : NULL;
    size_t N = sweep_grid_size(&g);
    if (root && !quiet) {
        char procs[96];
        if (mpi_inited) snprintf(procs, sizeof procs, "%d MPI ranks (each runs its points itself)", mctx.size);
        else snprintf(procs, sizeof procs, "%u worker%s", jobs, jobs == 1 ? "" : "s");
        fprintf(stderr, "# sweep: %zu points (%u policies x %u models x %u setups x %u GPU counts x %u node sizes x "
                        "%u TP), %s, regroup on, %s, balancer charge %s\n",
                N, g.n_policies, g.n_models, g.n_setups, g.n_gpus, g.n_gpus_per_node, g.n_tp, procs,
                so->calibration ? so->calibration : "built-in H100 calibration", polrun_charge_name(cli.charge));
    }
    st = sweep_run(&rep, &g, &o);
    if (root)
        for (size_t i = 0; i < rep.n_failed; i++)
            fprintf(stderr, "orchsim: sweep: point failed: %s: %s\n", rep.failures[i].params, rep.failures[i].error);
fail:
    if (held) {
        /* --keep-going: failed grid points leave the rows that ran (see --help); errors commit nothing */
        OsStatus rs = os_outputs_release(out_mark, rep.written ? OS_OK : st);
        if (rs != OS_OK && rep.written) st = rs;
        rs = opts_binout_end(&h5out, rep.written && rs == OS_OK ? OS_OK : OS_ERR_IO);
        if (rs != OS_OK && rep.written) st = rs;
        if (rep.written && rs == OS_OK && root)
            fprintf(stderr, "wrote %s (%zu rows%s%s) in %.1f s\n", strcmp(csv, "-") ? csv : "standard output",
                    rep.n_ok, h5 ? ", HDF5 copy " : "", h5 ? (strcmp(h5, "-") ? h5 : "on standard output") : "",
                    rep.wall_s);
    }
    if (mpi_inited) (void)mctx.mp->finalize();
    sweep_report_free(&rep);
    for (int i = 0; i < SWEEP_KEEP; i++) free(keep[i]);
    free(grid_text);
    free(prov);
    free(ms);
    free(so);
    return st;
}
