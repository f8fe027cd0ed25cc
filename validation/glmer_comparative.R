# Maximum-likelihood (Laplace) fits of the comparison models of bayesdta.compare_tests on a real
# comparative DTA dataset, as an independent reference for tests/test_comparative.py.
#
# Data: benchmarks/data/ascus.csv -- HPV testing (HC2) vs repeat cytology (RepC) to triage
# ASC-US, 10 studies x 2 tests (Arbyn M, Roelens J, Simoens C, et al. Human papillomavirus
# testing versus repeat cytology for triage of minor cytological cervical lesions. Cochrane
# Database Syst Rev 2013;CD008054; counts as distributed in the R package CopulaDTA,
# data(ascus)).
#
# Second dataset: the packaged smoking example (self-administered (SAQ) vs interviewer-
# administered (IAQ) questionnaires for smoking, 51 tables from 26 studies; Patrick DL, Cheadle A,
# Thompson DC, et al. The validity of self-reported smoking: a review and meta-analysis. Am J
# Public Health 1994;84:1086-1093; as in R package mada, data(smoking)): no study used both
# questionnaires, so the comparison is between studies only; several tables per study and test
# (result_id), the row level being the table.
#
# Models (logit link, exact binomial likelihood; one row per table and outcome):
#   deviations: logit p = mu[test, outcome] + u[study, outcome] + v[table, outcome]
#   shared:     logit p = mu[test, outcome] + u[study, outcome]
# with bivariate normal u (and v) over (sensitivity, specificity).
#
#   Rscript validation/glmer_comparative.R    # writes validation/glmer_comparative.csv
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
ascus <- read.csv(file.path(here, "..", "benchmarks", "data", "ascus.csv"))
ascus$table <- paste(ascus$study, ascus$test)
smoking <- read.csv(file.path(here, "..", "src", "bayesdta", "data", "datasets", "smoking.csv"))
smoking <- data.frame(study = smoking$study_id, test = smoking$type,
                      table = paste(smoking$study_id, smoking$result_id),
                      TP = smoking$TP, FP = smoking$FP, FN = smoking$FN, TN = smoking$TN)
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
rows <- list()
for (dataset in c("ascus", "smoking")) {
  d <- if (dataset == "ascus") ascus else smoking
  tests <- sort(unique(d$test))
  long <- rbind(
    data.frame(study = d$study, test = d$test, table = d$table, y = d$TP, n = d$TP + d$FN,
               se = 1, sp = 0),
    data.frame(study = d$study, test = d$test, table = d$table, y = d$TN, n = d$TN + d$FP,
               se = 0, sp = 1)
  )
  fits <- list(
    deviations = glmer(cbind(y, n - y) ~ 0 + se:test + sp:test + (0 + se + sp | study) +
                         (0 + se + sp | table), data = long, family = binomial, control = ctrl),
    shared = glmer(cbind(y, n - y) ~ 0 + se:test + sp:test + (0 + se + sp | study),
                   data = long, family = binomial, control = ctrl)
  )
  add <- function(m, parameter, estimate, std_error = NA) {
    rows[[length(rows) + 1]] <<- data.frame(dataset = dataset, model = m, parameter = parameter,
                                            estimate = estimate, std_error = std_error)
  }
  for (m in names(fits)) {
    f <- fits[[m]]
    b <- fixef(f)
    V <- as.matrix(vcov(f))
    name <- function(o, t) grep(paste0("^", o, ":test", t, "$|^test", t, ":", o, "$"),
                                names(b), value = TRUE)
    for (o in c("se", "sp")) {
      for (t in tests) {
        nm <- name(o, t)
        add(m, paste0("mu_", o, "[", t, "]"), unname(b[nm]), sqrt(V[nm, nm]))
      }
      a <- name(o, tests[1]); c2 <- name(o, tests[2])
      add(m, paste0("logit_diff_", o, "[", tests[1], "-", tests[2], "]"), unname(b[a] - b[c2]),
          sqrt(V[a, a] + V[c2, c2] - 2 * V[a, c2]))
    }
    vc <- VarCorr(f)
    add(m, c("tau_se", "tau_sp", "rho"),
        c(unname(attr(vc$study, "stddev")), attr(vc$study, "correlation")[1, 2]))
    if (!is.null(vc$table)) {
      add(m, c("tau_within_se", "tau_within_sp", "rho_within"),
          c(unname(attr(vc$table, "stddev")), attr(vc$table, "correlation")[1, 2]))
    }
    add(m, "logLik", as.numeric(logLik(f)))
    add(m, "singular", as.numeric(isSingular(f)))
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "glmer_comparative.csv"), row.names = FALSE)
print(out, digits = 4)
cat("lme4", as.character(packageVersion("lme4")), "\n")
