"""Reporting: the analysis spec, its runner, the sensitivity sweeps, tables and the report.

* :mod:`bayesdta.reporting.spec`: :class:`AnalysisSpec` (a TOML analysis: data, fits, outputs,
  sweeps), :func:`load_spec`.
* :mod:`bayesdta.reporting.report`: :func:`run_analysis`, :func:`build_report`, methods text.
* :mod:`bayesdta.reporting.sensitivity`: :func:`run_sweep` (grids of spec variants, resumable,
  local processes or Dask).
* :mod:`bayesdta.reporting.formats`: CSV / LaTeX / Markdown / HTML tables.
"""
