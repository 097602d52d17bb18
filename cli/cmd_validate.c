/* cmd_validate.c — `orchsim validate TRACE --gpus N --policy P --model M --steps K`: run the
 * trace's steps on real GPUs and set the measured step times beside replay_run's prediction.
 * State of this build: everything up to the GPU run is real and checked at the door, in this
 * order, each failure one line and nothing written: options and the policy; a CUDA device
 * ("validate: no CUDA device (<reason>)"); --gpus against the devices present (unless
 * --emulate); the model preset; every one of the K steps prepared exactly as the workers
 * would (exec/stepsrc.h: items/examples over the preset's limits, modalities without an
 * encoder, the policy's plan and its routes verified on the CPU); the busiest rank's memory
 * estimate (exec/budget.h) against the device's memory. The pieces that run it are written
 * and tested — worker processes with the watchdog (exec/worker.h), the measured/emulated
 * step arithmetic and MAPE (exec/validate.h), and the GPU step executor with its NCCL moves
 * (exec/mllm.h, exec/comm.cuh; its equality with the CPU reference is tests/test_exec_mllm.c)
 * — but the glue that runs it per worker and sets it beside replay_run's prediction (per-step
 * table, --csv, --emulate) is not written yet, so after the checks validate stops with one
 * line saying so rather than print any number. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/budget.h"
#include "exec/gpu.h"
#include "exec/stepsrc.h"
#include "sim/base/util.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/policy.h"

/* Prepare every step the run would execute; fail on the first that cannot run. */
static OsStatus check_steps(const char *trace, const ModelSpec *m, const Policy *pol, const PolicyOptions *popt,
                            const Calib *calib, uint32_t gpus, uint64_t steps, double mem_bytes) {
    OsStatus st = OS_OK;
    ExecStepSource *src = NULL;
    ExecStep s;
    OS_CHECK(exec_src_create(&src, trace, m, pol, popt, calib, gpus, gpus));
    if (steps > exec_src_n_steps(src))
        OS_FAIL(OS_ERR_ARG, trace, "--steps", "ask for fewer steps", "%llu steps asked, the trace has %llu",
                (unsigned long long)steps, (unsigned long long)exec_src_n_steps(src));
    for (uint64_t k = 0; k < steps; k++) {
        ExecBudget b;
        OS_CHECK(exec_src_step(src, k, &s));
        exec_budget(&b, m, s.max_llm_rows, s.max_enc_rows, s.longest_seq, s.longest_item);
        if (b.total > mem_bytes * (1.0 - EXEC_BUDGET_MARGIN))
            OS_FAIL(OS_ERR_RANGE, m->name, "memory", "use a smaller preset, more --gpus, or a policy with caps",
                    "step %llu needs about %.2f GB on its busiest rank (weights %.2f + grads %.2f + activations "
                    "%.2f + scratch %.2f), the GPU has %.2f GB (%.0f%% kept for CUDA/NCCL)",
                    (unsigned long long)k, b.total / 1e9, b.weights / 1e9, b.grads / 1e9, b.activations / 1e9,
                    b.scratch / 1e9, mem_bytes / 1e9, EXEC_BUDGET_MARGIN * 100);
    }
fail:
    exec_src_destroy(src);
    return st;
}

OsStatus cmd_validate(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *policy = "post", *model = "mini-tri", *calibration = NULL, *csv = NULL;
    uint32_t gpus = 1;
    uint64_t steps = 4;
    double timeout = 600;
    int emulate = 0;
    const char *pos[1] = {NULL};
    const OptSpec specs[] = {
        {"gpus", 'g', OPT_U32, &gpus, "N", "data-parallel ranks (one process per GPU)", 1, 4096},
        {"policy", 'p', OPT_STR, &policy, "P", "balancing policy (orchsim replay --help lists them)", 0, 0},
        {"model", 'm', OPT_STR, &model, "MODEL", "model preset or preset file", 0, 0},
        {"steps", 'k', OPT_U64, &steps, "K", "trace steps to run", 1, 1000000},
        {"emulate", 0, OPT_FLAG, &emulate, NULL, "fewer GPUs than ranks: run ranks one after another, model the collectives", 0, 0},
        {"calibration", 'c', OPT_STR, &calibration, "FILE", "calibration for the prediction (default: measure one)", 0, 0},
        {"csv", 0, OPT_STR, &csv, "FILE", "per-step measured/predicted table", 0, 0},
        {"timeout", 't', OPT_F64, &timeout, "S", "seconds any step may take before workers are killed", 1, 86400},
    };
    const CmdHelp help = {
        "validate", "orchsim validate TRACE --gpus N --policy P --model M --steps K [options]",
        "run a trace on real GPUs and compare measured step times with the simulator's",
        "Columns are labelled measured or modelled; --emulate times each rank's compute for real\n"
        "and models only the collectives. This build checks the run (devices, the preset's\n"
        "limits, every step's plan, memory) but does not run the steps yet: it stops after\n"
        "the checks and prints no number."};
    int n_dev = 0;
    char why[256];
    ModelSpec m;
    Calib calib;
    ExecDeviceInfo info;
    const Policy *pol = NULL;
    PolicyOptions popt = {.objective = OBJ_COST, .seed = 1};
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, NULL));
    if (!(pol = policy_find(policy))) {
        const char *s = policy_suggest(policy);
        char hint[96];
        snprintf(hint, sizeof hint, "did you mean '%s'?", s ? s : "post");
        OS_FAIL(OS_ERR_ARG, "validate", "--policy", hint, "unknown policy '%s'", policy);
    }
    if (exec_gpu_count(&n_dev, why, sizeof why) != OS_OK) {
        os_clear_error(); /* say it in this command's words */
        OS_FAIL(OS_ERR_NODEV, "validate", NULL, "run it on a machine with an NVIDIA GPU",
                "no CUDA device (%s)", why);
    }
    if ((int)gpus > n_dev && !emulate)
        OS_FAIL(OS_ERR_NODEV, "validate", "--gpus", "add --emulate to run the ranks one after another",
                "%u GPUs asked, %d present", gpus, n_dev);
    OS_CHECK(model_resolve(&m, model));
    OS_CHECK(exec_gpu_info(&info, 0));
    /* the balancers' unit costs; the prediction would use the same table */
    if (calibration) OS_CHECK(calib_load(&calib, calibration));
    else calib_default_h100(&calib);
    OS_CHECK(check_steps(pos[0], &m, pol, &popt, &calib, gpus, steps, info.mem_bytes));
    OS_FAIL(OS_ERR_NODEV, "validate", pos[0], "use `orchsim calibrate` and `orchsim replay` meanwhile",
            "checks passed (%llu steps, %u ranks, %s on %s), but validate's run loop (workers running "
            "exec/mllm.h beside replay_run's prediction) is not in this build; nothing was run",
            (unsigned long long)steps, gpus, m.name, info.name);
fail:
    (void)csv, (void)timeout;
    return st;
}
