# throughput.gp — LLM tokens/s vs GPU count per policy, log-log, with ideal linear scaling; with
# one GPU count in the table (bars = 1) one bar per policy instead.
# Reads: datafile (index i-1: policy i's "gpus tokens_per_s"; index npol: the ideal line; with
#   bars: rows "\"policy\" tokens_per_s step_mean_s"), npol, policies, colors, dts, pts
#   (space-separated words, the figures' policy order), title, subtitle, subtitle2, ideal_label,
#   xt ("(64, 512)"), xlo, xhi, ylo, yhi (axis ranges: GPUs, tokens/s), yt ("(1e5, 2e5, ...)" or
#   'autofreq'); bars, ymax (bars only).
load scriptdir.'/common.gp'
if (!exists('bars')) bars = 0
if (bars) {
    set style fill solid 0.9 border rgb '#333333'
    set boxwidth 0.7
    set xrange [-0.6:npol-0.4]
    set yrange [0:ymax]
    set format y '%.0s%c'
    set grid noxtics ytics
    set ylabel 'throughput (real LLM tokens/s, whole cluster)'
    set title title."\n".subtitle."\n".subtitle2
    plot for [i=1:npol] datafile every ::(i-1)::(i-1) using (i-1):2:xtic(1) with boxes \
         lc rgb word(colors,i) notitle
} else {
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
         for [i=1:npol] datafile index (i-1) using 1:2 with linespoints lw 2.5 dt int(word(dts,i)) \
             pt int(word(pts,i)) ps 1.3 lc rgb word(colors,i) title word(policies,i)
}
