/* gen.c — see gen.h. Sampling: per example, pick a mixture kind (gsl_ran_discrete), draw
 * z0 ~ N(0,1) for the text and, per item, z = rho*z0 + sqrt(1-rho^2)*e (a Gaussian copula:
 * correlated normals pushed through each marginal), then map z through the item's size model.
 * The RNG call sequence is fixed, so (profile, seed) gives the same examples everywhere. */
#include "traces/gen.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/gen_profile.h"

struct Gen {
    const GenProfile *p;
    gsl_rng *rng;
    gsl_ran_discrete_t *kinds;
    double kind_w[16];
    uint32_t last_kind;
    TraceItem items[4096]; /* scratch for one example's items (GenCount.max is small) */
};

static uint32_t clamp_len(double v, uint32_t lo, uint32_t hi) {
    if (!(v >= lo)) return lo; /* also catches NaN */
    if (v >= hi) return hi;
    return (uint32_t)v;
}

uint32_t gen_size_lognormal(const GenSize *p, double z) {
    return clamp_len(floor(p->median * exp(p->sigma * z) + 0.5), p->lo, p->hi);
}

uint32_t gen_size_duration(const GenSize *p, double z) {
    double seconds = p->median * exp(p->sigma * z);
    return clamp_len(ceil(seconds * p->per_unit), p->lo, p->hi);
}

/* Tiles 1..12 by inverting the tile-weight CDF at u = Phi(z) (so z keeps its correlation). */
uint32_t gen_size_tiles(const GenSize *p, double z) {
    double u = gsl_cdf_ugaussian_P(z), tot = 0.0, acc = 0.0;
    for (int i = 0; i < GEN_MAX_TILES; i++) tot += p->tile_w[i];
    int tiles = 1;
    for (int i = 0; i < GEN_MAX_TILES; i++) {
        acc += p->tile_w[i] / tot;
        tiles = i + 1;
        if (u <= acc) break;
    }
    /* skip trailing zero-weight tile counts that rounding could land on */
    while (tiles > 1 && p->tile_w[tiles - 1] == 0.0) tiles--;
    return (uint32_t)tiles * (uint32_t)p->per_unit;
}

uint32_t gen_size_video(const GenSize *p, double z) {
    double seconds = p->median * exp(p->sigma * z);
    double f = ceil(p->fps * seconds);
    uint32_t frames = f < 1.0 ? 1u : (f > p->max_frames ? p->max_frames : (uint32_t)f);
    return frames * (uint32_t)p->per_unit;
}

size_t gen_profile_count(void) { return (size_t)GEN_N_PROFILES; }
const char *gen_profile_name(size_t i) { return i < (size_t)GEN_N_PROFILES ? GEN_PROFILES[i].name : NULL; }
const char *gen_profile_summary(size_t i) {
    return i < (size_t)GEN_N_PROFILES ? GEN_PROFILES[i].summary : NULL;
}


OsStatus gen_create(Gen **out, const char *profile, uint64_t seed) {
    OsStatus st = OS_OK;
    Gen *g = NULL;
    *out = NULL;
    const GenProfile *p = NULL;
    for (int i = 0; i < GEN_N_PROFILES; i++)
        if (!strcmp(GEN_PROFILES[i].name, profile)) p = &GEN_PROFILES[i];
    if (!p) {
        int best = 0, bd = 1 << 30; /* the closest name by edit distance */
        for (int i = 0; i < GEN_N_PROFILES; i++) {
            int d = os_edit_distance(profile, GEN_PROFILES[i].name);
            if (d < bd) bd = d, best = i;
        }
        char hint[96];
        snprintf(hint, sizeof hint, "did you mean '%s'? see --list-profiles", GEN_PROFILES[best].name);
        OS_FAIL(OS_ERR_ARG, "--profile", NULL, hint, "unknown profile '%s'", profile);
    }
    if (p->n_kinds < 1 || p->n_kinds > 16)
        OS_FAIL(OS_ERR_INTERNAL, p->name, NULL, NULL, "profile has %d kinds", p->n_kinds);
    g = calloc(1, sizeof *g);
    ALLOC_CHECK(g);
    g->p = p;
    g->rng = gsl_rng_alloc(gsl_rng_mt19937);
    ALLOC_CHECK(g->rng);
    /* mt19937 takes 32 bits and treats 0 as its default seed 4357: mix all 64 bits of the
     * user's seed (splitmix64 finaliser) so nearby seeds give unrelated streams. */
    uint64_t x = seed + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    unsigned long s32 = (unsigned long)(x & 0xffffffffu);
    gsl_rng_set(g->rng, s32 ? s32 : 1ul);
    double tot = 0.0;
    for (int k = 0; k < p->n_kinds; k++) tot += p->kinds[k].weight;
    for (int k = 0; k < p->n_kinds; k++) g->kind_w[k] = p->kinds[k].weight / tot;
    g->kinds = gsl_ran_discrete_preproc((size_t)p->n_kinds, g->kind_w);
    ALLOC_CHECK(g->kinds);
    *out = g;
    return OS_OK;
fail:
    gen_destroy(g);
    return st;
}

void gen_destroy(Gen *g) {
    if (!g) return;
    if (g->kinds) gsl_ran_discrete_free(g->kinds);
    if (g->rng) gsl_rng_free(g->rng);
    free(g);
}

const TraceModality *gen_modalities(const Gen *g, uint32_t *n) {
    (void)g; /* every profile uses the standard table so traces can be mixed and compared */
    return trace_std_modalities(n);
}

uint32_t gen_last_kind(const Gen *g) { return g->last_kind; }
uint32_t gen_kind_count(const Gen *g) { return (uint32_t)g->p->n_kinds; }
double gen_kind_weight(const Gen *g, uint32_t k) { return g->kind_w[k]; }
const char *gen_kind_name(const Gen *g, uint32_t k) { return g->p->kinds[k].name; }

static uint32_t draw_count(gsl_rng *r, const GenCount *c) {
    uint32_t n = c->min;
    if (c->mean_extra > 0.0) n += gsl_ran_geometric(r, 1.0 / (1.0 + c->mean_extra)) - 1u;
    return n > c->max ? c->max : n;
}

OsStatus gen_example(Gen *g, TraceStep *s, uint64_t id) {
    OsStatus st = OS_OK;
    size_t k = gsl_ran_discrete(g->rng, g->kinds);
    const GenKind *kind = &g->p->kinds[k];
    g->last_kind = (uint32_t)k;
    double z0 = gsl_ran_ugaussian(g->rng);
    const GenText *tx = &kind->text;
    uint32_t text = tx->offset + clamp_len(floor(tx->median * exp(tx->sigma * z0) + 0.5), tx->lo, tx->hi);
    uint32_t n = 0;
    for (int sl = 0; sl < kind->n_slots; sl++) {
        const GenSlot *slot = &kind->slot[sl];
        uint32_t c = draw_count(g->rng, &slot->count);
        double w = sqrt(1.0 - slot->rho * slot->rho);
        for (uint32_t i = 0; i < c; i++) {
            double z = slot->rho * z0 + w * gsl_ran_ugaussian(g->rng);
            uint32_t len = slot->size.fn(&slot->size, z);
            /* InternViT encodes each 448 px tile on its own (attention stays inside a tile,
             * REFERENCE.md §D.2), so a tiled image is one item per tile */
            uint32_t parts = slot->size.fn == gen_size_tiles ? len / (uint32_t)slot->size.per_unit : 1;
            if (n + parts > OS_ARRAY_LEN(g->items))
                OS_FAIL(OS_ERR_INTERNAL, g->p->name, kind->name, NULL, "more than %zu items in one example",
                        OS_ARRAY_LEN(g->items));
            for (uint32_t t = 0; t < parts; t++) {
                g->items[n].modality = slot->modality;
                g->items[n].length = len / parts;
                n++;
            }
        }
    }
    OS_CHECK(trace_step_push(s, text, id, g->items, n));
fail:
    return st;
}

OsStatus gen_write(const char *path, const GenConfig *cfg) {
    OsStatus st = OS_OK;
    Gen *g = NULL;
    TraceWriter *w = NULL;
    TraceStep step;
    TraceProvenance prov;
    OsProgress prog;
    trace_step_init(&step);
    if (cfg->steps < 1) OS_FAIL(OS_ERR_ARG, "--steps", NULL, NULL, "need at least one step");
    if (cfg->global_batch < 1 || cfg->dp < 1 || cfg->global_batch % cfg->dp)
        OS_FAIL(OS_ERR_ARG, "--global-batch", NULL, "make the global batch a multiple of --dp",
                "%u examples do not split over dp = %u", cfg->global_batch, cfg->dp);
    OS_CHECK(gen_create(&g, cfg->profile, cfg->seed));
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "gen profile=%s seed=%llu steps=%llu global_batch=%u dp=%u",
             cfg->profile, (unsigned long long)cfg->seed, (unsigned long long)cfg->steps, cfg->global_batch,
             cfg->dp);
    snprintf(prov.created_by, sizeof prov.created_by, "%s", cfg->created_by ? cfg->created_by : "orchsim");
    uint32_t nm = 0;
    const TraceModality *mods = gen_modalities(g, &nm);
    OS_CHECK(trace_writer_create(&w, path, mods, nm, &prov, cfg->chunk_rows));
    os_progress_init(&prog, "gen", cfg->steps);
    uint64_t id = 0;
    for (uint64_t s = 0; s < cfg->steps; s++) {
        trace_step_clear(&step);
        step.index = s;
        step.dp = cfg->dp;
        for (uint32_t e = 0; e < cfg->global_batch; e++) OS_CHECK(gen_example(g, &step, id++));
        OS_CHECK(trace_writer_add_step(w, &step));
        os_progress_update(&prog, s + 1);
    }
    os_progress_done(&prog);
    TraceWriter *wc = w;
    w = NULL;
    OS_CHECK(trace_writer_close(wc));
fail:
    trace_writer_abort(w);
    trace_step_free(&step);
    gen_destroy(g);
    return st;
}
