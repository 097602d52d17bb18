# throughput.gp — LLM tokens/s vs GPU count per policy, log-log, with ideal linear scaling.
# Reads: datafile (index i-1: policy i's "gpus tokens_per_s"; index npol: the ideal line),
#   npol, policies, colors (space-separated words), title, subtitle, subtitle2, ideal_label, xt ("(64, 512)"),
#   xlo, xhi, ylo, yhi (axis ranges: GPUs, tokens/s), yt ("(1e5, 2e5, ...)" or 'autofreq').
load scriptdir.'/common.gp'
set logscale xy 10
set format y '%.0s%c'
set xlabel 'GPUs (log scale)'
set ylabel 'throughput (real LLM tokens/s, whole cluster; log scale)'
set title title."\n".subtitle."\n".subtitle2
eval 'set xtics '.xt
eval 'set ytics '.yt
set mxtics 1
set key top left
set xrange [xlo:xhi]
set yrange [ylo:yhi]
plot datafile index npol using 1:2 with lines dt 2 lw 2 lc rgb '#777777' title ideal_label, \
     for [i=1:npol] datafile index (i-1) using 1:2 with linespoints lw 2.5 pt 7 ps 1.3 \
         lc rgb word(colors,i) title word(policies,i)
