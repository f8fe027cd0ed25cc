# Maximum-likelihood (Laplace) fits of the comparison models of bayesdta.compare_tests on a real
# comparative DTA dataset, as an independent reference for tests/test_comparative.py.
#
# Data: benchmarks/data/ascus.csv -- HPV testing (HC2) vs repeat cytology (RepC) to triage
# ASC-US, 10 studies x 2 tests (Arbyn M, Roelens J, Simoens C, et al. Human papillomavirus
# testing versus repeat cytology for triage of minor cytological cervical lesions. Cochrane
# Database Syst Rev 2013;CD008054; counts as distributed in the R package CopulaDTA,
# data(ascus)).
#
# Models (logit link, exact binomial likelihood; one row per table and outcome):
#   deviations: logit p = mu[test, outcome] + u[study, outcome] + v[study:test, outcome]
#   shared:     logit p = mu[test, outcome] + u[study, outcome]
# with bivariate normal u (and v) over (sensitivity, specificity).
#
#   Rscript validation/glmer_comparative_ascus.R    # writes validation/glmer_comparative_ascus.csv
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
d <- read.csv(file.path(here, "..", "benchmarks", "data", "ascus.csv"))
long <- rbind(
  data.frame(study = d$study, test = d$test, y = d$TP, n = d$TP + d$FN, se = 1, sp = 0),
  data.frame(study = d$study, test = d$test, y = d$TN, n = d$TN + d$FP, se = 0, sp = 1)
)
long$study_test <- paste(long$study, long$test)
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
fits <- list(
  deviations = glmer(cbind(y, n - y) ~ 0 + se:test + sp:test + (0 + se + sp | study) +
                       (0 + se + sp | study_test), data = long, family = binomial, control = ctrl),
  shared = glmer(cbind(y, n - y) ~ 0 + se:test + sp:test + (0 + se + sp | study),
                 data = long, family = binomial, control = ctrl)
)
rows <- list()
for (m in names(fits)) {
  f <- fits[[m]]
  b <- fixef(f)
  s <- sqrt(diag(as.matrix(vcov(f))))
  V <- as.matrix(vcov(f))
  for (o in c("se", "sp")) {
    for (t in c("HC2", "RepC")) {
      nm <- grep(paste0("^", o, ":test", t, "$|^test", t, ":", o, "$"), names(b), value = TRUE)
      rows[[length(rows) + 1]] <- data.frame(model = m, parameter = paste0("mu_", o, "[", t, "]"),
                                             estimate = unname(b[nm]), std_error = unname(s[nm]))
    }
    a <- grep(paste0("^", o, ":testHC2$|^testHC2:", o, "$"), names(b), value = TRUE)
    c2 <- grep(paste0("^", o, ":testRepC$|^testRepC:", o, "$"), names(b), value = TRUE)
    diff <- unname(b[a] - b[c2])
    sed <- sqrt(V[a, a] + V[c2, c2] - 2 * V[a, c2])
    rows[[length(rows) + 1]] <- data.frame(model = m, parameter = paste0("logit_diff_", o, "[HC2-RepC]"),
                                           estimate = diff, std_error = sed)
  }
  vc <- VarCorr(f)
  sb <- attr(vc$study, "stddev")
  rows[[length(rows) + 1]] <- data.frame(model = m, parameter = c("tau_se", "tau_sp", "rho"),
    estimate = c(unname(sb), attr(vc$study, "correlation")[1, 2]), std_error = NA)
  if (!is.null(vc$study_test)) {
    sw <- attr(vc$study_test, "stddev")
    rows[[length(rows) + 1]] <- data.frame(model = m,
      parameter = c("tau_within_se", "tau_within_sp", "rho_within"),
      estimate = c(unname(sw), attr(vc$study_test, "correlation")[1, 2]), std_error = NA)
  }
  rows[[length(rows) + 1]] <- data.frame(model = m, parameter = "logLik",
                                         estimate = as.numeric(logLik(f)), std_error = NA)
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "glmer_comparative_ascus.csv"), row.names = FALSE)
print(out, digits = 4)
cat("lme4", as.character(packageVersion("lme4")), "\n")
