"""Settings read from the environment (and a `.env` file).

Every variable is documented in `.env.example`. The app credentials use the Agents SDK's
own names (`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__…`) so the SDK's MSAL connection
manager reads the same values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_CONN = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def _split_ids(value: str | None) -> frozenset[str]:
    return frozenset(p.strip().lower() for p in (value or "").split(",") if p.strip())


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as err:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from err
    if not 0 < value <= 3600:
        raise SystemExit(f"{name} must be more than 0 and at most 3600 seconds, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from err


@dataclass(frozen=True)
class Settings:
    port: int = 3978
    host: str = "127.0.0.1"
    data_dir: Path = Path("data")
    database_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    certificate_thumbprint: str = ""
    certificate_key_file: str = ""
    tenant_id: str = ""
    # Tenant the Teams activities must come from; defaults to the app's tenant.
    allowed_tenant_id: str = ""
    procurement_team_id: str = ""
    intake_channel_id: str = ""
    followup_channel_id: str = ""
    procurement_group_id: str = ""
    procurement_user_ids: frozenset[str] = field(default_factory=frozenset)
    default_language: str = "nb"
    teams_app_id: str = ""
    graph_base_url: str = ""
    run_workers: bool = True
    worker_poll_seconds: float = 2.0
    reminder_poll_seconds: float = 30.0
    reminder_working_hours: bool = True
    playground_config: Path = Path(".m365agentsplayground.yml")
    log_level: str = "INFO"
    sdk_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def local_mode(self) -> bool:
        """No Entra app configured: anonymous requests, loopback only, local adapters."""
        return not self.client_id

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept plain driver names as given by hosting platforms.
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url[len("postgresql://") :]
            if url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'innkjop.db').resolve()}"

    @property
    def tenant_filter(self) -> str:
        return (self.allowed_tenant_id or self.tenant_id).lower()

    def sdk_connection_env(self) -> dict[str, str]:
        """The environment the SDK's `load_configuration_from_env` should see."""
        env = {
            k: v
            for k, v in self.sdk_env.items()
            if k.startswith(("CONNECTIONS__", "CONNECTIONSMAP__"))
        }
        if self.local_mode:
            env[_CONN + "ANONYMOUS_ALLOWED"] = "true"
        return env


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        env = os.environ
    lang = env.get("DEFAULT_LANGUAGE", "nb").strip().lower() or "nb"
    if lang not in ("nb", "en"):
        raise SystemExit(f"DEFAULT_LANGUAGE must be nb or en, got {lang!r}")
    return Settings(
        port=_int(env, "PORT", 3978),
        host=env.get("HOST", "").strip()
        or ("127.0.0.1" if not env.get(_CONN + "CLIENTID", "").strip() else "0.0.0.0"),
        data_dir=Path(env.get("DATA_DIR", "").strip() or "data"),
        database_url=env.get("DATABASE_URL", "").strip(),
        client_id=env.get(_CONN + "CLIENTID", "").strip(),
        client_secret=env.get(_CONN + "CLIENTSECRET", "").strip(),
        certificate_thumbprint=env.get(_CONN + "CERTTHUMBPRINT", "").strip(),
        certificate_key_file=env.get(_CONN + "CERTKEYFILE", "").strip(),
        tenant_id=env.get(_CONN + "TENANTID", "").strip(),
        allowed_tenant_id=env.get("ALLOWED_TENANT_ID", "").strip(),
        procurement_team_id=env.get("PROCUREMENT_TEAM_ID", "").strip(),
        intake_channel_id=env.get("INTAKE_CHANNEL_ID", "").strip(),
        followup_channel_id=env.get("FOLLOWUP_CHANNEL_ID", "").strip(),
        procurement_group_id=env.get("PROCUREMENT_GROUP_ID", "").strip(),
        procurement_user_ids=_split_ids(env.get("PROCUREMENT_USER_IDS")),
        default_language=lang,
        teams_app_id=env.get("TEAMS_APP_ID", "").strip(),
        graph_base_url=env.get("GRAPH_BASE_URL", "").strip().rstrip("/"),
        run_workers=env.get("RUN_WORKERS", "true").strip().lower() not in ("0", "false", "no"),
        worker_poll_seconds=_seconds(env, "WORKER_POLL_SECONDS", 2.0),
        reminder_poll_seconds=_seconds(env, "REMINDER_POLL_SECONDS", 30.0),
        reminder_working_hours=env.get("REMINDER_WORKING_HOURS", "").strip().lower() != "always",
        playground_config=Path(env.get("PLAYGROUND_CONFIG", "").strip() or ".m365agentsplayground.yml"),
        log_level=env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        sdk_env=dict(env),
    )
