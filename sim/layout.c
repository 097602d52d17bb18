/* layout.c — see layout.h. */
#include "sim/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void layout_init(Layout *l) {
    memset(l, 0, sizeof *l);
    l->tp = l->pp = l->cp = l->vp = l->dp = 1;
    l->schedule = PP_1F1B;
    l->sp = 1;
    for (int e = 0; e < MODEL_MAX_ENC; e++) l->enc_vstage[e] = -1;
}

OsStatus layout_parse(Layout *l, const char *spec) {
    OsStatus st = OS_OK;
    char buf[256];
    if (strlen(spec) >= sizeof buf) OS_FAIL(OS_ERR_ARG, "--parallel", NULL, NULL, "too long");
    strcpy(buf, spec);
    int seen[4] = {0};
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) OS_FAIL(OS_ERR_ARG, "--parallel", tok, "write tp=8,pp=4,cp=1 (vp=2 for interleaving)", "not key=value");
        *eq = '\0';
        static const char *const KEYS[4] = {"tp", "pp", "cp", "vp"};
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(tok, KEYS[i])) k = i;
        if (k < 0) OS_FAIL(OS_ERR_ARG, "--parallel", tok, "keys are tp, pp, cp, vp", "unknown degree");
        if (seen[k]) OS_FAIL(OS_ERR_ARG, "--parallel", tok, NULL, "given twice");
        seen[k] = 1;
        uint64_t v;
        char what[48];
        snprintf(what, sizeof what, "--parallel %s", tok);
        OS_CHECK(os_parse_u64(&v, eq + 1, 1, 65536, what));
        uint32_t *dst[4] = {&l->tp, &l->pp, &l->cp, &l->vp};
        *dst[k] = (uint32_t)v;
    }
    l->schedule = l->vp > 1 ? PP_INTERLEAVED : PP_1F1B;
fail:
    return st;
}

OsStatus layout_parse_placement(Layout *l, const ModelSpec *m, const char *spec) {
    OsStatus st = OS_OK;
    char buf[256];
    if (strlen(spec) >= sizeof buf) OS_FAIL(OS_ERR_ARG, "--pp-layout", NULL, NULL, "too long");
    strcpy(buf, spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) OS_FAIL(OS_ERR_ARG, "--pp-layout", tok, "write image=0,audio=1 (encoder = pipeline stage)", "not name=stage");
        *eq = '\0';
        int e = model_encoder_index(m, tok);
        if (e < 0) {
            char hint[160] = "the model's encoders:";
            for (uint32_t i = 0; i < m->n_enc; i++) {
                strncat(hint, " ", sizeof hint - strlen(hint) - 1);
                strncat(hint, m->enc[i].modality, sizeof hint - strlen(hint) - 1);
            }
            OS_FAIL(OS_ERR_ARG, "--pp-layout", tok, hint, "model %s has no such encoder", m->name);
        }
        uint64_t v;
        OS_CHECK(os_parse_u64(&v, eq + 1, 0, LAYOUT_MAX_VSTAGES - 1, "--pp-layout"));
        l->enc_vstage[e] = (int8_t)(v > 127 ? 127 : v);
    }
fail:
    return st;
}

OsStatus layout_resolve(Layout *l, uint32_t gpus, uint32_t gpn, const ModelSpec *m) {
    OsStatus st = OS_OK;
    uint64_t tpc = (uint64_t)l->tp * l->cp * l->pp;
    if (gpus == 0 || gpus % tpc)
        OS_FAIL(OS_ERR_ARG, "--parallel", NULL, "tp x pp x cp must divide the GPU count (DP = GPUs / (tp x pp x cp))",
                "tp %u x pp %u x cp %u = %llu does not divide %u GPUs", l->tp, l->pp, l->cp, (unsigned long long)tpc, gpus);
    l->dp = (uint32_t)(gpus / tpc);
    if (gpus < gpn) gpn = gpus;
    if (l->tp > gpn && !l->allow_cross_node_tp)
        OS_FAIL(OS_ERR_ARG, "--parallel tp", NULL, "keep TP inside a node (NVLink), or add --allow-cross-node-tp",
                "tp %u is larger than a node of %u GPUs", l->tp, gpn);
    if (l->tp <= gpn && gpn % l->tp)
        OS_FAIL(OS_ERR_ARG, "--parallel tp", NULL, "TP groups pack inside nodes: tp must divide the GPUs per node",
                "tp %u does not divide %u GPUs per node", l->tp, gpn);
    uint64_t tc = (uint64_t)l->tp * l->cp;
    if (tc <= gpn ? gpn % tc != 0 : tc % gpn != 0)
        OS_FAIL(OS_ERR_ARG, "--parallel cp", NULL, "a TP x CP group fills a node evenly: tp x cp divides the GPUs per node or is a multiple of it",
                "tp %u x cp %u = %llu vs %u GPUs per node", l->tp, l->cp, (unsigned long long)tc, gpn);
    if (l->vp > 1 && l->pp == 1)
        OS_FAIL(OS_ERR_ARG, "--parallel vp", NULL, "interleaving needs pp > 1", "vp %u with pp 1", l->vp);
    uint64_t nv = (uint64_t)l->pp * l->vp;
    if (nv > LAYOUT_MAX_VSTAGES || nv > m->llm.layers)
        OS_FAIL(OS_ERR_ARG, "--parallel pp", NULL, "use fewer stages (pp x vp <= the LLM's layers)",
                "%llu virtual stages for %u LLM layers", (unsigned long long)nv, m->llm.layers);
    l->n_vstages = (uint32_t)nv;
    uint32_t base = m->llm.layers / l->n_vstages, extra = m->llm.layers % l->n_vstages;
    l->layer0[0] = 0;
    for (uint32_t v = 0; v < l->n_vstages; v++) l->layer0[v + 1] = l->layer0[v] + base + (v < extra ? 1 : 0);
    for (uint32_t e = 0; e < m->n_enc; e++)
        if (l->enc_vstage[e] >= 0 && (uint32_t)l->enc_vstage[e] >= l->pp) {
            char f[64];
            snprintf(f, sizeof f, "%s=%d", m->enc[e].modality, l->enc_vstage[e]);
            OS_FAIL(OS_ERR_ARG, "--pp-layout", f, "stages are 0 .. pp-1", "stage %d does not exist (pp %u)", l->enc_vstage[e],
                    l->pp);
        }
    if (l->tp == 1) l->sp = 0; /* sequence parallelism splits TP's replicated work: nothing to split */
fail:
    return st;
}

uint32_t layout_rank(const Layout *l, uint32_t t, uint32_t c, uint32_t d, uint32_t p) {
    return t + l->tp * (c + l->cp * (d + l->dp * p));
}

uint32_t layout_enc_vstage(const Layout *l, uint32_t e) {
    return e < MODEL_MAX_ENC && l->enc_vstage[e] >= 0 ? (uint32_t)l->enc_vstage[e] : 0;
}

uint64_t layout_vstage_params(const Layout *l, const ModelSpec *m, uint32_t v) {
    const StackSpec *s = &m->llm;
    uint64_t p = (uint64_t)(l->layer0[v + 1] - l->layer0[v]) * stack_layer_params(s);
    uint64_t h = s->hidden, emb = (uint64_t)s->vocab * h;
    if (v == 0) p += emb + (s->pos == POS_LEARNED ? (uint64_t)m->max_seq * h : 0);
    if (v + 1 == l->n_vstages) p += h * (s->bias ? 2u : 1u) + (s->tied ? 0 : emb);
    for (uint32_t e = 0; e < m->n_enc; e++)
        if (layout_enc_vstage(l, e) == v) p += stack_params(&m->enc[e].stack) + model_projector_params(m, e);
    return p;
}

uint64_t layout_max_stage_params(const Layout *l, const ModelSpec *m) {
    uint64_t best = 0;
    for (uint32_t s = 0; s < l->pp; s++) {
        uint64_t p = 0;
        for (uint32_t c = 0; c < l->vp; c++) p += layout_vstage_params(l, m, layout_vstage(l, s, c));
        if (p > best) best = p;
    }
    return best;
}

double layout_inflight(const Layout *l, uint32_t stage, uint32_t M) {
    if (l->pp == 1) return 1;
    if (l->vp <= 1) return (double)OS_MIN(M, l->pp - stage);
    /* Megatron's interleaved schedule: (P - s - 1) * 2 + (V - 1) * P warm-up chunk forwards,
     * capped at all M*V, then one more in flight; a chunk holds 1/V of the stage's layers */
    uint64_t warm = (uint64_t)(l->pp - stage - 1) * 2 + (uint64_t)(l->vp - 1) * l->pp, all = (uint64_t)M * l->vp;
    uint64_t inflight = OS_MIN(warm + 1, all);
    return (double)inflight / l->vp;
}

void layout_describe(char *buf, uint64_t cap, const Layout *l) {
    snprintf(buf, (size_t)cap, "tp %u%s, pp %u (%s%s), cp %u, dp %u", l->tp,
             l->tp > 1 ? (l->sp ? " + sequence parallel" : "") : "", l->pp,
             l->pp == 1 ? "no pipeline" : l->vp > 1 ? "interleaved 1F1B" : "1F1B", "", l->cp, l->dp);
    if (l->vp > 1) {
        size_t n = strlen(buf);
        snprintf(buf + n, (size_t)cap - n, ", %u chunks per stage", l->vp);
    }
}
