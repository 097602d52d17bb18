/* stage.c — stage kinds, the pipeline file format, built-in pipelines, request fields.
 * See stage.h; the costs are scost.c.
 *
 * Pipeline file (plain text; '#' starts a comment; sim/diffusion/README.md has the full table):
 *   name = cpdm
 *   [stage caption]            one section per stage; its name is its kind unless `kind` says
 *   model = blip-large
 *   [stage interrogate]
 *   after = caption            predecessors, comma-separated ("none" = a source); default: the
 *                              section before (a chain)
 *   sync = barrier             or stream
 *   model = openclip-h-text    ... kind-specific keys: image_model, text_model, cnn_model,
 *                              batch, images, steps, cfg, width, height, iterations,
 *                              candidates, trace_fields (use | ignore)
 * Every error names the file, the line, the stage and the key. */
#include "sim/diffusion/stage.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char *const KIND_NAMES[STG_N_KINDS] = {"caption", "interrogate", "generate", "decode", "score"};

const char *stage_kind_name(StageKind k) { return (unsigned)k < STG_N_KINDS ? KIND_NAMES[k] : "?"; }

/* ---- built-ins (the same parser reads them) ---------------------------------------------- */

typedef struct {
    const char *name, *text;
} BuiltinPipe;

static const BuiltinPipe BUILTINS[] = {
    /* CPDM.md "The pipeline": BLIP-large caption; CLIP Interrogator "best" mode with OpenCLIP
     * ViT-H/14 (one image embedding, then a flavour chain over the top 2,048 flavours: each
     * iteration encodes every remaining candidate prompt in one batch); SD 2.1-768, DDIM 50
     * steps, guidance 9, 9 images per prompt; the KL-f8 decode; CLIP ViT-L/14 + InceptionV3
     * scores of each (anchor, generated) pair. The refinement step is an external service:
     * nothing to simulate. */
    {"cpdm", "name = cpdm\n"
             "[stage caption]\nmodel = blip-large\n"
             "[stage interrogate]\nmodel = openclip-h-text\nimage_model = openclip-vit-h14\ncandidates = 2048\n"
             "iterations = 16\nbatch = 2048\n"
             "[stage generate]\nmodel = sd21-768\nimages = 9\nsteps = 50\ncfg = 9\nwidth = 768\nheight = 768\nbatch = 9\n"
             "[stage decode]\nmodel = kl-f8\nbatch = 9\n"
             "[stage score]\nmodel = clip-vit-l14\ncnn_model = inception-v3\nbatch = 10\n"},
    /* generation alone (a text-to-image service: t2i-mixed) */
    {"t2i", "name = t2i\n"
            "[stage generate]\nmodel = sd21-768\nbatch = 9\n"
            "[stage decode]\nmodel = kl-f8\nbatch = 9\n"},
    /* CPDM's unlearning workload (CPDM.md "Unlearn"): the illustration category's SD 1.4
     * fine-tuned on the illustrator's work, 512^2, guidance 3; with --mode finetune the generate
     * stage trains (gradient ascent costs what descent costs), else it regenerates. */
    {"cpdm-unlearn", "name = cpdm-unlearn\n"
                     "[stage generate]\nmodel = sd14\nwidth = 512\nheight = 512\ncfg = 3\nimages = 9\nsteps = 50\n"
                     "batch = 9\ntrace_fields = ignore\n"
                     "[stage decode]\nmodel = kl-f8\nbatch = 9\n"},
};

uint32_t pipe_builtin_count(void) { return (uint32_t)OS_ARRAY_LEN(BUILTINS); }
const char *pipe_builtin_name(uint32_t i) { return i < pipe_builtin_count() ? BUILTINS[i].name : NULL; }
const char *pipe_builtin_text(uint32_t i) { return i < pipe_builtin_count() ? BUILTINS[i].text : NULL; }

/* ---- keys ---------------------------------------------------------------------------- */

enum { K_CAP = 1 << STG_CAPTION, K_INT = 1 << STG_INTERROGATE, K_GEN = 1 << STG_GENERATE, K_DEC = 1 << STG_DECODE,
       K_SCO = 1 << STG_SCORE, K_ALL = 31 };
typedef enum { SK_KIND, SK_MODEL, SK_AFTER, SK_SYNC, SK_BATCH, SK_IMAGE_MODEL, SK_TEXT_MODEL, SK_CNN_MODEL, SK_IMAGES,
               SK_STEPS, SK_CFG, SK_WIDTH, SK_HEIGHT, SK_ITERS, SK_CANDIDATES, SK_FIELDS, SK_N } StageKey;
static const struct {
    const char *name;
    unsigned kinds;
} KEYS[SK_N] = {
    {"kind", K_ALL},          {"model", K_ALL},      {"after", K_ALL},        {"sync", K_ALL},
    {"batch", K_ALL},         {"image_model", K_INT}, {"text_model", K_GEN},  {"cnn_model", K_SCO},
    {"images", K_GEN},        {"steps", K_GEN},      {"cfg", K_GEN},          {"width", K_GEN | K_DEC},
    {"height", K_GEN | K_DEC}, {"iterations", K_INT}, {"candidates", K_INT},  {"trace_fields", K_ALL},
};

typedef struct {
    int line[SK_N];           /* where each key was given (0 = not) */
    char after[256];          /* the raw list, resolved once every stage is known */
    int ignore_trace;
} StageRaw;

/* which model kinds each stage kind's `model` accepts */
static int model_fits(StageKind k, const DiffModel *m) {
    switch (k) {
    case STG_CAPTION: return m->kind == DM_CAPTION;
    case STG_INTERROGATE: return m->kind == DM_TEXT;
    case STG_GENERATE: return dm_is_denoiser(m);
    case STG_DECODE: return m->kind == DM_VAE;
    case STG_SCORE: return m->kind == DM_VIT;
    default: return 0;
    }
}
static const char *model_want(StageKind k) {
    static const char *const W[STG_N_KINDS] = {"a captioner (blip-large)", "a text tower (openclip-h-text)",
                                               "a denoiser (unet or dit)", "a VAE decoder (kl-f8)",
                                               "an image tower (clip-vit-l14)"};
    return (unsigned)k < STG_N_KINDS ? W[k] : "?";
}

static void stage_defaults(Stage *s) {
    static const uint32_t BATCH[STG_N_KINDS] = {1, 2048, 9, 9, 10};
    s->batch = BATCH[s->kind];
    s->images = 1, s->steps = 50, s->iters = 16, s->candidates = 2048, s->cfg = 7.5;
    s->width = s->height = 0; /* the denoiser's native resolution */
    s->sync = SYNC_BARRIER;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct {
    const char *where;
    int line;
    const char *stage;
    const char *key;
    char buf[320];
} Ctx;

static const char *at(Ctx *c) {
    if (c->stage && c->key) snprintf(c->buf, sizeof c->buf, "line %d: stage \"%s\": key \"%s\"", c->line, c->stage, c->key);
    else if (c->stage) snprintf(c->buf, sizeof c->buf, "line %d: stage \"%s\"", c->line, c->stage);
    else snprintf(c->buf, sizeof c->buf, "line %d", c->line);
    return c->buf;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static OsStatus get_model(const DiffModel **out, Ctx *c, const char *v) {
    OsStatus st = OS_OK;
    const DiffModel *m = dm_find(v);
    if (!m) {
        const char *sug = dm_suggest(v);
        char hint[96];
        if (sug) snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
        else snprintf(hint, sizeof hint, "orchsim pipeline --list-models");
        OS_FAIL(OS_ERR_FORMAT, c->where, at(c), hint, "unknown model '%.60s'", v);
    }
    *out = m;
fail:
    return st;
}

static OsStatus get_u32(uint32_t *out, Ctx *c, const char *v, uint64_t lo, uint64_t hi, const char *why_lo) {
    OsStatus st = OS_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-')
        OS_FAIL(OS_ERR_FORMAT, c->where, at(c), NULL, "'%.40s' is not a whole number", v);
    if (x < lo) OS_FAIL(OS_ERR_FORMAT, c->where, at(c), why_lo, "%llu is below %llu", x, (unsigned long long)lo);
    if (x > hi) OS_FAIL(OS_ERR_FORMAT, c->where, at(c), NULL, "%llu is above %llu", x, (unsigned long long)hi);
    *out = (uint32_t)x;
fail:
    return st;
}

static OsStatus set_key(Pipeline *p, Stage *s, StageRaw *raw, Ctx *c, StageKey k, const char *v) {
    OsStatus st = OS_OK;
    switch (k) {
    case SK_KIND: break; /* handled when the section's first key is read */
    case SK_MODEL: OS_CHECK(get_model(&s->model, c, v)); break;
    case SK_IMAGE_MODEL:
    case SK_TEXT_MODEL:
    case SK_CNN_MODEL: {
        const DiffModel *m = NULL;
        OS_CHECK(get_model(&m, c, v));
        DmKind want = k == SK_IMAGE_MODEL ? DM_VIT : k == SK_TEXT_MODEL ? DM_TEXT : DM_CNN;
        if (m->kind != want)
            OS_FAIL(OS_ERR_FORMAT, c->where, at(c), NULL, "'%s' is a %s model, this key takes a %s", m->name,
                    dm_kind_name(m->kind), dm_kind_name(want));
        s->aux = m;
        break;
    }
    case SK_AFTER:
        if (strlen(v) >= sizeof raw->after) OS_FAIL(OS_ERR_FORMAT, c->where, at(c), NULL, "list too long");
        snprintf(raw->after, sizeof raw->after, "%s", v);
        break;
    case SK_SYNC:
        if (!strcmp(v, "barrier")) s->sync = SYNC_BARRIER;
        else if (!strcmp(v, "stream")) s->sync = SYNC_STREAM;
        else OS_FAIL(OS_ERR_FORMAT, c->where, at(c), "barrier or stream", "'%.40s'", v);
        break;
    case SK_BATCH: OS_CHECK(get_u32(&s->batch, c, v, 1, 1 << 20, "a GPU runs at least one request per call")); break;
    case SK_IMAGES: OS_CHECK(get_u32(&s->images, c, v, 1, 65535, "every prompt generates at least one image")); break;
    case SK_STEPS: OS_CHECK(get_u32(&s->steps, c, v, 1, 65535, "a sampler takes at least one denoising step")); break;
    case SK_ITERS: OS_CHECK(get_u32(&s->iters, c, v, T2I_MIN_ITERS, T2I_MAX_ITERS, "the chain runs 8 to 32 iterations")); break;
    case SK_CANDIDATES: OS_CHECK(get_u32(&s->candidates, c, v, T2I_MAX_ITERS, 1 << 20, "at least one per iteration")); break;
    case SK_WIDTH: OS_CHECK(get_u32(&s->width, c, v, 8, 65528, "pixels, a multiple of 8")); break;
    case SK_HEIGHT: OS_CHECK(get_u32(&s->height, c, v, 8, 65528, "pixels, a multiple of 8")); break;
    case SK_CFG: {
        char *end = NULL;
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x)) OS_FAIL(OS_ERR_FORMAT, c->where, at(c), NULL, "'%.40s' is not a number", v);
        if (x < 1)
            OS_FAIL(OS_ERR_FORMAT, c->where, at(c), "1 = no guidance (one UNet pass per step), > 1 = two passes",
                    "guidance scale %g is below 1", x);
        s->cfg = x;
        break;
    }
    case SK_FIELDS:
        if (!strcmp(v, "use")) raw->ignore_trace = 0;
        else if (!strcmp(v, "ignore")) raw->ignore_trace = 1;
        else OS_FAIL(OS_ERR_FORMAT, c->where, at(c), "use (the trace's request fields win) or ignore", "'%.40s'", v);
        break;
    default: break;
    }
    (void)p;
fail:
    return st;
}

static int find_stage(const Pipeline *p, const char *name) {
    for (uint32_t i = 0; i < p->n; i++)
        if (!strcmp(p->st[i].name, name)) return (int)i;
    return -1;
}

/* Resolve `after` lists into indices (default: the previous stage). */
static OsStatus resolve_after(Pipeline *p, StageRaw *raw, const char *where) {
    OsStatus st = OS_OK;
    Ctx c = {.where = where};
    for (uint32_t i = 0; i < p->n; i++) {
        Stage *s = &p->st[i];
        c.line = raw[i].line[SK_AFTER] ? raw[i].line[SK_AFTER] : s->line;
        c.stage = s->name;
        c.key = "after";
        s->n_after = 0;
        if (!raw[i].line[SK_AFTER]) {
            if (i > 0) s->after[s->n_after++] = i - 1;
            continue;
        }
        if (!strcmp(trim(raw[i].after), "none")) continue;
        char *save = NULL;
        for (char *t = strtok_r(raw[i].after, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            t = trim(t);
            int j = find_stage(p, t);
            if (j < 0) {
                const char *best = NULL;
                int bd = 3;
                for (uint32_t q = 0; q < p->n; q++) {
                    int d = os_edit_distance(t, p->st[q].name);
                    if (d < bd) bd = d, best = p->st[q].name;
                }
                char hint[96];
                if (best) snprintf(hint, sizeof hint, "did you mean '%s'?", best);
                else snprintf(hint, sizeof hint, "name a [stage ...] section of this file");
                OS_FAIL(OS_ERR_FORMAT, where, at(&c), hint, "no stage named '%.40s'", t);
            }
            for (uint32_t q = 0; q < s->n_after; q++)
                if (s->after[q] == (uint32_t)j) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "'%s' given twice", t);
            s->after[s->n_after++] = (uint32_t)j;
        }
    }
fail:
    return st;
}

/* Kahn's order; a cycle is reported with its stages, at the line of its first stage's `after`. */
static OsStatus order_stages(Pipeline *p, const StageRaw *raw, const char *where) {
    OsStatus st = OS_OK;
    uint32_t indeg[PIPE_MAX_STAGES] = {0}, done = 0;
    int placed[PIPE_MAX_STAGES] = {0};
    for (uint32_t i = 0; i < p->n; i++) indeg[i] = p->st[i].n_after;
    while (done < p->n) {
        uint32_t pick = p->n;
        for (uint32_t i = 0; i < p->n && pick == p->n; i++)
            if (!placed[i] && indeg[i] == 0) pick = i;
        if (pick == p->n) break;
        placed[pick] = 1;
        p->order[done++] = pick;
        for (uint32_t i = 0; i < p->n; i++)
            for (uint32_t q = 0; q < p->st[i].n_after; q++)
                if (p->st[i].after[q] == pick) indeg[i]--;
    }
    if (done == p->n) return OS_OK;
    /* walk predecessors from an unplaced stage until one repeats: that loop is a cycle */
    uint32_t path[PIPE_MAX_STAGES + 1], n = 0, cur = 0;
    int seen[PIPE_MAX_STAGES];
    for (uint32_t i = 0; i < p->n; i++) seen[i] = -1;
    while (placed[cur]) cur++;
    while (seen[cur] < 0) {
        seen[cur] = (int)n;
        path[n++] = cur;
        uint32_t nx = cur;
        for (uint32_t q = 0; q < p->st[cur].n_after; q++)
            if (!placed[p->st[cur].after[q]]) {
                nx = p->st[cur].after[q];
                break;
            }
        cur = nx;
    }
    char cyc[512] = "";
    size_t k = 0;
    for (uint32_t i = (uint32_t)seen[cur]; i < n && k + 80 < sizeof cyc; i++)
        k += (size_t)snprintf(cyc + k, sizeof cyc - k, "%s <- ", p->st[path[i]].name);
    snprintf(cyc + k, sizeof cyc - k, "%s", p->st[cur].name);
    Ctx c = {.where = where, .line = raw[cur].line[SK_AFTER] ? raw[cur].line[SK_AFTER] : p->st[cur].line,
             .stage = p->st[cur].name, .key = "after"};
    OS_FAIL(OS_ERR_FORMAT, where, at(&c), "a pipeline runs each stage once, after its inputs: break the loop",
            "the stages form a cycle: %s (each waits for the one after it)", cyc);
fail:
    return st;
}

/* Checks that need the whole section: the model, and a resolution the model can run. */
static OsStatus finish_stage(Stage *s, const StageRaw *raw, const char *where) {
    OsStatus st = OS_OK;
    Ctx c = {.where = where, .line = raw->line[SK_MODEL] ? raw->line[SK_MODEL] : s->line, .stage = s->name, .key = "model"};
    if (!s->model) {
        static const char *const DEF[STG_N_KINDS] = {"blip-large", "openclip-h-text", "sd21-768", "kl-f8", "clip-vit-l14"};
        s->model = dm_find(DEF[s->kind]);
    }
    if (!model_fits(s->kind, s->model))
        OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "a %s stage needs %s; '%s' is a %s", stage_kind_name(s->kind),
                model_want(s->kind), s->model->name, dm_kind_name(s->model->kind));
    if (s->kind == STG_INTERROGATE && !s->aux) s->aux = dm_find("openclip-vit-h14");
    if (s->kind == STG_GENERATE && !s->aux && s->model->text_encoder) s->aux = dm_find(s->model->text_encoder);
    if (s->kind == STG_INTERROGATE && s->candidates < s->iters) {
        c.key = "candidates";
        c.line = raw->line[SK_CANDIDATES];
        OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "%u candidates cannot last %u iterations", s->candidates, s->iters);
    }
    if (s->kind == STG_GENERATE) {
        uint32_t q = dm_res_multiple(s->model), w = s->width ? s->width : s->model->native_res;
        uint32_t h = s->height ? s->height : s->model->native_res;
        int bad_w = w % q != 0;
        if (bad_w || h % q) {
            c.key = bad_w ? "width" : "height";
            c.line = raw->line[bad_w ? SK_WIDTH : SK_HEIGHT] ? raw->line[bad_w ? SK_WIDTH : SK_HEIGHT] : s->line;
            OS_FAIL(OS_ERR_FORMAT, where, at(&c), "a multiple of the VAE factor 8 times the model's downsampling",
                    "%u is not a multiple of %u (%s: %u x %u)", bad_w ? w : h, q, s->model->name, s->model->latent_factor,
                    q / s->model->latent_factor);
        }
    }
    if (s->kind == STG_DECODE && ((s->width % 8) || (s->height % 8))) {
        c.key = s->width % 8 ? "width" : "height";
        c.line = raw->line[s->width % 8 ? SK_WIDTH : SK_HEIGHT];
        OS_FAIL(OS_ERR_FORMAT, where, at(&c), "a multiple of the VAE factor 8", "%u is not a multiple of 8",
                s->width % 8 ? s->width : s->height);
    }
fail:
    return st;
}

OsStatus pipe_parse(Pipeline *p, const char *text, const char *where) {
    OsStatus st = OS_OK;
    StageRaw raw[PIPE_MAX_STAGES];
    char *buf = NULL;
    memset(p, 0, sizeof *p);
    memset(raw, 0, sizeof raw);
    snprintf(p->where, sizeof p->where, "%s", where);
    Ctx c = {.where = where};
    size_t len = strlen(text);
    buf = malloc(len + 1);
    ALLOC_CHECK(buf);
    memcpy(buf, text, len + 1);
    Stage *s = NULL;
    int name_line = 0, pending_kind = 0;
    for (char *ln = buf, *next; ln; ln = next) {
        char *nl = strchr(ln, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        c.line++;
        char *hash = strchr(ln, '#');
        if (hash) *hash = '\0';
        char *l = trim(ln);
        if (!*l) continue;
        c.key = NULL;
        if (*l == '[') {
            char *e = strchr(l, ']');
            if (!e || trim(e + 1)[0]) OS_FAIL(OS_ERR_FORMAT, where, at(&c), "[stage NAME]", "bad section header");
            *e = '\0';
            char *in = trim(l + 1);
            if (strncmp(in, "stage", 5) || !isspace((unsigned char)in[5]))
                OS_FAIL(OS_ERR_FORMAT, where, at(&c), "sections are [stage NAME]", "unknown section '%.40s'", in);
            char *nm = trim(in + 5);
            if (!*nm || strlen(nm) >= PIPE_NAME_LEN || strpbrk(nm, " \t,"))
                OS_FAIL(OS_ERR_FORMAT, where, at(&c), "a name without spaces or commas, < 32 characters", "bad stage name");
            if (find_stage(p, nm) >= 0) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "stage '%s' defined twice", nm);
            if (p->n >= PIPE_MAX_STAGES) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "more than %d stages", PIPE_MAX_STAGES);
            s = &p->st[p->n++];
            snprintf(s->name, sizeof s->name, "%s", nm);
            s->line = c.line;
            s->kind = STG_N_KINDS;
            for (int k = 0; k < STG_N_KINDS; k++)
                if (!strcmp(nm, KIND_NAMES[k])) s->kind = (StageKind)k;
            pending_kind = s->kind == STG_N_KINDS;
            if (!pending_kind) stage_defaults(s);
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) OS_FAIL(OS_ERR_FORMAT, where, at(&c), "lines are key = value or [stage NAME]", "cannot read '%.40s'", l);
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        c.key = key;
        if (!s) {
            if (strcmp(key, "name")) OS_FAIL(OS_ERR_FORMAT, where, at(&c), "only `name` comes before the first [stage]", "unknown key");
            if (name_line) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "already given on line %d", name_line);
            if (strlen(val) >= sizeof p->name) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "longer than 63 characters");
            snprintf(p->name, sizeof p->name, "%s", val);
            name_line = c.line;
            continue;
        }
        c.stage = s->name;
        int k = -1;
        for (int q = 0; q < SK_N; q++)
            if (!strcmp(key, KEYS[q].name)) k = q;
        if (k < 0) {
            const char *best = NULL;
            int bd = 3;
            for (int q = 0; q < SK_N; q++) {
                int d = os_edit_distance(key, KEYS[q].name);
                if (d < bd) bd = d, best = KEYS[q].name;
            }
            char hint[96];
            if (best) snprintf(hint, sizeof hint, "did you mean \"%s\"?", best);
            else snprintf(hint, sizeof hint, "see sim/diffusion/README.md");
            OS_FAIL(OS_ERR_FORMAT, where, at(&c), hint, "unknown key");
        }
        StageRaw *rw = &raw[s - p->st];
        if (rw->line[k]) OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "already given on line %d", rw->line[k]);
        rw->line[k] = c.line;
        if (k == SK_KIND) {
            int kind = -1;
            for (int q = 0; q < STG_N_KINDS; q++)
                if (!strcmp(val, KIND_NAMES[q])) kind = q;
            if (kind < 0)
                OS_FAIL(OS_ERR_FORMAT, where, at(&c), "caption, interrogate, generate, decode or score",
                        "unknown stage kind '%.40s'", val);
            if (!pending_kind && (int)s->kind != kind)
                OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "stage '%s' is a %s stage by its name", s->name, KIND_NAMES[s->kind]);
            s->kind = (StageKind)kind;
            if (pending_kind) stage_defaults(s);
            pending_kind = 0;
            continue;
        }
        if (pending_kind) {
            c.key = NULL;
            OS_FAIL(OS_ERR_FORMAT, where, at(&c), "name it after its kind, or give `kind = ...` as its first key",
                    "unknown stage '%s': not a stage kind (caption, interrogate, generate, decode, score)", s->name);
        }
        if (!(KEYS[k].kinds & (1u << s->kind)))
            OS_FAIL(OS_ERR_FORMAT, where, at(&c), NULL, "does not apply to a %s stage", KIND_NAMES[s->kind]);
        OS_CHECK(set_key(p, s, rw, &c, (StageKey)k, val));
    }
    if (pending_kind) {
        c.line = s->line, c.stage = s->name, c.key = NULL;
        OS_FAIL(OS_ERR_FORMAT, where, at(&c), "name it after its kind, or give `kind = ...`",
                "unknown stage '%s': not a stage kind (caption, interrogate, generate, decode, score)", s->name);
    }
    if (p->n == 0) OS_FAIL(OS_ERR_FORMAT, where, NULL, "add a [stage generate] section", "no stages");
    if (!p->name[0]) snprintf(p->name, sizeof p->name, "%s", where);
    for (uint32_t i = 0; i < p->n; i++) {
        OS_CHECK(finish_stage(&p->st[i], &raw[i], where));
        p->st[i].trace_fields = !raw[i].ignore_trace;
    }
    /* decode and score stages see the images of the (first) generate stage */
    const Stage *g = NULL;
    for (uint32_t i = 0; i < p->n && !g; i++)
        if (p->st[i].kind == STG_GENERATE) g = &p->st[i];
    for (uint32_t i = 0; i < p->n; i++) {
        Stage *t = &p->st[i];
        if (t->kind == STG_GENERATE) {
            if (!t->width) t->width = t->height = t->model->native_res;
            continue;
        }
        if (!t->width) t->width = g ? g->width : 768, t->height = g ? g->height : 768;
        if (g) t->images = g->images, t->steps = g->steps, t->cfg = g->cfg;
        else t->images = 9;
    }
    OS_CHECK(resolve_after(p, raw, where));
    OS_CHECK(order_stages(p, raw, where));
fail:
    free(buf);
    return st;
}

OsStatus pipe_load(Pipeline *p, const char *name_or_path) {
    OsStatus st = OS_OK;
    char *text = NULL;
    FILE *fp = NULL;
    for (uint32_t i = 0; i < pipe_builtin_count(); i++)
        if (!strcmp(name_or_path, BUILTINS[i].name)) {
            char where[96];
            snprintf(where, sizeof where, "builtin:%s", BUILTINS[i].name);
            return pipe_parse(p, BUILTINS[i].text, where);
        }
    fp = fopen(name_or_path, "r");
    if (!fp)
        OS_FAIL(OS_ERR_IO, name_or_path, NULL, "a built-in name (cpdm, t2i, cpdm-unlearn) or a pipeline file",
                "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, n = 0;
    text = malloc(cap + 1);
    ALLOC_CHECK(text);
    n = fread(text, 1, cap, fp);
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, name_or_path, NULL, NULL, "read error");
    if (n == cap) OS_FAIL(OS_ERR_FORMAT, name_or_path, NULL, NULL, "larger than %zu bytes", cap);
    if (memchr(text, '\0', n)) OS_FAIL(OS_ERR_FORMAT, name_or_path, NULL, "a text file", "contains a NUL byte");
    text[n] = '\0';
    OS_CHECK(pipe_parse(p, text, name_or_path));
fail:
    if (fp) fclose(fp);
    free(text);
    return st;
}

/* ---- request fields ------------------------------------------------------------------ */

OsStatus stage_resolve(ReqFields *f, const Stage *s, const T2iRequests *r, uint64_t row, const char *trace) {
    OsStatus st = OS_OK;
    const T2iRequest *q = r && r->n && s->trace_fields && row < r->n ? &r->rows[row] : NULL;
    char fld[96];
    f->model = s->kind == STG_GENERATE ? s->model : NULL;
    f->width = s->width, f->height = s->height, f->images = s->images, f->steps = s->steps;
    f->iters = s->iters, f->cfg = s->cfg;
    if (q) {
        const char *mn = r->models[q->model];
        const DiffModel *m = dm_find(mn);
        snprintf(fld, sizeof fld, "/requests[%llu].model", (unsigned long long)row);
        if (!m || !dm_is_denoiser(m)) {
            const char *sug = dm_suggest(mn);
            char hint[96];
            snprintf(hint, sizeof hint, sug ? "did you mean '%s'?" : "a denoiser preset: sd14, sd21-768, dit-xl2", sug);
            OS_FAIL(OS_ERR_FORMAT, trace, fld, hint, "'%s' is not a denoiser preset", mn);
        }
        if (s->kind == STG_GENERATE) f->model = m;
        if (q->width) f->width = q->width, f->height = q->height;
        f->images = q->images, f->steps = q->steps, f->cfg = q->cfg;
        if (q->iters) f->iters = q->iters;
        uint32_t mq = dm_res_multiple(m);
        if (f->width % mq || f->height % mq) {
            snprintf(fld, sizeof fld, "/requests[%llu].%s", (unsigned long long)row, f->width % mq ? "width" : "height");
            OS_FAIL(OS_ERR_FORMAT, trace, fld, "a multiple of the VAE factor 8 times the UNet's downsampling",
                    "%ux%u is not a multiple of %u (%s: %u x %u)", f->width, f->height, mq, m->name, m->latent_factor,
                    mq / m->latent_factor);
        }
    }
fail:
    return st;
}
