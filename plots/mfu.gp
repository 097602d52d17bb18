# mfu.gp — MFU per model (x groups, ordered by parameter count) per policy, grouped bars.
# Reads: datafile (rows "label mfu_pct_policy1 ... mfu_pct_policyN", '?' = not run), npol,
#   policies, colors, title, subtitle, nmodels, ymax (axis top, %).
load scriptdir.'/common.gp'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border rgb '#333333'
set boxwidth 0.9
set yrange [0:ymax]
set xrange [-0.6:nmodels-0.4]
set grid noxtics ytics
set ylabel 'MFU (% of bf16 dense peak, paper convention)'
set xlabel 'model (parameters)'
set title title."\n".subtitle
set key top left
plot for [i=1:npol] datafile using (column(i+1)):xtic(1) lc rgb word(colors,i) title word(policies,i)
