/* cost.c — FLOPs and time of a rank's share of one phase. See cost.h; the rates come from
 * calib.c. Conventions (DESIGN.md §2, REFERENCE.md §D.1):
 *  - linear(n) = 2 * n * layer_params * layers (+ 2 * n * hidden * vocab for the LM head);
 *    layer_params counts the norm scales too (2 FLOPs per scale per token, as in 6N);
 *    the input embedding is a lookup: 0 FLOPs.
 *  - attention(n) = 4 * n^2 * hidden * layers per item (encoders) or example (LLM): QK^T and
 *    PV, never over a packed buffer.
 *  - projector (encoders): 2-layer MLP ratio*enc_hidden -> llm_hidden -> llm_hidden on the
 *    ceil(len / ratio) outputs of every item's REAL positions.
 *  - model FLOPs = 3 x forward over real positions, no causal discount, no recomputation,
 *    LM head included (PaLM / Megatron convention); causal_flops halves the causal LLM's
 *    attention; hw_flops = what runs: padding, causal skip, (3 + recompute) x forward.
 *  - time: a rank's positions form packed GEMMs, one per weight matrix and layer:
 *    QKV (M x h x (h + 2 kv_dim)), O (M x h x h), MLP-in (M x h x (1|2) ffn), MLP-out
 *    (M x ffn x h), LM head (M x h x vocab), projector; each at calib_gemm_rate(2MKN).
 *    Attention per unit at calib_attn_rate(len), causal stacks executing half the FLOPs.
 *    Backward = 2 x forward (dgrad + wgrad: same FLOPs, same rate); recomputation adds one
 *    forward to the backward; plus kernel_overhead_s per layer per pass. Norms, activations
 *    and residual adds are memory-bound: their time is the per-layer overhead only.
 */
#include <math.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"

/* Tokens of the "large packed batch" cost_unit_coeffs prices GEMMs at: a rank's share of a
 * phase is thousands of positions, so its GEMMs sit near the plateau. */
#define COST_REF_TOKENS 16384.0

Flops stack_forward_flops(const StackSpec *s, double n) {
    Flops f;
    f.linear = 2.0 * n * (double)stack_layer_params(s) * s->layers;
    if (s->vocab) f.linear += 2.0 * n * s->hidden * (double)s->vocab;
    f.attn = 4.0 * n * n * s->hidden * (double)s->layers;
    return f;
}

uint32_t cost_item_llm_tokens(const ModelSpec *m, uint32_t e, uint32_t len) {
    if (e >= m->n_enc) return len;
    uint32_t r = m->enc[e].ratio ? m->enc[e].ratio : 1;
    return len / r + (len % r != 0);
}

uint32_t cost_item_enc_len(const ModelSpec *m, uint32_t e, uint32_t len) {
    if (e >= m->n_enc) return len;
    return OS_MAX(len, m->enc[e].pad_to);
}

/* ---- shapes ---------------------------------------------------------------------------- */

/* The weight GEMMs of one layer, as (K, N) for M tokens. */
typedef struct {
    double k[4], n[4];
} LayerGemms;

static LayerGemms layer_gemms(const StackSpec *s) {
    double h = s->hidden, kv_dim = (double)s->kv_heads * (s->hidden / s->heads);
    LayerGemms g = {{h, h, h, s->ffn}, {h + 2.0 * kv_dim, h, (s->gated_mlp ? 2.0 : 1.0) * s->ffn, h}};
    return g;
}

static const StackSpec *phase_stack(const ModelSpec *m, uint32_t phase) {
    return phase < m->n_enc ? &m->enc[phase].stack : &m->llm;
}

/* Attention rate at length e, through the caller's memo when there is one. */
static double attn_rate(const CostModel *cm, double e) {
    CostMemo *mo = cm->memo;
    if (!mo || e < 0 || e >= 4294967295.0 || e != (double)(uint32_t)e) return calib_attn_rate(cm->calib, e);
    uint32_t k = (uint32_t)e, slot = (k * 2654435761u) & (COST_MEMO_SLOTS - 1);
    if (mo->key[slot] != k + 1) {
        mo->key[slot] = k + 1;
        mo->rate[slot] = calib_attn_rate(cm->calib, e);
    }
    return mo->rate[slot];
}

static double gemm_s(const Calib *c, double m, double k, double n) {
    double f = 2.0 * m * k * n;
    return f > 0 ? f / calib_gemm_rate(c, f) : 0.0;
}

/* Attention FLOPs one unit of len positions executes in one layer's forward. */
static double attn_exec_flops(const StackSpec *s, double len) {
    return 4.0 * len * len * s->hidden * (s->causal ? 0.5 : 1.0);
}

static OsStatus check_args(const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n) {
    OsStatus st = OS_OK;
    if (!cm || !cm->model || !cm->calib)
        OS_FAIL(OS_ERR_ARG, "cost", "model/calib", NULL, "cost model is missing its model or calibration");
    if (phase >= cost_n_phases(cm->model))
        OS_FAIL(OS_ERR_ARG, cm->model->name, "phase", NULL, "phase %u, the model has %u", phase,
                cost_n_phases(cm->model));
    if (n && !lens) OS_FAIL(OS_ERR_ARG, cm->model->name, "lens", NULL, "%u units but no lengths", n);
fail:
    return st;
}

/* ---- the fast path --------------------------------------------------------------------- */

OsStatus cost_phase(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens,
                    uint32_t n) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    OS_CHECK(check_args(cm, phase, lens, n));
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    int enc = phase < m->n_enc, rc = cm->recompute ? 1 : 0;
    double L = s->layers;

    /* real and executed positions, per-unit attention */
    double real_tok = 0, real_sq = 0, exec_tok = 0, proj_out = 0, max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        double e = enc ? cost_item_enc_len(m, phase, lens[i]) : lens[i];
        real_tok += lens[i];
        real_sq += (double)lens[i] * lens[i];
        exec_tok += e;
        max_len = OS_MAX(max_len, e);
        if (enc) proj_out += cost_item_llm_tokens(m, phase, lens[i]);
    }
    out->tokens = (uint64_t)real_tok;
    if (exec_tok == 0) return OS_OK; /* nothing to run: the rank idles through this phase */
    if (cm->layout == ATTN_PADDED) exec_tok = n * max_len;

    double attn_exec = 0, attn_t = 0; /* one layer's forward */
    if (cm->layout == ATTN_PADDED) {
        attn_exec = n * attn_exec_flops(s, max_len);
        attn_t = attn_exec / attn_rate(cm, max_len);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            double e = enc ? cost_item_enc_len(m, phase, lens[i]) : lens[i];
            if (e == 0) continue;
            double f = attn_exec_flops(s, e);
            attn_exec += f;
            attn_t += f / attn_rate(cm, e);
        }
    }

    /* linear time of one forward */
    LayerGemms g = layer_gemms(s);
    double lin_t = 0;
    for (int k = 0; k < 4; k++) lin_t += gemm_s(c, exec_tok, g.k[k], g.n[k]);
    lin_t *= L;
    if (s->vocab) lin_t += gemm_s(c, exec_tok, s->hidden, s->vocab);
    double proj_flops = 0;
    if (enc) {
        double lh = m->llm.hidden, in = (double)m->enc[phase].ratio * s->hidden;
        lin_t += gemm_s(c, proj_out, in, lh) + gemm_s(c, proj_out, lh, lh);
        proj_flops = 2.0 * proj_out * (double)model_projector_params(m, phase);
    }

    double fwd = lin_t + L * attn_t, ko = L * c->kernel_overhead_s;
    out->fwd_s = fwd + ko;
    out->bwd_s = 2.0 * fwd + ko + rc * (fwd + ko);

    Flops real = stack_forward_flops(s, real_tok);
    real.attn = 4.0 * real_sq * s->hidden * L; /* per unit, not over the packed total */
    Flops exec = stack_forward_flops(s, exec_tok);
    out->model_flops = 3.0 * (real.linear + proj_flops + real.attn);
    out->model_flops_noattn = 3.0 * (real.linear + proj_flops);
    out->causal_flops = 3.0 * (real.linear + proj_flops + real.attn * (s->causal ? 0.5 : 1.0));
    out->hw_flops = (3.0 + rc) * (exec.linear + proj_flops + L * attn_exec);
fail:
    return st;
}

/* ---- the slow twin: every kernel of every layer of every pass, one at a time ----------- */

OsStatus cost_phase_ref(PhaseCost *out, const CostModel *cm, uint32_t phase,
                        const uint32_t *lens, uint32_t n) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    OS_CHECK(check_args(cm, phase, lens, n));
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    int enc = phase < m->n_enc;
    double h = s->hidden, kvd = (double)s->kv_heads * (s->hidden / s->heads);

    /* what each unit looks like to the kernels */
    uint32_t widest = 0;
    uint64_t real_total = 0, outs = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
        widest = OS_MAX(widest, e);
        real_total += lens[i];
        if (enc) outs += (lens[i] + m->enc[phase].ratio - 1) / m->enc[phase].ratio;
    }
    out->tokens = real_total;
    double M = 0; /* rows of every packed GEMM */
    for (uint32_t i = 0; i < n; i++)
        M += cm->layout == ATTN_PADDED ? widest : (enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i]);
    if (M == 0) return OS_OK;

    /* passes: forward, [recompute forward], backward dgrad, backward wgrad */
    enum { FWD, RECOMP, DGRAD, WGRAD };
    for (int pass = FWD; pass <= WGRAD; pass++) {
        if (pass == RECOMP && !cm->recompute) continue;
        double t = 0;
        for (uint32_t l = 0; l < s->layers; l++) {
            double gk[4] = {h, h, h, s->ffn};
            double gn[4] = {h + 2 * kvd, h, (s->gated_mlp ? 2.0 : 1.0) * s->ffn, h};
            for (int k = 0; k < 4; k++) {
                double f = 2.0 * M * gk[k] * gn[k];
                t += f / calib_gemm_rate(c, f);
                out->hw_flops += f;
            }
            out->hw_flops += 2.0 * M * 2.0 * h; /* the two norm scales */
            for (uint32_t i = 0; i < n; i++) {
                double len = cm->layout == ATTN_PADDED ? widest
                             : enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
                if (len == 0) continue;
                double f = 4.0 * len * len * h;
                if (s->causal) f /= 2; /* the kernel skips the masked half */
                t += f / calib_attn_rate(c, len);
                out->hw_flops += f;
            }
            if (pass != WGRAD) t += c->kernel_overhead_s; /* dgrad+wgrad are one backward pass */
        }
        if (s->vocab) {
            double f = 2.0 * M * h * s->vocab;
            t += f / calib_gemm_rate(c, f);
            out->hw_flops += f;
        }
        if (enc && outs) {
            double lh = m->llm.hidden, in = (double)m->enc[phase].ratio * h;
            double f1 = 2.0 * outs * in * lh, f2 = 2.0 * outs * lh * lh;
            t += f1 / calib_gemm_rate(c, f1) + f2 / calib_gemm_rate(c, f2);
            out->hw_flops += f1 + f2;
        }
        if (pass == FWD) out->fwd_s += t;
        else out->bwd_s += t;
    }

    /* paper-convention FLOPs, one unit at a time from the stack formula */
    for (uint32_t i = 0; i < n; i++) {
        Flops f = stack_forward_flops(s, lens[i]);
        double proj = 0;
        if (enc) {
            double o = (lens[i] + m->enc[phase].ratio - 1) / m->enc[phase].ratio;
            proj = 2.0 * o * (double)model_projector_params(m, phase);
        }
        out->model_flops += 3 * (f.linear + proj + f.attn);
        out->model_flops_noattn += 3 * (f.linear + proj);
        out->causal_flops += 3 * (f.linear + proj + (s->causal ? f.attn / 2 : f.attn));
    }
fail:
    return st;
}

/* ---- the balancers' per-unit objective ------------------------------------------------- */

/* Seconds per position of one forward through the stack's GEMMs (a_stack), per projector
 * output (a_proj), and attention seconds per position^2 before dividing by the rate (c_f:
 * FLOPs per position^2 executed, all layers). */
static void unit_parts(const CostModel *cm, uint32_t phase, double *a_stack, double *a_proj,
                       double *c_f) {
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    LayerGemms g = layer_gemms(s);
    double M = COST_REF_TOKENS, a = 0;
    for (int k = 0; k < 4; k++) a += gemm_s(c, M, g.k[k], g.n[k]);
    a *= s->layers;
    if (s->vocab) a += gemm_s(c, M, s->hidden, s->vocab);
    *a_stack = a / M;
    *a_proj = 0;
    if (phase < m->n_enc) {
        double r = m->enc[phase].ratio, lh = m->llm.hidden, Mo = M / r;
        *a_proj = (gemm_s(c, Mo, r * s->hidden, lh) + gemm_s(c, Mo, lh, lh)) / Mo;
    }
    *c_f = attn_exec_flops(s, 1.0) * s->layers;
}

void cost_unit_coeffs(const CostModel *cm, uint32_t phase, double *a, double *c) {
    *a = *c = 0;
    if (!cm || !cm->model || !cm->calib || phase >= cost_n_phases(cm->model)) return;
    double as, ap, cf, passes = 3.0 + (cm->recompute ? 1 : 0);
    unit_parts(cm, phase, &as, &ap, &cf);
    double r = phase < cm->model->n_enc ? cm->model->enc[phase].ratio : 1.0;
    *a = passes * (as + ap / r);
    *c = passes * cf / calib_attn_rate(cm->calib, HUGE_VAL); /* long-sequence attention rate */
}

void cost_unit_prepare(CostUnit *u, const CostModel *cm, uint32_t phase) {
    memset(u, 0, sizeof *u);
    u->cm = cm;
    u->phase = phase;
    if (!cm || !cm->model || !cm->calib || phase >= cost_n_phases(cm->model)) return;
    u->passes = 3.0 + (cm->recompute ? 1 : 0);
    unit_parts(cm, phase, &u->as, &u->ap, &u->cf);
}

double cost_unit_eval(const CostUnit *u, uint32_t len) {
    if (u->passes == 0 || len == 0) return 0;
    const ModelSpec *m = u->cm->model;
    int enc = u->phase < m->n_enc;
    double e = enc ? cost_item_enc_len(m, u->phase, len) : len;
    double outs = enc ? cost_item_llm_tokens(m, u->phase, len) : 0;
    return u->passes * (u->as * e + u->ap * outs + u->cf * e * e / attn_rate(u->cm, e));
}

double cost_unit_seconds(const CostModel *cm, uint32_t phase, uint32_t len) {
    CostUnit u;
    cost_unit_prepare(&u, cm, phase);
    return cost_unit_eval(&u, len);
}
