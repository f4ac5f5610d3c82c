"""The old names of :mod:`product_stack` for the session-report tests written before the two stack helpers merged."""

from product_stack import ADMIN_SECRET, HASH_ALGORITHM, PARTNER_ID, SWEEP_EVENT, WorkerRun
from product_stack import ProductStack as AutomationStack
from product_stack import product_stack as automation_stack

__all__ = [
    "ADMIN_SECRET",
    "HASH_ALGORITHM",
    "PARTNER_ID",
    "SWEEP_EVENT",
    "AutomationStack",
    "WorkerRun",
    "automation_stack",
]
