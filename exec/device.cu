/* device.cu — the GPU module's side of gpu.h: device count (with the driver/runtime and
 * driver/cuBLAS version checks a bare machine needs), device facts, and the libraries it
 * found with their paths (doctor). */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "exec/check.cuh"

extern "C" {
#include "exec/gpumod.h"
}

OsStatus gm_count(int *n, char *why, size_t why_len);
OsStatus gm_info(ExecDeviceInfo *info, int device);
OsStatus gm_libs(ExecGpuLibs *out);

static void ver(char *out, size_t cap, int v) { snprintf(out, cap, "%d.%d", v / 1000, (v % 1000) / 10); }

/* The path of a loaded object whose file name starts with `stem` ("" when none). */
typedef struct {
    const char *stem;
    char *out;
    size_t cap;
} Find;
static int find_cb(struct dl_phdr_info *i, size_t size, void *data) {
    Find *f = (Find *)data;
    (void)size;
    const char *base = i->dlpi_name ? strrchr(i->dlpi_name, '/') : NULL;
    base = base ? base + 1 : i->dlpi_name;
    if (base && !strncmp(base, f->stem, strlen(f->stem))) {
        snprintf(f->out, f->cap, "%s", i->dlpi_name);
        return 1;
    }
    return 0;
}
static void loaded_path(const char *stem, char *out, size_t cap) {
    Find f = {stem, out, cap};
    out[0] = '\0';
    dl_iterate_phdr(find_cb, &f);
}

static int cublas_version(void) {
    int ma = 0, mi = 0, pa = 0;
    if (cublasGetProperty(MAJOR_VERSION, &ma) != CUBLAS_STATUS_SUCCESS) return 0;
    cublasGetProperty(MINOR_VERSION, &mi);
    cublasGetProperty(PATCH_LEVEL, &pa);
    return ma * 10000 + mi * 100 + pa;
}

OsStatus gm_count(int *n, char *why, size_t why_len) {
    int c = 0, drv = 0, rt = 0;
    char a[16], b[16], msg[384];
    cudaError_t e = cudaGetDeviceCount(&c);
    *n = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (e == cudaErrorInsufficientDriver && drv > 0) {
        ver(a, sizeof a, drv), ver(b, sizeof b, rt);
        snprintf(msg, sizeof msg, "the CUDA driver supports CUDA %s, this module's runtime is CUDA %s", a, b);
        (void)cudaGetLastError();
        if (why && why_len) snprintf(why, why_len, "%s", msg);
        return os_fail(OS_ERR_NODEV, "cuda", "driver", "update the NVIDIA driver, or build the module with the CUDA "
                       "the driver supports", "%s", msg);
    }
    if (e != cudaSuccess || c <= 0) {
        /* no driver, no device, a broken install: all mean "no device" to orchsim */
        if (drv == 0) snprintf(msg, sizeof msg, "no NVIDIA driver: libcuda.so.1 not found (%s)", cudaGetErrorString(e));
        else snprintf(msg, sizeof msg, "%s", e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device visible");
        if (why && why_len) snprintf(why, why_len, "%s", msg);
        (void)cudaGetLastError(); /* clear it so later calls start clean */
        return os_fail(OS_ERR_NODEV, "cuda", "cudaGetDeviceCount", "run on a machine with an NVIDIA GPU", "%s", msg);
    }
    {
        /* cuBLAS from a wheel built for a newer CUDA major version than the driver runs */
        int cc = (int)cublasGetCudartVersion();
        if (cc / 1000 > drv / 1000) {
            char path[512];
            loaded_path("libcublas.so", path, sizeof path);
            ver(a, sizeof a, cc), ver(b, sizeof b, drv);
            snprintf(msg, sizeof msg, "%.250s is built for CUDA %s, the driver supports CUDA %s",
                     path[0] ? path : "libcublas.so.13", a, b);
            if (why && why_len) snprintf(why, why_len, "%s", msg);
            return os_fail(OS_ERR_NODEV, "cublas", "version", "install the cuBLAS wheel for the driver's CUDA "
                           "(pip install 'nvidia-cublas-cu12' for a CUDA 12 driver) or update the driver", "%s", msg);
        }
    }
    *n = c;
    if (why && why_len) why[0] = '\0';
    return OS_OK;
}

OsStatus gm_info(ExecDeviceInfo *info, int device) {
    OsStatus st = OS_OK;
    cudaDeviceProp p;
    int clk = 0, mclk = 0;
    memset(info, 0, sizeof *info);
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    snprintf(info->name, sizeof info->name, "%.127s", p.name);
    info->cc_major = p.major, info->cc_minor = p.minor, info->sms = p.multiProcessorCount;
    info->mem_bytes = (double)p.totalGlobalMem;
    /* clockRate/memoryClockRate left cudaDeviceProp in CUDA 13: ask the attributes */
    CUDA_CHECK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, device));
    info->sm_clock_mhz = clk / 1000.0, info->mem_clock_mhz = mclk / 1000.0;
    CUDA_CHECK(cudaRuntimeGetVersion(&info->runtime_version));
    CUDA_CHECK(cudaDriverGetVersion(&info->driver_version));
    info->cublas_version = cublas_version();
    {
        const ExecNccl *N = NULL;
        if (exec_nccl(&N) == OS_OK) info->nccl_version = N->version;
        else os_clear_error(); /* NCCL is optional here: 0 says "not loadable" */
    }
fail:
    return st;
}

OsStatus gm_libs(ExecGpuLibs *o) {
    const ExecNccl *N = NULL;
    int n = 0;
    memset(o, 0, sizeof *o);
    cudaRuntimeGetVersion(&o->runtime_version);
    if (cudaDriverGetVersion(&o->driver_version) != cudaSuccess || o->driver_version == 0)
        snprintf(o->driver_err, sizeof o->driver_err, "no CUDA driver (libcuda.so.1 not loadable)");
    /* loading libcuda happens at the first runtime call: count makes it */
    if (gm_count(&n, NULL, 0) != OS_OK) {
        if (!o->driver_err[0]) snprintf(o->driver_err, sizeof o->driver_err, "%s", os_last_error());
        os_clear_error();
    }
    loaded_path("libcuda.so", o->libcuda, sizeof o->libcuda);
    o->cublas_version = cublas_version();
    o->cublas_cuda = (int)cublasGetCudartVersion();
    loaded_path("libcublas.so", o->cublas, sizeof o->cublas);
    loaded_path("libcublasLt.so", o->cublaslt, sizeof o->cublaslt);
    if (exec_nccl(&N) == OS_OK) {
        o->nccl_version = N->version;
        snprintf(o->nccl, sizeof o->nccl, "%s", N->path);
    } else {
        snprintf(o->nccl_err, sizeof o->nccl_err, "%s", os_last_error());
        os_clear_error();
    }
    return OS_OK;
}
