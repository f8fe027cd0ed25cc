#!/usr/bin/env Rscript
# Development-only reference for the ML companion (bayesdta.fit_ml; docs/ml_companion.md):
# lme4::glmer fits (Laplace, nAGQ = 1) of the two-level bivariate binomial GLMM, without and
# with covariates, on packaged and benchmark datasets. The bayesdta package never depends on R;
# tests/test_ml.py compares fit_ml(..., n_quad=1) with the CSV written here.
#
# Usage (from the repo root):  Rscript validation/ml_glmer_reference.R
# Writes validation/ml_glmer_reference.csv: one row per (case, quantity) with columns
#   case, dataset, formula_sensitivity, formula_specificity, quantity, value
# quantity: beta_<outcome>[<column>] named as bayesdta names them (formulaic's column names;
# continuous covariates centred at their mean, so the intercept is the summary point there),
# se_<beta name> (sqrt(diag(vcov))), tau_sensitivity, tau_specificity, rho, loglik,
# singular (1/0), time_sec.  tolPwrss = 1e-10 (see validation/README.md: lme4's default
# tolerance perturbs the Laplace log-likelihood by ~4e-4).

suppressPackageStartupMessages(library(lme4))
pkg <- "src/bayesdta/data/datasets"
bench <- "benchmarks/data"
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                     optCtrl = list(maxfun = 1e5, rhoend = 1e-10))

long_format <- function(d) {
  d$row <- factor(seq_len(nrow(d)))
  a <- d; a$y <- a$TP; a$n <- a$TP + a$FN; a$se <- 1; a$sp <- 0
  b <- d; b$y <- b$TN; b$n <- b$TN + b$FP; b$se <- 0; b$sp <- 1
  rbind(a, b)
}

# cov_se / cov_sp: named list  bayesdta column name -> R expression of the column in `long`
run_case <- function(case, dataset, d, cov_se = list(), cov_sp = list(), f_se = "~ 1", f_sp = "~ 1") {
  l <- long_format(d)
  terms <- c("se", "sp")
  names_out <- c("beta_sensitivity[Intercept]", "beta_specificity[Intercept]")
  for (nm in names(cov_se)) {
    v <- paste0("xse", length(terms)); l[[v]] <- l$se * eval(cov_se[[nm]], l)
    terms <- c(terms, v); names_out <- c(names_out, paste0("beta_sensitivity[", nm, "]"))
  }
  for (nm in names(cov_sp)) {
    v <- paste0("xsp", length(terms)); l[[v]] <- l$sp * eval(cov_sp[[nm]], l)
    terms <- c(terms, v); names_out <- c(names_out, paste0("beta_specificity[", nm, "]"))
  }
  fml <- as.formula(paste("cbind(y, n - y) ~ 0 +", paste(terms, collapse = " + "),
                          "+ (0 + se + sp | row)"))
  t0 <- proc.time()[["elapsed"]]
  fit <- glmer(fml, data = l, family = binomial, nAGQ = 1, control = ctrl)
  el <- proc.time()[["elapsed"]] - t0
  fe <- fixef(fit)[terms]
  V <- sqrt(diag(as.matrix(vcov(fit))))[terms]
  S <- VarCorr(fit)[["row"]]
  sds <- attr(S, "stddev")
  rho <- attr(S, "correlation")["se", "sp"]
  q <- c(names_out, paste0("se_", names_out), "tau_sensitivity", "tau_specificity", "rho",
         "loglik", "singular", "time_sec")
  v <- c(unname(fe), unname(V), unname(sds["se"]), unname(sds["sp"]), rho,
         as.numeric(logLik(fit)), as.numeric(isSingular(fit)), el)
  cat(sprintf("%-28s loglik %.6f  singular %s\n", case, as.numeric(logLik(fit)), isSingular(fit)))
  data.frame(case = case, dataset = dataset, formula_sensitivity = f_se,
             formula_specificity = f_sp, quantity = q, value = v, stringsAsFactors = FALSE)
}

res <- list()
for (name in c("auditc", "dementia", "skin_tests")) {
  d <- read.csv(file.path(pkg, paste0(name, ".csv")))
  res[[name]] <- run_case(name, name, d)
}
tel <- read.csv(file.path(bench, "telomerase.csv"))
res$telomerase <- run_case("telomerase", "telomerase", tel)   # ML at rho = -1 (Riley et al. 2007)

asc <- read.csv(file.path(bench, "ascus.csv"))
res$ascus0 <- run_case("ascus", "ascus", asc)
res$ascus1 <- run_case("ascus ~ test", "ascus", asc,
                       list("test[T.RepC]" = quote(test == "RepC")),
                       list("test[T.RepC]" = quote(test == "RepC")), "~ test", "~ test")

smk <- read.csv(file.path(pkg, "smoking.csv"))   # 51 tables, each its own study (levels = 2)
res$smk0 <- run_case("smoking", "smoking", smk)
res$smk1 <- run_case("smoking ~ type", "smoking", smk,
                     list("type[T.SAQ]" = quote(type == "SAQ")),
                     list("type[T.SAQ]" = quote(type == "SAQ")), "~ type", "~ type")
res$smk2 <- run_case("smoking ~ type (se only)", "smoking", smk,
                     list("type[T.SAQ]" = quote(type == "SAQ")), list(), "~ type", "~ 1")

ost <- read.csv(file.path(pkg, "osteoporosis_dl.csv"))  # 39 tables as own studies (levels = 2)
ost$prev_c <- ost$prevalence - mean(ost$prevalence)
res$ost0 <- run_case("osteoporosis_dl", "osteoporosis_dl", ost)
res$ost1 <- run_case("osteoporosis_dl ~ dimensionality + prevalence", "osteoporosis_dl", ost,
                     list("dimensionality[T.3D]" = quote(dimensionality == "3D"),
                          "prevalence" = quote(prev_c)),
                     list("dimensionality[T.3D]" = quote(dimensionality == "3D"),
                          "prevalence" = quote(prev_c)),
                     "~ dimensionality + prevalence", "~ dimensionality + prevalence")

out <- do.call(rbind, res)
write.csv(out, "validation/ml_glmer_reference.csv", row.names = FALSE)
cat("wrote validation/ml_glmer_reference.csv\n")
