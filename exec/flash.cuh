/* flash.cuh — launchers of the fused variable-length attention kernels (exec/flash.cu; the
 * algorithm and its CPU emulation: exec/flash.h). One forward launch per layer covers every
 * sequence of a rank: grid (tiles, heads); the backward is a dO.O row-sum kernel, one launch
 * over (key tiles, KV groups) and an fp32 -> bf16 pass for dQ. Tensor cores through WMMA
 * (bf16 16x16x16, fp32 accumulation) with every tile staged in shared memory, so each layout
 * is explicit; head dims padded to 16/32/64/128 (zero columns).
 * Only for the .cu files of exec/. Device pointers; tiles: a device copy of exec_flash_tiles'
 * list (forward order for the forward, backward order for the backward). */
#ifndef OS_EXEC_FLASH_CUH
#define OS_EXEC_FLASH_CUH

#include "exec/kernels/common.cuh"

extern "C" {
#include "exec/flash.h"
}

/* att [T, nh hd] = attention of qkv [T, (nh + 2 nkv) hd]; lse [nh, T] fp32 for the backward. */
OsStatus exec_flash_forward(bf16 *att, float *lse, const bf16 *qkv, const ExecFlashTile *tiles, uint32_t ntiles,
                            int T, int nh, int nkv, int hd, int causal, cudaStream_t s);
/* dqkv += the gradient from datt; att, lse from the forward; dq [T, nh hd] fp32 and dvec
 * [nh, T] fp32 are scratch (overwritten). */
OsStatus exec_flash_backward(bf16 *dqkv, float *dq, float *dvec, const bf16 *datt, const bf16 *qkv, const bf16 *att,
                             const float *lse, const ExecFlashTile *tiles, uint32_t ntiles, int T, int nh, int nkv,
                             int hd, int causal, cudaStream_t s);

#endif
