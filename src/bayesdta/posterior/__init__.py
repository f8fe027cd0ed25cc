"""Posterior quantities: functions of a fit's draws (:mod:`bayesdta.posterior.quantities`).

Summary-point tables, SROC / AUC, regions, predictive, heterogeneity, Fagan, Deeks, PSIS-LOO and
influence (whose exact refits go through :mod:`bayesdta.inference`).
"""
