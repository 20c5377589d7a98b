"""The A/B test of score-ordered calling: plan, assign, monitor, analyze, simulate.

Reads the warehouse's CRM tables, ``lead_scores`` and ``ab_assignments``; writes
``ab_assignments``, ``ab_covariates`` and the reports under ``<reports>/experiment/``.

The functions other stages call (imported from their modules, so that ``leadscore --help``
stays fast):

* :func:`leadscore.experiment.assign.assign_units` - arms for a batch of new units (pure);
  :func:`~leadscore.experiment.assign.save_assignments` appends them to ``ab_assignments``;
  :func:`~leadscore.experiment.assign.assign_new` does both for every unassigned unit.
* :func:`leadscore.experiment.assign.lead_arms` - each experiment lead's arm.
* :func:`leadscore.experiment.export.blank_control_rows` and
  :func:`~leadscore.experiment.export.experiment_fields` - the Salesforce rows of a running
  test: control leads carry the arm and no score.
* :func:`leadscore.experiment.monitor.monitor_experiment` - the daily figures.
* :func:`leadscore.experiment.run.analyze_from_warehouse` - looks and final analysis.
"""
