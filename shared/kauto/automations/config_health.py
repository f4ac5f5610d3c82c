"""Partners disabled by a broken configuration entry: one alert per partner, document and day, raised by the sweep.

The webhook stays thin: for a partner whose entry in the partner secret or the automation configuration is broken it
only answers 503 (Kaltura retries, nothing is lost). The sweep, which runs every 15 minutes and reads both documents
anyway, finds those partners, skips their scheduled work and alerts through the ledger's alert claim, so the same
broken entry alerts once a day rather than once per delivery. Alerts name the partner and the setting paths, never a
value (the secret's values are credentials).
"""

from __future__ import annotations

from collections.abc import Mapping

from kauto.automations.deps import AutomationDeps
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, AlertPeriod, Severity
from kauto.config import SECRET_DOCUMENT, is_partner_id
from kauto.errors import DependencyUnavailableError
from kauto.validation import Problem

ALERT_RULE = "partner_config_invalid"
ALERT_PERIOD = AlertPeriod.DAY
_MAX_LISTED = 20


def disabled_partners(deps: AutomationDeps, now: float) -> frozenset[int]:
    """The partners disabled by either document; alerts once per partner, document and :data:`ALERT_PERIOD`."""
    documents: dict[str, Mapping[str, tuple[Problem, ...]]] = {
        SECRET_DOCUMENT: deps.secret_problems(),
        "automation config": deps.config.broken,
    }
    disabled: set[int] = set()
    for document, broken in documents.items():
        for key, problems in broken.items():
            if not is_partner_id(key):
                # Not a partner any request names: nothing to disable, and an alert needs a partner id.
                logger.warning("configuration entry is not a partner id", extra={"document": document})
                continue
            disabled.add(int(key))
            _alert(deps, int(key), document, [problem.path for problem in problems])
    return frozenset(disabled)


def _alert(deps: AutomationDeps, partner_id: int, document: str, settings: list[str]) -> None:
    listed = ", ".join(settings[:_MAX_LISTED]) + (" ..." if len(settings) > _MAX_LISTED else "")
    alert = Alert(
        rule=ALERT_RULE,
        severity=Severity.CRITICAL,
        partner_id=partner_id,
        subject=f"Partner {partner_id} paused: its {document} entry is invalid",
        summary=(
            f"Invalid settings: {listed}. Until the entry is fixed, this partner's notifications are answered 503 "
            "(Kaltura retries them) and its scheduled work is skipped; other partners are not affected. "
            "Run `kauto-config check` on the document to see what each setting expects."
        ),
        details={"document": document, "settings": settings},
    )
    count("PartnerConfigInvalid")
    try:
        deps.alerts.publish(alert, dedupe_key=f"config:{partner_id}:{document}", period=ALERT_PERIOD)
    except DependencyUnavailableError:
        # The partner stays skipped; the next sweep (15 minutes) tries the alert again.
        logger.warning("could not publish the configuration alert", extra={"partner_id": partner_id}, exc_info=True)
