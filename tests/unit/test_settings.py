"""Settings from the environment: explicit local mode, secrets never shown, database URLs, ids, bad values."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import Settings, async_database_url, load_settings

CONN = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
APP_ID = "3f6c2a9e-1b4d-4e8f-9a7c-2d5e6f708192"
TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"


def load(**env: str) -> Settings:
    """Exactly `env`, nothing from the process environment or a .env file."""
    return load_settings(env, dotenv=False)


def local(**env: str) -> Settings:
    return load(LOCAL_MODE="true", **env)


def app(**env: str) -> Settings:
    return load(**{CONN + "CLIENTID": APP_ID, CONN + "CLIENTSECRET": "s", CONN + "TENANTID": TENANT}, **env)


def refusal(**env: str) -> str:
    with pytest.raises(SystemExit) as exc:
        load(**env)
    return str(exc.value)


# -- local mode only by choice -------------------------------------------------------------------


def test_local_mode_defaults_to_loopback() -> None:
    s = local()
    assert s.local_mode is True
    assert s.host == "127.0.0.1" and s.port == 3978
    assert s.default_language == "nb"
    assert s.procurement_user_ids == frozenset()
    assert s.tenant_filter == ""
    assert s.run_workers is True


@pytest.mark.parametrize("env", [{}, {"LOCAL_MODE": "false"}, {"LOCAL_MODE": ""}, {CONN + "CLIENTID": "  "}])
def test_without_credentials_and_without_local_mode_the_app_refuses_and_says_what_to_set(
    env: dict[str, str],
) -> None:
    message = refusal(**env)
    for wanted in (CONN + "CLIENTID", CONN + "CLIENTSECRET", CONN + "TENANTID", "LOCAL_MODE=true"):
        assert wanted in message


def test_local_mode_and_an_app_id_together_are_refused() -> None:
    message = refusal(LOCAL_MODE="true", **{CONN + "CLIENTID": APP_ID})
    assert "LOCAL_MODE" in message and "CLIENTID" in message and "choose one" in message


@pytest.mark.parametrize("value", ["true", "TRUE", " 1 ", "yes", "on"])
def test_local_mode_is_asked_for_with_a_true_value(value: str) -> None:
    assert load(LOCAL_MODE=value).local_mode is True


@pytest.mark.parametrize("bad", ["maybe", "local", "2"])
def test_bad_local_mode_value_exits_with_a_clear_message(bad: str) -> None:
    message = refusal(LOCAL_MODE=bad)
    assert "LOCAL_MODE must be true or false" in message and repr(bad) in message


def test_local_mode_lets_the_sdk_accept_anonymous_requests() -> None:
    env = local().sdk_connection_env()
    assert env[CONN + "ANONYMOUS_ALLOWED"] == "true"


def test_blank_client_id_with_local_mode_is_local_mode() -> None:
    s = local(**{CONN + "CLIENTID": "   "})
    assert s.local_mode is True and s.host == "127.0.0.1"
    assert CONN + "CLIENTID" not in s.sdk_connection_env()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.0.2.7", "innkjop.kommune.no", "localhost.evil"])
def test_local_mode_refuses_a_non_loopback_bind_address(host: str) -> None:
    message = refusal(LOCAL_MODE="true", HOST=host)
    assert "HOST" in message and "loopback" in message and repr(host) in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"])
def test_local_mode_accepts_a_loopback_bind_address(host: str) -> None:
    assert local(HOST=host).host == host


# -- with the Entra app ------------------------------------------------------------------------


def test_app_configured_is_not_local_mode() -> None:
    s = app()
    assert s.local_mode is False
    assert s.client_id == APP_ID
    assert s.host == "0.0.0.0"  # reachable by Teams; JWT validation guards it
    env = s.sdk_connection_env()
    assert CONN + "ANONYMOUS_ALLOWED" not in env
    assert env[CONN + "CLIENTID"] == APP_ID and env[CONN + "TENANTID"] == TENANT
    assert s.tenant_filter == TENANT


def test_sdk_env_passes_only_connection_settings() -> None:
    s = load(
        **{
            CONN + "CLIENTID": APP_ID,
            "CONNECTIONSMAP__0__SERVICEURL": "*",
            "DATABASE_URL": "sqlite:///x",
            "PATH": "/bin",
            "SECRET_THING": "no",
        }
    )
    env = s.sdk_connection_env()
    assert set(env) == {CONN + "CLIENTID", "CONNECTIONSMAP__0__SERVICEURL"}


def test_explicit_host_wins() -> None:
    assert app(HOST="127.0.0.1").host == "127.0.0.1"
    assert app(HOST="10.0.0.5").host == "10.0.0.5"


def test_allowed_tenant_defaults_to_the_apps_tenant_and_is_lowercased() -> None:
    assert local(**{CONN + "TENANTID": TENANT.upper()}).tenant_filter == TENANT
    assert local(**{CONN + "TENANTID": TENANT, "ALLOWED_TENANT_ID": "Other-Tenant"}).tenant_filter == "other-tenant"


# -- secrets never shown -----------------------------------------------------------------------

SECRET = "Zq8~sUp3r.s3cret_VALUE-4711"
DB_PASSWORD = "pg-Pa55word-9931"
DB_URL = f"postgresql://innkjop:{DB_PASSWORD}@db.kommune.no:5432/innkjop"


def with_secrets(**env: str) -> dict[str, str]:
    return {
        CONN + "CLIENTID": APP_ID,
        CONN + "CLIENTSECRET": SECRET,
        CONN + "TENANTID": TENANT,
        "DATABASE_URL": DB_URL,
        **env,
    }


def assert_hidden(text: str) -> None:
    assert SECRET not in text and DB_PASSWORD not in text


def test_repr_and_str_never_show_the_client_secret_or_the_database_password() -> None:
    s = load_settings(with_secrets(), dotenv=False)
    for text in (
        repr(s),
        str(s),
        s.model_dump_json(),
        repr(s.model_dump()),
        s.database_url_for_log,
    ):
        assert_hidden(text)
    assert "db.kommune.no" in s.database_url_for_log
    # The SDK and the engine still get the real values.
    assert s.sdk_connection_env()[CONN + "CLIENTSECRET"] == SECRET
    assert s.client_secret is not None and s.client_secret.get_secret_value() == SECRET
    assert DB_PASSWORD in s.effective_database_url


@pytest.mark.parametrize(
    "bad",
    [
        {"PORT": "x"},
        {"LOCAL_MODE": "true"},
        {"DATABASE_URL": f"mysql://u:{DB_PASSWORD}@h/db"},
        {"DATABASE_URL": f"u:{DB_PASSWORD}@h/db"},
        {"WORKER_POLL_SECONDS": "never"},
        {"DEFAULT_LANGUAGE": "de"},
        {"RUN_WORKERS": "perhaps"},
    ],
)
def test_start_up_errors_never_show_a_secret(bad: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load_settings(with_secrets(**bad), dotenv=False)
    assert str(exc.value)
    assert_hidden(str(exc.value))
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    # Nor pydantic's own error text, for a caller that builds Settings directly.
    with pytest.raises(ValidationError) as err:
        Settings.model_validate(with_secrets(**bad))
    assert_hidden(str(err.value))


@pytest.mark.parametrize("mode", ["app", "local"])
def test_the_start_up_log_never_shows_a_secret(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    import app as app_module

    env = with_secrets() if mode == "app" else {"LOCAL_MODE": "true", "DATABASE_URL": DB_URL}
    s = load_settings(env, dotenv=False)
    with caplog.at_level(logging.DEBUG):
        app_module.announce(s)
    assert caplog.records
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert_hidden(text)
    assert "db.kommune.no" in caplog.text and "/api/messages" in caplog.text
    assert ("LOCAL MODE" in caplog.text) is (mode == "local")


def test_dotenv_values_are_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import settings as settings_module

    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"LOCAL_MODE=true\nPORT=4000\nPROCUREMENT_USER_IDS=A-1, b-2\n"
        f"CONNECTIONSMAP__0__SERVICEURL=*\n{CONN}SCOPES=x\nDEFAULT_LANGUAGE=en\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(settings_module, "DOTENV_PATH", dotenv)
    for name in (
        "LOCAL_MODE",
        "PORT",
        "PROCUREMENT_USER_IDS",
        "HOST",
        "DATABASE_URL",
        "CONNECTIONSMAP__0__SERVICEURL",
        CONN + "CLIENTID",
        CONN + "CLIENTSECRET",
        CONN + "SCOPES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEFAULT_LANGUAGE", "nb")
    s = load_settings()
    assert s.local_mode is True and s.port == 4000 and s.default_language == "nb"
    assert s.procurement_user_ids == frozenset({"a-1", "b-2"})
    env = s.sdk_connection_env()
    assert env["CONNECTIONSMAP__0__SERVICEURL"] == "*" and env[CONN + "SCOPES"] == "x"
    # dotenv=False: the .env file is not read (the environment has no LOCAL_MODE now).
    with pytest.raises(SystemExit):
        load_settings(dotenv=False)


def test_a_given_mapping_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "4321")
    monkeypatch.setenv("CONNECTIONSMAP__0__SERVICEURL", "*")
    monkeypatch.setenv(CONN + "CLIENTID", APP_ID)
    s = local()
    assert s.port == 3978 and s.local_mode is True and s.client_id == ""
    assert "CONNECTIONSMAP__0__SERVICEURL" not in s.sdk_connection_env()
    # And the environment is read again afterwards.
    monkeypatch.delenv("LOCAL_MODE", raising=False)
    from_env = load_settings(dotenv=False)
    assert from_env.port == 4321 and from_env.client_id == APP_ID


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        (
            "postgres://u:p@db.example:5432/innkjop",
            "postgresql+asyncpg://u:p@db.example:5432/innkjop",
        ),
        (
            "postgresql://u:p@db.example/innkjop?sslmode=require",
            "postgresql+asyncpg://u:p@db.example/innkjop?sslmode=require",
        ),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///y.db", "sqlite+aiosqlite:///y.db"),
        ("  postgres://u@h/db  ", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_effective_database_url(given: str, effective: str) -> None:
    assert local(DATABASE_URL=given).effective_database_url == effective


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://u:pw@h/db",
        "postgresql+psycopg2://u@h/db",
        "sqlite://",
        "sqlite:memory",
        "/var/lib/innkjop.db",
        "db.kommune.no",
    ],
)
def test_other_database_urls_are_refused_naming_only_the_scheme(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        local(DATABASE_URL=bad)
    message = str(exc.value)
    assert "DATABASE_URL must start with postgresql://, postgres:// or sqlite:///" in message
    assert "pw@" not in message and "kommune" not in message and "/var/lib" not in message


def test_the_import_command_reads_database_urls_the_same_way() -> None:
    assert async_database_url(" postgres://u@h/db ") == "postgresql+asyncpg://u@h/db"
    assert async_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ValueError, match="got scheme 'mysql'"):
        async_database_url("mysql://u:pw@h/db")


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = local(DATA_DIR=str(tmp_path)).effective_database_url
    assert url == f"sqlite+aiosqlite:///{(tmp_path / 'innkjop.db').resolve()}"
    assert local().effective_database_url.endswith("/data/innkjop.db")


def test_procurement_user_ids_are_parsed_and_lowercased() -> None:
    s = local(PROCUREMENT_USER_IDS=" AAA-1 , bbb-2,,\tCcc-3 ,")
    assert s.procurement_user_ids == frozenset({"aaa-1", "bbb-2", "ccc-3"})
    assert local(PROCUREMENT_USER_IDS="").procurement_user_ids == frozenset()
    assert local(PROCUREMENT_USER_IDS=" , ").procurement_user_ids == frozenset()


@pytest.mark.parametrize("bad", ["abc", "39.78", "3978x", "0x10", "0", "65536", "-1"])
def test_bad_port_exits_with_a_clear_message(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        local(PORT=bad)
    assert "PORT" in str(exc.value) and bad in str(exc.value)


def test_port_is_read() -> None:
    assert local(PORT=" 8080 ").port == 8080
    assert local(PORT="").port == 3978


@pytest.mark.parametrize("lang", ["nb", "en", "EN", " nb "])
def test_default_language(lang: str) -> None:
    assert local(DEFAULT_LANGUAGE=lang).default_language == lang.strip().lower()


@pytest.mark.parametrize("bad", ["de", "no", "nn", "english", "nb-NO"])
def test_bad_default_language_exits_with_a_clear_message(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        local(DEFAULT_LANGUAGE=bad)
    assert "DEFAULT_LANGUAGE" in str(exc.value) and "nb or en" in str(exc.value)


def test_blank_default_language_is_norwegian() -> None:
    assert local(DEFAULT_LANGUAGE="  ").default_language == "nb"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("false", False),
        ("0", False),
        ("no", False),
        ("FALSE", False),
        ("true", True),
        ("yes", True),
    ],
)
def test_run_workers(value: str, expected: bool) -> None:
    assert local(RUN_WORKERS=value).run_workers is expected


def test_reminder_working_hours_and_paths(tmp_path: Path) -> None:
    assert local(REMINDER_WORKING_HOURS="always").reminder_working_hours is False
    assert local().reminder_working_hours is True
    assert local(DATA_DIR=str(tmp_path)).data_dir == tmp_path
    assert local(GRAPH_BASE_URL="http://127.0.0.1:9/v1.0/").graph_base_url == "http://127.0.0.1:9/v1.0"
    assert local(LOG_LEVEL="debug").log_level == "DEBUG"


def test_make_settings_fixture(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    s = make_settings(ALLOWED_TENANT_ID=TENANT)
    assert s.data_dir == tmp_path and s.run_workers is False and s.tenant_filter == TENANT
    assert make_settings(RUN_WORKERS=None).run_workers is True
    assert s.local_mode is True
    configured = make_settings(**{CONN + "CLIENTID": APP_ID, CONN + "TENANTID": TENANT})
    assert configured.local_mode is False and configured.host == "0.0.0.0"


@pytest.mark.parametrize("name", ["WORKER_POLL_SECONDS", "REMINDER_POLL_SECONDS"])
@pytest.mark.parametrize("bad", ["abc", "0", "-1", "nan", "99999"])
def test_bad_poll_seconds_exit_with_a_clear_message(name: str, bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        local(**{name: bad})
    assert name in str(exc.value) and repr(bad) in str(exc.value)


def test_poll_seconds_are_read() -> None:
    s = local(WORKER_POLL_SECONDS="0.25", REMINDER_POLL_SECONDS=" 5 ")
    assert (s.worker_poll_seconds, s.reminder_poll_seconds) == (0.25, 5.0)
