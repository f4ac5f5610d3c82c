"""API v3 errors as Kaltura defines them: ``"CODE;ARG1,ARG2;message with @ARG1@"``
(docs/kaltura.md#api-errors, #reach-task-add)."""

from __future__ import annotations

from typing import Any

# Core (srv api_v3/lib/KalturaErrors.php) - wording follows the server's constants where they are known.
INVALID_KS = 'INVALID_KS;KSID,ERR_CODE,ERR_DESC;Invalid KS "@KSID@", Error "@ERR_CODE@,@ERR_DESC@"'
MISSING_KS = "MISSING_KS;;Missing KS, session not established"
SERVICE_FORBIDDEN = "SERVICE_FORBIDDEN;SERVICE;The access to service [@SERVICE@] is forbidden"
SERVICE_DOES_NOT_EXISTS = 'SERVICE_DOES_NOT_EXISTS;SERVICE;Service "@SERVICE@" does not exists'
ACTION_DOES_NOT_EXISTS = (
    'ACTION_DOES_NOT_EXISTS;ACTION,SERVICE;Action "@ACTION@" does not exists for service "@SERVICE@"'
)
MISSING_MANDATORY_PARAMETER = 'MISSING_MANDATORY_PARAMETER;PARAM_NAME;Missing parameter "@PARAM_NAME@"'
INVALID_PARAMETER_VALUE = (
    'INVALID_PARAMETER_VALUE;PARAM_NAME,VALUE;Invalid value "@VALUE@" for parameter "@PARAM_NAME@"'
)
PROPERTY_VALIDATION_CANNOT_BE_NULL = 'PROPERTY_VALIDATION_CANNOT_BE_NULL;PROP_NAME;"@PROP_NAME@" cannot be null'
ACTION_BLOCKED = "ACTION_BLOCKED;ACTION_NAME,SERVICE_NAME;Action [@ACTION_NAME@] in service [@SERVICE_NAME@] is blocked"
INTERNAL_SERVERL_ERROR = "INTERNAL_SERVERL_ERROR;;Internal server error occurred"
START_SESSION_ERROR = "START_SESSION_ERROR;PARTNER_ID;Error while starting session for partner [@PARTNER_ID@]"
INVALID_WIDGET_ID = 'INVALID_WIDGET_ID;WIDGET_ID;Invalid widget id "@WIDGET_ID@"'
ENTRY_ID_NOT_FOUND = 'ENTRY_ID_NOT_FOUND;ENTRY_ID;Entry id "@ENTRY_ID@" not found'
QUERY_EXCEEDED_MAX_MATCHES_ALLOWED = (
    "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED;;Unable to generate list. max matches value was reached"
)
FEATURE_FORBIDDEN = "FEATURE_FORBIDDEN;FEATURE;The usage of feature [@FEATURE@] is forbidden"
SEARCH_TOO_GENERAL = "SEARCH_TOO_GENERAL;;Unable to create report. Query produced too many results"
REPORT_NOT_FOUND = 'REPORT_NOT_FOUND;ID;Report id "@ID@" not found'
REPORT_PARAMETER_MISSING = 'REPORT_PARAMETER_MISSING;PARAM;Report parameter "@PARAM@" is missing'
FILE_DOESNT_EXIST = "FILE_DOESNT_EXIST;;File doesnt exist"
CAPTION_ASSET_ID_NOT_FOUND = (
    'CAPTION_ASSET_ID_NOT_FOUND;CAPTION_ASSET_ID;Caption asset id "@CAPTION_ASSET_ID@" not found'
)

# App tokens (srv AppTokenErrors, docs/kaltura.md#app-tokens)
APP_TOKEN_ID_NOT_FOUND = "APP_TOKEN_ID_NOT_FOUND;ID;Application token id [@ID@] not found"  # noqa: S105
APP_TOKEN_NOT_ACTIVE = "APP_TOKEN_NOT_ACTIVE;ID;Application token id [@ID@] not active"  # noqa: S105
INVALID_APP_TOKEN_HASH = "INVALID_APP_TOKEN_HASH;;Invalid application token hash"  # noqa: S105
APP_TOKEN_EXPIRED = "APP_TOKEN_EXPIRED;ID;Application token id [@ID@] expired"  # noqa: S105

# REACH (srv plugins/reach/errors/KalturaReachErrors.php, docs/kaltura.md#reach-task-add)
ENTRY_NOT_READY = "ENTRY_NOT_READY;STATUS;Entry is not ready for order, current status [@STATUS@]"
ENTRY_TYPE_NOT_SUPPORTED = "ENTRY_TYPE_NOT_SUPPORTED;TYPE;Entry type [@TYPE@] not supported"
CATALOG_ITEM_NOT_FOUND = "CATALOG_ITEM_NOT_FOUND;ID;Catalog item with id [@ID@] not found"
CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT = (
    "CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT;ID;Catalog item with id [@ID@] is not enabled for this account"
)
REACH_PROFILE_NOT_FOUND = "REACH_PROFILE_NOT_FOUND;ID;Reach profile with id [@ID@] not found"
ENTRY_VENDOR_TASK_DUPLICATION = (
    "ENTRY_VENDOR_TASK_DUPLICATION;ENTRY_ID,CATALOG_ITEM_ID,VERSION;Entry vendor task already exists for entry "
    "[@ENTRY_ID@] and catalog item [@CATALOG_ITEM_ID@] and version [@VERSION@]"
)
EXCEEDED_MAX_CREDIT_ALLOWED = (
    "EXCEEDED_MAX_CREDIT_ALLOWED;ENTRY_ID,CATALOG_ITEM_ID;Exceeded max credit allowed, Cannot add request for entry "
    "[@ENTRY_ID@] and catalog item [@CATALOG_ITEM_ID@]"
)
CREDIT_EXPIRED = (
    "CREDIT_EXPIRED;ENTRY_ID,CATALOG_ITEM_ID;Credit cycle has expired, Cannot add request for entry [@ENTRY_ID@] "
    "and catalog item [@CATALOG_ITEM_ID@]"
)
PARTNER_DATA_NOT_VALID_JSON_STRING = "PARTNER_DATA_NOT_VALID_JSON_STRING;;Partner data is not a valid json string"
ENTRY_VENDOR_TASK_NOT_FOUND = "ENTRY_VENDOR_TASK_NOT_FOUND;ID;Entry vendor task item with id [@ID@] not found"
CANNOT_UPDATE_STATUS_OF_TASK_WHICH_IS_IN_FINAL_STATE = (
    "CANNOT_UPDATE_STATUS_OF_TASK_WHICH_IS_IN_FINAL_STATE;ID,OLD_STATUS,NEW_STATUS;Cannot update status of task "
    "[@ID@] from [@OLD_STATUS@] to [@NEW_STATUS@] since it is in a final state"
)


class ApiError(Exception):
    """An API v3 error; serialised as an HTTP 200 ``KalturaAPIException`` body (docs/kaltura.md#api-errors)."""

    def __init__(self, template: str, *values: object, message: str | None = None) -> None:
        code, arg_names, text = template.split(";", 2)
        names = [name for name in arg_names.split(",") if name]
        if len(names) != len(values):
            raise ValueError(f"{code} takes {len(names)} arguments, got {len(values)}")
        self.code = code
        self.args_map = {name: str(value) for name, value in zip(names, values, strict=True)}
        for name, value in self.args_map.items():
            text = text.replace(f"@{name}@", value)
        self.message = message if message is not None else text
        super().__init__(f"{code}: {self.message}")

    def to_api(self) -> dict[str, Any]:
        """The error object: code, message, objectType, args (``[]`` when empty), in Kaltura's key order."""
        return {"code": self.code, "message": self.message, "objectType": "KalturaAPIException", "args": self.args_map}


def invalid_ks(reason: str) -> ApiError:
    """``INVALID_KS`` with the reason (or the unparsable KS itself) in the KSID slot, like the expired sample."""
    return ApiError(INVALID_KS, reason, "-1", "INVALID_STR")
