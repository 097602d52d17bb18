/* test_diffusion_pipeline.c — sim/diffusion/stage.h and pipesim.h: pipeline files and their
 * errors (file, line, stage, key), request fields from a trace and theirs (file, row, field),
 * the cpdm generation tie (every policy within 0.1% of none and of the oracle, post's own cost a
 * loss), post-balancing's margin on interrogation and t2i-mixed, conservation of requests and
 * work, barrier against streaming, fine-tuning. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/csv.h"
#include "helpers.h"
#include "sim/diffusion/pipesim.h"
#include "traces/gen_t2i.h"

/* ---- pipeline files -------------------------------------------------------------------- */

static void bad_pipe(const char *text, const char *want1, const char *want2) {
    Pipeline p;
    os_clear_error();
    cr_assert_eq(pipe_parse(&p, text, "t.pipe"), OS_ERR_FORMAT, "accepted:\n%s", text);
    const char *e = os_last_error();
    cr_assert(strstr(e, "t.pipe: "), "no file in: %s", e);
    cr_assert(strstr(e, want1), "want '%s' in: %s", want1, e);
    if (want2) cr_assert(strstr(e, want2), "want '%s' in: %s", want2, e);
    os_clear_error();
}

Test(pipeline_file, builtins_parse_in_order) {
    for (uint32_t i = 0; i < pipe_builtin_count(); i++) {
        Pipeline p;
        cr_assert_eq(pipe_load(&p, pipe_builtin_name(i)), OS_OK, "%s: %s", pipe_builtin_name(i), os_last_error());
        for (uint32_t k = 0; k < p.n; k++) /* a topological order: every predecessor earlier */
            for (uint32_t q = 0; q < p.st[p.order[k]].n_after; q++) {
                uint32_t pred = p.st[p.order[k]].after[q], pos = 0;
                while (p.order[pos] != pred) pos++;
                cr_assert_lt(pos, k);
            }
    }
    Pipeline p;
    cr_assert_eq(pipe_load(&p, "cpdm"), OS_OK);
    cr_assert_eq(p.n, 5);
    cr_assert_str_eq(p.st[2].model->name, "sd21-768");
    cr_assert_eq(p.st[2].cfg, 9.0);
    cr_assert_eq(p.st[2].aux, dm_find("openclip-h-text-sd"), "SD 2.x's own text encoder");
    cr_assert_eq(p.st[3].width, 768, "decode inherits the generate stage's resolution");
}

Test(pipeline_file, dag_and_explicit_kinds) {
    Pipeline p;
    const char *txt = "name = fork\n[stage gen_a]\nkind = generate\nmodel = sd14\n"
                      "[stage gen_b]\nkind = generate\nafter = none\nsync = stream\n"
                      "[stage decode]\nafter = gen_b, gen_a\n";
    cr_assert_eq(pipe_parse(&p, txt, "t.pipe"), OS_OK, "%s", os_last_error());
    cr_assert_eq(p.st[2].n_after, 2);
    cr_assert_eq(p.st[1].sync, SYNC_STREAM);
    cr_assert_eq(p.st[0].width, 512, "sd14's native resolution");
}

Test(pipeline_file, errors_name_file_line_stage_key) {
    bad_pipe("[stage generate]\nmodel = sd15\n", "line 2: stage \"generate\": key \"model\"", "did you mean 'sd14'");
    bad_pipe("[stage generate]\nmodel = kl-f8\n", "line 2", "needs a denoiser");
    bad_pipe("[stage generate]\ncfg = 0.5\n", "line 2: stage \"generate\": key \"cfg\"", "below 1");
    bad_pipe("[stage generate]\nsteps = 0\n", "key \"steps\"", "0 is below 1");
    bad_pipe("[stage generate]\n\n# a comment\nimages = 0\n", "line 4: stage \"generate\": key \"images\"", "below 1");
    bad_pipe("[stage generate]\nmodel = sd21-768\nwidth = 736\nheight = 768\n", "key \"width\"", "736 is not a multiple of 64");
    bad_pipe("[stage generate]\nwidth = 772\n", "key \"width\"", "not a multiple of");
    bad_pipe("[stage upscale]\nmodel = sd14\n", "stage \"upscale\"", "unknown stage 'upscale'");
    bad_pipe("[stage a]\nkind = upscale\n", "key \"kind\"", "unknown stage kind 'upscale'");
    bad_pipe("[stage generate]\n[stage decode]\nafter = generat\n", "line 3: stage \"decode\": key \"after\"",
             "did you mean 'generate'");
    bad_pipe("[stage generate]\nafter = decode\n[stage decode]\nafter = generate\n", "form a cycle",
             "generate");
    bad_pipe("[stage generate]\nafter = generate\n", "form a cycle", NULL);
    bad_pipe("[stage decode]\nsteps = 4\n", "key \"steps\"", "does not apply to a decode stage");
    bad_pipe("[stage generate]\nstesp = 4\n", "unknown key", "did you mean \"steps\"");
    bad_pipe("[stage generate]\nsteps = 4\nsteps = 5\n", "line 3", "already given on line 2");
    bad_pipe("name = x\n", "no stages", NULL);
    Pipeline p;
    os_clear_error();
    cr_assert_eq(pipe_load(&p, "/nonexistent/x.pipe"), OS_ERR_IO);
    os_clear_error();
}

/* ---- request traces -------------------------------------------------------------------- */

static const char *cpdm_trace(const char *name, uint32_t B, uint32_t D) {
    const char *p = th_tmp(name);
    GenConfig g = {"cpdm", 7, 0, B, D, 0, "test"};
    cr_assert_eq(gen_t2i_write(p, &g), OS_OK, "%s", os_last_error());
    return p;
}

typedef struct {
    Trace *t;
    T2iRequests r;
    Calib c;
    Pipeline p;
} Rig;

static void rig_open(Rig *g, const char *trace, const char *pipe) {
    memset(g, 0, sizeof *g);
    int present = 0;
    cr_assert_eq(trace_open(&g->t, trace), OS_OK, "%s", os_last_error());
    cr_assert_eq(t2i_requests_load(&g->r, trace, trace_n_examples(g->t), &present), OS_OK, "%s", os_last_error());
    cr_assert_eq(present, 1);
    calib_default_h100(&g->c);
    cr_assert_eq(pipe_load(&g->p, pipe), OS_OK, "%s", os_last_error());
}
static void rig_close(Rig *g) {
    t2i_requests_free(&g->r);
    trace_close(g->t);
}

static void run(PipeSummary *s, Rig *g, const char *policy, uint32_t gpus, uint32_t gpn, PipeMode mode) {
    PipeConfig c;
    pipe_config_init(&c);
    c.pipe = &g->p;
    c.calib = &g->c;
    c.policy = policy_find(policy);
    cr_assert_not_null(c.policy, "%s", policy);
    c.mode = mode;
    c.regroup = 1;
    cr_assert_eq(cluster_init(&c.cluster, gpus, gpn, 1), OS_OK, "%s", os_last_error());
    cr_assert_eq(pipe_run(s, &c, g->t, &g->r), OS_OK, "%s: %s", policy, os_last_error());
}

static double oracle_total(const PipeSummary *s) {
    double o = 0;
    for (uint32_t i = 0; i < s->n_stages; i++) o += s->st[i].oracle_s;
    return o;
}

/* CPDM's generation is uniform (768^2, 50 steps, CFG 9, 9 images, 77-token prompts): every
 * policy ties with none and with the oracle within 0.1%, and post-balancing's own cost (its
 * planning charge and the lengths all-gather) shows as a loss, never as a win. */
Test(pipeline_cpdm, generation_ties_and_the_balancer_is_a_loss) {
    Rig g;
    rig_open(&g, cpdm_trace("cpdm_tie.h5", 2100, 4), "t2i");
    PipeSummary none, s;
    run(&none, &g, "none", 4, 8, PIPE_INFER);
    double orc = oracle_total(&none);
    cr_assert(fabs(none.total_s / orc - 1) < 1e-9, "none is already at the floor: %.9g vs %.9g", none.total_s, orc);
    cr_assert_eq(none.st[0].images, 18900);
    for (uint32_t i = 0; i < policy_count(); i++) {
        const Policy *pol = policy_at(i);
        run(&s, &g, pol->name, 4, 8, PIPE_INFER);
        cr_assert(fabs(s.total_s / none.total_s - 1) < 1e-3, "%s: %.6f s vs none %.6f s", pol->name, s.total_s, none.total_s);
        cr_assert(fabs(s.total_s / orc - 1) < 1e-3, "%s vs the oracle", pol->name);
        cr_assert(s.total_s >= none.total_s - 1e-9, "%s wins where there is nothing to win", pol->name);
        if (pol->kind == POLICY_POST) {
            double own = s.st[0].balancer_s + s.st[0].lengths_s;
            cr_assert_gt(own, 0, "%s charges nothing", pol->name);
            cr_assert_gt(s.total_s, none.total_s, "%s: its own cost must show as a loss", pol->name);
            cr_assert_eq(s.st[0].moved, 0, "%s moves requests of a balanced stage", pol->name);
        }
    }
    rig_close(&g);
}

/* Interrogation's chain length varies (8-32): post-balancing beats none on that stage, and
 * sits near the oracle; generation, uniform, stays tied. 20 GPUs: 105 anchors each. */
Test(pipeline_cpdm, interrogation_margin) {
    Rig g;
    rig_open(&g, cpdm_trace("cpdm_int.h5", 2100, 20), "cpdm");
    PipeSummary none, post;
    run(&none, &g, "none", 20, 4, PIPE_INFER);
    run(&post, &g, "post", 20, 4, PIPE_INFER);
    const PipeStageSum *ni = &none.st[1], *pi = &post.st[1];
    cr_assert_str_eq(ni->name, "interrogate");
    cr_assert(pi->span_s < 0.98 * ni->span_s, "post %.1f s vs none %.1f s", pi->span_s, ni->span_s);
    cr_assert(pi->compute_max_s < 1.01 * pi->oracle_s, "post %.3f vs oracle %.3f", pi->compute_max_s, pi->oracle_s);
    cr_assert(ni->imbalance > 1.02, "none's interrogation imbalance %.4f", ni->imbalance);
    cr_assert(fabs(post.st[2].compute_max_s / none.st[2].compute_max_s - 1) < 1e-3, "generation ties");
    cr_assert_lt(post.total_s, none.total_s);
    rig_close(&g);
}

/* Conservation and invariants on a mixed trace: every request once per stage, the same total
 * work under every policy, the oracle below every policy, post well ahead of none. */
Test(pipeline_mixed, conservation_and_margin) {
    const char *p = th_tmp("mixed.h5");
    GenConfig gc = {"t2i-mixed", 3, 6, 64, 8, 0, "test"};
    cr_assert_eq(gen_t2i_write(p, &gc), OS_OK, "%s", os_last_error());
    Rig g;
    rig_open(&g, p, "t2i");
    uint64_t images = 0;
    for (uint64_t i = 0; i < g.r.n; i++) images += g.r.rows[i].images;
    PipeSummary base, s;
    run(&base, &g, "none", 8, 8, PIPE_INFER);
    for (uint32_t i = 0; i < policy_count(); i++) {
        const Policy *pol = policy_at(i);
        run(&s, &g, pol->name, 8, 8, PIPE_INFER);
        for (uint32_t k = 0; k < s.n_stages; k++) {
            cr_assert_eq(s.st[k].requests, 6 * 64, "%s %s", pol->name, s.st[k].name);
            cr_assert_eq(s.st[k].images, images);
            cr_assert(fabs(s.st[k].busy_gpu_s / base.st[k].busy_gpu_s - 1) < 1e-9, "%s: the same work", pol->name);
            cr_assert(s.st[k].compute_max_s >= s.st[k].oracle_s * (1 - 1e-12), "%s below the oracle", pol->name);
            cr_assert(s.st[k].compute_mean_s <= s.st[k].compute_max_s * (1 + 1e-12));
        }
        cr_assert(s.total_s >= oracle_total(&s) * (1 - 1e-12));
    }
    run(&s, &g, "post", 8, 8, PIPE_INFER);
    cr_assert(s.total_s < 0.9 * base.total_s, "post %.2f s vs none %.2f s", s.total_s, base.total_s);
    cr_assert_gt(s.st[0].moved, 0);
    rig_close(&g);
}

/* Streaming stages never wait longer than barriers when nothing moves (policy none). */
Test(pipeline_mixed, stream_no_slower_than_barrier) {
    const char *p = th_tmp("mixed_s.h5");
    GenConfig gc = {"t2i-mixed", 5, 2, 64, 8, 0, "test"};
    cr_assert_eq(gen_t2i_write(p, &gc), OS_OK, "%s", os_last_error());
    Rig g;
    rig_open(&g, p, "t2i");
    PipeSummary bar, str;
    run(&bar, &g, "none", 8, 8, PIPE_INFER);
    cr_assert_eq(pipe_parse(&g.p, "[stage generate]\nbatch = 9\n[stage decode]\nsync = stream\nbatch = 9\n", "s.pipe"), OS_OK,
                 "%s", os_last_error());
    run(&str, &g, "none", 8, 8, PIPE_INFER);
    cr_assert(str.total_s <= bar.total_s * (1 + 1e-12), "stream %.4f vs barrier %.4f", str.total_s, bar.total_s);
    cr_assert(str.total_s < bar.total_s, "ranks that finish generating early decode early");
    rig_close(&g);
}

/* Fine-tuning: the denoiser trains (forward + backward, a gradient all-reduce, AdamW), the
 * decode stage is skipped; SD 1.4 at 512^2 from cpdm-unlearn whatever the trace says. */
Test(pipeline_cpdm, finetune) {
    Rig g;
    rig_open(&g, cpdm_trace("cpdm_ft.h5", 100, 4), "cpdm-unlearn");
    g.p.st[0].images = 1; /* one training image per anchor */
    PipeSummary inf, ft;
    run(&ft, &g, "none", 4, 8, PIPE_FINETUNE);
    run(&inf, &g, "none", 4, 8, PIPE_INFER);
    cr_assert_eq(ft.st[0].role, ROLE_TRAIN);
    cr_assert_eq(ft.st[1].role, ROLE_SKIPPED);
    cr_assert_eq(ft.st[1].requests, 0);
    cr_assert_eq(ft.st[0].requests, 2100);
    cr_assert_gt(ft.st[0].grad_sync_s, 0);
    cr_assert_gt(ft.st[0].optimizer_s, 0);
    /* the training step runs through the replay's step program: DDP's buckets overlap the
     * backward, so the exposed sync is less than one whole all-reduce of the gradients, and the
     * stage ends no earlier than its slowest rank's compute plus the optimizer step */
    Cluster cl;
    cr_assert_eq(cluster_init(&cl, 4, 8, 1), OS_OK);
    double whole = net_allreduce_ring(&cl, (double)dm_params(g.p.st[0].model) * 4.0);
    double per_step = ft.st[0].grad_sync_s / (double)ft.steps;
    cr_assert(ft.steps > 0 && per_step < whole, "exposed sync %g s per step against a whole all-reduce %g s", per_step, whole);
    cr_assert(ft.st[0].span_s >= ft.st[0].compute_max_s + ft.st[0].optimizer_s - 1e-9, "span %g, compute %g + optimizer %g",
              ft.st[0].span_s, ft.st[0].compute_max_s, ft.st[0].optimizer_s);
    /* one training step per image (3 passes' FLOPs) against 50 sampling steps x CFG 2 */
    double r = ft.st[0].model_flops / inf.st[0].model_flops;
    cr_assert(r > 0.02 && r < 0.04, "training/sampling FLOPs %.4f (expected ~3/100)", r);
    rig_close(&g);
}

/* Bad request fields: one error naming the trace, the row and the field. */
Test(pipeline_trace, request_errors_name_row_and_field) {
    T2iRequests r;
    t2i_requests_init(&r);
    uint8_t m, c;
    cr_assert_eq(t2i_requests_name(&r, 0, "sd21-768", &m), OS_OK);
    cr_assert_eq(t2i_requests_name(&r, 1, "style", &c), OS_OK);
    T2iRequest rows[3] = {{m, c, 768, 768, 9, 50, 16, 9.0f}, {m, c, 768, 768, 9, 50, 16, 9.0f}, {m, c, 768, 768, 9, 50, 16, 9.0f}};
    r.rows = rows;
    r.n = 3;
    cr_assert_eq(t2i_requests_check(&r, "x.h5"), OS_OK);
    struct {
        T2iRequest bad;
        const char *want;
    } cases[] = {
        {{m, c, 768, 768, 0, 50, 16, 9.0f}, "x.h5: /requests[2].images: 0 images"},
        {{m, c, 768, 768, 9, 0, 16, 9.0f}, "x.h5: /requests[2].steps: 0 steps"},
        {{m, c, 768, 768, 9, 50, 16, 0.5f}, "x.h5: /requests[2].cfg: guidance scale 0.5 is below 1"},
        {{m, c, 770, 768, 9, 50, 16, 9.0f}, "x.h5: /requests[2].width: 770x768"},
        {{m, c, 768, 0, 9, 50, 16, 9.0f}, "x.h5: /requests[2].height: 768x0"},
        {{m, c, 768, 768, 9, 50, 40, 9.0f}, "x.h5: /requests[2].iters: 40 iterations"},
        {{5, c, 768, 768, 9, 50, 16, 9.0f}, "x.h5: /requests[2].model: index 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rows[2] = cases[i].bad;
        os_clear_error();
        cr_assert_eq(t2i_requests_check(&r, "x.h5"), OS_ERR_FORMAT, "case %zu accepted", i);
        cr_assert(strstr(os_last_error(), cases[i].want), "want '%s' in: %s", cases[i].want, os_last_error());
    }
    /* the model's own downsampling: 8-aligned but not a multiple of 64 for SD 2.1's UNet */
    rows[2] = (T2iRequest){m, c, 776, 768, 9, 50, 16, 9.0f};
    os_clear_error();
    cr_assert_eq(t2i_requests_check(&r, "x.h5"), OS_OK);
    Pipeline p;
    cr_assert_eq(pipe_load(&p, "t2i"), OS_OK);
    ReqFields f;
    cr_assert_eq(stage_resolve(&f, &p.st[0], &r, 2, "x.h5"), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "x.h5: /requests[2].width: 776x768 is not a multiple of 64"), "%s", os_last_error());
    /* an unknown model name in the trace */
    snprintf(r.models[0], sizeof r.models[0], "sd15");
    os_clear_error();
    cr_assert_eq(stage_resolve(&f, &p.st[0], &r, 0, "x.h5"), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "x.h5: /requests[0].model: 'sd15' is not a denoiser preset"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "did you mean 'sd14'"), "%s", os_last_error());
    os_clear_error();
}

/* The machinery without convolutions: a DiT denoiser on a trace without request tables (every
 * request takes the stage's defaults: 256^2, 50 steps, guidance 7.5, one image). */
Test(pipeline_trace, dit_without_request_tables) {
    ThEx ex[8];
    for (int i = 0; i < 8; i++) ex[i] = (ThEx){77, 0, 0, 0, 0};
    const char *p = th_write_trace("plain.h5", ex, 8, 4, 2);
    cr_assert_not_null(p, "%s", os_last_error());
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, p), OS_OK, "%s", os_last_error());
    T2iRequests r;
    int present = 1;
    cr_assert_eq(t2i_requests_load(&r, p, trace_n_examples(t), &present), OS_OK, "%s", os_last_error());
    cr_assert_eq(present, 0);
    Calib c;
    calib_default_h100(&c);
    Pipeline pl;
    cr_assert_eq(pipe_parse(&pl, "[stage generate]\nmodel = dit-xl2\n[stage decode]\n", "dit.pipe"), OS_OK, "%s",
                 os_last_error());
    PipeConfig cfg;
    pipe_config_init(&cfg);
    cfg.pipe = &pl;
    cfg.calib = &c;
    cr_assert_eq(cluster_init(&cfg.cluster, 4, 8, 1), OS_OK);
    PipeSummary s;
    cr_assert_eq(pipe_run(&s, &cfg, t, NULL), OS_OK, "%s", os_last_error());
    cr_assert_eq(s.st[0].requests, 16);
    cr_assert_eq(s.st[0].images, 16);
    /* 16 images x 50 steps x 2 (guidance) x 118.6 GMAC x 2 FLOP, no text encoder (class labels) */
    double want = 16.0 * 50 * 2 * 118.6e9 * 2;
    cr_assert(fabs(s.st[0].model_flops / want - 1) < 0.01, "%.4g vs %.4g", s.st[0].model_flops, want);
    cr_assert(s.total_s > 0 && isfinite(s.total_s));
    t2i_requests_free(&r);
    trace_close(t);
}

/* The command: one error line naming the pipeline file's line for a cycle, exit 1; a CSV with
 * one row per (policy, stage). */
Test(pipeline_cli, errors_and_csv) {
    const char *tr = cpdm_trace("cli.h5", 2100, 4);
    const char *pf = th_tmp("cyc.pipe");
    FILE *fp = fopen(pf, "w");
    cr_assert_not_null(fp);
    fputs("[stage generate]\nafter = decode\n[stage decode]\n", fp);
    fclose(fp);
    char args[2048], *out = NULL;
    snprintf(args, sizeof args, "pipeline %s --pipeline %s", tr, pf);
    cr_assert_eq(th_run(&out, args), 1, "%s", out);
    cr_assert(strstr(out, "orchsim: error: ") && strstr(out, "line 2: stage \"generate\": key \"after\"") &&
                  strstr(out, "cycle"),
              "%s", out);
    free(out);
    const char *csv = th_tmp("p.csv");
    snprintf(args, sizeof args, "pipeline %s --pipeline t2i --policy none,post --csv %s", tr, csv);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    fp = fopen(csv, "r");
    cr_assert_not_null(fp);
    char line[4096];
    int rows = 0, header = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#') continue;
        if (!header) {
            cr_assert(strstr(line, "pipeline,policy,stage,kind,role,gpus,requests,images,time_s"), "%s", line);
            header = 1;
            continue;
        }
        rows++;
    }
    fclose(fp);
    cr_assert_eq(rows, 4, "2 policies x 2 stages");
    /* a pipeline file's free-text name (commas, quotes) stays one CSV cell */
    pf = th_tmp("named.pipe");
    fp = fopen(pf, "w");
    cr_assert_not_null(fp);
    fputs("name = gen, then \"decode\"\n[stage generate]\nkind = generate\nmodel = sd14\n[stage decode]\nkind = decode\n"
          "after = generate\n", fp);
    fclose(fp);
    snprintf(args, sizeof args, "pipeline %s --pipeline %s --policy none --csv %s", tr, pf, csv);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, csv), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_n_rows(t), 2u);
    cr_assert_str_eq(csv_str(t, 0, 0), "gen, then \"decode\"");
    cr_assert_str_eq(csv_str(t, 0, 1), "none");
    csv_destroy(t);
}
