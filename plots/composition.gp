# composition.gp — one point per example: its non-text positions of a modality (x) against its
# text tokens (y), log-log; shows modality composition incoherence (DESIGN.md §1).
# Reads: datafile (rows "text m1 ... mN": per-example sums, 0 = none), nmod, mods, colors
#   (#AARRGGBB, translucent), keycolors (#RRGGBB, legend), title, subtitle,
#   xlo, xhi, ylo, yhi (axis ranges), xt, yt (tic lists or 'autofreq').
load scriptdir.'/common.gp'
set logscale xy 10
set format x '%.0s%c'
set format y '%.0s%c'
set xlabel 'non-text positions per example (sum over its items; log)'
set ylabel 'text tokens per example (log)'
set title title."\n".subtitle
set key top right
set xrange [xlo:xhi]
set yrange [ylo:yhi]
eval 'set xtics '.xt
eval 'set ytics '.yt
plot for [k=1:nmod] datafile using (column(k+1) > 0 && $1 > 0 ? column(k+1) : NaN):1 \
     with points pt 7 ps 0.6 lc rgb word(colors,k) notitle, \
     for [k=1:nmod] keyentry with points pt 7 ps 1.5 lc rgb word(keycolors,k) title word(mods,k)
