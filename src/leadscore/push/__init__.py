"""Push stage: send pending scores to Salesforce with the Bulk API 2.0, exactly once.

Reads ``lead_scores`` (the newest score of each lead); writes ``sf_push_jobs`` and
``sf_push_rows`` (which score went in which job, and what Salesforce said about it).
"""

from leadscore.push.bulk import BulkClient, BulkError, SalesforceSettings, connect
from leadscore.push.run import PushResult, push_pending

__all__ = [
    "BulkClient",
    "BulkError",
    "PushResult",
    "SalesforceSettings",
    "connect",
    "push_pending",
]
