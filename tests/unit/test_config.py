"""Settings from YAML and environment, bootstrap secrets, and the configuration views.

Every test passes an explicit ``environ`` dict and files under ``tmp_path``, so nothing depends
on the real environment or working directory. Error messages are asserted as an operator
would read them: they name the key (or variable, or file) and never contain a secret value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from databunker.config import (
    Bootstrap,
    ConfigError,
    Settings,
    load_bootstrap,
    load_settings,
    parse_duration,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = 86400
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  -- the documented default, compared, never bound


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "databunker.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = "", **environ: str) -> Settings:
    return load_settings(write_config(tmp_path, text), environ=environ)


# --- defaults and the YAML file -------------------------------------------------------------


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.generic.create_user_without_access_token is False
    assert settings.generic.login_captcha is True
    assert settings.selfservice.app_record_change == []
    assert settings.policy.max_user_retention_period == "1m"
    assert settings.policy.max_audit_retention_period == "12m"
    assert settings.policy.max_session_retention_period == "1h"
    assert settings.policy.max_shareable_record_retention_period == "1m"
    assert settings.sms.method == "GET"
    assert settings.sms.default_country == "GB"
    assert (settings.server.host, settings.server.port) == (ALL_INTERFACES, 3000)
    assert settings.server.max_body_bytes == 1_048_576
    assert settings.server.max_json_depth == 32
    assert settings.smtp.port == 25
    assert settings.smtp.pass_ == ""
    assert settings.ui.magic_lookup is False


def test_default_file_in_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "generic:\n  list_users: true\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).generic.list_users is True


def test_empty_config_file_string_means_default_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings("", environ={}) == Settings()


def test_yaml_values_are_loaded(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
generic:
  create_user_without_access_token: true
  admin_email: dpo@example.com
selfservice:
  app_record_change: ["shop", "crm"]
policy:
  max_session_retention_period: 2h
sms:
  from: Bunker
  token: sms-secret
server:
  port: 8080
smtp:
  pass: hunter2
  port: 587
ui:
  company_vat: 123456
""",
    )
    assert settings.generic.create_user_without_access_token is True
    assert settings.generic.admin_email == "dpo@example.com"
    assert settings.selfservice.app_record_change == ["shop", "crm"]
    assert settings.policy.max_session_retention_seconds == 2 * 3600
    assert settings.sms.from_ == "Bunker"
    assert settings.sms.token == "sms-secret"
    assert settings.server.port == 8080
    assert settings.smtp.pass_ == "hunter2"
    assert settings.smtp.port == 587
    assert settings.ui.company_vat == "123456"  # a YAML number in a text field is kept as text


def test_empty_file_and_empty_sections_give_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Settings()
    assert load(tmp_path, "# only a comment\n") == Settings()
    assert load(tmp_path, "generic:\nsmtp:\n  server:\n") == Settings()


def test_shipped_example_lists_every_key_with_its_default() -> None:
    example = REPO_ROOT / "databunker.yaml"
    assert load_settings(example, environ={}) == Settings()

    document = yaml.safe_load(example.read_text(encoding="utf-8"))
    expected = Settings().model_dump(by_alias=True)
    assert list(document) == list(expected)
    for section, keys in expected.items():
        assert list(document[section]) == list(keys), section


# --- environment overrides ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GENERIC_LIST_USERS", "GENERIC_LISTUSERS"])
def test_env_overrides_yaml_in_both_spellings(tmp_path: Path, name: str) -> None:
    settings = load(tmp_path, "generic:\n  list_users: false\n", **{name: "true"})
    assert settings.generic.list_users is True


@pytest.mark.parametrize(
    ("name", "value", "section", "attribute", "expected"),
    [
        ("BUNKER_PORT", "8443", "server", "port", 8443),
        ("BUNKER_HOST", "127.0.0.1", "server", "host", "127.0.0.1"),
        ("SMTP_SERVER", "mail.example.com", "smtp", "server", "mail.example.com"),
        ("SMTP_PORT", "2525", "smtp", "port", 2525),
        ("SMTP_USER", "mailer", "smtp", "user", "mailer"),
        ("SMTP_PASS", "s3cret", "smtp", "pass_", "s3cret"),
        ("SMTP_SENDER", "no-reply@example.com", "smtp", "sender", "no-reply@example.com"),
        ("SSL_CERTIFICATE", "/certs/server.cer", "ssl", "ssl_certificate", "/certs/server.cer"),
        ("SSL_CERTIFICATE_KEY", "/certs/s.key", "ssl", "ssl_certificate_key", "/certs/s.key"),
        ("ADMIN_EMAIL", "dpo@example.com", "generic", "admin_email", "dpo@example.com"),
        ("SMS_FROM", "Bunker", "sms", "from_", "Bunker"),
        ("SMS_DEFAULTCOUNTRY", "DE", "sms", "default_country", "DE"),
        ("POLICY_MAXUSERRETENTIONPERIOD", "3m", "policy", "max_user_retention_period", "3m"),
        ("UI_COMPANY_TITLE", "ACME", "ui", "company_title", "ACME"),
        (
            "NOTIFICATION_NOTIFICATIONURL",
            "https://h/",
            "notification",
            "notification_url",
            "https://h/",
        ),
        ("SERVER_MAX_BODY_BYTES", "2048", "server", "max_body_bytes", 2048),
    ],
)
def test_env_names_and_short_aliases(
    tmp_path: Path, name: str, value: str, section: str, attribute: str, expected: Any
) -> None:
    settings = load(tmp_path, "", **{name: value})
    assert getattr(getattr(settings, section), attribute) == expected


def test_short_alias_overrides_yaml(tmp_path: Path) -> None:
    settings = load(tmp_path, "server:\n  port: 3000\n  host: 0.0.0.0\n", BUNKER_PORT="9000")
    assert settings.server.port == 9000
    assert settings.server.host == ALL_INTERFACES


def test_agreeing_spellings_are_accepted(tmp_path: Path) -> None:
    settings = load(tmp_path, "", BUNKER_PORT="4000", SERVER_PORT="4000")
    assert settings.server.port == 4000


def test_disagreeing_spellings_are_an_error_without_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            tmp_path,
            "",
            NOTIFICATION_MAGIC_SYNC_TOKEN="first-secret",
            NOTIFICATION_MAGICSYNCTOKEN="second-secret",
        )
    message = str(caught.value)
    assert message.startswith("notification.magic_sync_token: ")
    assert "NOTIFICATION_MAGIC_SYNC_TOKEN" in message
    assert "NOTIFICATION_MAGICSYNCTOKEN" in message
    assert "secret" not in message.replace("NOTIFICATION", "")


def test_disagreeing_short_alias_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^server\.port: .*SERVER_PORT, BUNKER_PORT"):
        load(tmp_path, "", SERVER_PORT="1", BUNKER_PORT="2")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shop,crm", ["shop", "crm"]),
        (" shop , crm ,", ["shop", "crm"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_list_from_env_is_comma_separated(tmp_path: Path, value: str, expected: list[str]) -> None:
    settings = load(
        tmp_path,
        "selfservice:\n  app_record_change: [other]\n",
        **{"SELFSERVICE_APPRECORDCHANGE": value},
    )
    assert settings.selfservice.app_record_change == expected


def test_list_from_env_long_spelling(tmp_path: Path) -> None:
    settings = load(tmp_path, "", SELFSERVICE_APP_RECORD_CHANGE="a,b")
    assert settings.selfservice.app_record_change == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_bool_from_env(tmp_path: Path, value: str, expected: bool) -> None:
    settings = load(tmp_path, "", SELFSERVICE_FORGETME=value, GENERIC_LOGIN_CAPTCHA=value)
    assert settings.selfservice.forget_me is expected
    assert settings.generic.login_captcha is expected


def test_unrelated_environment_is_ignored(tmp_path: Path) -> None:
    assert load(tmp_path, "", PATH="/usr/bin", HOME="/root", GENERIC="x") == Settings()


# --- errors ---------------------------------------------------------------------------------


def test_bad_bool_names_key_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "", GENERIC_LISTUSERS="maybe")
    message = str(caught.value)
    assert message.startswith("generic.list_users: Input should be a valid boolean")
    assert "GENERIC_LISTUSERS" in message
    assert "maybe" not in message


def test_bad_yaml_value_names_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "generic:\n  list_users: perhaps\n")
    assert str(caught.value).startswith("generic.list_users: Input should be a valid boolean")


def test_every_bad_value_is_reported_one_per_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "server:\n  port: 70000\nsmtp:\n  port: http\n  pass: [hunter2]\n")
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("server.port: Input should be less than or equal to 65535")
    assert lines[1].startswith("smtp.port: Input should be a valid integer")
    assert lines[2].startswith("smtp.pass: Input should be a valid string")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("server:\n  port: 0\n", "server.port"),
        ("server:\n  max_body_bytes: 0\n", "server.max_body_bytes"),
        ("server:\n  max_json_depth: -1\n", "server.max_json_depth"),
        ("policy:\n  max_session_retention_period: 1x\n", "policy.max_session_retention_period"),
        ("policy:\n  max_user_retention_period: 1.5\n", "policy.max_user_retention_period"),
        ("selfservice:\n  app_record_change: shop\n", "selfservice.app_record_change"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}: "):
        load(tmp_path, text)


def test_bad_duration_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "", POLICY_MAX_AUDIT_RETENTION_PERIOD="12 months")
    message = str(caught.value)
    assert message.startswith("policy.max_audit_retention_period: invalid duration")
    assert "POLICY_MAX_AUDIT_RETENTION_PERIOD" in message


@pytest.mark.parametrize(
    ("text", "environ", "key"),
    [
        ("policy:\n  max_user_retention_period: 36601d\n", {}, "policy.max_user_retention_period"),
        ("policy:\n  login_code_period: 99999999999999999999d\n", {}, "policy.login_code_period"),
        ("policy:\n  user_token_period: 3162240001\n", {}, "policy.user_token_period"),
        (
            "",
            {"POLICY_MAX_SESSION_RETENTION_PERIOD": "1181m"},
            "policy.max_session_retention_period",
        ),
    ],
)
def test_a_duration_beyond_a_hundred_years_is_refused_by_name(
    tmp_path: Path, text: str, environ: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **environ)
    assert str(caught.value).startswith(f"{key}: invalid duration: longer than 100 years")


def test_a_hundred_years_is_the_longest_duration_configured(tmp_path: Path) -> None:
    settings = load(tmp_path, "policy:\n  max_user_retention_period: 36600d\n")
    assert settings.policy.max_user_retention_seconds == 100 * 366 * DAY
    with pytest.raises(ConfigError, match=r"^server\.jobs_interval: "):
        load(tmp_path, "server:\n  jobs_interval: 3162240001\n")
    assert load(tmp_path, "server:\n  jobs_interval: 3162240000\n").server.jobs_interval == (
        100 * 366 * DAY
    )


def test_numeric_duration_in_yaml_means_seconds(tmp_path: Path) -> None:
    settings = load(tmp_path, "policy:\n  max_session_retention_period: 600\n")
    assert settings.policy.max_session_retention_seconds == 600


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("generic:\n  foo: 1\n", "generic.foo"),
        ("generic:\n  listusers: true\n", "generic.listusers"),
        ("sms:\n  from_: x\n", "sms.from_"),
        ("bogus:\n  a: 1\n", "bogus"),
    ],
)
def test_unknown_key_is_an_error(tmp_path: Path, text: str, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert str(caught.value) == f"unknown configuration key: {name}"


def test_all_unknown_keys_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "generic:\n  foo: 1\n  bar: 2\nsmtp:\n  password: x\n")
    assert str(caught.value).splitlines() == [
        "unknown configuration key: generic.foo",
        "unknown configuration key: generic.bar",
        "unknown configuration key: smtp.password",
    ]


@pytest.mark.parametrize("text", ["- generic\n", "just a string\n"])
def test_file_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        load(tmp_path, text)


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^generic: expected a mapping"):
        load(tmp_path, "generic: true\n")


def test_yaml_syntax_error_names_file_not_content(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'smtp:\n  pass: "hunter2\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "invalid YAML" in message
    assert "hunter2" not in message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, environ={})
    assert str(caught.value) == f"configuration file not found: {missing}"


def test_unreadable_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_settings(tmp_path, environ={})  # a directory


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1m", 31 * DAY),
        ("12m", 12 * 31 * DAY),
        ("2h", 2 * 3600),
        ("30", 30),
        ("10d", 10 * DAY),
        ("5s", 5),
        ("0", 0),
        (45, 45),
    ],
)
def test_parse_duration(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["1x", "", "m", "-1h", "1.5h", "1 h", "1H", "1hm", True, -5])
def test_parse_duration_rejects_bad_syntax(value: str | int) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_policy_seconds_properties() -> None:
    policy = Settings().policy
    assert policy.max_user_retention_seconds == 31 * DAY
    assert policy.max_audit_retention_seconds == 12 * 31 * DAY
    assert policy.max_session_retention_seconds == 3600
    assert policy.max_shareable_record_retention_seconds == 31 * DAY


# --- /v1/sys/configuration and /v1/sys/uiconfiguration -------------------------------------


def test_redacted_configuration_uses_go_names_and_hides_secrets(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
generic:
  create_user_without_access_token: true
notification:
  notification_url: https://hooks.example.com/
  notification_secret: webhook-secret
sms:
  from: Bunker
  token: sms-token
  basic_auth: "user:pw"
smtp:
  pass: hunter2
ui:
  company_vat: GB123
""",
        NOTIFICATION_MAGICSYNCTOKEN="magic-token",
    )
    config = settings.redacted_configuration()
    assert list(config) == [
        "Generic",
        "SelfService",
        "Notification",
        "Policy",
        "Ssl",
        "Sms",
        "Server",
        "SMTP",
        "UI",
        "Tracing",
    ]
    assert config["Generic"]["CreateUserWithoutAccessToken"] is True
    assert config["SelfService"]["ForgetMe"] is False
    assert config["Notification"] == {
        "NotificationURL": "https://hooks.example.com/",
        "NotificationSecret": "****",
        "MagicSyncURL": "",
        "MagicSyncToken": "****",
    }
    assert config["Policy"]["MaxSessionRetentionPeriod"] == "1h"
    assert config["Ssl"] == {"SslCertificate": "", "SslCertificateKey": ""}
    assert config["Sms"]["URL"] == ""
    assert config["Sms"]["From"] == "Bunker"
    assert config["Sms"]["Token"] == "****"
    assert config["Sms"]["BasicAuth"] == "****"
    assert config["Sms"]["DefaultCountry"] == "GB"
    assert config["Server"]["Port"] == 3000
    assert config["SMTP"] == {
        "Server": "",
        "Port": 25,
        "User": "",
        "Pass": "****",
        "Sender": "",
        "Security": "starttls",
        "CodeSubject": "Access Code",
        "CodeTemplate": "Your access code is {code}. It is valid for a few minutes.",
    }
    assert config["UI"]["CompanyVAT"] == "GB123"
    assert config["UI"]["CustomCSSLink"] == ""
    text = repr(config)
    for secret in ("webhook-secret", "sms-token", "user:pw", "hunter2", "magic-token"):
        assert secret not in text


def test_settings_repr_leaves_out_secrets(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "smtp:\n  pass: hunter2\nsms:\n  token: sms-token\n  basic_auth: 'user:pw'\n",
        NOTIFICATION_NOTIFICATION_SECRET="webhook-secret",
        NOTIFICATION_MAGIC_SYNC_TOKEN="magic-token",
    )
    text = f"{settings!r} {settings}"
    for secret in ("hunter2", "sms-token", "user:pw", "webhook-secret", "magic-token"):
        assert secret not in text


def test_redacted_configuration_leaves_unset_secrets_empty() -> None:
    config = Settings().redacted_configuration()
    assert config["SMTP"]["Pass"] == ""
    assert config["Sms"]["Token"] == ""
    assert config["Sms"]["BasicAuth"] == ""
    assert config["Notification"]["NotificationSecret"] == ""
    assert config["Notification"]["MagicSyncToken"] == ""


def test_ui_configuration_keys_in_order(tmp_path: Path) -> None:
    settings = load(tmp_path, "ui:\n  company_title: ACME\n  custom_css_link: /c.css\n")
    ui = settings.ui_configuration()
    assert list(ui) == [
        "LogoLink",
        "CompanyTitle",
        "CompanyVAT",
        "CompanyCity",
        "CompanyLink",
        "CompanyCountry",
        "CompanyAddress",
        "TermOfServiceTitle",
        "TermOfServiceLink",
        "PrivacyPolicyTitle",
        "PrivacyPolicyLink",
        "CustomCSSLink",
        "MagicLookup",
    ]
    assert ui["CompanyTitle"] == "ACME"
    assert ui["CustomCSSLink"] == "/c.css"
    assert ui["MagicLookup"] is False


@pytest.mark.parametrize(
    ("url", "token", "configured", "expected"),
    [
        ("https://sync/", "t", False, True),
        ("https://sync/", "", True, False),
        ("", "t", True, False),
        ("", "", True, False),
        ("", "", False, False),
    ],
)
def test_magic_lookup_needs_sync_url_and_token(
    tmp_path: Path, url: str, token: str, configured: bool, expected: bool
) -> None:
    settings = load(
        tmp_path,
        f"ui:\n  magic_lookup: {str(configured).lower()}\n",
        NOTIFICATION_MAGIC_SYNC_URL=url,
        NOTIFICATION_MAGIC_SYNC_TOKEN=token,
    )
    assert settings.ui_configuration()["MagicLookup"] is expected
    assert settings.redacted_configuration()["UI"]["MagicLookup"] is expected


# --- bootstrap secrets ----------------------------------------------------------------------

KEY_HEX = "ab" * 32
ROOT_TOKEN = "0b5e7a55-3c1a-4c5e-9d1f-2f6c2d1a9e77"


def test_bootstrap_from_env() -> None:
    bootstrap = load_bootstrap(
        {
            "DATABUNKER_MASTERKEY": f" {KEY_HEX}\n",
            "DATABUNKER_ROOTTOKEN": ROOT_TOKEN,
            "DATABUNKER_DB": "sqlite:///tmp/db.sqlite",
        }
    )
    assert bootstrap == Bootstrap(
        master_key_hex=KEY_HEX, root_token=ROOT_TOKEN, database_url="sqlite:///tmp/db.sqlite"
    )


def test_bootstrap_nothing_set() -> None:
    assert load_bootstrap({}) == Bootstrap(None, None, None)
    assert load_bootstrap({"DATABUNKER_MASTERKEY": "", "DATABUNKER_DB": ""}) == Bootstrap(
        None, None, None
    )


def test_bootstrap_from_files_is_trimmed(tmp_path: Path) -> None:
    key_file = tmp_path / "masterkey"
    key_file.write_text(f"{KEY_HEX}\n", encoding="utf-8")
    token_file = tmp_path / "roottoken"
    token_file.write_text(f"  {ROOT_TOKEN}\r\n", encoding="utf-8")
    bootstrap = load_bootstrap(
        {
            "DATABUNKER_MASTERKEY_FILE": str(key_file),
            "DATABUNKER_ROOTTOKEN_FILE": str(token_file),
        }
    )
    assert bootstrap.master_key_hex == KEY_HEX
    assert bootstrap.root_token == ROOT_TOKEN
    assert bootstrap.database_url is None


def test_bootstrap_env_wins_over_file(tmp_path: Path) -> None:
    key_file = tmp_path / "masterkey"
    key_file.write_text("cd" * 32, encoding="utf-8")
    bootstrap = load_bootstrap(
        {"DATABUNKER_MASTERKEY": KEY_HEX, "DATABUNKER_MASTERKEY_FILE": str(key_file)}
    )
    assert bootstrap.master_key_hex == KEY_HEX


@pytest.mark.parametrize("variable", ["DATABUNKER_MASTERKEY_FILE", "DATABUNKER_ROOTTOKEN_FILE"])
def test_bootstrap_unreadable_file_names_the_variable(tmp_path: Path, variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_bootstrap({variable: str(tmp_path / "missing")})
    assert str(caught.value).startswith(f"{variable}:")


def test_bootstrap_empty_file_is_an_error_without_content(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^DATABUNKER_ROOTTOKEN_FILE:"):
        load_bootstrap({"DATABUNKER_ROOTTOKEN_FILE": str(empty)})


def test_bootstrap_repr_redacts_secrets() -> None:
    bootstrap = Bootstrap(
        master_key_hex=KEY_HEX,
        root_token=ROOT_TOKEN,
        database_url="postgresql://bunker:db-password@db.internal:5432/vault",
    )
    for text in (repr(bootstrap), str(bootstrap), f"{bootstrap}"):
        assert KEY_HEX not in text
        assert ROOT_TOKEN not in text
        assert "db-password" not in text
        assert "db.internal:5432/vault" in text
    assert repr(Bootstrap(None, None, None)) == (
        "Bootstrap(master_key_hex=None, root_token=None, database_url=None)"
    )


def test_the_login_code_email_is_configurable_and_must_hold_the_code(tmp_path: Path) -> None:
    path = tmp_path / "databunker.yaml"
    path.write_text('smtp:\n  code_subject: "Sign-in code"\n  code_template: "Code: {code}!"\n')
    settings = load_settings(path, environ={})
    assert settings.smtp.login_code_email("123456") == ("Sign-in code", "Code: 123456!")

    path.write_text('smtp:\n  code_template: "no placeholder"\n')
    with pytest.raises(ConfigError, match=r"smtp\.code_template"):
        load_settings(path, environ={})
