"""A loopback Kaltura simulator speaking the wire protocol of docs/kaltura.md, for integration tests and the local demo.

Start it in-process::

    with KalturaSimulator(seed=1) as sim:
        sim.add_partner(1234567, admin_secret="...")
        requests.post(f"{sim.url}/api_v3/service/session/action/start", data={...}, timeout=5)

It is an independent implementation of the protocol: it never imports the product's Kaltura client.
"""

from .calllog import CallRecord
from .clock import DEFAULT_START_TIME, SimClock
from .dispatcher import BodyFormat, Delivery, Dispatcher, Subscription, signature
from .errors import ApiError
from .events import ENTRY_READY, SESSION_ENDED, VENDOR_TASK_STATUS, SimEvent
from .faults import FaultKind, FaultRule, Faults
from .ks import KsDecodeError, KsInfo, decode_ks, encode_ks_v1, encode_ks_v2
from .report_data import VIEWER_SESSIONS
from .simulator import KalturaSimulator
from .state import Attendee, Breakout, TaskBehaviour

__all__ = [
    "DEFAULT_START_TIME",
    "ENTRY_READY",
    "SESSION_ENDED",
    "VENDOR_TASK_STATUS",
    "VIEWER_SESSIONS",
    "ApiError",
    "Attendee",
    "BodyFormat",
    "Breakout",
    "CallRecord",
    "Delivery",
    "Dispatcher",
    "FaultKind",
    "FaultRule",
    "Faults",
    "KalturaSimulator",
    "KsDecodeError",
    "KsInfo",
    "SimClock",
    "SimEvent",
    "Subscription",
    "TaskBehaviour",
    "decode_ks",
    "encode_ks_v1",
    "encode_ks_v2",
    "signature",
]
