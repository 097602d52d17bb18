/* cmd_sweep.c — `orchsim sweep TRACE ...`: replay a grid of policies x models x setups x GPU
 * counts in parallel worker processes and write one run-level table (analysis/sweep.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/sweep.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "base/util.h"

OsStatus cmd_sweep(int argc, char **argv) {
    OsStatus st = OS_OK;
    SweepGrid g;
    SweepOptions so;
    SweepReport rep = {0};
    char *grid_text = NULL;
    sweep_grid_init(&g);
    sweep_options_init(&so);
    const char *policies = NULL, *gpus = NULL, *models = NULL, *setups = NULL, *gpn = NULL, *tp = NULL,
               *grid = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t jobs = ncpu > 0 ? (uint32_t)ncpu : 1;
    uint64_t steps = 0;
    int regroup = 0, quiet = 0;
    double balancer_cost = -1.0;
    const OptSpec specs[] = {
        {"policies", 'p', OPT_STR, &policies, "A,B,..", "balancing policies (orchsim compare --help lists them)", 0, 0},
        {"models", 'm', OPT_STR, &models, "A,B,..", "model presets or preset files", 0, 0},
        {"gpus", 'g', OPT_STR, &gpus, "N,N,..", "GPU counts", 0, 0},
        {"setups", 0, OPT_STR, &setups, "A,B", "training setups: ddp, fsdp (default: ddp)", 0, 0},
        {"gpus-per-node", 0, OPT_STR, &gpn, "N,..", "GPUs per node (default: 8)", 0, 0},
        {"tp", 0, OPT_STR, &tp, "N,..", "tensor-parallel degrees (default: 1)", 0, 0},
        {"steps", 'k', OPT_U64, &steps, "K", "steps replayed per run (0 = the whole trace)", 0, 0},
        {"grid", 0, OPT_STR, &grid, "FILE", "grid file of 'key = v1, v2' lines (analysis/FORMATS.md)", 0, 0},
        {"calibration", 0, OPT_STR, &so.calibration, "FILE", "calibration table (default: built-in H100)", 0, 0},
        {"balancer-cost", 0, OPT_F64_AUTO, &balancer_cost, "S|auto",
         "charge this fixed balancer time per step instead of the measured one (reproducible output; auto = measured)",
         0.0, 10.0},
        {"regroup", 0, OPT_FLAG, &regroup, NULL, "accepted for symmetry with replay: a sweep always regroups", 0, 0},
        {"recompute", 0, OPT_FLAG, &so.recompute, NULL, "full activation recomputation in every run (as replay --recompute)", 0, 0},
        {"padded", 0, OPT_FLAG, &so.padded, NULL, "padded batches instead of varlen packing in every run", 0, 0},
        {"jobs", 'j', OPT_U32, &jobs, "J", "worker processes", 1, 1024},
        {"output", 'o', OPT_STR, &so.csv_path, "FILE", "run-level CSV (required)", 0, 0},
        {"h5", 0, OPT_STR, &so.h5_path, "FILE", "HDF5 copy with per-run per-step series", 0, 0},
        {"quiet", 'q', OPT_FLAG, &quiet, NULL, "no progress bar", 0, 0},
    };
    const CmdHelp help = {
        "sweep", "orchsim sweep TRACE --policies A,B --models M --gpus 64,512 -o sweep.csv [options]",
        "replay a trace over a grid of policies, models, setups and cluster shapes, in parallel",
        "The grid is the cartesian product of the lists; each point is one replay in its own worker\n"
        "process (each opens the trace itself). The trace's global batches are always re-dealt to\n"
        "each point's DP degree (--regroup is implied: a sweep over GPU counts has to).\n"
        "Output: one row per point, columns as analysis/FORMATS.md \"Run-level\" says;\n"
        "speedup_vs_none is filled in after all runs. A failing point (e.g. TP not dividing the\n"
        "GPUs) is listed on stderr with its parameters; the other rows are still written and the\n"
        "exit status is non-zero."};
    const char *pos[1];
    int np = 0;
    uint64_t out_mark = os_outputs_hold(); /* the CSV and the HDF5 copy together, or neither */
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, &np));
    (void)regroup;
    so.trace_path = pos[0];
    so.jobs = jobs;
    so.balancer_cost_s = balancer_cost;
    so.progress = !quiet;
    if (!so.csv_path) OS_FAIL(OS_ERR_ARG, "sweep", "-o", "add -o sweep.csv", "no output file given");
    /* command-line axes first, so the grid file can refuse a duplicate */
    if (policies) OS_CHECK(sweep_axis_strs(g.policies, &g.n_policies, (char *)policies, "--policies"));
    if (models) OS_CHECK(sweep_axis_strs(g.models, &g.n_models, (char *)models, "--models"));
    if (setups) OS_CHECK(sweep_axis_strs(g.setups, &g.n_setups, (char *)setups, "--setups"));
    if (gpus) OS_CHECK(sweep_axis_u32(g.gpus, &g.n_gpus, (char *)gpus, 1, 1u << 24, "--gpus"));
    if (gpn) OS_CHECK(sweep_axis_u32(g.gpus_per_node, &g.n_gpus_per_node, (char *)gpn, 1, 1024, "--gpus-per-node"));
    if (tp) OS_CHECK(sweep_axis_u32(g.tp, &g.n_tp, (char *)tp, 1, 1024, "--tp"));
    g.steps = steps;
    if (grid) OS_CHECK(sweep_grid_load(&g, &grid_text, grid));
    OS_CHECK(sweep_grid_finish(&g));
    size_t N = sweep_grid_size(&g);
    fprintf(stderr, "# sweep: %zu points (%u policies x %u models x %u setups x %u GPU counts x %u node sizes x "
                    "%u TP), %u workers, regroup on, %s\n",
            N, g.n_policies, g.n_models, g.n_setups, g.n_gpus, g.n_gpus_per_node, g.n_tp, so.jobs,
            so.calibration ? so.calibration : "built-in H100 calibration");
    st = sweep_run(&rep, &g, &so);
    for (size_t i = 0; i < rep.n_failed; i++)
        fprintf(stderr, "orchsim: sweep: point failed: %s: %s\n", rep.failures[i].params, rep.failures[i].error);
fail:
    {
        /* failed grid points keep the rows that ran (see --help); other errors commit nothing */
        OsStatus rs = os_outputs_release(out_mark, rep.written ? OS_OK : st);
        if (rs != OS_OK && rep.written) st = rs;
        if (rep.written && rs == OS_OK)
            printf("wrote %s (%zu rows%s%s) in %.1f s\n", so.csv_path, rep.n_ok, so.h5_path ? ", HDF5 copy " : "",
                   so.h5_path ? so.h5_path : "", rep.wall_s);
    }
    sweep_report_free(&rep);
    free(grid_text);
    return st;
}
