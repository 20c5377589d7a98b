"""Any CRM export: the same point-in-time build, leakage gates, training, drivers, scoring and
report on a team's own lead table, described by a mapping file (``leadscore init --from``)."""
