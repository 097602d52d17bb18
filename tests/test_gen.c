/* test_gen.c — traces/gen.h: each profile's statistics against its own parameters (mixture
 * weights, means, copula rho), determinism, and the `gen` command. */
#include <criterion/criterion.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "traces/gen.h"
#include "traces/trace.h"

#define N_DRAW 20000

/* Draw N_DRAW examples of a profile into one in-memory step. */
static Gen *draw(const char *profile, uint64_t seed, TraceStep *s, uint32_t *kinds) {
    Gen *g = NULL;
    cr_assert_eq(gen_create(&g, profile, seed), OS_OK, "%s", os_last_error());
    trace_step_init(s);
    for (uint64_t i = 0; i < N_DRAW; i++) {
        cr_assert_eq(gen_example(g, s, i), OS_OK);
        if (kinds) kinds[i] = gen_last_kind(g);
    }
    return g;
}

/* |share - w| within 4 binomial standard errors. */
static void expect_share(double share, double w, const char *what) {
    double se = sqrt(w * (1 - w) / N_DRAW);
    cr_assert(fabs(share - w) <= 4 * se + 1e-12, "%s: share %.4f, weight %.4f", what, share, w);
}

static uint64_t sum_mod(const TraceStep *s, uint32_t k, uint8_t m) {
    uint64_t n = 0;
    const TraceExample *e = &s->examples[k];
    for (uint32_t i = 0; i < e->n_items; i++)
        if (s->items[e->first_item + i].modality == m) n += s->items[e->first_item + i].length;
    return n;
}

Test(gen, registry_lists_the_required_profiles) {
    const char *need[] = {"vl-sft", "asr", "spoken-qa", "tri-modal-mix", "video"};
    for (size_t i = 0; i < 5; i++) {
        int found = 0;
        for (size_t p = 0; p < gen_profile_count(); p++) found |= !strcmp(gen_profile_name(p), need[i]);
        cr_assert(found, "profile %s missing", need[i]);
    }
    Gen *g = NULL;
    os_clear_error();
    cr_assert_eq(gen_create(&g, "vl-sf", 1), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "did you mean 'vl-sft'"), "%s", os_last_error());
}

Test(gen, vl_sft_matches_its_parameters) {
    TraceStep s;
    uint32_t *kinds = malloc(sizeof *kinds * N_DRAW);
    Gen *g = draw("vl-sft", 3, &s, kinds);
    uint32_t nk = gen_kind_count(g);
    uint32_t uratio[4];
    uint32_t nm;
    const TraceModality *mods = gen_modalities(g, &nm);
    for (uint32_t m = 0; m < nm; m++) uratio[m] = mods[m].default_ratio;
    double *S = malloc(sizeof *S * N_DRAW);
    uint64_t text_only = 0;
    for (uint32_t k = 0; k < N_DRAW; k++) {
        const TraceExample *e = &s.examples[k];
        text_only += e->n_items == 0;
        for (uint32_t i = 0; i < e->n_items; i++) {
            const TraceItem *it = &s.items[e->first_item + i];
            cr_assert_eq(it->modality, 1);
            /* 1024 patches per tile: 256 LLM tokens at ratio 4, as InternVL (not ceil(1025/4) = 257) */
            cr_assert_eq(it->length, 1024u, "not one InternViT tile of 1024 patches: %u", it->length);
        }
        S[k] = (double)trace_llm_tokens(&s, k, uratio);
    }
    {
        /* hand case: one tile (1024 patches) at the image ratio 4 is InternVL's 256 tokens */
        TraceStep one;
        trace_step_init(&one);
        TraceItem tile = {1024, 1};
        cr_assert_eq(trace_step_push(&one, 0, 0, &tile, 1), OS_OK);
        cr_assert_eq(trace_llm_tokens(&one, 0, uratio), 256u);
        trace_step_free(&one);
    }
    for (uint32_t k = 0; k < nk; k++) {
        uint64_t c = 0;
        for (uint32_t i = 0; i < N_DRAW; i++) c += kinds[i] == k;
        expect_share((double)c / N_DRAW, gen_kind_weight(g, k), gen_kind_name(g, k));
    }
    /* text-only share 12% (profiles.c), within the brief's 10-20% */
    expect_share((double)text_only / N_DRAW, 0.12, "text-only");
    /* OmniBal VLM SFT input size 1.4K +- 0.9K tokens (REFERENCE.md "LLaVA data") */
    double mean = gsl_stats_mean(S, 1, N_DRAW), sd = gsl_stats_sd(S, 1, N_DRAW);
    cr_assert(mean > 1200 && mean < 1600, "mean S %.0f", mean);
    cr_assert(sd > 600 && sd < 1300, "sd S %.0f", sd);
    free(S);
    free(kinds);
    trace_step_free(&s);
    gen_destroy(g);
}

Test(gen, asr_mean_and_rho) {
    TraceStep s;
    Gen *g = draw("asr", 5, &s, NULL);
    double *lt = malloc(sizeof *lt * N_DRAW), *la = malloc(sizeof *la * N_DRAW), *a = malloc(sizeof *a * N_DRAW);
    for (uint32_t k = 0; k < N_DRAW; k++) {
        cr_assert_eq(s.examples[k].n_items, 1u);
        uint32_t len = s.items[s.examples[k].first_item].length;
        cr_assert(len >= 1 && len <= 1500, "audio %u outside Whisper's 1..1500", len);
        a[k] = len;
        la[k] = log(len);
        lt[k] = log(s.examples[k].text - 8.0); /* minus the 8 prompt tokens */
    }
    /* LibriSpeech mean 7.18 s x 50 positions/s = 359 (REFERENCE.md §D.3); within 3% */
    double mean = gsl_stats_mean(a, 1, N_DRAW);
    cr_assert(fabs(mean - 359.0) < 0.03 * 359.0, "mean audio positions %.1f", mean);
    /* Gaussian copula rho 0.9 on the log scale (rounding/ceil blur it slightly) */
    double r = gsl_stats_correlation(lt, 1, la, 1, N_DRAW);
    cr_assert(fabs(r - 0.9) < 0.03, "log-correlation %.3f", r);
    free(lt);
    free(la);
    free(a);
    trace_step_free(&s);
    gen_destroy(g);
}

Test(gen, spoken_qa_uncorrelated) {
    TraceStep s;
    Gen *g = draw("spoken-qa", 6, &s, NULL);
    double *lt = malloc(sizeof *lt * N_DRAW), *la = malloc(sizeof *la * N_DRAW);
    for (uint32_t k = 0; k < N_DRAW; k++) {
        la[k] = log(s.items[s.examples[k].first_item].length);
        lt[k] = log(s.examples[k].text);
    }
    double r = gsl_stats_correlation(lt, 1, la, 1, N_DRAW);
    cr_assert(fabs(r) < 0.04, "rho 0 profile has correlation %.3f", r); /* 4/sqrt(N) ~ 0.03 */
    free(lt);
    free(la);
    trace_step_free(&s);
    gen_destroy(g);
}

Test(gen, tri_modal_mix_kinds_match_modalities) {
    TraceStep s;
    uint32_t *kinds = malloc(sizeof *kinds * N_DRAW);
    Gen *g = draw("tri-modal-mix", 7, &s, kinds);
    uint64_t combo[4] = {0}; /* bit0 image, bit1 audio */
    for (uint32_t k = 0; k < N_DRAW; k++) {
        int c = (sum_mod(&s, k, 1) > 0) | (sum_mod(&s, k, 2) > 0) << 1;
        combo[c]++;
        const char *kn = gen_kind_name(g, kinds[k]);
        int want = !strcmp(kn, "text-only") ? 0 : !strcmp(kn, "image-text") ? 1 : !strcmp(kn, "audio-text") ? 2 : 3;
        cr_assert_eq(c, want, "example %u of kind %s has modality set %d", k, kn, c);
    }
    /* weights 25/40/25/10 (profiles.c) */
    expect_share((double)combo[0] / N_DRAW, 0.25, "text-only");
    expect_share((double)combo[1] / N_DRAW, 0.40, "image-text");
    expect_share((double)combo[2] / N_DRAW, 0.25, "audio-text");
    expect_share((double)combo[3] / N_DRAW, 0.10, "image+audio-text");
    free(kinds);
    trace_step_free(&s);
    gen_destroy(g);
}

Test(gen, video_frames_follow_the_sampling_policy) {
    TraceStep s;
    Gen *g = draw("video", 8, &s, NULL);
    uint64_t capped = 0, n = 0;
    for (uint32_t k = 0; k < N_DRAW; k++) {
        uint64_t v = sum_mod(&s, k, 3);
        if (!v) continue;
        n++;
        cr_assert_eq(v % 256u, 0u);          /* whole frames of 256 patches */
        cr_assert(v / 256u >= 1 && v / 256u <= 32); /* 1 .. max_frames */
        capped += v == 32u * 256u;
    }
    expect_share((double)n / N_DRAW, 0.90, "video-text");
    /* P(duration > 32 s) with median 40 s, sigma 1: 1 - Phi(ln(32/40)) = 0.588 */
    double frac = (double)capped / (double)n;
    cr_assert(fabs(frac - 0.588) < 0.03, "capped fraction %.3f", frac);
    trace_step_free(&s);
    gen_destroy(g);
}

static long file_bytes(const char *p, char **buf) {
    FILE *f = fopen(p, "rb");
    cr_assert(f, "cannot open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *buf = malloc((size_t)n);
    cr_assert_eq(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return n;
}

Test(gen, same_seed_same_bytes_and_every_profile_validates) {
    for (size_t p = 0; p < gen_profile_count(); p++) {
        const char *a = th_tmp("ga.h5"), *b = th_tmp("gb.h5"), *c = th_tmp("gc.h5");
        GenConfig cfg = {gen_profile_name(p), 11, 3, 64, 8, 100, NULL};
        cr_assert_eq(gen_write(a, &cfg), OS_OK, "%s", os_last_error());
        cr_assert_eq(gen_write(b, &cfg), OS_OK);
        cfg.seed = 12;
        cr_assert_eq(gen_write(c, &cfg), OS_OK);
        char *ba, *bb, *bc;
        long na = file_bytes(a, &ba), nb = file_bytes(b, &bb), nc = file_bytes(c, &bc);
        cr_assert(na == nb && !memcmp(ba, bb, (size_t)na), "%s: same seed, different bytes", cfg.profile);
        cr_assert(na != nc || memcmp(ba, bc, (size_t)na), "%s: different seeds, same bytes", cfg.profile);
        free(ba);
        free(bb);
        free(bc);
        Trace *t = NULL;
        cr_assert_eq(trace_open(&t, a), OS_OK, "%s", os_last_error());
        cr_assert_eq(trace_n_steps(t), 3u);
        cr_assert_eq(trace_n_examples(t), 192u);
        cr_assert_eq(trace_validate(t), OS_OK, "%s", os_last_error());
        const TraceStep *s = NULL;
        cr_assert_eq(trace_read_step(t, 2, &s), OS_OK);
        cr_assert_eq(s->dp, 8u);
        cr_assert_eq(s->examples[0].id, 128u); /* ids count examples in drawn order */
        trace_close(t);
        remove(a);
        remove(b);
        remove(c);
    }
}

Test(gen, bad_config_leaves_no_file) {
    const char *a = th_tmp("gbad.h5");
    GenConfig cfg = {"asr", 1, 2, 10, 4, 0, NULL};
    os_clear_error();
    cr_assert_eq(gen_write(a, &cfg), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "dp = 4"), "%s", os_last_error());
    cr_assert(!th_exists(a));
}

Test(gen_cli, demo_command_and_list) {
    char *out = NULL;
    const char *p = th_tmp("demo.h5");
    char args[1200];
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 42 --steps 8 --global-batch 512 --dp 64 -o %s", p);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, p), OS_OK);
    cr_assert_eq(trace_n_examples(t), 8u * 512u);
    cr_assert(strstr(trace_provenance(t)->source, "profile=tri-modal-mix seed=42"));
    cr_assert(strstr(trace_provenance(t)->created_by, "orchsim"));
    trace_close(t);
    remove(p);
    rc = th_run(&out, "gen --list-profiles");
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "vl-sft") && strstr(out, "asr") && strstr(out, "spoken-qa") && strstr(out, "video"));
    free(out);
    snprintf(args, sizeof args, "gen --profile asr --examples 1000 --global-batch 512 --dp 8 -o %s", p);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "partial batch of 488"), "%s", out);
    cr_assert(!th_exists(p));
    free(out);
    snprintf(args, sizeof args, "gen --profile asr --steps 2 --global-batch 12 --dp 5 -o %s", p);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "orchsim: error:"), "%s", out);
    cr_assert(!th_exists(p));
    free(out);
}
