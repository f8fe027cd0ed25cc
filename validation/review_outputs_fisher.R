# Reference for the exact conditional DOR intervals of bd.study_ratios(interval="exact"):
# R's fisher.test (conditional MLE, interval by inverting the exact test) on every 2x2 table
# of the packaged dementia example. Development cross-check; the package never needs R.
#
#   Rscript validation/review_outputs_fisher.R   (from the repository root)
d <- read.csv("src/bayesdta/data/datasets/dementia.csv")
out <- t(sapply(seq_len(nrow(d)), function(i) {
  m <- matrix(c(d$TP[i], d$FP[i], d$FN[i], d$TN[i]), 2)  # [[TP, FN], [FP, TN]]
  ft <- fisher.test(m, conf.level = 0.95)
  c(row = i, TP = d$TP[i], FP = d$FP[i], FN = d$FN[i], TN = d$TN[i],
    dor_lower = ft$conf.int[1], dor_upper = ft$conf.int[2])
}))
write.csv(out, "validation/review_outputs_fisher.csv", row.names = FALSE)
