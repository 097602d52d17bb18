/* gen_t2i.c — the text-to-image request profiles and their writer. See gen_t2i.h.
 *
 * cpdm (../shared/CPDM.md "The dataset", "The pipeline"): four categories in the order the
 *   benchmark builds them, each anchor one prompt of 9 images, SD 2.1-768 at 768x768, DDIM 50
 *   steps, guidance 9 [code: sd_inference_v2_1.py], and an interrogation chain length from
 *   gen_t2i_iters (labelled synthetic). CPDM.md also says the illustration category was made
 *   with an SD 1.4 fine-tuned on the illustrator's work (512^2, guidance 3): that is the
 *   unlearning workload (pipeline `cpdm-unlearn`), not the dataset's generation, which the
 *   issue and the paper describe as uniform; generation is therefore identical for every anchor.
 * t2i-mixed (labelled synthetic, derived): a text-to-image service mixing SD 1.4 at 512^2 and
 *   SD 2.1 at 768^2 half and half, 1..9 images per prompt uniformly, 20..50 steps uniformly,
 *   guidance 7.5 (diffusers' default); no interrogation. The UNet's cost varies 2.7x with the
 *   resolution alone and up to 9 x 2.5 with images and steps, the text encoder's not at all. */
#include "traces/gen_t2i.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "traces/trace.h"

#define T2I_PROMPT_TOKENS 77 /* SD's CLIP tokenizer pads or truncates every prompt to 77 */

typedef struct {
    const char *name;
    uint32_t anchors; /* 0 = any number */
} T2iCategory;

typedef struct {
    const char *name;
    const char *summary;
    const T2iCategory *cats;
    int n_cats;
    int mixed; /* 1: t2i-mixed's draws, 0: cpdm's fixed settings */
} T2iProfile;

/* CPDM.md "The dataset": ~1,500 WikiArt paintings, 200 Wikipedia portraits, 200 cartoon
 * characters ("artistic creation figures"), 200 licensed illustrations. */
static const T2iCategory CPDM_CATS[] = {
    {"style", 1500}, {"portraits", 200}, {"cartoons", 200}, {"illustrations", 200}};
static const T2iCategory MIXED_CATS[] = {{"service", 0}};

static const T2iProfile PROFILES[] = {
    {"cpdm", "CPDM benchmark: 2,100 anchors in 4 categories, 9 images each, SD 2.1-768 768^2, 50 steps, CFG 9, "
             "interrogation 8-32 iterations (synthetic)", CPDM_CATS, 4, 0},
    {"t2i-mixed", "synthetic T2I service: SD 1.4 512^2 / SD 2.1 768^2, 1-9 images, 20-50 steps, CFG 7.5",
     MIXED_CATS, 1, 1},
};

size_t gen_t2i_count(void) { return OS_ARRAY_LEN(PROFILES); }
const char *gen_t2i_name(size_t i) { return i < gen_t2i_count() ? PROFILES[i].name : NULL; }
const char *gen_t2i_summary(size_t i) { return i < gen_t2i_count() ? PROFILES[i].summary : NULL; }

static const T2iProfile *find(const char *name) {
    for (size_t i = 0; name && i < gen_t2i_count(); i++)
        if (!strcmp(PROFILES[i].name, name)) return &PROFILES[i];
    return NULL;
}

int gen_t2i_is_profile(const char *profile) { return find(profile) != NULL; }

uint64_t gen_t2i_fixed_count(const char *profile) {
    const T2iProfile *p = find(profile);
    uint64_t n = 0;
    for (int c = 0; p && c < p->n_cats; c++) {
        if (!p->cats[c].anchors) return 0;
        n += p->cats[c].anchors;
    }
    return n;
}

uint32_t gen_t2i_iters(double u) {
    const double q = 8.0 / 9.0; /* each iteration past the 8th continues with this probability */
    if (!(u >= 0) || u >= 1) u = 0;
    double x = floor(log(1.0 - u) / log(q));
    double it = T2I_MIN_ITERS + x;
    return it > T2I_MAX_ITERS ? T2I_MAX_ITERS : (uint32_t)it;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

OsStatus gen_t2i_requests(T2iRequests *r, const char *profile, uint64_t seed, uint64_t n) {
    OsStatus st = OS_OK;
    gsl_rng *g = NULL;
    const T2iProfile *p = find(profile);
    t2i_requests_init(r);
    if (!p) OS_FAIL(OS_ERR_ARG, "gen", "--profile", NULL, "'%s' is not a text-to-image profile", profile);
    uint64_t fixed = gen_t2i_fixed_count(profile);
    if (n == 0) n = fixed;
    if (fixed && n != fixed)
        OS_FAIL(OS_ERR_ARG, "gen", "--examples", "omit --steps/--examples: the profile fixes its size",
                "profile %s has %llu anchors, not %llu", profile, (unsigned long long)fixed, (unsigned long long)n);
    if (n == 0 || n > T2I_MAX_ROWS)
        OS_FAIL(OS_ERR_ARG, "gen", "--examples", NULL, "%llu requests (1..%u)", (unsigned long long)n, T2I_MAX_ROWS);
    g = gsl_rng_alloc(gsl_rng_mt19937);
    ALLOC_CHECK(g);
    gsl_rng_set(g, (unsigned long)(splitmix64(seed) & 0xffffffffu));
    r->rows = calloc(n, sizeof *r->rows);
    ALLOC_CHECK(r->rows);
    r->n = n;
    uint8_t m14 = 0, m21 = 0, cat = 0;
    if (p->mixed) OS_CHECK(t2i_requests_name(r, 0, "sd14", &m14));
    OS_CHECK(t2i_requests_name(r, 0, "sd21-768", &m21));
    uint64_t i = 0;
    for (int c = 0; c < p->n_cats; c++) {
        OS_CHECK(t2i_requests_name(r, 1, p->cats[c].name, &cat));
        uint64_t k = p->cats[c].anchors ? p->cats[c].anchors : n;
        for (uint64_t j = 0; j < k && i < n; j++, i++) {
            T2iRequest *q = &r->rows[i];
            q->category = cat;
            if (p->mixed) {
                int sd14 = gsl_rng_uniform(g) < 0.5;
                q->model = sd14 ? m14 : m21;
                q->width = q->height = sd14 ? 512 : 768;
                q->images = (uint16_t)(1 + gsl_rng_uniform_int(g, 9));
                q->steps = (uint16_t)(20 + gsl_rng_uniform_int(g, 31));
                q->cfg = 7.5f;
                q->iters = 0;
            } else {
                q->model = m21;
                q->width = q->height = 768;
                q->images = 9;
                q->steps = 50;
                q->cfg = 9.0f;
                q->iters = (uint16_t)gen_t2i_iters(gsl_rng_uniform(g));
            }
        }
    }
    OS_CHECK(t2i_requests_check(r, profile));
fail:
    gsl_rng_free(g);
    if (st != OS_OK) t2i_requests_free(r);
    return st;
}

OsStatus gen_t2i_write(const char *path, const GenConfig *cfg) {
    OsStatus st = OS_OK;
    T2iRequests r;
    TraceWriter *w = NULL;
    TraceStep s;
    OsOutFile of;
    int open = 0;
    t2i_requests_init(&r);
    trace_step_init(&s);
    memset(&of, 0, sizeof of);
    uint64_t fixed = gen_t2i_fixed_count(cfg->profile);
    uint64_t B = cfg->global_batch, D = cfg->dp, n = cfg->steps * B;
    if (fixed && (cfg->steps == 0 || n == fixed)) {
        if (B == 0 || fixed % B)
            OS_FAIL(OS_ERR_ARG, "gen", "--global-batch", "e.g. -b 2100, 700, 420, 300 or 100 (and --dp dividing it)",
                    "profile %s has %llu anchors: a global batch of %llu does not divide them", cfg->profile,
                    (unsigned long long)fixed, (unsigned long long)B);
        n = fixed;
    }
    if (B == 0 || D == 0 || B % D)
        OS_FAIL(OS_ERR_ARG, "gen", "--dp", "make --global-batch a multiple of --dp", "B = %llu, D = %llu",
                (unsigned long long)B, (unsigned long long)D);
    OS_CHECK(gen_t2i_requests(&r, cfg->profile, cfg->seed, n));
    uint32_t n_mod = 0;
    const TraceModality *mods = trace_std_modalities(&n_mod);
    TraceProvenance prov;
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "gen profile=%s seed=%llu steps=%llu global_batch=%llu dp=%llu",
             cfg->profile, (unsigned long long)cfg->seed, (unsigned long long)(n / B), (unsigned long long)B,
             (unsigned long long)D);
    snprintf(prov.created_by, sizeof prov.created_by, "%s", cfg->created_by ? cfg->created_by : "orchsim");
    OS_CHECK(os_outfile_open(&of, path, 0));
    open = 1;
    OS_CHECK(trace_writer_create(&w, of.tmp, mods, n_mod, &prov, cfg->chunk_rows));
    for (uint64_t k = 0; k < n / B; k++) {
        trace_step_clear(&s);
        s.dp = (uint32_t)D;
        s.index = k;
        for (uint64_t j = 0; j < B; j++) OS_CHECK(trace_step_push(&s, T2I_PROMPT_TOKENS, k * B + j, NULL, 0));
        OS_CHECK(trace_writer_add_step(w, &s));
    }
    st = trace_writer_close(w);
    w = NULL;
    OS_CHECK(st);
    struct stat sb;
    if (stat(of.tmp, &sb) != 0 || sb.st_size == 0)
        OS_FAIL(OS_ERR_INTERNAL, path, NULL, "call gen_t2i_write outside os_outputs_hold",
                "the trace was not in place when its request tables were to be added");
    OS_CHECK(t2i_requests_attach(of.tmp, &r));
    open = 0;
    OS_CHECK(os_outfile_commit(&of));
fail:
    if (w) trace_writer_abort(w);
    if (open) os_outfile_abort(&of);
    trace_step_free(&s);
    t2i_requests_free(&r);
    return st;
}
