"""SSM Parameter Store adapter: read one (plain String) parameter, e.g. the automation configuration document.

Cached through :class:`kauto.aws.secrets.CachedSecret` (validated once per fetch, refetched after five minutes);
that module says why it is used rather than Powertools' Parameters.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import ssm_client
from kauto.errors import ConfigError, DependencyUnavailableError

# An operator must fix these (wrong name, missing permission, undecryptable value): retrying cannot help.
_CONFIG_ERROR_CODES = frozenset(
    {"ParameterNotFound", "ParameterVersionNotFound", "AccessDeniedException", "ValidationException"}
)


class ParameterUnavailableError(DependencyUnavailableError):
    """Parameter Store could not return the parameter right now (throttling, network, service error)."""


def fetch_parameter_string(name: str) -> str:
    """Return the value of SSM parameter ``name``.

    Raises :class:`ConfigError` (naming the parameter) when it cannot be used at all and
    :class:`ParameterUnavailableError` when the failure is transient.
    """
    try:
        response = ssm_client().get_parameter(Name=name)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        if code in _CONFIG_ERROR_CODES:
            raise ConfigError(name, f"parameter cannot be read ({code})") from exc
        raise ParameterUnavailableError("ssm", "GetParameter", code) from exc
    except BotoCoreError as exc:
        raise ParameterUnavailableError("ssm", "GetParameter", type(exc).__name__) from exc
    return str(response["Parameter"]["Value"])
