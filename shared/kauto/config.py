"""Settings from the environment and the per-partner secret document, each validated once.

Environment variables hold resource names and ARNs only (:class:`WebhookSettings` and friends, read by
:func:`settings_from_env`); secrets live in Secrets Manager (``PARTNER_SECRETS_ARN``), in the document described by
:class:`PartnerSecretDocument`. The Structs below are the schema: defaults, bounds and descriptions live here only, and
``kauto-config schema secret`` and the README tables are generated from them.

Validation (:mod:`kauto.validation`) reports every problem with its path and never a value. Partners are validated
one by one: a broken entry disables that partner alone (:class:`PartnerConfigError`, which the webhook answers with
503 so Kaltura retries and nothing is lost), while a document that is not JSON, has no ``partners`` object or has
unknown top-level keys is a deployment-wide :class:`ConfigErrors` (500). A fixed document is read again within the
cache lifetime (:data:`kauto.aws.secrets.DEFAULT_TTL_SECONDS`), and a request for a disabled partner asks for a
rate-limited refresh, so the fix usually applies on Kaltura's next retry.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from kauto.aws.secrets import CachedSecret
from kauto.errors import ConfigError, PartnerConfigError
from kauto.validation import ConfigErrors, Problem, check_value, join, validate

WEBHOOK_HASH_ALGORITHMS = ("sha1", "sha256", "sha512")
"""Algorithms Kaltura can sign webhooks with (docs/kaltura.md#signature: secureHashingAlgo 1, 2, 3)."""

APP_TOKEN_HASH_TYPES = ("SHA1", "MD5", "SHA256", "SHA512")
"""``hashType`` values of a Kaltura app token (docs/kaltura.md#app-tokens)."""

SESSION_MODES = ("auto", "app_token", "local", "session_start")
"""How workers obtain a KS: the values of ``kauto.kaltura.SessionMode`` (not imported here: that package loads the
HTTP client, which the webhook must not). ``local`` builds a KS v2 from the admin secret."""

DEFAULT_SERVICE_URL = "https://www.kaltura.com"

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
REPORTS_HOST = re.compile(r"reports\.[a-z0-9-]+\.ovp\.kaltura\.com")
"""The Reports Microservice's hosts (the Kaltura client refuses any other, so the schema does too)."""
_BASE_URL = r"^https?://[^/?#\s]+(/[^?#\s]*)?$"
_URL_EXPECTED = "an http(s) base URL such as https://www.kaltura.com (no query, no fragment)"
_REPORTS_EXPECTED = "a URL on reports.<region>.ovp.kaltura.com (or loopback, locally)"
_NON_EMPTY = Meta(min_length=1)

S = TypeVar("S", bound=msgspec.Struct)


class Schema(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every configuration Struct: immutable, keyword-only, unknown keys refused."""


# ---------------------------------------------------------------------------------------------- environment


def settings_from_env(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Read Struct ``cls`` from environment variables named like its fields in upper case.

    Raises :class:`ConfigErrors` listing every missing or invalid variable at once.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for field in msgspec.structs.fields(cls):
        name = field.name.upper()
        raw = env.get(name, "").strip()
        if not raw:
            if field.required:
                problems.append(Problem(name, "environment variable is not set"))
            continue
        try:
            values[field.name] = msgspec.convert(raw, field.type, strict=False)
        except msgspec.ValidationError:
            from kauto.collector import describe_annotation

            problems.append(Problem(name, describe_annotation(field.type)))
            continue
        expected = check_value(field.type, values[field.name])
        if expected is not None:
            problems.append(Problem(name, expected))
    if problems:
        raise ConfigErrors("environment", problems)
    return cls(**values)


def required_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the non-empty value of environment variable ``name`` or raise :class:`ConfigError` naming it."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise ConfigError(name, "environment variable is not set")
    return value


class WebhookSettings(Schema, frozen=True):
    """What the webhook function needs from its environment (names from template.yaml)."""

    events_queue_url: Annotated[str, Meta(description="URL of the events queue")]
    dedupe_table: Annotated[str, Meta(description="Name of the webhook dedupe table")]
    partner_secrets_arn: Annotated[str, Meta(description="ARN of the partner secret")]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Read and validate the settings; raises :class:`ConfigErrors` naming every missing variable."""
        return settings_from_env(cls, environ)


MAX_WORKER_TIMEOUT_SECONDS = 900
"""Lambda's maximum run time."""


class WorkerSettings(Schema, frozen=True):
    """What the event worker and the sweep need from their environment (names from template.yaml)."""

    ledger_table: Annotated[str, Meta(description="Name of the ledger table")]
    reports_bucket: Annotated[str, Meta(description="Name of the reports bucket")]
    alerts_topic_arn: Annotated[str, Meta(description="ARN of the alerts topic")]
    events_queue_url: Annotated[str, Meta(description="URL of the events queue")]
    partner_secrets_arn: Annotated[str, Meta(description="ARN of the partner secret")]
    automation_config_parameter: Annotated[str, Meta(description="Name of the automation config SSM parameter")]
    worker_timeout_seconds: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_WORKER_TIMEOUT_SECONDS,
            description="The worker's timeout: a claim older than this belongs to a worker that died.",
        ),
    ] = MAX_WORKER_TIMEOUT_SECONDS


# ------------------------------------------------------------------------------------------- partner secret


class AppToken(Schema, frozen=True):
    """A Kaltura app token (preferred over the admin secret for API sessions)."""

    id: Annotated[str, _NON_EMPTY, Meta(description="The app token's id.")]
    token: Annotated[str, _NON_EMPTY, Meta(description="The app token's value (secret).")]
    hash_type: Annotated[
        Literal["SHA1", "MD5", "SHA256", "SHA512"],
        Meta(description="The app token's hashType, as created in Kaltura."),
    ] = "SHA1"

    def __repr__(self) -> str:
        return f"AppToken(id={self.id!r}, token=<hidden>, hash_type={self.hash_type!r})"


class PartnerEntry(Schema, frozen=True):
    """One partner's entry in the partner secret: credentials and webhook policy."""

    admin_secret: Annotated[
        str,
        _NON_EMPTY,
        Meta(description="Primary admin secret: the webhook signature key and the KS signing key (secret)."),
    ]
    webhook_hash_algorithms: Annotated[
        tuple[Literal["sha1", "sha256", "sha512"], ...],
        Meta(
            min_length=1,
            description="Algorithms accepted for this partner's webhook signatures (a subset of sha1, sha256, "
            "sha512); a request cannot ask for any other.",
        ),
    ]
    service_url: Annotated[
        str,
        Meta(
            pattern=_BASE_URL,
            description="Kaltura API base URL, without /api_v3.",
            extra={"expected": _URL_EXPECTED},
        ),
    ] = DEFAULT_SERVICE_URL
    previous_admin_secret: Annotated[
        str | None,
        Meta(description="Also accepted for webhook signatures while the admin secret is being rotated (secret)."),
    ] = None
    app_token: Annotated[
        AppToken | None, Meta(description="App token used for API sessions instead of the admin secret.")
    ] = None
    session_user_id: Annotated[str | None, Meta(description="KS user id; null: kaltura-automations.")] = None
    session_privileges: Annotated[str | None, Meta(description="KS privileges string; null: none.")] = None
    session_mode: Annotated[
        Literal["auto", "app_token", "local", "session_start"],
        Meta(
            description="How workers obtain a KS: auto uses the app token when there is one, else the admin secret; "
            "local signs a KS v2 locally; session_start calls session.start."
        ),
    ] = "auto"
    reports_service_url: Annotated[
        str | None,
        Meta(
            description="Reports Microservice base URL (https://reports.<region>.ovp.kaltura.com), for the reports "
            "only it serves.",
        ),
    ] = None

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "service_url", self.service_url.rstrip("/"))
        unique = tuple(dict.fromkeys(self.webhook_hash_algorithms))
        msgspec.structs.force_setattr(self, "webhook_hash_algorithms", unique)
        if self.reports_service_url is not None:
            msgspec.structs.force_setattr(self, "reports_service_url", self.reports_service_url.rstrip("/"))

    def cross_check(self) -> list[tuple[str, str]]:
        """Rules spanning fields, and URL shapes (see :mod:`kauto.validation`)."""
        found: list[tuple[str, str]] = []
        if urlsplit(self.service_url).path.endswith("/api_v3"):
            found.append(("service_url", "the base URL without /api_v3"))
        url = self.reports_service_url
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
                found.append(("reports_service_url", "an https URL (plain http only for a loopback host)"))
            elif parts.query or parts.fragment or not parts.hostname:
                found.append(("reports_service_url", _URL_EXPECTED))
            elif not (REPORTS_HOST.fullmatch(parts.hostname) or parts.hostname in LOOPBACK_HOSTS):
                found.append(
                    ("reports_service_url", "a URL on reports.<region>.ovp.kaltura.com (or loopback, locally)")
                )
        if self.session_mode == "app_token" and self.app_token is None:
            found.append(("app_token", "required when session_mode is app_token"))
        for name in ("previous_admin_secret", "session_user_id", "session_privileges"):
            if getattr(self, name) is not None and not getattr(self, name).strip():
                found.append((name, "a non-empty string or null"))
        return found

    def __repr__(self) -> str:
        return f"PartnerEntry(service_url={self.service_url!r}, app_token={self.app_token!r}, secrets=<hidden>)"


class PartnerConfig(PartnerEntry, frozen=True):
    """A partner's validated entry with its id (what the webhook and the workers use). Secrets are hidden from repr."""

    partner_id: int = 0

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Secrets that may have signed a webhook: the current one first, then the previous one if set."""
        if self.previous_admin_secret:
            return (self.admin_secret, self.previous_admin_secret)
        return (self.admin_secret,)

    def __repr__(self) -> str:
        return (
            f"PartnerConfig(partner_id={self.partner_id}, service_url={self.service_url!r}, "
            f"session_mode={self.session_mode!r}, app_token={self.app_token!r}, secrets=<hidden>)"
        )


class PartnerSecretDocument(Schema, frozen=True):
    """The partner secret (Secrets Manager, ``PARTNER_SECRETS_ARN``): one entry per Kaltura partner id."""

    partners: Annotated[
        dict[Annotated[str, Meta(pattern=r"^[1-9][0-9]*$")], PartnerEntry],
        Meta(min_length=1, description="Partner id -> that partner's credentials and webhook policy."),
    ]


@dataclass(frozen=True, slots=True)
class PartnerSecrets:
    """The partner secret, validated per partner: usable entries and the problems of the broken ones."""

    partners: Mapping[int, PartnerConfig]
    broken: Mapping[str, tuple[Problem, ...]]
    """Entry key as written -> its problems. Such a partner is disabled until the document is fixed."""

    def problems_of(self, partner_id: int) -> tuple[Problem, ...] | None:
        """The problems that disable ``partner_id``, or ``None`` when its entry is valid or absent."""
        return self.broken.get(str(partner_id))

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem of every broken entry, in document order."""
        return tuple(problem for problems in self.broken.values() for problem in problems)


SECRET_DOCUMENT = "partner secret"  # noqa: S105 - the document's name, not a secret


def parse_partner_secrets(text: str) -> PartnerSecrets:
    """Validate the secret JSON partner by partner.

    Raises :class:`ConfigErrors` (deployment-wide) when the text is not JSON or is not an object with exactly a
    non-empty ``partners`` object; a broken partner entry lands in :attr:`PartnerSecrets.broken` instead.
    """
    document = load_json(text, SECRET_DOCUMENT)
    problems = document_problems(document, required="partners", allowed=("partners",))
    if problems:
        raise ConfigErrors(SECRET_DOCUMENT, problems)
    partners: dict[int, PartnerConfig] = {}
    broken: dict[str, tuple[Problem, ...]] = {}
    for key, entry in document["partners"].items():
        path = join("partners", key)
        if not is_partner_id(key):
            broken[key] = (Problem(path, "a partner id: a positive whole number"),)
            continue
        parsed, found = validate(entry, PartnerEntry, path)
        if parsed is None:
            broken[key] = tuple(found)
        else:
            partners[int(key)] = PartnerConfig(partner_id=int(key), **msgspec.structs.asdict(parsed))
    return PartnerSecrets(partners=partners, broken=broken)


def secret_problems(text: str) -> list[Problem]:
    """Every problem of the partner secret ``text`` (for ``kauto-config check``)."""
    try:
        return list(parse_partner_secrets(text).problems)
    except ConfigErrors as error:
        return list(error.problems)


def load_json(text: str, document_name: str) -> Any:
    """Parse ``text`` as JSON; :class:`ConfigErrors` gives the position of a syntax error, never the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise ConfigErrors(document_name, [Problem("(document)", f"valid JSON (syntax error at {where})")]) from None
    except (RecursionError, ValueError):
        raise ConfigErrors(document_name, [Problem("(document)", "valid JSON")]) from None


MAX_NESTING = 32
"""How deep a configuration document may nest (the deepest valid one nests 7 levels); deeper is refused up front."""


def too_deep(document: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``document`` nests objects and lists more than ``limit`` levels deep (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def document_problems(document: Any, *, required: str | None, allowed: tuple[str, ...]) -> list[Problem]:
    """The top-level problems that make a whole document unusable (not an object, nested too deep, no ``partners``,
    unknown keys)."""
    if not isinstance(document, dict):
        return [Problem("(document)", f"an object with the keys {', '.join(allowed)}")]
    if too_deep(document):
        return [Problem("(document)", f"nested at most {MAX_NESTING} levels deep")]
    found: list[Problem] = []
    unknown = [str(key) for key in document if key not in allowed]
    if unknown:
        from kauto.collector import unknown_key

        found += [Problem(key, unknown_key(key, allowed)) for key in unknown]
    if "partners" not in document:
        if required == "partners":
            found.append(Problem("partners", "required: an object keyed by partner id"))
    elif not isinstance(document["partners"], dict):
        found.append(Problem("partners", "an object keyed by partner id"))
    elif required == "partners" and not document["partners"]:
        found.append(Problem("partners", "at least one partner"))
    return found


def is_partner_id(key: str) -> bool:
    """A document key that is a partner id: ASCII digits of a positive number."""
    return key.isascii() and key.isdigit() and int(key) > 0


class PartnerDirectory:
    """Looks partners up in the cached secret document; an unknown or disabled partner triggers a rate-limited
    refresh.

    A partner added to (or fixed in) the secret therefore works without a redeploy, while requests for partners that
    do not exist cost at most one Secrets Manager call per refresh interval.
    """

    def __init__(self, secret: CachedSecret[PartnerSecrets]) -> None:
        self._secret = secret

    def get(self, partner_id: int) -> PartnerConfig | None:
        """The partner's config, or ``None`` if it is not configured even after a (rate-limited) refresh.

        Raises :class:`PartnerConfigError` when the partner's entry is broken (the partner is disabled).
        """
        secrets = self._secret.get()
        if partner_id not in secrets.partners:
            secrets = self._secret.refresh()
        problems = secrets.problems_of(partner_id)
        if problems is not None:
            raise PartnerConfigError(partner_id, SECRET_DOCUMENT, [str(problem.path) for problem in problems])
        return secrets.partners.get(partner_id)

    def broken(self) -> Mapping[str, tuple[Problem, ...]]:
        """The broken entries of the current document (for the sweep's alert)."""
        return self._secret.get().broken


@functools.cache
def partner_directory(secret_arn: str) -> PartnerDirectory:
    """The process-wide directory for the partner secret ``secret_arn`` (fetched lazily, cached with a TTL)."""
    return PartnerDirectory(CachedSecret(secret_arn, parse_partner_secrets))
