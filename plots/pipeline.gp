# pipeline.gp — per-stage time by policy (orchsim pipeline --csv), grouped bars: one group per
# stage, one bar per policy as a percentage of none's time for that stage, the oracle in grey.
# Reads: datafile (rows "label pct_policy1 ... pct_policyN pct_oracle", '?' = not run), npol
#   (policies + the oracle), policies, colors, ngroups, ymin, ymax (axis, %), title, subtitle.
load scriptdir.'/common.gp'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border rgb '#333333'
set boxwidth 0.9
set yrange [ymin:ymax]
set xrange [-0.6:ngroups-0.4]
set grid noxtics ytics
set ylabel sprintf("stage time, %% of none's (axis from %g%%)", ymin)
set xtics font ',10'
set bmargin 7
set xlabel "stage (pipeline), then none's time summed over steps" offset 0,-1.5
set title title."\n".subtitle
set key outside right top
plot for [i=1:npol] datafile using (column(i+1)):xtic(1) lc rgb word(colors,i) title word(policies,i)
