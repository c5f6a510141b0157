"""Settings from the environment: local mode, database URLs, ids, bad values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from settings import Settings, load_settings

CONN = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
APP_ID = "3f6c2a9e-1b4d-4e8f-9a7c-2d5e6f708192"
TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"


def load(**env: str) -> Settings:
    return load_settings(env, dotenv=False)


def test_defaults_are_local_mode_on_loopback(tmp_path: Path) -> None:
    s = load()
    assert s.local_mode is True
    assert s.host == "127.0.0.1" and s.port == 3978
    assert s.default_language == "nb"
    assert s.procurement_user_ids == frozenset()
    assert s.tenant_filter == ""
    assert s.run_workers is True


def test_local_mode_lets_the_sdk_accept_anonymous_requests() -> None:
    env = load().sdk_connection_env()
    assert env[CONN + "ANONYMOUS_ALLOWED"] == "true"


def test_app_configured_is_not_local_mode() -> None:
    s = load(**{CONN + "CLIENTID": APP_ID, CONN + "CLIENTSECRET": "s", CONN + "TENANTID": TENANT})
    assert s.local_mode is False
    assert s.client_id == APP_ID
    assert s.host == "0.0.0.0"  # reachable by Teams; JWT validation guards it
    env = s.sdk_connection_env()
    assert CONN + "ANONYMOUS_ALLOWED" not in env
    assert env[CONN + "CLIENTID"] == APP_ID and env[CONN + "TENANTID"] == TENANT
    assert s.tenant_filter == TENANT


def test_sdk_env_passes_only_connection_settings() -> None:
    s = load(**{CONN + "CLIENTID": APP_ID, "CONNECTIONSMAP__0__SERVICEURL": "*", "DATABASE_URL": "x",
                "PATH": "/bin", "SECRET_THING": "no"})
    env = s.sdk_connection_env()
    assert set(env) == {CONN + "CLIENTID", "CONNECTIONSMAP__0__SERVICEURL"}


def test_blank_client_id_is_still_local_mode() -> None:
    s = load(**{CONN + "CLIENTID": "   "})
    assert s.local_mode is True and s.host == "127.0.0.1"


def test_explicit_host_wins() -> None:
    assert load(HOST="0.0.0.0").host == "0.0.0.0"
    assert load(**{CONN + "CLIENTID": APP_ID, "HOST": "127.0.0.1"}).host == "127.0.0.1"


def test_allowed_tenant_defaults_to_the_apps_tenant_and_is_lowercased() -> None:
    assert load(**{CONN + "TENANTID": TENANT.upper()}).tenant_filter == TENANT
    assert load(**{CONN + "TENANTID": TENANT, "ALLOWED_TENANT_ID": "Other-Tenant"}).tenant_filter == "other-tenant"


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        ("postgres://u:p@db.example:5432/innkjop", "postgresql+asyncpg://u:p@db.example:5432/innkjop"),
        ("postgresql://u:p@db.example/innkjop?sslmode=require",
         "postgresql+asyncpg://u:p@db.example/innkjop?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///y.db", "sqlite+aiosqlite:///y.db"),
        ("  postgres://u@h/db  ", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_effective_database_url(given: str, effective: str) -> None:
    assert load(DATABASE_URL=given).effective_database_url == effective


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = load(DATA_DIR=str(tmp_path)).effective_database_url
    assert url == f"sqlite+aiosqlite:///{(tmp_path / 'innkjop.db').resolve()}"
    assert load().effective_database_url.endswith("/data/innkjop.db")


def test_procurement_user_ids_are_parsed_and_lowercased() -> None:
    s = load(PROCUREMENT_USER_IDS=" AAA-1 , bbb-2,,\tCcc-3 ,")
    assert s.procurement_user_ids == frozenset({"aaa-1", "bbb-2", "ccc-3"})
    assert load(PROCUREMENT_USER_IDS="").procurement_user_ids == frozenset()
    assert load(PROCUREMENT_USER_IDS=" , ").procurement_user_ids == frozenset()


@pytest.mark.parametrize("bad", ["abc", "39.78", "3978x", "0x10"])
def test_bad_port_exits_with_a_clear_message(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        load(PORT=bad)
    assert "PORT" in str(exc.value) and bad in str(exc.value)


def test_port_is_read() -> None:
    assert load(PORT=" 8080 ").port == 8080
    assert load(PORT="").port == 3978


@pytest.mark.parametrize("lang", ["nb", "en", "EN", " nb "])
def test_default_language(lang: str) -> None:
    assert load(DEFAULT_LANGUAGE=lang).default_language == lang.strip().lower()


@pytest.mark.parametrize("bad", ["de", "no", "nn", "english", "nb-NO"])
def test_bad_default_language_exits_with_a_clear_message(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        load(DEFAULT_LANGUAGE=bad)
    assert "DEFAULT_LANGUAGE" in str(exc.value) and "nb or en" in str(exc.value)


def test_blank_default_language_is_norwegian() -> None:
    assert load(DEFAULT_LANGUAGE="  ").default_language == "nb"


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("no", False),
                                                  ("FALSE", False), ("true", True), ("yes", True)])
def test_run_workers(value: str, expected: bool) -> None:
    assert load(RUN_WORKERS=value).run_workers is expected


def test_reminder_working_hours_and_paths(tmp_path: Path) -> None:
    assert load(REMINDER_WORKING_HOURS="always").reminder_working_hours is False
    assert load().reminder_working_hours is True
    assert load(DATA_DIR=str(tmp_path)).data_dir == tmp_path
    assert load(GRAPH_BASE_URL="http://127.0.0.1:9/v1.0/").graph_base_url == "http://127.0.0.1:9/v1.0"
    assert load(LOG_LEVEL="debug").log_level == "DEBUG"


def test_make_settings_fixture(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    s = make_settings(ALLOWED_TENANT_ID=TENANT)
    assert s.data_dir == tmp_path and s.run_workers is False and s.tenant_filter == TENANT
    assert make_settings(RUN_WORKERS=None).run_workers is True


@pytest.mark.parametrize("name", ["WORKER_POLL_SECONDS", "REMINDER_POLL_SECONDS"])
@pytest.mark.parametrize("bad", ["abc", "0", "-1", "nan", "99999"])
def test_bad_poll_seconds_exit_with_a_clear_message(name: str, bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        load_settings({name: bad}, dotenv=False)
    assert name in str(exc.value) and repr(bad) in str(exc.value)


def test_poll_seconds_are_read() -> None:
    s = load_settings({"WORKER_POLL_SECONDS": "0.25", "REMINDER_POLL_SECONDS": " 5 "}, dotenv=False)
    assert (s.worker_poll_seconds, s.reminder_poll_seconds) == (0.25, 5.0)
