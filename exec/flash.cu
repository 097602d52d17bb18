/* flash.cu — see flash.cuh and flash.h. Layout notes (CUDA's WMMA rules, checked by hand for
 * every pointer below): load/store_matrix_sync need 32-byte aligned pointers and ldm a
 * multiple of 8 (bf16) or 4 (fp32) elements; the dynamic shared block is 128-byte aligned and
 * every region is a multiple of 128 bytes. The element order inside an accumulator fragment is
 * opaque, so the kernels read it once: an fp32 fragment loaded from a 16x16 matrix holding
 * each entry's row (rid) or column (cid) index says, for each of this thread's elements,
 * where it sits (load, mma and store all use one mapping per fragment type). */
#include <mma.h>
#include <stdlib.h>
#include <string.h>

#include "exec/flash.cuh"

using namespace nvcuda;

extern "C" OsStatus exec_st_flash_forward(double *worst);
extern "C" OsStatus exec_st_flash_backward(double *worst);

namespace {

constexpr int TL = EXEC_FLASH_TILE; /* 64 */
constexpr int NW = 4;               /* warps per block; warp w owns rows w*16 .. w*16+15 */
constexpr int NT = NW * 32;
constexpr int LDP = TL + 8;         /* bf16 rows of 64 (+8: bank spread, ldm multiple of 8) */
constexpr int LDG = 20;             /* fp32 16x16 staging rows */

constexpr size_t r128(size_t b) { return (b + 127) / 128 * 128; }
constexpr size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> FragAT;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBT;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

/* Rows r0 .. r0+63 of one head's hd columns (from col0) of a [*, ld] bf16 matrix into a
 * [64][HDP+8] tile; rows past len and columns past hd are zero. hd % 8 == 0, ld % 8 == 0. */
template <int HDP>
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *base, int r0, int len, int col0, int ld, int hd) {
    constexpr int LDQ = HDP + 8, CH = HDP / 8;
    for (int i = threadIdx.x; i < TL * CH; i += NT) {
        const int r = i / CH, c = i % CH;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (r0 + r < len && c * 8 < hd) v = *(const uint4 *)(base + (size_t)(r0 + r) * ld + col0 + c * 8);
        *(uint4 *)(dst + r * LDQ + c * 8) = v;
    }
}

/* ---- forward --------------------------------------------------------------------------------- */

template <int HDP>
struct Fwd {
    static constexpr int LDQ = HDP + 8;
    static constexpr int LDS = TL + 4;                                  /* fp32 score rows */
    static constexpr size_t A = r128(zmax((size_t)TL * LDQ * 2, (size_t)NW * 16 * LDS * 4)); /* Q, then S */
    static constexpr size_t KV = r128((size_t)TL * LDQ * 2);
    static constexpr size_t P = r128((size_t)NW * 16 * LDP * 2);
    static constexpr size_t ROWS = r128((size_t)(NW * 32 + 256) * 4); /* alpha, 1/l per warp; rid matrix */
    static constexpr size_t BYTES = A + 2 * KV + P + ROWS;
};

template <int HDP>
__global__ void __launch_bounds__(NT) flash_fwd_kernel(bf16 *att, float *lse, const bf16 *qkv,
                                                       const ExecFlashTile *tiles, int T, int nh, int nkv, int hd,
                                                       int causal, float scale) {
    typedef Fwd<HDP> L;
    constexpr int LDQ = L::LDQ, LDS = L::LDS, NF = HDP / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem;
    float *Sall = (float *)smem; /* aliases Qs once the Q fragments are in registers */
    bf16 *Ks = (bf16 *)(smem + L::A), *Vs = (bf16 *)(smem + L::A + L::KV);
    bf16 *Pall = (bf16 *)(smem + L::A + 2 * L::KV);
    float *rows = (float *)(smem + L::A + 2 * L::KV + L::P);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const ExecFlashTile t = tiles[blockIdx.x];
    const int h = blockIdx.y, g = h / (nh / nkv);
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, len = t.len, q0 = t.start;
    const bf16 *base = qkv + (size_t)t.t0 * ld;
    float *alpha_w = rows + warp * 32, *linv_w = alpha_w + 16, *ridm = rows + NW * 32;

    for (int i = threadIdx.x; i < 256; i += NT) ridm[i] = (float)(i >> 4);
    load_tile<HDP>(Qs, base, q0, len, h * hd, ld, hd);
    __syncthreads();
    FragC rid, of[NF];
    FragA qf[NF];
    wmma::load_matrix_sync(rid, ridm, 16, wmma::mem_row_major);
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * LDQ + kk * 16, LDQ);
        wmma::fill_fragment(of[kk], 0.0f);
    }
    __syncthreads(); /* region A becomes the per-warp score rows */
    float *Sw = Sall + warp * 16 * LDS;
    bf16 *Pw = Pall + warp * 16 * LDP;
    const int r = lane >> 1, half = lane & 1, qi = q0 + warp * 16 + r;
    float m_run = -INFINITY, l_run = 0.0f;
    const int kv_end = causal ? min(len, q0 + TL) : len;
    for (int kv0 = 0; kv0 < kv_end; kv0 += TL) {
        if (kv0 > 0) __syncthreads(); /* every warp is done with the last K, V tile */
        load_tile<HDP>(Ks, base, kv0, len, (nh + g) * hd, ld, hd);
        load_tile<HDP>(Vs, base, kv0, len, (nh + nkv + g) * hd, ld, hd);
        __syncthreads();
        /* S[16 rows, 64 keys] = Q K^T: K rows as a column-major B (B[d][key] = K[key][d]) */
#pragma unroll
        for (int j = 0; j < TL / 16; j++) {
            FragC sf;
            wmma::fill_fragment(sf, 0.0f);
#pragma unroll
            for (int kk = 0; kk < NF; kk++) {
                FragBT kf;
                wmma::load_matrix_sync(kf, Ks + j * 16 * LDQ + kk * 16, LDQ);
                wmma::mma_sync(sf, qf[kk], kf, sf);
            }
            wmma::store_matrix_sync(Sw + j * 16, sf, LDS, wmma::mem_row_major);
        }
        __syncwarp();
        /* online softmax: lanes 2r, 2r+1 share row r, 32 keys each */
        float s[32], mx = -INFINITY;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int col = half * 32 + c, key = kv0 + col;
            float v = Sw[r * LDS + col] * scale;
            if (key >= len || (causal && key > qi)) v = -INFINITY;
            s[c] = v;
            mx = fmaxf(mx, v);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float m_new = fmaxf(m_run, mx), mb = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = __expf(m_run - mb);
        float ps = 0.0f;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const float p = s[c] == -INFINITY ? 0.0f : __expf(s[c] - mb);
            ps += p;
            Pw[r * LDP + half * 32 + c] = __float2bfloat16(p);
        }
        ps += __shfl_xor_sync(0xffffffffu, ps, 1);
        l_run = l_run * alpha + ps;
        m_run = m_new;
        if (half == 0) alpha_w[r] = alpha;
        __syncwarp();
        /* O = diag(alpha) O + P V */
#pragma unroll
        for (int f = 0; f < NF; f++)
#pragma unroll
            for (int i = 0; i < of[f].num_elements; i++) of[f].x[i] *= alpha_w[(int)rid.x[i]];
#pragma unroll
        for (int kk = 0; kk < TL / 16; kk++) {
            FragA pf;
            wmma::load_matrix_sync(pf, Pw + kk * 16, LDP);
#pragma unroll
            for (int f = 0; f < NF; f++) {
                FragB vf;
                wmma::load_matrix_sync(vf, Vs + kk * 16 * LDQ + f * 16, LDQ);
                wmma::mma_sync(of[f], pf, vf, of[f]);
            }
        }
        __syncwarp(); /* Sw, Pw and alpha_w are rewritten next round */
    }
    if (half == 0) {
        linv_w[r] = l_run > 0.0f ? 1.0f / l_run : 0.0f;
        if (qi < len) lse[(size_t)h * T + t.t0 + qi] = m_run + __logf(l_run);
    }
    __syncwarp();
#pragma unroll
    for (int f = 0; f < NF; f++)
#pragma unroll
        for (int i = 0; i < of[f].num_elements; i++) of[f].x[i] *= linv_w[(int)rid.x[i]];
    __syncthreads(); /* K, V are free: stage O there (4 x 16 x (HDP + 4) floats fit in 2 tiles) */
    float *Ow = (float *)Ks + warp * 16 * (HDP + 4);
#pragma unroll
    for (int f = 0; f < NF; f++) wmma::store_matrix_sync(Ow + f * 16, of[f], HDP + 4, wmma::mem_row_major);
    __syncwarp();
    for (int idx = lane; idx < 16 * hd; idx += 32) {
        const int rr = idx / hd, c = idx % hd, row = q0 + warp * 16 + rr;
        if (row < len) att[(size_t)(t.t0 + row) * ldo + h * hd + c] = __float2bfloat16(Ow[rr * (HDP + 4) + c]);
    }
}

/* ---- backward -------------------------------------------------------------------------------- */

template <int HDP>
struct Bwd {
    static constexpr int LDQ = HDP + 8;
    static constexpr size_t TILE = r128((size_t)TL * LDQ * 2); /* K, V, Q, dO in this order */
    static constexpr size_t PT = r128((size_t)NW * 16 * LDP * 2); /* per warp: P^T rows of its keys */
    static constexpr size_t DST = r128((size_t)TL * LDP * 2);     /* the block's dS^T [64 keys][64 q] */
    static constexpr size_t STG = r128((size_t)NW * 16 * LDG * 4); /* per warp 16x16 fp32 staging */
    static constexpr size_t VEC = r128((size_t)(2 * TL + 512) * 4); /* lse, dvec of the q tile; rid, cid */
    static constexpr size_t BYTES = 4 * TILE + PT + DST + STG + VEC;
};

/* Stage a 16x16 fp32 fragment and write it as bf16 at dst (row stride ldd). */
__device__ __forceinline__ void frag_to_bf16(bf16 *dst, int ldd, const FragC &f, float *stg, int lane) {
    wmma::store_matrix_sync(stg, f, LDG, wmma::mem_row_major);
    __syncwarp();
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int e = lane * 8 + i, rr = e >> 4, cc = e & 15;
        dst[rr * ldd + cc] = __float2bfloat16(stg[rr * LDG + cc]);
    }
    __syncwarp();
}

template <int HDP>
__global__ void __launch_bounds__(NT) flash_bwd_kernel(bf16 *dqkv, float *dq, const bf16 *datt, const bf16 *qkv,
                                                       const float *lse, const float *dvec,
                                                       const ExecFlashTile *tiles, int T, int nh, int nkv, int hd,
                                                       int causal, float scale) {
    typedef Bwd<HDP> L;
    constexpr int LDQ = L::LDQ, NF = HDP / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + L::TILE);
    bf16 *Qs = (bf16 *)(smem + 2 * L::TILE), *dOs = (bf16 *)(smem + 3 * L::TILE);
    bf16 *PTall = (bf16 *)(smem + 4 * L::TILE);
    bf16 *dST = (bf16 *)(smem + 4 * L::TILE + L::PT);
    float *stg_all = (float *)(smem + 4 * L::TILE + L::PT + L::DST);
    float *vec = (float *)(smem + 4 * L::TILE + L::PT + L::DST + L::STG);
    float *lse_s = vec, *dvec_s = vec + TL, *ridm = vec + 2 * TL, *cidm = ridm + 256;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const ExecFlashTile t = tiles[blockIdx.x];
    const int g = blockIdx.y, grp = nh / nkv;
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd, len = t.len, k0 = t.start;
    const bf16 *base = qkv + (size_t)t.t0 * ld, *dbase = datt + (size_t)t.t0 * ldo;
    bf16 *PTw = PTall + warp * 16 * LDP;
    float *stg = stg_all + warp * 16 * LDG;

    for (int i = threadIdx.x; i < 256; i += NT) ridm[i] = (float)(i >> 4), cidm[i] = (float)(i & 15);
    load_tile<HDP>(Ks, base, k0, len, (nh + g) * hd, ld, hd);
    load_tile<HDP>(Vs, base, k0, len, (nh + nkv + g) * hd, ld, hd);
    __syncthreads();
    FragC rid, cid, dk[NF], dv[NF];
    wmma::load_matrix_sync(rid, ridm, 16, wmma::mem_row_major);
    wmma::load_matrix_sync(cid, cidm, 16, wmma::mem_row_major);
#pragma unroll
    for (int f = 0; f < NF; f++) wmma::fill_fragment(dk[f], 0.0f), wmma::fill_fragment(dv[f], 0.0f);
    for (int h = g * grp; h < (g + 1) * grp; h++) {
        for (int q0 = causal ? k0 : 0; q0 < len; q0 += TL) {
            __syncthreads(); /* the last round's Q, dO, dS^T are no longer read */
            load_tile<HDP>(Qs, base, q0, len, h * hd, ld, hd);
            load_tile<HDP>(dOs, dbase, q0, len, h * hd, ldo, hd);
            for (int i = threadIdx.x; i < TL; i += NT) {
                const bool ok = q0 + i < len;
                lse_s[i] = ok ? lse[(size_t)h * T + t.t0 + q0 + i] : 0.0f;
                dvec_s[i] = ok ? dvec[(size_t)h * T + t.t0 + q0 + i] : 0.0f;
            }
            __syncthreads();
            /* per 16 queries j: S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys, then
             * P^T and dS^T elementwise in registers (rid: key row, cid: query column) */
#pragma unroll
            for (int j = 0; j < TL / 16; j++) {
                FragC sf, df;
                wmma::fill_fragment(sf, 0.0f);
                wmma::fill_fragment(df, 0.0f);
#pragma unroll
                for (int kk = 0; kk < NF; kk++) {
                    FragA ka, va;
                    FragBT qb, ob;
                    wmma::load_matrix_sync(ka, Ks + warp * 16 * LDQ + kk * 16, LDQ);
                    wmma::load_matrix_sync(qb, Qs + j * 16 * LDQ + kk * 16, LDQ);
                    wmma::mma_sync(sf, ka, qb, sf);
                    wmma::load_matrix_sync(va, Vs + warp * 16 * LDQ + kk * 16, LDQ);
                    wmma::load_matrix_sync(ob, dOs + j * 16 * LDQ + kk * 16, LDQ);
                    wmma::mma_sync(df, va, ob, df);
                }
#pragma unroll
                for (int i = 0; i < sf.num_elements; i++) {
                    const int kr = (int)rid.x[i], qc = j * 16 + (int)cid.x[i];
                    const int key = k0 + warp * 16 + kr, q = q0 + qc;
                    const bool ok = key < len && q < len && (!causal || q >= key);
                    const float p = ok ? __expf(sf.x[i] * scale - lse_s[qc]) : 0.0f;
                    sf.x[i] = p;
                    df.x[i] = p * (df.x[i] - dvec_s[qc]) * scale;
                }
                frag_to_bf16(PTw + j * 16, LDP, sf, stg, lane);
                frag_to_bf16(dST + warp * 16 * LDP + j * 16, LDP, df, stg, lane);
            }
            /* dV += P^T dO, dK += dS^T Q (this warp's keys; k runs over the 64 queries) */
#pragma unroll
            for (int kk = 0; kk < TL / 16; kk++) {
                FragA pa, sa;
                wmma::load_matrix_sync(pa, PTw + kk * 16, LDP);
                wmma::load_matrix_sync(sa, dST + warp * 16 * LDP + kk * 16, LDP);
#pragma unroll
                for (int f = 0; f < NF; f++) {
                    FragB ob, qb;
                    wmma::load_matrix_sync(ob, dOs + kk * 16 * LDQ + f * 16, LDQ);
                    wmma::mma_sync(dv[f], pa, ob, dv[f]);
                    wmma::load_matrix_sync(qb, Qs + kk * 16 * LDQ + f * 16, LDQ);
                    wmma::mma_sync(dk[f], sa, qb, dk[f]);
                }
            }
            __syncthreads(); /* every warp's dS^T rows are in */
            /* dQ[16 queries of warp, HDP] += dS K: dS = (dS^T)^T read column-major */
            if (q0 + warp * 16 < len) {
                for (int f = 0; f < NF; f++) {
                    FragC qf;
                    wmma::fill_fragment(qf, 0.0f);
#pragma unroll
                    for (int kk = 0; kk < TL / 16; kk++) {
                        FragAT sa;
                        FragB kb;
                        wmma::load_matrix_sync(sa, dST + kk * 16 * LDP + warp * 16, LDP);
                        wmma::load_matrix_sync(kb, Ks + kk * 16 * LDQ + f * 16, LDQ);
                        wmma::mma_sync(qf, sa, kb, qf);
                    }
                    wmma::store_matrix_sync(stg, qf, LDG, wmma::mem_row_major);
                    __syncwarp();
#pragma unroll
                    for (int i = 0; i < 8; i++) {
                        const int e = lane * 8 + i, rr = e >> 4, cc = e & 15;
                        const int q = q0 + warp * 16 + rr, col = f * 16 + cc;
                        if (q < len && col < hd) atomicAdd(&dq[(size_t)(t.t0 + q) * ldo + h * hd + col], stg[rr * LDG + cc]);
                    }
                    __syncwarp();
                }
            }
        }
    }
    /* dK, dV of this warp's 16 keys: stage through the (now free) Q and dO tiles */
    __syncthreads();
    float *ow = (float *)Qs + warp * 16 * (HDP + 4);
#pragma unroll
    for (int which = 0; which < 2; which++) {
        const int col0 = (which ? nh + nkv + g : nh + g) * hd;
#pragma unroll
        for (int f = 0; f < NF; f++)
            wmma::store_matrix_sync(ow + f * 16, which ? dv[f] : dk[f], HDP + 4, wmma::mem_row_major);
        __syncwarp();
        for (int idx = lane; idx < 16 * hd; idx += 32) {
            const int rr = idx / hd, c = idx % hd, row = k0 + warp * 16 + rr;
            if (row < len) {
                bf16 *o = &dqkv[(size_t)(t.t0 + row) * ld + col0 + c];
                *o = __float2bfloat16(__bfloat162float(*o) + ow[rr * (HDP + 4) + c]);
            }
        }
        __syncwarp();
    }
}

/* dvec[h][t] = sum_d dO[t, h, d] O[t, h, d]: one warp per (row, head), grid-stride. */
__global__ void flash_dvec_kernel(float *dvec, const bf16 *dO, const bf16 *O, int T, int nh, int hd) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < (int64_t)T * nh; w += warps) {
        const int64_t row = w / nh;
        const int h = (int)(w % nh);
        const size_t o = (size_t)row * nh * hd + (size_t)h * hd;
        float s = 0.0f;
        for (int c = lane; c < hd; c += 32) s += __bfloat162float(dO[o + c]) * __bfloat162float(O[o + c]);
        s = warp_sum(s);
        if (lane == 0) dvec[(size_t)h * T + row] = s;
    }
}

/* dqkv[t, Q columns] += dq[t, :] in bf16. */
__global__ void flash_dq_kernel(bf16 *dqkv, const float *dq, int T, int ld, int ldo) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)T * ldo;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t row = i / ldo, c = i % ldo;
        bf16 *o = &dqkv[row * ld + c];
        *o = __float2bfloat16(__bfloat162float(*o) + dq[i]);
    }
}

template <int HDP>
OsStatus launch_fwd(bf16 *att, float *lse, const bf16 *qkv, const ExecFlashTile *tiles, uint32_t ntiles, int T,
                    int nh, int nkv, int hd, int causal, cudaStream_t s) {
    OsStatus st = OS_OK;
    static int attr_set = 0; /* one process, one thread drives the device */
    const size_t bytes = Fwd<HDP>::BYTES;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_kernel<HDP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
        attr_set = 1;
    }
    flash_fwd_kernel<HDP><<<dim3(ntiles, (unsigned)nh), NT, bytes, s>>>(att, lse, qkv, tiles, T, nh, nkv, hd, causal,
                                                                        1.0f / sqrtf((float)hd));
    LAUNCH_CHECK();
fail:
    return st;
}

template <int HDP>
OsStatus launch_bwd(bf16 *dqkv, float *dq, const bf16 *datt, const bf16 *qkv, const float *lse, const float *dvec,
                    const ExecFlashTile *tiles, uint32_t ntiles, int T, int nh, int nkv, int hd, int causal,
                    cudaStream_t s) {
    OsStatus st = OS_OK;
    static int attr_set = 0;
    const size_t bytes = Bwd<HDP>::BYTES;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_kernel<HDP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
        attr_set = 1;
    }
    flash_bwd_kernel<HDP><<<dim3(ntiles, (unsigned)nkv), NT, bytes, s>>>(dqkv, dq, datt, qkv, lse, dvec, tiles, T, nh,
                                                                         nkv, hd, causal, 1.0f / sqrtf((float)hd));
    LAUNCH_CHECK();
fail:
    return st;
}

OsStatus check_shape(int T, int nh, int nkv, int hd) {
    if (T < 0 || nh <= 0 || nkv <= 0 || nh % nkv || !exec_flash_supported(hd))
        return os_fail(OS_ERR_INTERNAL, "flash attention", "shape", "use the cuBLAS path (exec/attn.h)",
                       "T %d, %d heads, %d KV groups, head dim %d not supported", T, nh, nkv, hd);
    return OS_OK;
}

} // namespace

// launchers -------------------------------------------------------------------------------------

OsStatus exec_flash_forward(bf16 *att, float *lse, const bf16 *qkv, const ExecFlashTile *tiles, uint32_t ntiles,
                            int T, int nh, int nkv, int hd, int causal, cudaStream_t s) {
    OsStatus st = check_shape(T, nh, nkv, hd);
    if (st != OS_OK || ntiles == 0) return st;
    switch (exec_flash_hdp(hd)) {
    case 16: return launch_fwd<16>(att, lse, qkv, tiles, ntiles, T, nh, nkv, hd, causal, s);
    case 32: return launch_fwd<32>(att, lse, qkv, tiles, ntiles, T, nh, nkv, hd, causal, s);
    case 64: return launch_fwd<64>(att, lse, qkv, tiles, ntiles, T, nh, nkv, hd, causal, s);
    default: return launch_fwd<128>(att, lse, qkv, tiles, ntiles, T, nh, nkv, hd, causal, s);
    }
}

OsStatus exec_flash_backward(bf16 *dqkv, float *dq, float *dvec, const bf16 *datt, const bf16 *qkv, const bf16 *att,
                             const float *lse, const ExecFlashTile *tiles, uint32_t ntiles, int T, int nh, int nkv,
                             int hd, int causal, cudaStream_t s) {
    OsStatus st = check_shape(T, nh, nkv, hd);
    const int ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    if (st != OS_OK || ntiles == 0 || T == 0) return st;
    CUDA_CHECK(cudaMemsetAsync(dq, 0, (size_t)T * ldo * sizeof(float), s));
    flash_dvec_kernel<<<exec_blocks((size_t)T * nh * 32, 256), 256, 0, s>>>(dvec, datt, att, T, nh, hd);
    LAUNCH_CHECK();
    switch (exec_flash_hdp(hd)) {
    case 16: OS_CHECK(launch_bwd<16>(dqkv, dq, datt, qkv, lse, dvec, tiles, ntiles, T, nh, nkv, hd, causal, s)); break;
    case 32: OS_CHECK(launch_bwd<32>(dqkv, dq, datt, qkv, lse, dvec, tiles, ntiles, T, nh, nkv, hd, causal, s)); break;
    case 64: OS_CHECK(launch_bwd<64>(dqkv, dq, datt, qkv, lse, dvec, tiles, ntiles, T, nh, nkv, hd, causal, s)); break;
    default: OS_CHECK(launch_bwd<128>(dqkv, dq, datt, qkv, lse, dvec, tiles, ntiles, T, nh, nkv, hd, causal, s)); break;
    }
    flash_dq_kernel<<<exec_blocks((size_t)T * ldo, 256), 256, 0, s>>>(dqkv, dq, T, ld, ldo);
    LAUNCH_CHECK();
fail:
    return st;
}

// self-tests against the float64 reference (exec/flash.h) ---------------------------------------

namespace {
typedef struct {
    int nseq;
    uint64_t len[6];
    int nh, nkv, hd;
} StShape;
/* odd lengths, length 1, tile edges, several packed sequences, GQA / MQA, every padded head dim */
const StShape ST_SHAPES[] = {
    {3, {1, 37, 2}, 4, 2, 16}, {3, {63, 64, 65}, 2, 2, 32}, {2, {130, 7}, 4, 1, 24},
    {2, {200, 1}, 2, 1, 64},   {2, {70, 3}, 2, 2, 128},     {1, {257}, 4, 2, 128},
};

/* One shape, one mask: forward (and backward when bwd) on the device vs the reference. */
OsStatus st_one(double *worst, const StShape *sh, int causal, int bwd) {
    OsStatus st = OS_OK;
    uint64_t T = 0;
    for (int q = 0; q < sh->nseq; q++) T += sh->len[q];
    const size_t ld = (size_t)(sh->nh + 2 * sh->nkv) * sh->hd, ldo = (size_t)sh->nh * sh->hd;
    const size_t nt = (size_t)exec_flash_max_tiles(T);
    float *hq = NULL, *ho = NULL, *got = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *dq = NULL, *dd = NULL, *da = NULL, *dg = NULL;
    float *dl = NULL, *dqa = NULL, *dv = NULL;
    ExecFlashTile *ft = NULL, *bt = NULL, *dft = NULL, *dbt = NULL;
    uint32_t n = 0;
    hq = (float *)malloc(T * ld * 4), ho = (float *)malloc(T * ldo * 4), got = (float *)malloc(T * ld * 4);
    ref = (double *)malloc(T * ld * 8), hb = (bf16 *)malloc(T * ld * 2);
    ft = (ExecFlashTile *)malloc(nt * sizeof *ft), bt = (ExecFlashTile *)malloc(nt * sizeof *bt);
    ALLOC_CHECK(hq && ho && got && ref && hb && ft && bt);
    for (size_t i = 0; i < T * ld; i++) hq[i] = 2.0f * exec_test_value(21, i);
    for (size_t i = 0; i < T * ldo; i++) ho[i] = exec_test_value(22, i);
    n = exec_flash_tiles(ft, bt, sh->len, (uint32_t)sh->nseq, causal);
    CUDA_CHECK(cudaMalloc(&dq, T * ld * 2));
    CUDA_CHECK(cudaMalloc(&dg, T * ld * 2));
    CUDA_CHECK(cudaMalloc(&dd, T * ldo * 2));
    CUDA_CHECK(cudaMalloc(&da, T * ldo * 2));
    CUDA_CHECK(cudaMalloc(&dl, (size_t)sh->nh * T * 4));
    CUDA_CHECK(cudaMalloc(&dqa, T * ldo * 4));
    CUDA_CHECK(cudaMalloc(&dv, (size_t)sh->nh * T * 4));
    CUDA_CHECK(cudaMalloc(&dft, nt * sizeof *dft));
    CUDA_CHECK(cudaMalloc(&dbt, nt * sizeof *dbt));
    CUDA_CHECK(cudaMemcpy(dft, ft, n * sizeof *ft, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dbt, bt, n * sizeof *bt, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < T * ld; i++) hb[i] = __float2bfloat16(hq[i]);
    CUDA_CHECK(cudaMemcpy(dq, hb, T * ld * 2, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < T * ldo; i++) hb[i] = __float2bfloat16(ho[i]);
    CUDA_CHECK(cudaMemcpy(dd, hb, T * ldo * 2, cudaMemcpyHostToDevice));
    OS_CHECK(exec_flash_forward(da, dl, dq, dft, n, (int)T, sh->nh, sh->nkv, sh->hd, causal, 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    if (!bwd) {
        CUDA_CHECK(cudaMemcpy(hb, da, T * ldo * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < T * ldo; i++) got[i] = __bfloat162float(hb[i]);
        exec_attn_ref_forward(ref, hq, sh->len, (uint32_t)sh->nseq, sh->nh, sh->nkv, sh->hd, causal);
        *worst = fmax(*worst, exec_worst(got, ref, T * ldo, 2e-2, 2e-2));
    } else {
        CUDA_CHECK(cudaMemset(dg, 0, T * ld * 2));
        OS_CHECK(exec_flash_backward(dg, dqa, dv, dd, dq, da, dl, dbt, n, (int)T, sh->nh, sh->nkv, sh->hd, causal, 0));
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemcpy(hb, dg, T * ld * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < T * ld; i++) got[i] = __bfloat162float(hb[i]);
        exec_attn_ref_backward(ref, ho, hq, sh->len, (uint32_t)sh->nseq, sh->nh, sh->nkv, sh->hd, causal);
        *worst = fmax(*worst, exec_worst(got, ref, T * ld, 3e-2, 3e-2));
    }
fail:
    cudaFree(dq), cudaFree(dg), cudaFree(dd), cudaFree(da), cudaFree(dl), cudaFree(dqa), cudaFree(dv);
    cudaFree(dft), cudaFree(dbt);
    free(hq), free(ho), free(got), free(ref), free(hb), free(ft), free(bt);
    return st;
}

OsStatus st_all(double *worst, int bwd) {
    OsStatus st = OS_OK;
    *worst = 0;
    for (size_t i = 0; i < sizeof ST_SHAPES / sizeof ST_SHAPES[0]; i++)
        for (int causal = 0; causal < 2; causal++) OS_CHECK(st_one(worst, &ST_SHAPES[i], causal, bwd));
fail:
    if (st != OS_OK) *worst = INFINITY;
    return st;
}
} // namespace

extern "C" OsStatus exec_st_flash_forward(double *worst) { return st_all(worst, 0); }
extern "C" OsStatus exec_st_flash_backward(double *worst) { return st_all(worst, 1); }
