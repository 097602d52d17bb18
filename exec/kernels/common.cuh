/* common.cuh — shared by the exec/kernels files: bf16 type, warp reductions, the selftest
 * comparison (STYLE.md habit 6: |gpu - ref| <= atol + rtol |ref|), launch geometry. */
#ifndef OS_EXEC_KERNELS_COMMON_CUH
#define OS_EXEC_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "exec/check.cuh"
#include "exec/tol.h" /* exec_worst: the self-tests' comparison */

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static inline unsigned exec_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : (b > 65535u * 16 ? 65535u * 16 : b));
}

/* Deterministic test values in [-1, 1), bf16-exact. */
static inline float exec_test_value(uint64_t seed, uint64_t i) {
    uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    float u = (float)(uint32_t)(x >> 40) * (1.0f / 8388608.0f) - 1.0f;
    return __bfloat162float(__float2bfloat16(u));
}

#endif
