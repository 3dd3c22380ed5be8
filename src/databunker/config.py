"""Typed settings: the one place that reads the YAML config file and the environment.

Responsibility: turn ``databunker.yaml`` plus environment variables into one validated
``Settings`` object at start, and the bootstrap secrets (master key, root token, database URL)
into a ``Bootstrap``. No other module of the project reads ``os.environ``; everything else is
handed these objects.

Precedence (deliberately the reverse of Go Databunker, spec §10.1 [IMPROVE]): built-in defaults,
then the YAML file, then the environment. **An environment variable wins over the file.**

Every key ``<section>.<key>`` can be set from the environment under any of these names:

- ``<SECTION>_<KEY>`` upper-cased, keeping the key's underscores: ``GENERIC_LIST_USERS``;
- the same without the key's underscores (Databunker's spelling): ``GENERIC_LISTUSERS``;
- a short alias for a few keys: ``BUNKER_PORT``, ``BUNKER_HOST`` (``server.*``),
  ``SMTP_SERVER``, ``SMTP_PORT``, ``SMTP_USER``, ``SMTP_PASS``, ``SMTP_SENDER`` (``smtp.*``),
  ``SSL_CERTIFICATE``, ``SSL_CERTIFICATE_KEY`` (``ssl.*``), ``ADMIN_EMAIL``
  (``generic.admin_email``).

If several names for one key are set to different values, that is a configuration error.
List values (``selfservice.app_record_change``) come from the environment comma-separated;
booleans accept true/false, 1/0, yes/no, on/off in any case. A key left empty in YAML
(``key:`` with no value) keeps its default.

Invariants guarded here: no message raised from this module contains a configuration value,
so a typo next to a password never prints the password (errors name keys, variables and
files); secret fields are left out of ``repr`` and read ``"****"`` in the configuration API.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_origin
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

__all__ = [
    "MAX_DURATION_SECONDS",
    "Bootstrap",
    "ConfigError",
    "GenericSettings",
    "NotificationSettings",
    "PolicySettings",
    "SelfServiceSettings",
    "ServerSettings",
    "Settings",
    "SmsSettings",
    "SmtpSettings",
    "SslSettings",
    "UISettings",
    "env_names",
    "load_bootstrap",
    "load_settings",
    "parse_duration",
]

DEFAULT_CONFIG_FILE = "databunker.yaml"
REDACTED = "****"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key, variable or file, and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- durations (spec §4.3) ------------------------------------------------------------------

_DURATION = re.compile(r"([0-9]+)([mhds])?")
_UNIT_SECONDS = {"s": 1, "h": 3600, "d": 86400, "m": 31 * 86400}  # "m" is a 31-day month
# The longest duration anywhere (configured or requested), and how far from now a requested
# absolute time may lie: a hundred years of leap years. Every time stays far inside the
# database's 64-bit integers.
MAX_DURATION_SECONDS = 100 * 366 * 86400
_MAX_DURATION_DIGITS = len(str(MAX_DURATION_SECONDS)) + 1
_TOO_LONG = "invalid duration: longer than 100 years"


def parse_duration(value: str | int, *, maximum: int = MAX_DURATION_SECONDS) -> int:
    """Return the seconds in a duration such as ``"1m"``, ``"2h"``, ``"10d"``, ``"5s"`` or ``30``.

    ``m`` means months of 31 days (not minutes); no unit means seconds. Unlike Databunker's
    request-time parser, a large number is never reinterpreted as an absolute Unix time, and
    bad syntax raises ``ValueError`` instead of counting as 0, as does a duration beyond
    ``maximum`` (100 years unless a caller allows an absolute time up to 100 years ahead).
    """
    if isinstance(value, bool):
        raise ValueError("invalid duration: expected a number or a string such as '1h'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("invalid duration: must not be negative")
        seconds = value
    else:
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(
                "invalid duration: expected digits optionally followed by s (seconds), "
                "h (hours), d (days) or m (months of 31 days)"
            )
        number, unit = match.groups()
        if len(number.lstrip("0")) > _MAX_DURATION_DIGITS:
            raise ValueError(_TOO_LONG)
        seconds = int(number) * _UNIT_SECONDS[unit or "s"]
    if seconds > maximum:
        raise ValueError(_TOO_LONG)
    return seconds


# --- the sections of databunker.yaml --------------------------------------------------------

_MODEL_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class GenericSettings(BaseModel):
    model_config = _MODEL_CONFIG

    create_user_without_access_token: bool = False
    use_separate_app_tables: bool = False
    user_record_schema: str = ""
    disable_audit: bool = False
    admin_email: str = ""
    list_users: bool = False
    login_captcha: bool = True


class SelfServiceSettings(BaseModel):
    model_config = _MODEL_CONFIG

    forget_me: bool = False
    user_record_change: bool = False
    app_record_change: list[str] = Field(default_factory=list)


class NotificationSettings(BaseModel):
    model_config = _MODEL_CONFIG

    notification_url: str = ""
    notification_secret: str = Field(default="", repr=False)
    magic_sync_url: str = ""
    magic_sync_token: str = Field(default="", repr=False)


class PolicySettings(BaseModel):
    """Retention limits, kept in their configured syntax; the ``*_seconds`` properties parse."""

    model_config = _MODEL_CONFIG

    max_user_retention_period: str = "1m"
    max_audit_retention_period: str = "12m"
    max_session_retention_period: str = "1h"
    max_shareable_record_retention_period: str = "1m"
    # how long a passwordless login code stays valid
    login_code_period: str = "300s"
    # how long the access token of a logged-in data subject stays valid
    user_token_period: str = "1h"  # noqa: S105 - a duration, not a secret

    @field_validator(
        "max_user_retention_period",
        "max_audit_retention_period",
        "max_session_retention_period",
        "max_shareable_record_retention_period",
        "login_code_period",
        "user_token_period",
    )
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def login_code_seconds(self) -> int:
        return parse_duration(self.login_code_period)

    @property
    def user_token_seconds(self) -> int:
        return parse_duration(self.user_token_period)

    @property
    def max_user_retention_seconds(self) -> int:
        return parse_duration(self.max_user_retention_period)

    @property
    def max_audit_retention_seconds(self) -> int:
        return parse_duration(self.max_audit_retention_period)

    @property
    def max_session_retention_seconds(self) -> int:
        return parse_duration(self.max_session_retention_period)

    @property
    def max_shareable_record_retention_seconds(self) -> int:
        return parse_duration(self.max_shareable_record_retention_period)


class SslSettings(BaseModel):
    model_config = _MODEL_CONFIG

    ssl_certificate: str = ""
    ssl_certificate_key: str = ""


class SmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)

    url: str = ""
    # ``from`` is a Python keyword: the attribute is ``from_``, the YAML key ``from``.
    from_: str = Field(default="", validation_alias="from", serialization_alias="from")
    body: str = ""
    token: str = Field(default="", repr=False)
    method: str = "GET"
    basic_auth: str = Field(default="", repr=False)
    content_type: str = ""
    custom_header: str = ""
    default_country: str = "GB"


class ServerSettings(BaseModel):
    model_config = _MODEL_CONFIG

    host: str = "0.0.0.0"  # noqa: S104  -- a vault in a container listens on all interfaces
    port: int = Field(default=3000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_json_depth: int = Field(default=32, gt=0)
    # seconds between runs of the periodic jobs (expiries, purges, webhook retries)
    jobs_interval: int = Field(default=60, gt=0, le=MAX_DURATION_SECONDS)
    # server processes answering on the port; one per CPU core suits a dedicated machine
    workers: int = Field(default=1, ge=1, le=64)


class TracingSettings(BaseModel):
    """Optional OpenTelemetry tracing: a span per request, by OTLP over HTTP."""

    model_config = _MODEL_CONFIG

    enabled: bool = False
    # OTLP/HTTP traces endpoint of a collector (protobuf)
    endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", pattern=r"^https?://\S+$")
    service_name: str = Field(default="databunker", min_length=1, max_length=128)


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)

    server: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    user: str = ""
    # ``pass`` is a Python keyword: the attribute is ``pass_``, the YAML key ``pass``.
    pass_: str = Field(default="", validation_alias="pass", serialization_alias="pass", repr=False)
    sender: str = ""
    # none (plain, for a local relay), starttls, or tls (implicit TLS, usually port 465)
    security: Literal["none", "starttls", "tls"] = "starttls"
    # the login-code email: its subject, and its text where {code} stands for the code
    code_subject: str = "Access Code"
    code_template: str = "Your access code is {code}. It is valid for a few minutes."

    @field_validator("code_template")
    @classmethod
    def _template_has_code(cls, value: str) -> str:
        if "{code}" not in value:
            raise ValueError("must contain {code}, where the login code goes")
        return value

    def login_code_email(self, code: str) -> tuple[str, str]:
        """Subject and text of the email that carries a login code."""
        return self.code_subject, self.code_template.replace("{code}", code)


class UISettings(BaseModel):
    model_config = _MODEL_CONFIG

    logo_link: str = ""
    company_title: str = ""
    company_vat: str = ""
    company_city: str = ""
    company_link: str = ""
    company_country: str = ""
    company_address: str = ""
    term_of_service_title: str = ""
    term_of_service_link: str = ""
    privacy_policy_title: str = ""
    privacy_policy_link: str = ""
    custom_css_link: str = ""
    magic_lookup: bool = False


# YAML section name -> (model, Go struct name used on the wire by /v1/sys/configuration).
_SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "generic": (GenericSettings, "Generic"),
    "selfservice": (SelfServiceSettings, "SelfService"),
    "notification": (NotificationSettings, "Notification"),
    "policy": (PolicySettings, "Policy"),
    "ssl": (SslSettings, "Ssl"),
    "sms": (SmsSettings, "Sms"),
    "server": (ServerSettings, "Server"),
    "smtp": (SmtpSettings, "SMTP"),
    "ui": (UISettings, "UI"),
    "tracing": (TracingSettings, "Tracing"),
}

_SECRET_KEYS = frozenset(
    {
        ("smtp", "pass"),
        ("sms", "token"),
        ("sms", "basic_auth"),
        ("notification", "notification_secret"),
        ("notification", "magic_sync_token"),
    }
)

# Go spells these initialisms in capitals (NotificationURL, CompanyVAT, CustomCSSLink).
_GO_INITIALISMS = {"url": "URL", "vat": "VAT", "css": "CSS"}


@functools.cache
def _go_name(key: str) -> str:
    # Cached: the keys are the settings' field names, a fixed set, and the UI configuration
    # is renamed on every request for it.
    return "".join(_GO_INITIALISMS.get(part, part.capitalize()) for part in key.split("_"))


class Settings(BaseModel):
    """The whole validated configuration; build it with ``load_settings``."""

    model_config = _MODEL_CONFIG

    generic: GenericSettings = Field(default_factory=GenericSettings)
    selfservice: SelfServiceSettings = Field(default_factory=SelfServiceSettings)
    notification: NotificationSettings = Field(default_factory=NotificationSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    ssl: SslSettings = Field(default_factory=SslSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    ui: UISettings = Field(default_factory=UISettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    @property
    def magic_lookup(self) -> bool:
        """Whether the UI may offer magic lookup: only when the sync URL and token are both set."""
        return bool(self.notification.magic_sync_url and self.notification.magic_sync_token)

    def redacted_configuration(self) -> dict[str, Any]:
        """The configuration for ``GET /v1/sys/configuration``, with Go's field names.

        Secrets read ``"****"`` when set and ``""`` when not (spec §7.1 [IMPROVE: redact]).
        ``UI.MagicLookup`` shows the effective value, as Databunker does once it has served
        its UI configuration.
        """
        result: dict[str, Any] = {}
        for section, (_, go_section) in _SECTIONS.items():
            values: dict[str, Any] = getattr(self, section).model_dump(by_alias=True)
            shaped: dict[str, Any] = {}
            for key, value in values.items():
                if (section, key) in _SECRET_KEYS:
                    value = REDACTED if value else ""
                shaped[_go_name(key)] = value
            result[go_section] = shaped
        result["UI"]["MagicLookup"] = self.magic_lookup
        return result

    def ui_configuration(self) -> dict[str, Any]:
        """The public branding block for ``GET /v1/sys/uiconfiguration`` (spec §7.1).

        Keys in Databunker's order, LogoLink ... CustomCSSLink, then MagicLookup.
        """
        ui = {_go_name(key): value for key, value in self.ui.model_dump().items()}
        ui["MagicLookup"] = self.magic_lookup
        return ui


# --- loading --------------------------------------------------------------------------------

_SHORT_ENV_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("server", "port"): ("BUNKER_PORT",),
    ("server", "host"): ("BUNKER_HOST",),
    ("smtp", "server"): ("SMTP_SERVER",),
    ("smtp", "port"): ("SMTP_PORT",),
    ("smtp", "user"): ("SMTP_USER",),
    ("smtp", "pass"): ("SMTP_PASS",),
    ("smtp", "sender"): ("SMTP_SENDER",),
    ("ssl", "ssl_certificate"): ("SSL_CERTIFICATE",),
    ("ssl", "ssl_certificate_key"): ("SSL_CERTIFICATE_KEY",),
    ("generic", "admin_email"): ("ADMIN_EMAIL",),
}


def _yaml_key(name: str, field: FieldInfo) -> str:
    return field.serialization_alias or field.alias or name


def _section_keys(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        yield _yaml_key(name, field), field


def env_names(section: str, key: str) -> tuple[str, ...]:
    """Every environment variable name that sets ``<section>.<key>``, long spelling first."""
    names = [
        f"{section}_{key}".upper(),
        f"{section}_{key.replace('_', '')}".upper(),
        *_SHORT_ENV_ALIASES.get((section, key), ()),
    ]
    return tuple(dict.fromkeys(names))


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the YAML file (if any), apply environment overrides, validate, return ``Settings``.

    ``config_file=None`` (or ``""``) means ``./databunker.yaml`` when it exists, else no file;
    a file named explicitly must exist. Raises ``ConfigError`` for every problem.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if config_file is None or config_file == "":
        default = Path(DEFAULT_CONFIG_FILE)
        path: Path | None = default if default.is_file() else None
    else:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"configuration file not found: {path}")

    sections = _file_sections(_read_yaml(path), path) if path is not None else {}
    env_sources = _apply_environment(sections, env)
    try:
        return Settings.model_validate(sections)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, env_sources)) from None


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ConfigError(f"cannot read configuration file {path}: {reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position and the parser's complaint: the snippet it quotes may hold a secret.
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise ConfigError(f"invalid YAML in configuration file {path}{where}{detail}") from None


def _file_sections(raw: object, path: Path) -> dict[str, dict[str, Any]]:
    """Check the file's shape and names; return ``{section: {key: value}}`` without nulls."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file {path} must be a mapping of sections")
    sections: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for section, body in raw.items():
        if section not in _SECTIONS:
            unknown.append(str(section))
            continue
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{section}: expected a mapping of keys in {path}")
        known = {key for key, _ in _section_keys(_SECTIONS[section][0])}
        for key in body:
            if key not in known:
                unknown.append(f"{section}.{key}")
        sections[section] = {k: v for k, v in body.items() if k in known and v is not None}
    if unknown:
        raise ConfigError("\n".join(f"unknown configuration key: {name}" for name in unknown))
    return sections


def _apply_environment(
    sections: dict[str, dict[str, Any]], env: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """Overlay environment values onto ``sections``; return which variable set each key."""
    sources: dict[tuple[str, str], str] = {}
    for section, (model, _) in _SECTIONS.items():
        for key, field in _section_keys(model):
            found = [(name, env[name]) for name in env_names(section, key) if name in env]
            if not found:
                continue
            if len({value for _, value in found}) > 1:
                names = ", ".join(name for name, _ in found)
                raise ConfigError(
                    f"{section}.{key}: environment variables {names} are set to different values"
                )
            name, value = found[0]
            parsed: Any = value
            if get_origin(field.annotation) is list:
                parsed = [item.strip() for item in value.split(",") if item.strip()]
            sections.setdefault(section, {})[key] = parsed
            sources[(section, key)] = name
    return sources


def _describe(exc: ValidationError, env_sources: Mapping[tuple[str, str], str]) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = error["loc"]
        dotted = ".".join(str(part) for part in loc if not isinstance(part, int))
        dotted += "".join(f"[{part}]" for part in loc if isinstance(part, int))
        message = error["msg"].removeprefix("Value error, ")
        line = f"{dotted}: {message}"
        source = env_sources.get((str(loc[0]), str(loc[1]))) if len(loc) >= 2 else None
        if source is not None:
            line += f" (from environment variable {source})"
        lines.append(line)
    return "\n".join(lines)


# --- bootstrap secrets (spec §10.3) ---------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Bootstrap:
    """Secrets needed before the settings mean anything; never part of databunker.yaml."""

    master_key_hex: str | None
    root_token: str | None
    database_url: str | None
    # ``aws-kms:<key id or ARN>`` for a vault whose master key AWS KMS keeps.
    kms: str | None = None

    def __repr__(self) -> str:
        return (
            f"Bootstrap(master_key_hex={_redact(self.master_key_hex)}, "
            f"root_token={_redact(self.root_token)}, "
            f"database_url={_redact_url(self.database_url)})"
        )

    __str__ = __repr__


def _redact(value: str | None) -> str:
    return "None" if value is None else repr(REDACTED)


def _redact_url(url: str | None) -> str:
    if url is None:
        return "None"
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return repr(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:{REDACTED}@{host}"
        return repr(urlunsplit(parts._replace(netloc=netloc)))
    except ValueError:
        return repr(REDACTED)


def load_bootstrap(environ: Mapping[str, str] | None = None) -> Bootstrap:
    """Read the master key, root token and database URL from the environment.

    ``DATABUNKER_MASTERKEY`` wins over ``DATABUNKER_MASTERKEY_FILE`` (a file holding the key,
    trimmed); likewise ``DATABUNKER_ROOTTOKEN`` / ``DATABUNKER_ROOTTOKEN_FILE``. The database
    URL comes from ``DATABUNKER_DB``, the KMS key from ``DATABUNKER_KMS``. Unset or empty
    means ``None``.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    return Bootstrap(
        master_key_hex=_secret_from_env(env, "DATABUNKER_MASTERKEY"),
        root_token=_secret_from_env(env, "DATABUNKER_ROOTTOKEN"),
        database_url=env.get("DATABUNKER_DB", "").strip() or None,
        kms=env.get("DATABUNKER_KMS", "").strip() or None,
    )


def _secret_from_env(env: Mapping[str, str], name: str) -> str | None:
    direct = env.get(name, "").strip()
    if direct:
        return direct
    file_variable = f"{name}_FILE"
    file_name = env.get(file_variable, "").strip()
    if not file_name:
        return None
    try:
        content = Path(file_name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{file_variable}: cannot read the file it names") from None
    if not content:
        raise ConfigError(f"{file_variable}: the file it names is empty")
    return content
