# policies.gp — mean simulated step time per policy with its 95% interval, and the oracle floor.
# Reads: datafile (rows "index \"policy\" step_mean_s ci95_s rgb_int", in the figures' policy
#   order), npol, oracle (s; < 0 = not in the table), ymax, title, subtitle.
load scriptdir.'/common.gp'
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.7
set xrange [-0.6:npol-0.4]
set yrange [0:ymax]
set grid noxtics ytics
set xtics rotate by -30 left
set ylabel 'mean step time (s, simulated)'
set title title."\n".subtitle
set key top right
if (oracle >= 0) {
    plot datafile using 1:3:5:xtic(2) with boxes lc rgb variable notitle, \
         datafile using 1:3:4 with yerrorbars lc rgb '#333333' pt -1 lw 1.5 notitle, \
         oracle with lines dt 2 lw 2 lc rgb '#888888' title sprintf('oracle floor %.4g s', oracle)
} else {
    plot datafile using 1:3:5:xtic(2) with boxes lc rgb variable notitle, \
         datafile using 1:3:4 with yerrorbars lc rgb '#333333' pt -1 lw 1.5 notitle
}
