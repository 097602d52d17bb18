# imbalance-cdf.gp — CDF over steps of each phase's imbalance (max/mean of per-rank compute)
# per policy, one panel per phase.
# Reads: datadir (files imbalance_cdf_<phase>.dat, index i-1 = policy i, rows "ratio F"),
#   nphase, phases, npol, policies, colors, dts (the figures' policy order), rows, cols, title.
load scriptdir.'/common.gp'
set multiplot layout rows,cols title title
set yrange [0:1.02]
set key bottom right
do for [k=1:nphase] {
    f = sprintf('%s/imbalance_cdf_%s.dat', datadir, word(phases,k))
    set title word(phases,k).' phase'
    set xlabel 'imbalance = max / mean per-rank compute (1 = balanced)'
    set ylabel 'fraction of steps <= x'
    if (k == 1) { set key bottom right } else { unset key }
    plot for [i=1:npol] f index (i-1) using 1:2 with steps lw 2.5 dt int(word(dts,i)) lc rgb word(colors,i) \
         title word(policies,i)
}
unset multiplot
