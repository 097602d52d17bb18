#!/usr/bin/env python3
"""Fold the OpenXLA sm_90 matmul table (xla-matmul-sm90.csv, transcribed from
tensorflow/tensorflow third_party/xla/xla/service/gpu/model/matmul_interpolator_data.h) into
the (m, n, k) grid sim/calib_h100.c embeds: a batched call of b GEMMs of m rows does the work
of one GEMM of b*m rows, so the rows are keyed by (b*m, n, k); where several (b, m) give the
same b*m the largest measured rate is kept (a plain GEMM of the same work is never slower).
Prints the C initializer rows on stdout."""
import csv, os, sys
here = os.path.dirname(os.path.abspath(__file__))
cells = {}
with open(os.path.join(here, 'xla-matmul-sm90.csv')) as f:
    for row in csv.DictReader(l for l in f if not l.startswith('#')):
        if row['device'] != 'sm_90':
            continue
        key = (int(row['b']) * int(row['m']), int(row['n']), int(row['k']))
        cells[key] = max(cells.get(key, 0), int(row['bf16_flops_per_s']))
for (m, n, k) in sorted(cells):
    print('    {%d, %d, %d, %de0},' % (m, n, k, cells[(m, n, k)]))
print('/* %d cells */' % len(cells), file=sys.stderr)
