/* cmd_doctor.c — `orchsim doctor`: what the GPU backend finds on this machine, without running
 * anything on a device: the GPU module and how it was built, the CUDA driver and runtime,
 * cuBLAS and NCCL with their versions and the paths they were loaded from, libcuda, and the
 * devices. Ends with one error line and exit 1 for the first problem: the module (or a
 * library it needs) missing, no driver or device, a driver older than the module's CUDA, a
 * cuBLAS built for a newer CUDA than the driver, NCCL not loadable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/gpu.h"
#include "exec/gpumod.h"
#include "exec/module.h"
#include "base/util.h"

static void v3(char *out, size_t cap, int v, int cuda) {
    if (v <= 0) snprintf(out, cap, "-");
    else if (cuda) snprintf(out, cap, "%d.%d", v / 1000, v % 1000 / 10);
    else snprintf(out, cap, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

OsStatus cmd_doctor(int argc, char **argv) {
    OsStatus st = OS_OK;
    const OptSpec specs[] = {{NULL, 0, OPT_FLAG, NULL, NULL, NULL, 0, 0}};
    const CmdHelp help = {
        "doctor", "orchsim doctor",
        "print the GPU module, CUDA driver/runtime, cuBLAS and NCCL versions and paths, and the devices",
        "Loads the GPU module as calibrate/validate/selftest do and says what it found. The libraries\n"
        "come from the loader's path: with pip wheels, LD_LIBRARY_PATH must name\n"
        "site-packages/nvidia/cu13/lib (cuBLAS; CUDA 12: nvidia/cublas/lib) and nvidia/nccl/lib\n"
        "(gpu-bundle/run.sh sets it). Exit 1 with one error line for the first problem found."};
    ExecGpuLibs L;
    char self[1024], a[32], b[32], why[512] = "";
    int n = 0;
    OS_CHECK(opts_parse(specs, 0, &help, argc, argv, NULL, 0, 0, NULL));
    exec_module_self_dir(self, sizeof self);
    printf("# orchsim doctor: orchsim %s in %s\n", ORCHSIM_VERSION, self[0] ? self : "?");
    printf("LD_LIBRARY_PATH  %s\n", getenv("LD_LIBRARY_PATH") ? getenv("LD_LIBRARY_PATH") : "(unset)");
    if (exec_gpu_libs(&L) != OS_OK) {
        printf("module           not loaded\n");
        OS_FAIL(OS_ERR_NODEV, "doctor", "GPU module", NULL, "%s", os_last_error());
    }
    printf("module           %s\n", L.module);
    printf("module build     %s\n", L.build);
    v3(a, sizeof a, L.runtime_version, 1);
    printf("CUDA runtime     %s (static cudart inside the module)\n", a);
    v3(a, sizeof a, L.driver_version, 1);
    printf("CUDA driver      %s%s%s\n", a, L.driver_err[0] ? "  " : "", L.driver_err);
    printf("libcuda          %s\n", L.libcuda[0] ? L.libcuda : "(not loaded)");
    v3(a, sizeof a, L.cublas_version, 0), v3(b, sizeof b, L.cublas_cuda, 1);
    printf("cuBLAS           %s (built for CUDA %s) %s\n", a, b, L.cublas[0] ? L.cublas : "");
    printf("cuBLASLt         %s\n", L.cublaslt[0] ? L.cublaslt : "(not loaded)");
    if (L.nccl_version) printf("NCCL             %d.%d.%d %s\n", L.nccl_version / 10000, L.nccl_version / 100 % 100,
                               L.nccl_version % 100, L.nccl);
    else printf("NCCL             not loadable: %s\n", L.nccl_err);
    if (exec_gpu_count(&n, why, sizeof why) != OS_OK || n <= 0) {
        printf("devices          none: %s\n", why);
        os_clear_error();
        OS_FAIL(OS_ERR_NODEV, "doctor", NULL, "run on a machine with an NVIDIA GPU and its driver",
                "no CUDA device (%s)", why);
    }
    for (int d = 0; d < n; d++) {
        ExecDeviceInfo i;
        if (exec_gpu_info(&i, d) != OS_OK) {
            printf("device %d         %s\n", d, os_last_error());
            os_clear_error();
            continue;
        }
        printf("device %d         %s, cc %d.%d, %d SMs, %.1f GiB, SM clock %.0f MHz, memory clock %.0f MHz\n", d,
               i.name, i.cc_major, i.cc_minor, i.sms, i.mem_bytes / 1073741824.0, i.sm_clock_mhz, i.mem_clock_mhz);
    }
    if (!L.nccl_version)
        OS_FAIL(OS_ERR_NODEV, "doctor", "NCCL", EXEC_GPU_LIB_HINT,
                "%s (one rank, --emulate, calibrate and selftest run without it)", L.nccl_err);
    printf("# doctor: everything calibrate, validate and selftest need was found\n");
fail:
    return st;
}
