/* flash.c — see flash.h. The emulation walks the tiles in the kernels' order and rounds where
 * they round; it is not fast (scalar loops), only faithful. */
#include "exec/flash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/params.h"

#define TL EXEC_FLASH_TILE

static uint32_t ceil_tiles(uint64_t len) { return (uint32_t)((len + TL - 1) / TL); }

/* Stable order by decreasing work: counting sort over work values 1 .. max. */
static void order_by_work(ExecFlashTile *dst, const ExecFlashTile *src, uint32_t n) {
    int32_t maxw = 0;
    for (uint32_t i = 0; i < n; i++) maxw = src[i].work > maxw ? src[i].work : maxw;
    uint32_t *count = calloc((size_t)maxw + 2, sizeof *count);
    if (!count) { /* no memory: keep the input order (correct, only less balanced) */
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    for (uint32_t i = 0; i < n; i++) count[maxw - src[i].work]++;
    uint32_t run = 0;
    for (int32_t w = 0; w <= maxw; w++) {
        uint32_t c = count[w];
        count[w] = run;
        run += c;
    }
    for (uint32_t i = 0; i < n; i++) dst[count[maxw - src[i].work]++] = src[i];
    free(count);
}

uint32_t exec_flash_tiles(ExecFlashTile *fwd, ExecFlashTile *bwd, const uint64_t *len, uint32_t nseq, int causal) {
    uint64_t T = 0;
    uint32_t n = 0;
    for (uint32_t q = 0; q < nseq; q++) T += len[q];
    ExecFlashTile *tmp = malloc((size_t)exec_flash_max_tiles(T) * sizeof *tmp);
    /* the natural order, then each list sorted by its own work */
    for (int pass = 0; pass < 2; pass++) {
        ExecFlashTile *out = pass == 0 ? fwd : bwd;
        uint64_t t0 = 0;
        n = 0;
        for (uint32_t q = 0; q < nseq; q++) {
            uint32_t t = ceil_tiles(len[q]);
            for (uint32_t i = 0; i < t; i++) {
                ExecFlashTile x = {(int32_t)t0, (int32_t)len[q], (int32_t)(i * TL), 0};
                /* forward tile i sees key tiles 0..i (causal) or all t; backward key tile i is
                 * seen by query tiles i..t-1 (causal) or all t */
                x.work = (int32_t)(causal ? (pass == 0 ? i + 1 : t - i) : t);
                if (tmp) tmp[n] = x;
                else if (out) out[n] = x;
                n++;
            }
            t0 += len[q];
        }
        if (out && tmp) order_by_work(out, tmp, n);
    }
    free(tmp);
    return n;
}

uint64_t exec_flash_pairs(const uint64_t *len, uint32_t nseq, int causal) {
    uint64_t p = 0;
    for (uint32_t q = 0; q < nseq; q++) {
        uint64_t t = ceil_tiles(len[q]);
        p += causal ? t * (t + 1) / 2 : t * t;
    }
    return p;
}

static float bf(float x) { return exec_bf16_round(x); }

void exec_flash_forward_cpu(float *att, float *lse, const float *qkv, const ExecFlashTile *fwd, uint32_t ntiles,
                            uint64_t T, int nh, int nkv, int hd, int causal, uint64_t *pairs) {
    const size_t ld = (size_t)(nh + 2 * nkv) * hd, ldo = (size_t)nh * hd;
    const int grp = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *O = malloc((size_t)TL * hd * sizeof *O), s[TL], m[TL], l[TL];
    if (!O) return;
    for (uint32_t ti = 0; ti < ntiles; ti++) {
        const ExecFlashTile *t = &fwd[ti];
        const int len = t->len, q0 = t->start;
        const int kv_end = causal ? (len < q0 + TL ? len : q0 + TL) : len;
        for (int h = 0; h < nh; h++) {
            const int g = h / grp;
            const size_t qc = (size_t)h * hd, kc = (size_t)(nh + g) * hd, vc = (size_t)(nh + nkv + g) * hd;
            memset(O, 0, (size_t)TL * hd * sizeof *O);
            for (int r = 0; r < TL; r++) m[r] = -INFINITY, l[r] = 0;
            for (int kv0 = 0; kv0 < kv_end; kv0 += TL) {
                if (pairs) ++*pairs;
                for (int r = 0; r < TL; r++) {
                    const int i = q0 + r;
                    if (i >= len) continue; /* the kernel computes padding rows; none is stored */
                    const float *qi = qkv + (size_t)(t->t0 + i) * ld + qc;
                    float mx = -INFINITY;
                    for (int c = 0; c < TL; c++) {
                        const int key = kv0 + c;
                        if (key >= len || (causal && key > i)) {
                            s[c] = -INFINITY;
                            continue;
                        }
                        const float *kk = qkv + (size_t)(t->t0 + key) * ld + kc;
                        float d = 0;
                        for (int e = 0; e < hd; e++) d += qi[e] * kk[e];
                        s[c] = d * scale;
                        mx = fmaxf(mx, s[c]);
                    }
                    const float mnew = fmaxf(m[r], mx), mb = mnew == -INFINITY ? 0.0f : mnew;
                    const float alpha = expf(m[r] - mb);
                    float psum = 0;
                    for (int c = 0; c < TL; c++) {
                        s[c] = s[c] == -INFINITY ? 0.0f : expf(s[c] - mb);
                        psum += s[c];
                    }
                    l[r] = l[r] * alpha + psum;
                    m[r] = mnew;
                    for (int e = 0; e < hd; e++) {
                        float acc = O[(size_t)r * hd + e] * alpha;
                        for (int c = 0; c < TL; c++) {
                            const int key = kv0 + c;
                            if (key >= len) break; /* zero-filled rows of V */
                            acc += bf(s[c]) * qkv[(size_t)(t->t0 + key) * ld + vc + e];
                        }
                        O[(size_t)r * hd + e] = acc;
                    }
                }
            }
            for (int r = 0; r < TL && q0 + r < len; r++) {
                const size_t row = (size_t)(t->t0 + q0 + r);
                for (int e = 0; e < hd; e++) att[row * ldo + qc + e] = bf(O[(size_t)r * hd + e] / l[r]);
                lse[(size_t)h * T + row] = m[r] + logf(l[r]);
            }
        }
    }
    free(O);
}

void exec_flash_backward_cpu(float *dqkv, const float *datt, const float *qkv, const float *att, const float *lse,
                             const ExecFlashTile *bwd, uint32_t ntiles, uint64_t T, int nh, int nkv, int hd,
                             int causal, uint64_t *pairs) {
    const size_t ld = (size_t)(nh + 2 * nkv) * hd, ldo = (size_t)nh * hd;
    const int grp = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *dvec = malloc((size_t)nh * T * sizeof *dvec), *dq = calloc((size_t)T * ldo, sizeof *dq);
    float *dK = malloc((size_t)TL * hd * sizeof *dK), *dV = malloc((size_t)TL * hd * sizeof *dV);
    if (!dvec || !dq || !dK || !dV) goto done;
    for (uint64_t row = 0; row < T; row++)
        for (int h = 0; h < nh; h++) {
            float d = 0;
            for (int e = 0; e < hd; e++) d += datt[row * ldo + (size_t)h * hd + e] * att[row * ldo + (size_t)h * hd + e];
            dvec[(size_t)h * T + row] = d;
        }
    for (uint32_t ti = 0; ti < ntiles; ti++) {
        const ExecFlashTile *t = &bwd[ti];
        const int len = t->len, k0 = t->start;
        for (int g = 0; g < nkv; g++) {
            const size_t kc = (size_t)(nh + g) * hd, vc = (size_t)(nh + nkv + g) * hd;
            memset(dK, 0, (size_t)TL * hd * sizeof *dK);
            memset(dV, 0, (size_t)TL * hd * sizeof *dV);
            for (int h = g * grp; h < (g + 1) * grp; h++) {
                const size_t qc = (size_t)h * hd;
                for (int q0 = causal ? k0 : 0; q0 < len; q0 += TL) {
                    if (pairs) ++*pairs;
                    for (int r = 0; r < TL && k0 + r < len; r++) {
                        const int kidx = k0 + r;
                        const float *kr = qkv + (size_t)(t->t0 + kidx) * ld + kc;
                        const float *vr = qkv + (size_t)(t->t0 + kidx) * ld + vc;
                        for (int c = 0; c < TL && q0 + c < len; c++) {
                            const int qi = q0 + c;
                            const size_t qrow = (size_t)(t->t0 + qi);
                            if (causal && qi < kidx) continue; /* p = 0, ds = 0 */
                            const float *qr = qkv + qrow * ld + qc, *dor = datt + qrow * ldo + qc;
                            float sd = 0, dp = 0;
                            for (int e = 0; e < hd; e++) sd += kr[e] * qr[e], dp += vr[e] * dor[e];
                            const float p = expf(sd * scale - lse[(size_t)h * T + qrow]);
                            const float ds = p * (dp - dvec[(size_t)h * T + qrow]) * scale;
                            const float pb = bf(p), dsb = bf(ds);
                            for (int e = 0; e < hd; e++) {
                                dV[(size_t)r * hd + e] += pb * dor[e];
                                dK[(size_t)r * hd + e] += dsb * qr[e];
                                dq[qrow * ldo + qc + e] += dsb * kr[e];
                            }
                        }
                    }
                }
            }
            for (int r = 0; r < TL && k0 + r < len; r++) {
                const size_t row = (size_t)(t->t0 + k0 + r);
                for (int e = 0; e < hd; e++) {
                    dqkv[row * ld + kc + e] = bf(dqkv[row * ld + kc + e] + dK[(size_t)r * hd + e]);
                    dqkv[row * ld + vc + e] = bf(dqkv[row * ld + vc + e] + dV[(size_t)r * hd + e]);
                }
            }
        }
    }
    for (uint64_t row = 0; row < T; row++)
        for (size_t c = 0; c < ldo; c++) dqkv[row * ld + c] = bf(dqkv[row * ld + c] + dq[row * ldo + c]);
done:
    free(dvec), free(dq), free(dK), free(dV);
}

void exec_attn_ref_forward(double *att, const float *qkv, const uint64_t *len, uint32_t nseq, int nh, int nkv,
                           int hd, int causal) {
    const size_t ld = (size_t)(nh + 2 * nkv) * hd, ldo = (size_t)nh * hd;
    const int grp = nh / nkv;
    const double scale = 1.0 / sqrt((double)hd);
    uint64_t maxl = 1, t0 = 0;
    for (uint32_t q = 0; q < nseq; q++) maxl = len[q] > maxl ? len[q] : maxl;
    double *p = malloc(maxl * sizeof *p);
    if (!p) return;
    for (uint32_t q = 0; q < nseq; t0 += len[q], q++)
        for (int h = 0; h < nh; h++) {
            const size_t qc = (size_t)h * hd, kc = (size_t)(nh + h / grp) * hd, vc = (size_t)(nh + nkv + h / grp) * hd;
            for (uint64_t i = 0; i < len[q]; i++) {
                uint64_t nj = causal ? i + 1 : len[q];
                double mx = -INFINITY, sum = 0;
                for (uint64_t j = 0; j < nj; j++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)qkv[(t0 + i) * ld + qc + e] * qkv[(t0 + j) * ld + kc + e];
                    p[j] = d * scale;
                    mx = fmax(mx, p[j]);
                }
                for (uint64_t j = 0; j < nj; j++) sum += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (uint64_t j = 0; j < nj; j++) o += p[j] / sum * qkv[(t0 + j) * ld + vc + e];
                    att[(t0 + i) * ldo + qc + e] = o;
                }
            }
        }
    free(p);
}

void exec_attn_ref_backward(double *dqkv, const float *datt, const float *qkv, const uint64_t *len, uint32_t nseq,
                            int nh, int nkv, int hd, int causal) {
    const size_t ld = (size_t)(nh + 2 * nkv) * hd, ldo = (size_t)nh * hd;
    const int grp = nh / nkv;
    const double scale = 1.0 / sqrt((double)hd);
    uint64_t maxl = 1, t0 = 0, T = 0;
    for (uint32_t q = 0; q < nseq; q++) maxl = len[q] > maxl ? len[q] : maxl, T += len[q];
    double *p = malloc(maxl * sizeof *p), *dp = malloc(maxl * sizeof *dp);
    if (!p || !dp) goto done;
    for (size_t i = 0; i < T * ld; i++) dqkv[i] = 0;
    for (uint32_t q = 0; q < nseq; t0 += len[q], q++)
        for (int h = 0; h < nh; h++) {
            const size_t qc = (size_t)h * hd, kc = (size_t)(nh + h / grp) * hd, vc = (size_t)(nh + nkv + h / grp) * hd;
            for (uint64_t i = 0; i < len[q]; i++) {
                const size_t ri = (t0 + i);
                uint64_t nj = causal ? i + 1 : len[q];
                double mx = -INFINITY, sum = 0, dot = 0;
                for (uint64_t j = 0; j < nj; j++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)qkv[ri * ld + qc + e] * qkv[(t0 + j) * ld + kc + e];
                    p[j] = d * scale;
                    mx = fmax(mx, p[j]);
                }
                for (uint64_t j = 0; j < nj; j++) sum += (p[j] = exp(p[j] - mx));
                for (uint64_t j = 0; j < nj; j++) {
                    p[j] /= sum;
                    double d = 0;
                    for (int e = 0; e < hd; e++) {
                        d += (double)datt[ri * ldo + qc + e] * qkv[(t0 + j) * ld + vc + e];
                        dqkv[(t0 + j) * ld + vc + e] += p[j] * datt[ri * ldo + qc + e];
                    }
                    dp[j] = d;
                    dot += d * p[j];
                }
                for (uint64_t j = 0; j < nj; j++) {
                    double ds = p[j] * (dp[j] - dot) * scale;
                    for (int e = 0; e < hd; e++) {
                        dqkv[ri * ld + qc + e] += ds * qkv[(t0 + j) * ld + kc + e];
                        dqkv[(t0 + j) * ld + kc + e] += ds * qkv[ri * ld + qc + e];
                    }
                }
            }
        }
done:
    free(p), free(dp);
}
