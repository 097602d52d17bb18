#!/usr/bin/env python3
"""Fit t = alpha + f * S / B (nccl-tests' bus-bandwidth form, REFERENCE.md §D.6) to the
published 8x H100 nccl-tests tables in SOURCES-research.md §4, at messages >= 64 MiB: the
alpha-beta pair per (collective, scope) that REFERENCE.md recommends taking from an nccl-tests
sweep. Least squares on the relative time error; prints alpha (us) and B (GB/s) for
sim/net.c. These are collective-level measurements, not end-to-end training results."""
MiB = 1 << 20
# all_reduce, 8 GPUs, one node, NCCL default (NVLS): NVIDIA/dgxc-benchmarking nccl/README.md
AR = [(64, 324.7), (128, 586.4), (256, 1112.5), (512, 2151.0), (1024, 4029.4), (2048, 7939.1),
      (4096, 15749), (8192, 31307), (16384, 62648)]
# reduce_scatter, ring, 8 GPUs, one node: NVIDIA/nccl issue #1047
RS = [(128, 377.2), (256, 709.7), (512, 1377.8), (1024, 2689.3), (2048, 5295.9), (4096, 10505), (8192, 20754)]

def fit(rows, f):
    best = None
    for a10 in range(0, 3001):            # alpha 0 .. 300 us in 0.1 us steps
        a = a10 / 10.0
        for b in range(300, 601):          # B 300 .. 600 GB/s
            err = 0.0
            for s_mib, t in rows:
                pred = a + f * s_mib * MiB / (b * 1e3)   # us: bytes / (GB/s * 1e3) = us
                err += ((pred - t) / t) ** 2
            if best is None or err < best[0]:
                best = (err, a, b)
    return best[1], best[2]

n = 8
for name, rows, f in (("all_reduce NVLS", AR, 2 * (n - 1) / n), ("reduce_scatter ring", RS, (n - 1) / n)):
    a, b = fit(rows, f)
    print("%-20s alpha %.1f us  busbw %d GB/s" % (name, a, b))
    for s_mib, t in rows:
        pred = a + f * s_mib * MiB / (b * 1e3)
        print("   %6d MiB  published busbw %6.1f  fit %6.1f  (%+.1f%%)" % (
            s_mib, f * s_mib * MiB / t / 1e3, f * s_mib * MiB / pred / 1e3, 100 * (t / pred - 1)))
