/* scost.c — what one request costs in one stage (stage.h StageCoster).
 * A request's work in each stage, forward only (CPDM.md "The pipeline"):
 *  - caption: one image through the captioner (its ViT, then the beams' decoding);
 *  - interrogate: one image embedding with the image tower, then `iters` flavour-chain
 *    iterations; iteration i encodes the candidates left (candidates - i: the chosen one is
 *    removed, clip-interrogator's chain) in one text-tower batch, plus the one similarity
 *    check of the extended prompt (batch 1). Ranking the cached label embeddings is a
 *    1 x 1024 x ~100k product: < 0.01% of an iteration, not priced;
 *  - generate: the prompt and, with guidance > 1, the empty prompt through the text encoder
 *    (once per request: its images share the embedding), then `steps` UNet passes over the
 *    request's images in calls of at most `batch` images, each image twice with guidance
 *    (conditional and unconditional in one batch);
 *  - decode: every image through the VAE decoder, `batch` per call;
 *  - score: the request's images and its anchor through the image tower and the CNN.
 * Requests are not batched with each other: a rank's time is the sum of its requests' times,
 * which is what the balancers are given. Fine-tuning (train = 1): each image is one training
 * example at one noise level: the denoiser's forward and backward per call of `batch` images,
 * the text encoder's forward once per request (frozen); latents are taken as precomputed (the
 * VAE encoder is not modelled). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/diffusion/dops.h"
#include "sim/diffusion/stage.h"

#define SC_MAX_LISTS 64
#define SC_MAX_TIMES 2048
#define SC_MAX_CHAINS 8

typedef struct {
    const DiffModel *m;
    uint32_t w, h;
    DopList ops;
    double macs; /* per sample */
} ScList;

typedef struct {
    const DiffModel *m;
    uint32_t w, h, batch;
    int train;
    DopTime t;
} ScTime;

typedef struct {
    const Stage *s;
    double prefix_s[T2I_MAX_ITERS + 1];    /* seconds of the first i iterations */
    double prefix_macs[T2I_MAX_ITERS + 1];
    double prefix_exec[T2I_MAX_ITERS + 1];
} ScChain;

struct StageCoster {
    const Calib *calib; /* borrowed */
    uint32_t n_lists, n_times, n_chains;
    ScList lists[SC_MAX_LISTS];
    ScTime times[SC_MAX_TIMES];
    ScChain chains[SC_MAX_CHAINS];
};

OsStatus stage_coster_create(StageCoster **out, const Calib *calib) {
    OsStatus st = OS_OK;
    StageCoster *c = calloc(1, sizeof *c);
    ALLOC_CHECK(c);
    c->calib = calib;
    *out = c;
fail:
    return st;
}

void stage_coster_destroy(StageCoster *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->n_lists; i++) dops_free(&c->lists[i].ops);
    free(c);
}

static OsStatus get_list(ScList **out, StageCoster *c, const DiffModel *m, uint32_t w, uint32_t h) {
    OsStatus st = OS_OK;
    if (!dm_is_denoiser(m) && m->kind != DM_VAE) w = h = 0;
    for (uint32_t i = 0; i < c->n_lists; i++)
        if (c->lists[i].m == m && c->lists[i].w == w && c->lists[i].h == h) {
            *out = &c->lists[i];
            return OS_OK;
        }
    if (c->n_lists == SC_MAX_LISTS) { /* a cache, not a limit: drop the oldest */
        dops_free(&c->lists[0].ops);
        memmove(&c->lists[0], &c->lists[1], (SC_MAX_LISTS - 1) * sizeof c->lists[0]);
        c->n_lists--;
    }
    ScList *l = &c->lists[c->n_lists];
    memset(l, 0, sizeof *l);
    dops_init(&l->ops);
    OS_CHECK(dops_build(&l->ops, m, w, h));
    l->m = m, l->w = w, l->h = h;
    l->macs = dops_macs(&l->ops, NULL);
    c->n_lists++;
    *out = l;
fail:
    return st;
}

/* Time of `batch` samples of m at w x h together. */
static OsStatus get_time(DopTime *out, double *macs, StageCoster *c, const DiffModel *m, uint32_t w, uint32_t h,
                         uint32_t batch, int train) {
    OsStatus st = OS_OK;
    ScList *l = NULL;
    OS_CHECK(get_list(&l, c, m, w, h));
    if (macs) *macs = l->macs;
    for (uint32_t i = 0; i < c->n_times; i++) {
        const ScTime *t = &c->times[i];
        if (t->m == m && t->w == l->w && t->h == l->h && t->batch == batch && t->train == train) {
            *out = t->t;
            return OS_OK;
        }
    }
    DopTime t;
    dops_time(&t, &l->ops, c->calib, batch, train);
    if (c->n_times == SC_MAX_TIMES) c->n_times = 0; /* a cache: start over */
    c->times[c->n_times++] = (ScTime){m, l->w, l->h, batch, train, t};
    *out = t;
fail:
    return st;
}

/* n samples in calls of at most `batch`: seconds and executed FLOPs; *macs per sample. */
static OsStatus batched(double *sec, double *exec, double *macs, StageCoster *c, const DiffModel *m, uint32_t w,
                        uint32_t h, uint64_t n, uint32_t batch, uint32_t mult, int train, double *bwd) {
    OsStatus st = OS_OK;
    DopTime t;
    *sec = *exec = 0;
    if (bwd) *bwd = 0;
    uint64_t full = n / batch, rest = n % batch;
    if (full) {
        OS_CHECK(get_time(&t, macs, c, m, w, h, batch * mult, train));
        *sec += (double)full * (t.fwd_s + t.bwd_s);
        *exec += (double)full * t.flops;
        if (bwd) *bwd += (double)full * t.bwd_s;
    }
    if (rest) {
        OS_CHECK(get_time(&t, macs, c, m, w, h, (uint32_t)rest * mult, train));
        *sec += t.fwd_s + t.bwd_s;
        *exec += t.flops;
        if (bwd) *bwd += t.bwd_s;
    }
fail:
    return st;
}

static OsStatus get_chain(ScChain **out, StageCoster *c, const Stage *s) {
    OsStatus st = OS_OK;
    for (uint32_t i = 0; i < c->n_chains; i++)
        if (c->chains[i].s == s) {
            *out = &c->chains[i];
            return OS_OK;
        }
    if (c->n_chains == SC_MAX_CHAINS) c->n_chains = 0;
    ScChain *ch = &c->chains[c->n_chains];
    memset(ch, 0, sizeof *ch);
    ch->s = s;
    for (uint32_t i = 0; i < T2I_MAX_ITERS; i++) {
        DopTime a, b;
        double macs = 0;
        uint32_t cand = s->candidates - i;
        OS_CHECK(get_time(&a, &macs, c, s->model, 0, 0, cand, 0)); /* rank_top over the candidates */
        OS_CHECK(get_time(&b, NULL, c, s->model, 0, 0, 1, 0));     /* the similarity check */
        ch->prefix_s[i + 1] = ch->prefix_s[i] + a.fwd_s + b.fwd_s;
        ch->prefix_macs[i + 1] = ch->prefix_macs[i] + (cand + 1.0) * macs;
        ch->prefix_exec[i + 1] = ch->prefix_exec[i] + a.flops + b.flops;
    }
    c->n_chains++;
    *out = ch;
fail:
    return st;
}

static uint32_t sat32(double x) { return x >= 2147483647.0 ? 2147483647u : x <= 0 ? 0u : (uint32_t)x; }

OsStatus stage_request_cost(ReqCost *out, StageCoster *c, const Stage *s, const ReqFields *f, int train) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    double sec = 0, exec = 0, macs = 0, m1 = 0, bsec = 0;
    double lat = (double)(f->width / 8) * (f->height / 8); /* latent positions (KL-f8) */
    switch (s->kind) {
    case STG_CAPTION: {
        OS_CHECK(batched(&sec, &exec, &m1, c, s->model, 0, 0, 1, 1, 1, 0, NULL));
        macs = m1;
        const DmCaption *cp = &s->model->u.cap;
        out->tokens = sat32(dm_tf_tokens(&cp->vision) + (double)cp->new_tokens * cp->beams);
        out->in_bytes = 3ull * cp->vision.image * cp->vision.image;
        break;
    }
    case STG_INTERROGATE: {
        ScChain *ch = NULL;
        uint32_t it = f->iters ? f->iters : s->iters;
        if (it > T2I_MAX_ITERS) it = T2I_MAX_ITERS;
        OS_CHECK(batched(&sec, &exec, &m1, c, s->aux, 0, 0, 1, 1, 1, 0, NULL));
        OS_CHECK(get_chain(&ch, c, s));
        sec += ch->prefix_s[it];
        exec += ch->prefix_exec[it];
        macs = m1 + ch->prefix_macs[it];
        double cand = 0;
        for (uint32_t i = 0; i < it; i++) cand += s->candidates - i;
        out->tokens = sat32(cand * dm_tf_tokens(&s->model->u.tf));
        out->in_bytes = 3ull * s->aux->u.tf.image * s->aux->u.tf.image + 4ull * 77;
        break;
    }
    case STG_GENERATE: {
        const DiffModel *den = f->model ? f->model : s->model;
        const DiffModel *te = s->aux && s->aux->kind == DM_TEXT ? s->aux : den->text_encoder ? dm_find(den->text_encoder) : NULL;
        if (den != s->model && den->text_encoder) te = dm_find(den->text_encoder); /* the request's own model's */
        uint32_t cm = !train && f->cfg > 1.0 ? 2 : 1;
        double tsec = 0, texec = 0, tm = 0;
        if (te) {
            OS_CHECK(batched(&tsec, &texec, &tm, c, te, 0, 0, 1, 1, cm, 0, NULL));
            macs += cm * tm;
        }
        OS_CHECK(batched(&sec, &exec, &m1, c, den, f->width, f->height, f->images, s->batch, cm, train, &bsec));
        double passes = train ? 1.0 : (double)f->steps;
        sec = sec * passes + tsec;
        bsec *= passes;
        exec = exec * passes + texec;
        macs += (double)f->images * cm * passes * m1 * (train ? 3.0 : 1.0);
        out->tokens = sat32((double)f->images * passes * cm * lat);
        out->in_bytes = 4ull * 77; /* the prompt's token ids */
        out->images = f->images;
        break;
    }
    case STG_DECODE:
        OS_CHECK(batched(&sec, &exec, &m1, c, s->model, f->width, f->height, f->images, s->batch, 1, 0, NULL));
        macs = (double)f->images * m1;
        out->tokens = sat32((double)f->images * lat);
        out->in_bytes = (uint64_t)(f->images * 4.0 * lat * 2.0); /* fp16 latents */
        out->images = f->images;
        break;
    case STG_SCORE: {
        uint64_t n = (uint64_t)f->images + 1; /* the generated images and their anchor */
        OS_CHECK(batched(&sec, &exec, &m1, c, s->model, 0, 0, n, s->batch, 1, 0, NULL));
        macs = (double)n * m1;
        if (s->aux) {
            double s2 = 0, e2 = 0, m2 = 0;
            OS_CHECK(batched(&s2, &e2, &m2, c, s->aux, 0, 0, n, s->batch, 1, 0, NULL));
            sec += s2, exec += e2, macs += (double)n * m2;
        }
        out->tokens = sat32((double)n * dm_tf_tokens(&s->model->u.tf));
        out->in_bytes = (uint64_t)f->images * 3ull * f->width * f->height; /* 8-bit RGB */
        out->images = f->images;
        break;
    }
    default: OS_FAIL(OS_ERR_ARG, s->name, "kind", NULL, "unknown stage kind %d", (int)s->kind);
    }
    out->seconds = sec;
    out->bwd_seconds = train ? bsec : 0;
    out->model_flops = 2.0 * macs;
    out->exec_flops = exec;
fail:
    return st;
}
