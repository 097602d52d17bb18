/* baseline.c — see baseline.h. */
#include "analysis/baseline.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "sim/policy.h"

/* The user's cluster under another layout: the same links and GPUs (net.h). */
static OsStatus relayout(Cluster *c, const Cluster *u, const Layout *l) {
    *c = *u;
    return cluster_set_parallel(c, l->tp, l->pp, l->cp);
}

static void base_config(ReplayConfig *o, const ReplayConfig *u, int padded) {
    *o = *u;
    o->policy = policy_find("none");
    o->setup = SETUP_FSDP_GRAD_OP; /* the distributed optimizer's collectives */
    o->grad_sync_end = 1;
    o->layout = padded ? ATTN_PADDED : ATTN_VARLEN;
    o->regroup = 1; /* the trace was drawn for the pure-DP cluster's DP */
    if (!o->micro_batch && !o->micro_batch_tokens) o->micro_batch = 1;
    o->timeline_path = NULL;
}

/* Does one step of the trace replay under this layout? 1 yes, 0 a memory refusal; other errors
 * are returned. */
static OsStatus fits(int *ok, ReplayConfig *c, Trace *t) {
    ReplaySummary sum;
    ReplayConfig one = *c;
    one.n_steps = 1;
    one.progress = 0;
    os_clear_error();
    OsStatus st = replay_run(&sum, &one, t, NULL, NULL);
    *ok = st == OS_OK;
    if (st == OS_ERR_RANGE) {
        os_clear_error();
        return OS_OK;
    }
    return st;
}

OsStatus baseline_megatron(ReplayConfig *out, const ReplayConfig *user, Trace *t, const char *parallel, int padded,
                           char *desc, size_t cap) {
    OsStatus st = OS_OK;
    const ModelSpec *m = user->model;
    const Cluster *u = &user->cluster;
    base_config(out, user, padded);
    char lay[128];
    if (parallel) {
        Layout *l = &out->par;
        layout_init(l);
        OsStatus ps = layout_parse(l, parallel);
        if (ps == OS_OK) ps = layout_resolve(l, u->gpus, u->gpus_per_node, m);
        if (ps != OS_OK) { /* the layout's own message names --parallel: say which option it was */
            char why[512];
            snprintf(why, sizeof why, "%s", os_last_error());
            os_clear_error();
            return os_fail(ps, "--baseline-parallel", NULL, NULL, "%s", why);
        }
        OS_CHECK(relayout(&out->cluster, u, l));
        layout_describe(lay, sizeof lay, l);
        snprintf(desc, cap, "%s (--baseline-parallel)", lay);
        return OS_OK;
    }
    char tried[512] = "";
    uint32_t gpn = u->gpus < u->gpus_per_node ? u->gpus : u->gpus_per_node;
    /* candidates by model-parallel size, TP before PP at equal size (Narayanan et al. §5) */
    for (uint32_t mp = 1; mp <= u->gpus && mp <= 1u << 16; mp *= 2)
        for (uint32_t tp = mp < 8 ? mp : 8; tp >= 1; tp /= 2) {
            uint32_t pp = mp / tp;
            if (tp > gpn || m->llm.heads % tp || m->llm.hidden % tp || pp > m->llm.layers || u->gpus % mp) continue;
            Layout l;
            layout_init(&l);
            l.tp = tp, l.pp = pp;
            os_clear_error();
            if (layout_resolve(&l, u->gpus, u->gpus_per_node, m) != OS_OK) continue;
            ReplayConfig c;
            base_config(&c, user, padded);
            c.par = l;
            if (relayout(&c.cluster, u, &l) != OS_OK) continue;
            int ok = 0;
            OS_CHECK(fits(&ok, &c, t));
            size_t n = strlen(tried);
            snprintf(tried + n, sizeof tried - n, "%stp%u/pp%u", n ? ", " : "", tp, pp);
            if (!ok) continue;
            *out = c;
            layout_describe(lay, sizeof lay, &l);
            snprintf(desc, cap, "%s (the smallest TP x PP whose state and activations fit)", lay);
            return OS_OK;
        }
    OS_FAIL(OS_ERR_RANGE, "--baseline", "megatron", "give the layout with --baseline-parallel, more GPUs or a smaller model",
            "no TP x PP layout fits the GPU memory (tried %s)", tried[0] ? tried : "none");
fail:
    return st;
}
