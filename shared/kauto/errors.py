"""Base error types shared by every layer.

Adapters raise these (``from`` the underlying cause) so that callers can act on *what* failed without knowing which
library failed: a :class:`ConfigError` needs an operator, a :class:`DependencyUnavailableError` is worth a retry.
Messages never contain secret values.
"""

from __future__ import annotations


class KautoError(Exception):
    """Root of all errors raised on purpose by this package."""


class ConfigError(KautoError):
    """A setting is missing or invalid; retrying will not help until an operator fixes it.

    ``setting`` names the environment variable or the path inside a configuration document
    (e.g. ``partners.1234567.webhook_hash_algorithms``), never its value.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"invalid configuration {setting}: {problem}")
        self.setting = setting
        self.problem = problem


class PartnerConfigError(ConfigError):
    """One partner's entry in a configuration document is invalid: that partner alone is disabled until it is fixed.

    ``settings`` are the paths of the invalid settings (never their values). The webhook answers 503 for such a
    partner (Kaltura retries, nothing is lost); workers leave its messages for a later retry.
    """

    def __init__(self, partner_id: int, document: str, settings: list[str]) -> None:
        super().__init__(f"partners.{partner_id}", f"the {document} entry is invalid ({', '.join(settings)})")
        self.partner_id = partner_id
        self.document = document
        self.settings = tuple(settings)


class DependencyUnavailableError(KautoError):
    """An AWS dependency could not be reached or refused the call; the same request may succeed later."""

    def __init__(self, service: str, operation: str, detail: str) -> None:
        super().__init__(f"{service} {operation} failed: {detail}")
        self.service = service
        self.operation = operation
        self.detail = detail


class QueueUnavailableError(DependencyUnavailableError):
    """The events queue did not durably accept a message."""


class DedupeStoreUnavailableError(DependencyUnavailableError):
    """The dedupe table could not be read or written."""


class SecretUnavailableError(DependencyUnavailableError):
    """Secrets Manager could not return the secret right now (throttling, network, service error)."""
