/* cost.c — FLOPs and time of one micro-batch of a rank's share of one phase. See cost.h; the
 * rates come from calib.c. Conventions (DESIGN.md §2, REFERENCE.md §D.1):
 *  - linear(n) = 2 * n * layer_params * layers (+ 2 * n * hidden * vocab for the LM head);
 *    layer_params counts norm scales and biases too (2 FLOPs per parameter per token, as in
 *    6N); the input embedding and a learned position table are lookups: 0 FLOPs.
 *  - attention(n) = 4 * n^2 * hidden * layers per item (encoders) or example (LLM): QK^T and
 *    PV, never over a packed buffer.
 *  - projector (encoders): 2-layer MLP ratio*enc_hidden -> llm_hidden -> llm_hidden on the
 *    ceil(len / ratio) outputs of every item's REAL positions.
 *  - model FLOPs = 3 x forward over real positions, no causal discount, no recomputation,
 *    LM head included (PaLM / Megatron convention); causal_flops halves the causal LLM's
 *    attention; hw_flops = what runs in the Megatron/llm-foundry HFU sense: padding, the causal
 *    kernel's skipped half, and the recomputed forward (the attention kernel's own internal
 *    recomputation is not counted, as HFU conventions do not).
 *
 * Time of a micro-batch (M = its positions, all units packed into each GEMM):
 *  - GEMMs per layer, as (K in, N out): QKV (h, h + 2 kv_dim), O (h, h), MLP-in (h, (1|2) ffn),
 *    MLP-out (ffn, h); the LM head (h, vocab); the projector's two. Each appears three times:
 *    forward (M x N, reduce K), data gradient (M x K, reduce N) and weight gradient (K x N,
 *    reduce M), each at calib_gemm_rate of its own shape.
 *  - attention per unit and layer: forward FLOPs (FlashAttention convention 4 len^2 h, halved
 *    when causal) at the forward rate for (len, head dim, mask); backward 2.5x those FLOPs at
 *    the backward rate.
 *  - memory-bound kernels: stack_mem_traffic bytes per position over hbm_bw, plus
 *    kernel_launch_s per kernel.
 *  - recomputation: FULL adds every layer's forward (GEMMs, attention, memory-bound) to the
 *    backward (activation checkpointing per block: embeddings, head and loss are outside the
 *    blocks and not recomputed); SELECTIVE adds the attention kernel's forward only.
 */
#include <math.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"

/* Tokens of the "large packed batch" the balancers' objective prices GEMMs at: a rank's share
 * of a phase is thousands of positions, so its GEMMs sit near the plateau. */
#define COST_REF_TOKENS 16384.0
/* FlashAttention's convention: the backward pass does 2.5x the forward's FLOPs (it recomputes
 * the scores): Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py, `flops`. */
#define ATTN_BWD_FLOP_RATIO 2.5

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

/* ---- memory-bound traffic ------------------------------------------------------------- */

/* Bytes per position each memory-bound kernel reads + writes, with a = act_bytes (bf16: 2),
 * h = hidden, f = ffn, kv = kv_dim (the op sequence of a pre-norm transformer block as PyTorch
 * runs it in eager mode; GEMM epilogues fuse the forward bias adds):
 *  forward, per layer:
 *    2 norms          read h, write h                         2 x 2h
 *    2 residual adds  read 2h, write h                        2 x 3h
 *    activation       GELU read f, write f (2f); SwiGLU read 2f (gate, up), write f (3f)
 *    rotary (RoPE)    read and write q and k                  2 (h + kv)
 *  backward, per layer:
 *    2 norms          dx: read x, dy, write dx (3h); weight grads: read x, dy again (2h)
 *    2 grad sums      the residual branch's gradient added in: read 2h, write h   2 x 3h
 *    activation       GELU read x, dy, write dx (3f); SwiGLU read gate, up, dy, write 2 (5f)
 *    rotary           as forward                              2 (h + kv)
 *    bias grads       a column sum of each linear's output gradient (bias = 1):
 *                     (h + 2 kv) + h + (1|2) f + h
 *  once per stack:
 *    embedding        gather: read h, write h; backward: read dy h, accumulate h  2h / 4h
 *    learned position read token and position rows, write the sum (3h); backward 4h
 *    final norm       2h / 5h
 *    loss over V      eager (autocast fp32): upcast read 2V write 4V, log_softmax read 4V write
 *                     4V = 14V; backward: nll grad 4V, log_softmax grad read 8V write 4V,
 *                     downcast read 4V write 2V = 22V.  fused: logits read once (2V); backward
 *                     read 2V, write 2V (4V).  (The logits' own write is the LM-head GEMM's.) */
MemTraffic stack_mem_traffic(const StackSpec *s, uint32_t act_bytes) {
    MemTraffic t;
    memset(&t, 0, sizeof t);
    double a = act_bytes, h = s->hidden, f = s->ffn, kv = (double)s->kv_heads * (s->hidden / s->heads);
    double V = s->vocab;
    double fwd = 2 * 2 * h + 2 * 3 * h + (s->gated_mlp ? 3 : 2) * f;
    double bwd = 2 * 5 * h + 2 * 3 * h + (s->gated_mlp ? 5 : 3) * f;
    uint32_t kf = 5, kb = 2 * 2 + 2 + 1;
    if (s->pos == POS_ROTARY) fwd += 2 * (h + kv), bwd += 2 * (h + kv), kf++, kb++;
    if (s->bias) bwd += (h + 2 * kv) + h + (s->gated_mlp ? 2 : 1) * f + h, kb += 4;
    t.layer_fwd = a * fwd;
    t.layer_bwd = a * bwd;
    t.kernels_layer_fwd = kf;
    t.kernels_layer_bwd = kb;
    double sf = 2 * h, sb = 5 * h; /* final norm */
    uint32_t ksf = 1, ksb = 2;
    if (s->vocab) sf += 2 * h, sb += 4 * h, ksf++, ksb++;
    if (s->pos == POS_LEARNED) sf += 3 * h, sb += 4 * h, ksf++, ksb++;
    t.stack_fwd = a * sf;
    t.stack_bwd = a * sb;
    if (s->vocab) {
        /* the loss's bytes are counted in its own element sizes (fp32 in the eager path) */
        if (s->loss == LOSS_FUSED) t.stack_fwd += 2 * V, t.stack_bwd += 4 * V, ksf += 1, ksb += 1;
        else t.stack_fwd += 14 * V, t.stack_bwd += 22 * V, ksf += 3, ksb += 3;
    }
    t.kernels_stack_fwd = ksf;
    t.kernels_stack_bwd = ksb;
    return t;
}

/* ---- shapes ---------------------------------------------------------------------------- */

/* The weight GEMMs of one layer, as (K in, N out). */
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

static double gemm_t(const Calib *c, double m, double n, double k) {
    double f = 2.0 * m * n * k;
    return f > 0 ? f / calib_gemm_rate(c, m, n, k) : 0.0;
}

/* A weight (K in -> N out) over M rows: forward, and backward = data + weight gradients. */
static void weight_gemm(const Calib *c, double M, double K, double N, double *fwd, double *bwd) {
    *fwd += gemm_t(c, M, N, K);
    *bwd += gemm_t(c, M, K, N) + gemm_t(c, K, N, M);
}

/* The same through the memo's per-weight lines (cost.h CalibLine): identical rates to
 * rounding, a 1-D lookup each. widx: 0-3 the layer's weights, 4 the LM head, 5-6 the
 * projector's. */
static void weight_gemm_m(const CostModel *cm, uint32_t phase, int widx, double M, double K, double N, double *fwd,
                          double *bwd) {
    if (!cm->memo || phase > MODEL_MAX_ENC) {
        weight_gemm(cm->calib, M, K, N, fwd, bwd);
        return;
    }
    const Calib *c = cm->calib;
    CalibLine *l = cm->memo->gemm[phase][widx];
    if (!l[0].ready) {
        calib_gemm_line(&l[0], c, 0, N, K); /* forward: M x N, reduce K */
        calib_gemm_line(&l[1], c, 0, K, N); /* data gradient: M x K, reduce N */
        calib_gemm_line(&l[2], c, 2, K, N); /* weight gradient: K x N, reduce M */
    }
    double f = 2.0 * M * K * N;
    if (f <= 0) return;
    *fwd += f / calib_line_rate(&l[0], c, M);
    *bwd += f / calib_line_rate(&l[1], c, M) + f / calib_line_rate(&l[2], c, M);
}

/* Attention FLOPs one unit of len positions executes in one layer's forward. */
static double attn_exec_flops(const StackSpec *s, double len) {
    return 4.0 * len * len * s->hidden * (s->causal ? 0.5 : 1.0);
}

/* One unit's attention seconds per layer, forward and backward, through the memo. */
static void attn_unit(const CostModel *cm, uint32_t phase, double len, double *fwd, double *bwd) {
    const StackSpec *s = phase_stack(cm->model, phase);
    uint32_t hd = s->hidden / s->heads;
    CostMemo *mo = cm->memo;
    uint64_t key = 0;
    size_t slot = 0;
    if (mo && len >= 0 && len < 4294967295.0 && len == (double)(uint32_t)len) {
        key = ((uint64_t)phase << 32 | (uint32_t)len) + 1;
        slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 51) & (COST_MEMO_SLOTS - 1);
        if (mo->key[slot] == key) {
            *fwd = mo->fwd[slot], *bwd = mo->bwd[slot];
            return;
        }
    }
    double fl = attn_exec_flops(s, len);
    *fwd = fl > 0 ? fl / calib_attn_rate(cm->calib, ATTN_FWD, s->causal, hd, len) : 0;
    *bwd = fl > 0 ? ATTN_BWD_FLOP_RATIO * fl / calib_attn_rate(cm->calib, ATTN_BWD, s->causal, hd, len) : 0;
    if (key) mo->key[slot] = key, mo->fwd[slot] = *fwd, mo->bwd[slot] = *bwd;
}

static OsStatus check_args(const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n) {
    OsStatus st = OS_OK;
    if (!cm || !cm->model || !cm->calib)
        OS_FAIL(OS_ERR_ARG, "cost", "model/calib", NULL, "cost model is missing its model or calibration");
    if (phase >= cost_n_phases(cm->model))
        OS_FAIL(OS_ERR_ARG, cm->model->name, "phase", NULL, "phase %u, the model has %u", phase,
                cost_n_phases(cm->model));
    if (n && !lens) OS_FAIL(OS_ERR_ARG, cm->model->name, "lens", NULL, "%u units but no lengths", n);
    if (cm->recompute < RECOMPUTE_NONE || cm->recompute > RECOMPUTE_SELECTIVE)
        OS_FAIL(OS_ERR_ARG, cm->model->name, "recompute", NULL, "mode %d", cm->recompute);
fail:
    return st;
}

/* Paper-convention FLOPs of the real positions (shared by both paths). */
static void model_flops(PhaseCost *out, const ModelSpec *m, uint32_t phase, const StackSpec *s,
                        double real_tok, double real_sq, double proj_out, double exec_tok, double attn_exec,
                        int rc) {
    double L = s->layers;
    Flops real = stack_forward_flops(s, real_tok);
    real.attn = 4.0 * real_sq * s->hidden * L; /* per unit, not over the packed total */
    double proj = phase < m->n_enc ? 2.0 * proj_out * (double)model_projector_params(m, phase) : 0;
    Flops ex = stack_forward_flops(s, exec_tok);
    out->model_flops = 3.0 * (real.linear + proj + real.attn);
    out->model_flops_noattn = 3.0 * (real.linear + proj);
    out->causal_flops = 3.0 * (real.linear + proj + real.attn * (s->causal ? 0.5 : 1.0));
    double head = s->vocab ? 2.0 * exec_tok * s->hidden * (double)s->vocab : 0;
    double rc_lin = rc == RECOMPUTE_FULL ? ex.linear - head : 0;
    double rc_att = rc != RECOMPUTE_NONE ? L * attn_exec : 0;
    out->hw_flops = 3.0 * (ex.linear + proj + L * attn_exec) + rc_lin + rc_att;
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
    int enc = phase < m->n_enc, rc = cm->recompute;
    double L = s->layers;

    /* real and executed positions */
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

    /* attention, one layer */
    double af = 0, ab = 0, attn_exec = 0;
    if (cm->layout == ATTN_PADDED) {
        attn_unit(cm, phase, max_len, &af, &ab);
        af *= n, ab *= n;
        attn_exec = n * attn_exec_flops(s, max_len);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            double e = enc ? cost_item_enc_len(m, phase, lens[i]) : lens[i];
            if (e == 0) continue;
            double f1, b1;
            attn_unit(cm, phase, e, &f1, &b1);
            af += f1, ab += b1;
            attn_exec += attn_exec_flops(s, e);
        }
    }

    /* GEMMs: one layer's, then the head and the projector */
    LayerGemms g = layer_gemms(s);
    double lf = 0, lb = 0, hf = 0, hb = 0;
    for (int k = 0; k < 4; k++) weight_gemm_m(cm, phase, k, exec_tok, g.k[k], g.n[k], &lf, &lb);
    if (s->vocab) weight_gemm_m(cm, phase, 4, exec_tok, s->hidden, s->vocab, &hf, &hb);
    double lh = m->llm.hidden;
    if (enc && proj_out > 0) {
        double in = (double)m->enc[phase].ratio * s->hidden;
        weight_gemm_m(cm, phase, 5, proj_out, in, lh, &hf, &hb);
        weight_gemm_m(cm, phase, 6, proj_out, lh, lh, &hf, &hb);
    }

    /* memory-bound kernels */
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double bw = c->hbm_bw, t0 = c->kernel_launch_s;
    double mlf = exec_tok * mt.layer_fwd / bw + mt.kernels_layer_fwd * t0;
    double mlb = exec_tok * mt.layer_bwd / bw + mt.kernels_layer_bwd * t0;
    double msf = exec_tok * mt.stack_fwd / bw + mt.kernels_stack_fwd * t0;
    double msb = exec_tok * mt.stack_bwd / bw + mt.kernels_stack_bwd * t0;
    if (enc && proj_out > 0) /* the projector's activation: GELU over llm_hidden per output */
        msf += proj_out * 2 * lh * m->act_bytes / bw + t0, msb += proj_out * 3 * lh * m->act_bytes / bw + t0;

    double gemm_f = L * lf + hf, gemm_b = L * lb + hb;
    double attn_f = L * af, attn_b = L * ab;
    double mem_f = L * mlf + msf, mem_b = L * mlb + msb;
    if (rc == RECOMPUTE_FULL) gemm_b += L * lf, attn_b += L * af, mem_b += L * mlf;
    else if (rc == RECOMPUTE_SELECTIVE) attn_b += L * af;
    out->fwd_s = gemm_f + attn_f + mem_f;
    out->bwd_s = gemm_b + attn_b + mem_b;
    out->gemm_s = gemm_f + gemm_b;
    out->attn_s = attn_f + attn_b;
    out->mem_s = mem_f + mem_b;
    model_flops(out, m, phase, s, real_tok, real_sq, proj_out, exec_tok, attn_exec, rc);
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
    double h = s->hidden, kvd = (double)s->kv_heads * (s->hidden / s->heads), bw = c->hbm_bw;
    uint32_t hd = s->hidden / s->heads;

    uint32_t widest = 0;
    uint64_t real_total = 0, outs = 0;
    double real_sq = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
        widest = OS_MAX(widest, e);
        real_total += lens[i];
        real_sq += (double)lens[i] * lens[i];
        if (enc) outs += (lens[i] + m->enc[phase].ratio - 1) / m->enc[phase].ratio;
    }
    out->tokens = real_total;
    double M = 0; /* rows of every packed GEMM */
    for (uint32_t i = 0; i < n; i++)
        M += cm->layout == ATTN_PADDED ? widest : (enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i]);
    if (M == 0) return OS_OK;

    double gk[4] = {h, h, h, s->ffn}, gn[4] = {h + 2 * kvd, h, (s->gated_mlp ? 2.0 : 1.0) * s->ffn, h};
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double attn_exec = 0;
    for (uint32_t i = 0; i < n; i++) {
        double len = cm->layout == ATTN_PADDED ? widest : enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
        attn_exec += 4.0 * len * len * h * (s->causal ? 0.5 : 1.0);
    }
    /* passes: forward, [recomputed forward], backward */
    enum { FWD, RECOMP, BWD };
    for (int pass = FWD; pass <= BWD; pass++) {
        if (pass == RECOMP && cm->recompute == RECOMPUTE_NONE) continue;
        int only_attn = pass == RECOMP && cm->recompute == RECOMPUTE_SELECTIVE;
        double tg = 0, ta = 0, tm = 0;
        for (uint32_t l = 0; l < s->layers; l++) {
            for (int k = 0; k < 4 && !only_attn; k++) {
                if (pass == BWD) {
                    double f1 = 2.0 * M * gk[k] * gn[k]; /* dgrad: M x K reduce N; wgrad: K x N reduce M */
                    tg += f1 / calib_gemm_rate(c, M, gk[k], gn[k]) + f1 / calib_gemm_rate(c, gk[k], gn[k], M);
                } else {
                    tg += 2.0 * M * gk[k] * gn[k] / calib_gemm_rate(c, M, gn[k], gk[k]);
                }
            }
            for (uint32_t i = 0; i < n; i++) {
                double len = cm->layout == ATTN_PADDED ? widest
                             : enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
                if (len == 0) continue;
                double f = 4.0 * len * len * h;
                if (s->causal) f /= 2; /* the kernel skips the masked half */
                if (pass == BWD) ta += 2.5 * f / calib_attn_rate(c, ATTN_BWD, s->causal, hd, len);
                else ta += f / calib_attn_rate(c, ATTN_FWD, s->causal, hd, len);
            }
            if (!only_attn) {
                double by = pass == BWD ? mt.layer_bwd : mt.layer_fwd;
                uint32_t kn = pass == BWD ? mt.kernels_layer_bwd : mt.kernels_layer_fwd;
                for (uint32_t k = 0; k < kn; k++) tm += c->kernel_launch_s;
                tm += M * by / bw;
            }
        }
        if (pass != RECOMP) {
            if (s->vocab) {
                double f1 = 2.0 * M * h * s->vocab;
                if (pass == BWD) tg += f1 / calib_gemm_rate(c, M, h, s->vocab) + f1 / calib_gemm_rate(c, h, s->vocab, M);
                else tg += f1 / calib_gemm_rate(c, M, s->vocab, h);
            }
            if (enc && outs) {
                double lh = m->llm.hidden, in = (double)m->enc[phase].ratio * h;
                double ww[2][2] = {{in, lh}, {lh, lh}};
                for (int q = 0; q < 2; q++) {
                    double K = ww[q][0], N = ww[q][1], f1 = 2.0 * outs * K * N;
                    if (pass == BWD) tg += f1 / calib_gemm_rate(c, outs, K, N) + f1 / calib_gemm_rate(c, K, N, outs);
                    else tg += f1 / calib_gemm_rate(c, outs, N, K);
                }
                tm += c->kernel_launch_s + outs * (pass == BWD ? 3 : 2) * lh * m->act_bytes / bw;
            }
            double by = pass == BWD ? mt.stack_bwd : mt.stack_fwd;
            uint32_t kn = pass == BWD ? mt.kernels_stack_bwd : mt.kernels_stack_fwd;
            for (uint32_t k = 0; k < kn; k++) tm += c->kernel_launch_s;
            tm += M * by / bw;
        }
        if (pass == FWD) out->fwd_s += tg + ta + tm;
        else out->bwd_s += tg + ta + tm;
        out->gemm_s += tg, out->attn_s += ta, out->mem_s += tm;
    }
    model_flops(out, m, phase, s, (double)real_total, real_sq, (double)outs, M, attn_exec, cm->recompute);
fail:
    return st;
}

/* ---- the optimizer --------------------------------------------------------------------- */

/* HBM bytes per parameter of one optimizer step, from the op sequence of Composer 0.16's
 * DecoupledAdamW (composer/optim/decoupled_weight_decay.py, `adamw`: per tensor, fp32 state,
 * weight decay 0 as the MPT yamls set it): exp_avg.mul_ (r4 w4) .add_(grad) (r8 w4),
 * exp_avg_sq.mul_ (r4 w4) .addcmul_(grad, grad) (r8 w4), sqrt (r4 w4), / sqrt(bc2) (r4 w4),
 * .add_(eps) (r4 w4), param.addcdiv_ (r12 w4) = 80 B; plus FSDP's clip_grad_norm_: the norm
 * (r4) and the scaling (r4 w4) = 12 B. */
#define OPT_BYTES_PER_PARAM 92.0
/* kernels per parameter tensor: the eight ops above and the two of clipping */
#define OPT_KERNELS_PER_TENSOR 10.0

double cost_optimizer_bytes_per_param(void) { return OPT_BYTES_PER_PARAM; }

double cost_optimizer_s(const CostModel *cm, double params_per_gpu) {
    if (!cm || !cm->calib || !cm->model || !(params_per_gpu > 0)) return 0;
    /* one flat parameter tensor per FSDP unit (a layer), per stack */
    double tensors = cm->model->llm.layers + 1;
    for (uint32_t e = 0; e < cm->model->n_enc; e++) tensors += cm->model->enc[e].stack.layers + 2;
    return params_per_gpu * OPT_BYTES_PER_PARAM / cm->calib->hbm_bw +
           tensors * OPT_KERNELS_PER_TENSOR * cm->calib->kernel_launch_s;
}

/* ---- the balancers' per-unit objective ------------------------------------------------- */

/* Seconds per position of every pass through the stack's GEMMs and memory-bound kernels at a
 * large packed batch (lin), and per projector output (proj). */
void cost_unit_prepare(CostUnit *u, const CostModel *cm, uint32_t phase) {
    memset(u, 0, sizeof *u);
    u->cm = cm;
    u->phase = phase;
    if (!cm || !cm->model || !cm->calib || phase >= cost_n_phases(cm->model)) return;
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    LayerGemms g = layer_gemms(s);
    double M = COST_REF_TOKENS, lf = 0, lb = 0, hf = 0, hb = 0;
    for (int k = 0; k < 4; k++) weight_gemm(c, M, g.k[k], g.n[k], &lf, &lb);
    if (s->vocab) weight_gemm(c, M, s->hidden, s->vocab, &hf, &hb);
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double L = s->layers, bw = c->hbm_bw;
    double per = L * (lf + lb) + hf + hb + (L * (mt.layer_fwd + mt.layer_bwd) + mt.stack_fwd + mt.stack_bwd) * M / bw;
    if (cm->recompute == RECOMPUTE_FULL) per += L * (lf + mt.layer_fwd * M / bw);
    u->lin = per / M;
    if (phase < m->n_enc) {
        double r = m->enc[phase].ratio, lh = m->llm.hidden, Mo = M / r, pf = 0, pb = 0;
        weight_gemm(c, Mo, r * s->hidden, lh, &pf, &pb);
        weight_gemm(c, Mo, lh, lh, &pf, &pb);
        u->proj = (pf + pb + Mo * 5 * lh * m->act_bytes / bw) / Mo;
    }
    u->ok = 1;
}

double cost_unit_eval(const CostUnit *u, uint32_t len) {
    if (!u->ok || len == 0) return 0;
    const CostModel *cm = u->cm;
    const ModelSpec *m = cm->model;
    int enc = u->phase < m->n_enc;
    double e = enc ? cost_item_enc_len(m, u->phase, len) : len;
    double outs = enc ? cost_item_llm_tokens(m, u->phase, len) : 0;
    double af, ab;
    attn_unit(cm, u->phase, e, &af, &ab);
    double L = phase_stack(m, u->phase)->layers;
    double attn = L * (af + ab + (cm->recompute != RECOMPUTE_NONE ? af : 0));
    return u->lin * e + u->proj * outs + attn;
}

double cost_unit_seconds(const CostModel *cm, uint32_t phase, uint32_t len) {
    CostUnit u;
    cost_unit_prepare(&u, cm, phase);
    return cost_unit_eval(&u, len);
}

void cost_unit_coeffs(const CostModel *cm, uint32_t phase, double *a, double *c) {
    *a = *c = 0;
    CostUnit u;
    cost_unit_prepare(&u, cm, phase);
    if (!u.ok) return;
    const ModelSpec *m = cm->model;
    const StackSpec *s = phase_stack(m, phase);
    double r = phase < m->n_enc ? m->enc[phase].ratio : 1.0;
    *a = u.lin + u.proj / r;
    /* long-sequence attention rates */
    uint32_t hd = s->hidden / s->heads;
    double f1 = attn_exec_flops(s, 1.0) * s->layers;
    double rf = calib_attn_rate(cm->calib, ATTN_FWD, s->causal, hd, 1e8);
    double rb = calib_attn_rate(cm->calib, ATTN_BWD, s->causal, hd, 1e8);
    *c = f1 / rf * (1 + (cm->recompute != RECOMPUTE_NONE)) + ATTN_BWD_FLOP_RATIO * f1 / rb;
}
