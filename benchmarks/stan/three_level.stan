// Three-level bivariate binomial model of bayesdta (README.md "The model"), with the package's
// default priors (src/bayesdta/priors.py DEFAULT_PRIORS), written the way a Stan user would:
// non-centered study and row effects through Cholesky factors (Stan 2.21 syntax, rstan's).
//   TP_r ~ Binomial(n1_r, inv_logit(theta_r1)),  TN_r ~ Binomial(n0_r, inv_logit(theta_r2))
//   theta_r = X_r beta + u_s(r) + v_r,  u_s ~ MVN2(0, Sigma_between),  v_r ~ MVN2(0, Sigma_within)
//   beta ~ Normal(0, 2) (intercept and coefficients), tau ~ HalfNormal(1.5), tau_within ~
//   HalfNormal(1), correlations LKJ(2).
data {
  int<lower=1> R;                       // rows (2x2 tables)
  int<lower=1> S;                       // studies
  int<lower=1> P;                       // columns of the design (intercept first)
  int<lower=1, upper=S> study[R];
  matrix[R, P] X_se;
  matrix[R, P] X_sp;
  int<lower=0> tp[R];
  int<lower=0> n1[R];
  int<lower=0> tn[R];
  int<lower=0> n0[R];
}
parameters {
  vector[P] beta_sensitivity;
  vector[P] beta_specificity;
  vector<lower=0>[2] tau;
  vector<lower=0>[2] tau_within;
  cholesky_factor_corr[2] L_between;
  cholesky_factor_corr[2] L_within;
  matrix[2, S] z_u;
  matrix[2, R] z_v;
}
transformed parameters {
  matrix[2, S] u = diag_pre_multiply(tau, L_between) * z_u;
  matrix[2, R] v = diag_pre_multiply(tau_within, L_within) * z_v;
}
model {
  vector[R] th_se = X_se * beta_sensitivity + to_vector(u[1, study]) + to_vector(v[1]);
  vector[R] th_sp = X_sp * beta_specificity + to_vector(u[2, study]) + to_vector(v[2]);
  beta_sensitivity ~ normal(0, 2);
  beta_specificity ~ normal(0, 2);
  tau ~ normal(0, 1.5);
  tau_within ~ normal(0, 1);
  L_between ~ lkj_corr_cholesky(2);
  L_within ~ lkj_corr_cholesky(2);
  to_vector(z_u) ~ std_normal();
  to_vector(z_v) ~ std_normal();
  tp ~ binomial_logit(n1, th_se);
  tn ~ binomial_logit(n0, th_sp);
}
generated quantities {
  real tau_sensitivity = tau[1];
  real tau_specificity = tau[2];
  real rho = L_between[2, 1];
  real tau_within_sensitivity = tau_within[1];
  real tau_within_specificity = tau_within[2];
  real rho_within = L_within[2, 1];
}
