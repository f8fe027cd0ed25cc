# glmer ML fits of the three-level meta-regression on replicates of the osteoporosis design
# (validation/README.md). Make the CSVs first:
#   python -c "from bayesdta.datasets.simulate_osteoporosis import simulate_osteoporosis as s; [s(seed=k)[0].to_csv(f\"/tmp/s{k}.csv\", index=False) for k in (301,303,305,306,311)]"
# then: Rscript validation/glmer_osteoporosis_replicates.R
suppressMessages(library(lme4))
for (seed in c(301,303,305,306,311)) {
  d <- read.csv(sprintf("/tmp/s%d.csv", seed))
  d$backbone <- relevel(factor(d$backbone), "ResNet"); d$reference_standard <- relevel(factor(d$reference_standard), "DXA")
  d$dimensionality <- relevel(factor(d$dimensionality), "2D"); d$validation <- relevel(factor(d$validation), "internal")
  d$row <- seq_len(nrow(d))
  a <- d; a$y <- a$TP; a$n <- a$TP + a$FN; a$se <- 1; a$sp <- 0
  b <- d; b$y <- b$TN; b$n <- b$TN + b$FP; b$se <- 0; b$sp <- 1
  l <- rbind(a, b)
  m <- glmer(cbind(y, n - y) ~ 0 + se + sp + se:(backbone + reference_standard + dimensionality + validation) + sp:(backbone + reference_standard + dimensionality + validation) + (0 + se + sp | study) + (0 + se + sp | row), data = l, family = binomial, control = glmerControl(optimizer = "bobyqa"))
  vc <- as.data.frame(VarCorr(m))
  cat(seed, "study sd", round(vc$sdcor[vc$grp=="study" & is.na(vc$var2)], 3), " row sd", round(vc$sdcor[vc$grp=="row" & is.na(vc$var2)], 3), "\n")
}
