/* simopts.c — see simopts.h. */
#include "cli/simopts.h"

#include <string.h>

#include "base/util.h"

void simopts_init(SimOpts *o) {
    memset(o, 0, sizeof *o);
    o->model = "orch-84b";
    o->setup = "fsdp";
    o->allreduce = "ring";
    o->objective = NULL; /* the time model's: padded with --padded, else cost */
    o->gpus_per_node = 8;
    o->tp = 1;
    o->fsdp_groups = 0;
    o->ddp_buckets = 4;
    o->overlap_slowdown = -1.0;
    o->seed = 1;
    o->balancer_cost_s = -1.0;
    /* -1 = not given: keep the cluster default; 0 given explicitly is rejected by
     * cluster_validate as a zero bandwidth */
    o->intra_gbps = o->inter_gbps = o->intra_lat_us = o->inter_lat_us = o->peak_tflops = o->mem_gb = -1.0;
}

void simopts_specs(OptSpec *s, SimOpts *o) {
    const OptSpec rows[SIMOPTS_N] = {
        {"model", 'm', OPT_STR, &o->model, "NAME|FILE", "model preset or preset file (see sim/README-models.md)", 0, 0},
        {"gpus", 'g', OPT_U32, &o->gpus, "N", "GPUs in the simulated cluster (0: the trace's DP x TP)", 0, 1 << 24},
        {"gpus-per-node", 0, OPT_U32, &o->gpus_per_node, "N", "GPUs per node", 1, 1024},
        {"tp", 0, OPT_U32, &o->tp, "N", "tensor-parallel size (DP = GPUs / TP); the same as --parallel tp=N", 1, 1024},
        {"parallel", 0, OPT_STR, &o->parallel, "tp=T,pp=P,cp=C[,vp=V]", "parallel layout, DP = GPUs / (T*P*C); GPUs in Megatron-LM's order: TP innermost, then CP, DP, PP; vp > 1: interleaved 1F1B with V chunks per stage", 0, 0},
        {"pp-layout", 0, OPT_STR, &o->pp_layout, "MOD=STAGE,...", "pipeline stage of each encoder and its projector (default: stage 0, with the embedding)", 0, 0},
        {"allow-cross-node-tp", 0, OPT_FLAG, &o->allow_cross_node_tp, NULL, "allow a TP group larger than a node (its collectives then cross the NICs)", 0, 0},
        {"tp-overlap", 0, OPT_FLAG, &o->tp_overlap, NULL, "hide TP collectives behind the GEMMs (Megatron --tp-comm-overlap); default: exposed", 0, 0},
        {"no-sequence-parallel", 0, OPT_FLAG, &o->no_sp, NULL, "TP without sequence parallelism: all-reduces instead of all-gather + reduce-scatter, norms replicated", 0, 0},
        {"setup", 0, OPT_STR, &o->setup, "ddp|fsdp|fsdp-grad-op", "training setup: DDP all-reduce, FSDP FULL_SHARD (ZeRO-3) or SHARD_GRAD_OP (ZeRO-2) per layer group", 0, 0},
        {"allreduce", 0, OPT_STR, &o->allreduce, "ring|tree", "DDP all-reduce algorithm", 0, 0},
        {"steps", 'n', OPT_U64, &o->steps, "K", "replay at most K steps (0: all)", 0, 0},
        {"skip", 0, OPT_U64, &o->skip, "K", "start at trace step K", 0, 0},
        {"calibration", 'c', OPT_STR, &o->calibration, "FILE", "achieved-rate table from `orchsim calibrate` (default: built-in H100 estimate)", 0, 0},
        {"recompute", 0, OPT_FLAG, &o->recompute, NULL, "full activation recomputation (+1 forward of every layer in backward)", 0, 0},
        {"recompute-mode", 0, OPT_STR, &o->recompute_mode, "none|full|selective", "recomputation: selective = the attention kernel's forward only (default: full with --recompute, else none)", 0, 0},
        {"micro-batch", 0, OPT_U32, &o->micro_batch, "N", "examples per micro-batch per rank, gradients accumulated over them (0: the rank's whole share; more than a rank holds is clamped to its share)", 0, 1u << 20},
        {"mb-policy", 0, OPT_STR, &o->mb_policy, "mb-fixed|mb-kk", "micro-batches: mb-fixed = in drawn order under --micro-batch/--micro-batch-tokens (default); mb-kk = verl's count from --micro-batch-tokens, Karmarkar-Karp on cost, small ones at the pipeline's ends", 0, 0},
        {"micro-batch-tokens", 0, OPT_U64, &o->micro_batch_tokens, "T", "LLM-token budget per micro-batch (0: none; with --micro-batch both limits apply)", 0, 0},
        {"padded", 0, OPT_FLAG, &o->padded, NULL, "padded batches (b x max_len) instead of varlen packing", 0, 0},
        {"regroup", 0, OPT_FLAG, &o->regroup, NULL, "re-deal each global batch to the cluster's DP when the trace's differs", 0, 0},
        {"fsdp-groups", 0, OPT_U32, &o->fsdp_groups, "G", "FSDP layer groups per module (0: one per transformer layer)", 0, 1024},
        {"ddp-buckets", 0, OPT_U32, &o->ddp_buckets, "B", "DDP gradient buckets per module", 1, 1024},
        {"objective", 0, OPT_STR, &o->objective, "cost|linear|quadratic|padded", "balancing objective per unit (default: what the time model charges: padded with --padded, else cost)", 0, 0},
        {"cap-tokens", 0, OPT_U64, &o->cap_tokens, "N", "per-rank max LLM tokens for post-balancing (0: none)", 0, 0},
        {"cap-positions", 0, OPT_U64, &o->cap_positions, "N", "per-rank max encoder positions per phase (0: none)", 0, 0},
        {"intra-bw", 0, OPT_F64_AUTO, &o->intra_gbps, "GB/s|auto", "NVLink bandwidth per GPU per direction (auto: calibration's, else H100 450)", 1, 1e5},
        {"inter-bw", 0, OPT_F64_AUTO, &o->inter_gbps, "GB/s|auto", "NIC bandwidth per GPU per direction (auto: calibration's, else NDR 50)", 0.1, 1e5},
        {"intra-lat", 0, OPT_F64_AUTO, &o->intra_lat_us, "us|auto", "intra-node latency per step (auto: the cluster default)", 0, 1e4},
        {"inter-lat", 0, OPT_F64_AUTO, &o->inter_lat_us, "us|auto", "inter-node latency per step (auto: the cluster default)", 0, 1e4},
        {"peak-tflops", 0, OPT_F64_AUTO, &o->peak_tflops, "TF|auto", "GPU dense bf16 peak (auto: calibration's, else 989.4)", 1, 1e5},
        {"balancer-cost", 0, OPT_F64_AUTO, &o->balancer_cost_s, "S|auto", "charge S seconds per post-balancing step (auto: compare, advise and sweep charge the policy's modelled planning cost, sim/policy.c; replay its measured runtime)", 0, 10},
        {"seed", 's', OPT_U64, &o->seed, "S", "seed for randomized policies (isf)", 0, 0},
        {"mem-gb", 0, OPT_F64_AUTO, &o->mem_gb, "GB|auto", "GPU memory for the fit checks (auto: H100 80)", 1, 1e5},
        {"overlap-slowdown", 0, OPT_F64_AUTO, &o->overlap_slowdown, "F|auto", "compute slowdown while NCCL runs beside it, [0, 1) (auto: the calibration's)", 0, 0.999},
        {"grad-reduce", 0, OPT_STR, &o->grad_reduce, "bf16|fp32", "dtype gradients are reduced in (default: the model's parameter dtype; fp32 = FSDP mixed precision DEFAULT)", 0, 0},
        {"no-optimizer", 0, OPT_FLAG, &o->no_optimizer, NULL, "leave the optimizer step out of the step time", 0, 0},
    };
    memcpy(s, rows, sizeof rows);
}

const char *simopts_setup_name(TrainSetup s) { return replay_setup_name(s); }

typedef struct {
    const char *name;
    int value;
} NamedValue;

static OsStatus pick(int *out, const char *opt, const char *val, const NamedValue *tab, size_t n) {
    char list[160] = "";
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(val, tab[i].name)) {
            *out = tab[i].value;
            return OS_OK;
        }
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, tab[i].name, sizeof list - strlen(list) - 1);
    }
    char hint[200];
    snprintf(hint, sizeof hint, "one of: %s", list);
    return os_fail(OS_ERR_ARG, opt, NULL, hint, "'%s' is not a valid value", val);
}

static const NamedValue SETUPS[] = {{"ddp", SETUP_DDP}, {"fsdp", SETUP_FSDP}, {"fsdp-grad-op", SETUP_FSDP_GRAD_OP}};
static const NamedValue RECOMPUTE[] = {
    {"none", RECOMPUTE_NONE}, {"full", RECOMPUTE_FULL}, {"selective", RECOMPUTE_SELECTIVE}};
static const NamedValue ALGOS[] = {{"ring", AR_RING}, {"tree", AR_TREE}};
static const NamedValue OBJECTIVES[] = {
    {"cost", OBJ_COST}, {"linear", OBJ_LINEAR}, {"quadratic", OBJ_QUADRATIC}, {"padded", OBJ_PADDED}};

OsStatus simopts_check_setup(const char *name, const char *opt) {
    int v;
    return pick(&v, opt, name, SETUPS, OS_ARRAY_LEN(SETUPS));
}

OsStatus simopts_resolve(ReplayConfig *cfg, SimOpts *o, Trace *t) {
    OsStatus st = OS_OK;
    int v;
    OS_CHECK(model_resolve(&o->model_spec, o->model));
    /* the model file and the table are this command's inputs: no output may replace them */
    os_input_note(o->model);
    if (o->calibration) OS_CHECK(calib_load(&o->calib, o->calibration));
    if (o->calibration) os_input_note(o->calibration);
    else calib_default_h100(&o->calib);
    cfg->model = &o->model_spec;
    cfg->calib = &o->calib;
    OS_CHECK(pick(&v, "--setup", o->setup, SETUPS, OS_ARRAY_LEN(SETUPS)));
    cfg->setup = (TrainSetup)v;
    OS_CHECK(pick(&v, "--allreduce", o->allreduce, ALGOS, OS_ARRAY_LEN(ALGOS)));
    cfg->allreduce = (AllReduceAlgo)v;
    OS_CHECK(pick(&v, "--objective", o->objective ? o->objective : o->padded ? "padded" : "cost", OBJECTIVES,
                  OS_ARRAY_LEN(OBJECTIVES)));
    cfg->popt.objective = (BalanceObjective)v;
    cfg->popt.cap_llm_tokens = o->cap_tokens;
    cfg->popt.cap_enc_positions = o->cap_positions;
    cfg->popt.seed = o->seed;
    Layout *L = &cfg->par;
    layout_init(L);
    if (o->parallel) {
        OS_CHECK(layout_parse(L, o->parallel));
        if (o->tp != 1 && o->tp != L->tp)
            OS_FAIL(OS_ERR_ARG, "--tp", NULL, "give TP once, in --parallel", "--tp %u and --parallel tp=%u disagree", o->tp,
                    L->tp);
    } else L->tp = o->tp;
    if (o->pp_layout) OS_CHECK(layout_parse_placement(L, &o->model_spec, o->pp_layout));
    L->allow_cross_node_tp = o->allow_cross_node_tp;
    L->tp_overlap = o->tp_overlap;
    if (o->no_sp) L->sp = 0;
    uint32_t gpus = o->gpus;
    uint64_t mp = (uint64_t)L->tp * L->pp * L->cp;
    if (gpus == 0) {
        if (trace_n_steps(t) == 0) OS_FAIL(OS_ERR_FORMAT, trace_path(t), "/steps", NULL, "the trace has no steps");
        const TraceStep *s0;
        OS_CHECK(trace_read_step(t, 0, &s0));
        if ((uint64_t)s0->dp * mp > (1u << 24))
            OS_FAIL(OS_ERR_ARG, "--parallel", NULL, "give --gpus", "the trace's DP %u x %llu is too many GPUs", s0->dp,
                    (unsigned long long)mp);
        gpus = (uint32_t)(s0->dp * mp);
    }
    /* the layout's own checks first: their errors name --parallel / --pp-layout */
    OS_CHECK(layout_resolve(L, gpus, o->gpus_per_node, &o->model_spec));
    OS_CHECK(cluster_init_parallel(&cfg->cluster, gpus, o->gpus_per_node, L->tp, L->pp, L->cp));
    Cluster *c = &cfg->cluster;
    replay_apply_calib(c, &o->calib); /* the machine the table describes; options below win */
    if (o->intra_gbps >= 0) c->intra_bw = o->intra_gbps * 1e9;
    if (o->inter_gbps >= 0) c->inter_bw = o->inter_gbps * 1e9;
    if (o->intra_lat_us >= 0) c->intra_lat = o->intra_lat_us * 1e-6;
    if (o->inter_lat_us >= 0) c->inter_lat = o->inter_lat_us * 1e-6;
    if (o->peak_tflops >= 0) c->peak_flops = o->peak_tflops * 1e12;
    if (o->mem_gb >= 0) c->mem_bytes = o->mem_gb * 1e9;
    OS_CHECK(cluster_validate(c));
    cfg->recompute = o->recompute ? RECOMPUTE_FULL : RECOMPUTE_NONE;
    if (o->recompute_mode) {
        OS_CHECK(pick(&v, "--recompute-mode", o->recompute_mode, RECOMPUTE, OS_ARRAY_LEN(RECOMPUTE)));
        cfg->recompute = v;
    }
    cfg->micro_batch = o->micro_batch;
    if (o->mb_policy) {
        static const NamedValue MBP[] = {{"mb-fixed", MBP_FIXED}, {"mb-kk", MBP_KK}, {"fixed", MBP_FIXED}, {"kk", MBP_KK}};
        OS_CHECK(pick(&v, "--mb-policy", o->mb_policy, MBP, OS_ARRAY_LEN(MBP)));
        cfg->mb_policy = v;
    }
    cfg->micro_batch_tokens = o->micro_batch_tokens;
    cfg->optimizer = !o->no_optimizer;
    if (o->grad_reduce) {
        static const NamedValue RED[] = {{"bf16", 2}, {"fp16", 2}, {"fp32", 4}};
        OS_CHECK(pick(&v, "--grad-reduce", o->grad_reduce, RED, OS_ARRAY_LEN(RED)));
        cfg->grad_reduce_bytes = (uint32_t)v;
    }
    cfg->overlap_slowdown = o->overlap_slowdown;
    cfg->layout = o->padded ? ATTN_PADDED : ATTN_VARLEN;
    cfg->regroup = o->regroup;
    cfg->first_step = o->skip;
    cfg->n_steps = o->steps;
    cfg->fsdp_groups = o->fsdp_groups;
    cfg->ddp_buckets = o->ddp_buckets;
    cfg->balancer_cost_s = o->balancer_cost_s;
fail:
    return st;
}

void simopts_announce(FILE *fp, const SimOpts *o, const ReplayConfig *cfg, const char *trace) {
    const Cluster *c = &cfg->cluster;
    fprintf(fp, "# trace: %s\n", trace);
    fprintf(fp, "# model: %s (%.2fB parameters)\n", cfg->model->name, (double)model_params(cfg->model) / 1e9);
    fprintf(fp, "# cluster: %u GPUs = %u nodes x %u, TP %u, PP %u, CP %u, DP %u; NVLink %.0f GB/s, NIC %.0f GB/s per GPU; peak %.1f TFLOP/s\n",
            c->gpus, c->nodes, c->gpus_per_node, c->tp, c->pp, c->cp, c->dp, c->intra_bw / 1e9, c->inter_bw / 1e9,
            c->peak_flops / 1e12);
    if (c->tp * c->pp * c->cp > 1) {
        char lay[128];
        layout_describe(lay, sizeof lay, &cfg->par);
        fprintf(fp, "# layout: %s; GPUs in Megatron-LM's order (TP innermost, then CP, DP, PP); TP collectives %s; "
                    "balancing policies act on DP\n", lay, cfg->par.tp_overlap ? "overlapped with GEMMs" : "exposed");
    }
    static const char *const RC[] = {"off", "full", "selective"};
    char mb[96] = "whole share";
    if (cfg->micro_batch && cfg->micro_batch_tokens)
        snprintf(mb, sizeof mb, "%u examples or %llu tokens", cfg->micro_batch, (unsigned long long)cfg->micro_batch_tokens);
    else if (cfg->micro_batch) snprintf(mb, sizeof mb, "%u examples", cfg->micro_batch);
    else if (cfg->micro_batch_tokens) snprintf(mb, sizeof mb, "%llu tokens", (unsigned long long)cfg->micro_batch_tokens);
    if (cfg->mb_policy == MBP_KK)
        snprintf(mb, sizeof mb, "mb-kk under %llu tokens", (unsigned long long)cfg->micro_batch_tokens);
    fprintf(fp, "# setup: %s, micro-batch %s, %s attention, recompute %s, optimizer %s\n", simopts_setup_name(cfg->setup),
            mb, cfg->layout == ATTN_PADDED ? "padded" : "varlen", RC[cfg->recompute], cfg->optimizer ? "on" : "off");
    fprintf(fp, "# calibration: %s%s; stack: %s; attention kernel: %s\n", cfg->calib->name,
            o->calibration ? "" : " (built-in, from published kernel measurements: run `orchsim calibrate` on your GPUs)",
            cfg->calib->stack[0] ? cfg->calib->stack : "-", cfg->calib->attn_kernel[0] ? cfg->calib->attn_kernel : "-");
    if (cfg->calib->gemm_sustained > 0) {
        char g[256];
        calib_sustain_text(cfg->calib, g, sizeof g);
        fprintf(fp, "# GEMMs: %s\n", g);
    }
    fprintf(fp, "# measured vs modelled: everything here is modelled (simulator); only the balancer's own "
                "runtime is measured on this host%s\n", cfg->balancer_cost_s >= 0 ? " (overridden by --balancer-cost)" : "");
#ifdef ORCHSIM_HAVE_CUDA
    fprintf(fp, "# backends: simulator; the GPU module (liborchsim_gpu.so) was built and is loaded on demand by "
                "calibrate / validate / selftest / doctor\n");
#else
    fprintf(fp, "# backends: simulator only (built without CUDA: calibrate / validate unavailable)\n");
#endif
}
