# The approximate bivariate model of Reitsma et al. (J Clin Epidemiol 2005;58:982-990), fitted
# by REML with metafor::rma.mv: the method of mada::reitsma (its default, method = "reml") and of
# the published telomerase analysis. Development cross-check only (the package never needs R).
#
# Model: the observed logit sensitivity and logit false-positive rate of study i,
#   y_i ~ N2(mu, Sigma + D_i),  D_i = diag(1/TP + 1/FN, 1/FP + 1/TN),
# with 0.5 added to every cell of every study when any cell of any study is zero (mada's default
# correction = 0.5, correction.control = "all"). Reports mu on the logit sensitivity / logit
# specificity scale (the FPR logit with its sign flipped), Wald 95% intervals back-transformed,
# the between-study SDs and the correlation between logit sensitivity and logit SPECIFICITY.
#
#   Rscript validation/reitsma_reml.R        # writes validation/reitsma_reml.csv
suppressMessages(library(metafor))

root <- tryCatch(dirname(dirname(normalizePath(sys.frame(1)$ofile))), error = function(e) ".")
args <- commandArgs(trailingOnly = FALSE)
f <- sub("--file=", "", args[grep("--file=", args)])
if (length(f) == 1) root <- dirname(dirname(normalizePath(f)))
ds <- file.path(root, "src", "bayesdta", "data", "datasets")
bench <- file.path(root, "benchmarks", "data")

fit_one <- function(d, name, subset = "") {
  if (any(d[, c("TP", "FN", "FP", "TN")] == 0)) {
    d[, c("TP", "FN", "FP", "TN")] <- d[, c("TP", "FN", "FP", "TN")] + 0.5
  }
  k <- nrow(d)
  y <- as.vector(rbind(log(d$TP / d$FN), log(d$FP / d$TN)))
  v <- as.vector(rbind(1 / d$TP + 1 / d$FN, 1 / d$FP + 1 / d$TN))
  long <- data.frame(y = y, v = v, study = rep(seq_len(k), each = 2),
                     outcome = factor(rep(c("tsens", "tfpr"), k), levels = c("tsens", "tfpr")))
  m <- rma.mv(y, v, mods = ~ outcome - 1, random = ~ outcome | study, struct = "UN",
              data = long, method = "REML")
  b <- as.numeric(coef(m)); se <- sqrt(diag(vcov(m)))
  data.frame(
    dataset = name, subset = subset, k = k,
    mu_sensitivity = b[1], mu_specificity = -b[2],
    se_mu_sensitivity = se[1], se_mu_specificity = se[2],
    sensitivity = plogis(b[1]), sensitivity_lower = plogis(b[1] - 1.959964 * se[1]),
    sensitivity_upper = plogis(b[1] + 1.959964 * se[1]),
    specificity = plogis(-b[2]), specificity_lower = plogis(-b[2] - 1.959964 * se[2]),
    specificity_upper = plogis(-b[2] + 1.959964 * se[2]),
    tau_sensitivity = sqrt(m$tau2[1]), tau_specificity = sqrt(m$tau2[2]),
    rho = -m$rho,  # correlation of logit se with logit fpr -> with logit sp
    loglik_reml = as.numeric(logLik(m)), converged = TRUE,
    metafor = as.character(packageVersion("metafor"))
  )
}

out <- list()
for (nm in c("auditc", "dementia", "skin_tests")) {
  out[[nm]] <- fit_one(read.csv(file.path(ds, paste0(nm, ".csv"))), nm)
}
out$telomerase <- fit_one(read.csv(file.path(bench, "telomerase.csv")), "telomerase")
asc <- read.csv(file.path(bench, "ascus.csv"))
for (t in c("HC2", "RepC")) out[[t]] <- fit_one(asc[asc$test == t, ], "ascus", t)
res <- do.call(rbind, out)
write.csv(res, file.path(root, "validation", "reitsma_reml.csv"), row.names = FALSE)
print(res[, c("dataset", "subset", "sensitivity", "sensitivity_lower", "sensitivity_upper",
              "specificity", "specificity_lower", "specificity_upper", "tau_sensitivity",
              "tau_specificity", "rho")], digits = 3)
