"""Workflows that fit several models.

Meta-regression contrasts, subgroup tables, clustering comparison
(:mod:`bayesdta.workflows.regression`). They call :mod:`bayesdta.inference`, never the reverse.
"""
