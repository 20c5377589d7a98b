"""Enablement stage: what SGAs and operators read, generated from the catalog and the model.

Reads a model bundle, the feature catalog and the model's holdout rows (out-of-sample only);
writes the Salesforce field mapping, the SGA guide, the cheat sheet, the segment playbook, the
Salesforce UI specification with a rendered mock, and the production runbook into
``reports/enablement/<version>/`` (:func:`leadscore.enablement.run.write_enablement`).
"""
