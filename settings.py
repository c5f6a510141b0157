"""Settings read from the environment (and a `.env` file), on pydantic-settings.

Every variable is documented in `.env.example`. The app credentials use the Agents SDK's
own names (`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__…`) so the SDK's MSAL connection
manager reads the same values.

Secrets (the client secret, a password in DATABASE_URL, everything handed to the SDK) are
`SecretStr`: `repr`, `str`, logs and the start-up error messages never show them. Only
`sdk_connection_env()`, `effective_database_url` and the Graph credential unwrap them.

Local mode (anonymous requests, loopback only, local adapters instead of Graph) runs only
when asked for with LOCAL_MODE=true: a production deployment that lost its credentials
refuses to start instead of silently accepting anonymous requests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import PydanticBaseEnvSettingsSource

_CONN = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
_SDK_PREFIXES = ("CONNECTIONS__", "CONNECTIONSMAP__")
#: Where `load_settings()` looks for `.env` (next to this file, as python-dotenv did).
DOTENV_PATH = Path(__file__).resolve().parent / ".env"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_LOCALHOST_NAMES = ("localhost",)

# One accepted form of DATABASE_URL: plain driver names (as hosting platforms give them)
# are mapped to the async drivers the store uses.
_URL_PREFIXES = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "postgresql+asyncpg://": "postgresql+asyncpg://",
    "sqlite:///": "sqlite+aiosqlite:///",
    "sqlite+aiosqlite:///": "sqlite+aiosqlite:///",
}


def async_database_url(url: str) -> str:
    """`postgres://`, `postgresql://` → `postgresql+asyncpg://`; `sqlite:///` → `sqlite+aiosqlite:///`.

    The one reading of a database URL (the bot and the import command). Raises ValueError,
    whose message names the scheme only (never the password), for any other form.
    """
    url = url.strip()
    for prefix, driver in _URL_PREFIXES.items():
        if url.lower().startswith(prefix):
            return driver + url[len(prefix) :]
    scheme = url.split("://", 1)[0] if "://" in url else ""
    got = f"got scheme {scheme!r}" if scheme else "got no scheme"
    raise ValueError(
        "DATABASE_URL must start with postgresql://, postgres:// or sqlite:/// "
        f"(postgresql+asyncpg:// and sqlite+aiosqlite:/// also work), {got}"
    )


def is_loopback_host(host: str) -> bool:
    if host.lower() in _LOCALHOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _seconds(name: str, raw: object) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:  # also refuses nan
        raise ValueError(f"{name} must be more than 0 and at most 3600 seconds, got {raw!r}")
    return value


class _MappingSource(PydanticBaseSettingsSource):
    """A given mapping in place of the environment and `.env` (`load_settings(env)`): only it is read."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = field.validation_alias if isinstance(field.validation_alias, str) else field_name
        return self._env.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {"sdk_env": _sdk_subset(self._env)}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None and field_name != "sdk_env":
                found[name] = value
        return found


# The mapping `load_settings(env)` was given, for `settings_customise_sources` (which takes no
# arguments of its own); unset, the sources are the environment and `.env`.
_GIVEN_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("settings_given_env", default=None)


class _SdkConnectionSource(PydanticBaseSettingsSource):
    """All the SDK's own variables (`CONNECTIONS__…`, `CONNECTIONSMAP__…`), environment over `.env`,
    passed through whole: the SDK reads more of them than this app models (AUTHTYPE, SCOPES, …)."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._sources = sources

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        for source in self._sources:  # lowest priority first
            if isinstance(source, PydanticBaseEnvSettingsSource):
                env_vars = getattr(source, "env_vars", {})
                found.update({k: v for k, v in env_vars.items() if v is not None})
        return {"sdk_env": _sdk_subset(found)}


def _sdk_subset(env: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: str(v).strip() for k, v in env.items() if k.startswith(_SDK_PREFIXES) and isinstance(v, str) and v.strip()
    }


class Settings(BaseSettings):
    """The app's configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a ValidationError's text never quotes a value (secrets)
        env_file=None,  # load_settings names the file
        validate_default=False,  # the defaults below are already the parsed values
    )

    port: int = Field(3978, validation_alias="PORT")
    # Defaults to loopback in local mode and to all interfaces with an app (JWT-checked).
    host: str = Field("", validation_alias="HOST")
    data_dir: Path = Field(Path("data"), validation_alias="DATA_DIR")
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    local_mode: bool = Field(False, validation_alias="LOCAL_MODE")
    client_id: str = Field("", validation_alias=_CONN + "CLIENTID")
    client_secret: SecretStr | None = Field(None, validation_alias=_CONN + "CLIENTSECRET")
    certificate_thumbprint: str = Field("", validation_alias=_CONN + "CERTTHUMBPRINT")
    certificate_key_file: str = Field("", validation_alias=_CONN + "CERTKEYFILE")
    tenant_id: str = Field("", validation_alias=_CONN + "TENANTID")
    # Tenant the Teams activities must come from; defaults to the app's tenant.
    allowed_tenant_id: str = Field("", validation_alias="ALLOWED_TENANT_ID")
    procurement_team_id: str = Field("", validation_alias="PROCUREMENT_TEAM_ID")
    intake_channel_id: str = Field("", validation_alias="INTAKE_CHANNEL_ID")
    followup_channel_id: str = Field("", validation_alias="FOLLOWUP_CHANNEL_ID")
    # Competition rooms (issue 10): the team the channels are made in (default PROCUREMENT_TEAM_ID),
    # private (confidential, the default) or standard channels, whether the app may post in private
    # channels (a preview in Teams: otherwise the welcome goes to each member's personal chat), the
    # channel local mode posts welcomes in (the Playground's), and the verneombud/tillitsvalgte to
    # invite when asked (ids or e-mail addresses, comma-separated).
    rooms_team_id: str = Field("", validation_alias="ROOMS_TEAM_ID")
    rooms_membership_type: Literal["private", "standard"] = Field("private", validation_alias="ROOMS_MEMBERSHIP_TYPE")
    rooms_bot_in_private_channels: bool = Field(False, validation_alias="ROOMS_BOT_IN_PRIVATE_CHANNELS")
    rooms_channel_id: str = Field("", validation_alias="ROOMS_CHANNEL_ID")
    rooms_representatives: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="ROOMS_REPRESENTATIVES")
    procurement_group_id: str = Field("", validation_alias="PROCUREMENT_GROUP_ID")
    # A comma-separated list, not JSON (NoDecode).
    procurement_user_ids: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias="PROCUREMENT_USER_IDS"
    )
    default_language: Literal["nb", "en"] = Field("nb", validation_alias="DEFAULT_LANGUAGE")
    teams_app_id: str = Field("", validation_alias="TEAMS_APP_ID")
    graph_base_url: str = Field("", validation_alias="GRAPH_BASE_URL")
    # SharePoint registers (issue 12): the site of the lists everyone in the organisation may read, and
    # the restricted site that also gets the restricted columns (prices, notes, deviation details).
    sharepoint_site_id: str = Field("", validation_alias="SHAREPOINT_SITE_ID")
    # false: no register mirror at all, also not the local CSV files (tests of other workflows).
    sharepoint_mirror: bool = Field(True, validation_alias="SHAREPOINT_MIRROR")
    sharepoint_restricted_site_id: str = Field("", validation_alias="SHAREPOINT_RESTRICTED_SITE_ID")
    # The lists' column sets; empty: procurement/records/rules_data/lists.json.
    sharepoint_lists_file: str = Field("", validation_alias="SHAREPOINT_LISTS_FILE")
    # The archive (issue 12): the SharePoint archive library the sak-/arkivsystem takes documents
    # from (a drive id), a folder in it, the retention label every archived file gets, and the
    # Noark 5 values of our own system and unit. Without a drive id nothing is archived (local
    # mode: DATA_DIR/archive).
    archive_drive_id: str = Field("", validation_alias="ARCHIVE_DRIVE_ID")
    archive_root_folder: str = Field("", validation_alias="ARCHIVE_ROOT_FOLDER")
    archive_retention_label: str = Field("Anskaffelser", validation_alias="ARCHIVE_RETENTION_LABEL")
    archive_system: str = Field("Innkjøpsassistenten", validation_alias="ARCHIVE_SYSTEM")
    archive_unit: str = Field("Innkjøpsseksjonen", validation_alias="ARCHIVE_UNIT")
    archive_max_mb: int = Field(250, validation_alias="ARCHIVE_MAX_MB")
    run_workers: bool = Field(True, validation_alias="RUN_WORKERS")
    worker_poll_seconds: float = Field(2.0, validation_alias="WORKER_POLL_SECONDS")
    reminder_poll_seconds: float = Field(30.0, validation_alias="REMINDER_POLL_SECONDS")
    # The outbox (issue 12): counted attempts before a row becomes a dead letter, and the
    # exponential backoff between them (a Retry-After from the service wins and is not counted).
    outbox_max_attempts: int = Field(12, validation_alias="OUTBOX_MAX_ATTEMPTS")
    outbox_base_backoff_seconds: float = Field(2.0, validation_alias="OUTBOX_BASE_BACKOFF_SECONDS")
    outbox_max_backoff_seconds: float = Field(3600.0, validation_alias="OUTBOX_MAX_BACKOFF_SECONDS")
    # Deviation reports (issue 11): the SharePoint document library (a drive id) their photos,
    # files and supplier notices are kept in, under <folder>/<AV-ref>/. Local mode, or no drive:
    # DATA_DIR/attachments/<AV-ref>/. The CSV exports are written under DATA_DIR/exports/.
    deviation_attachment_drive_id: str = Field("", validation_alias="DEVIATION_ATTACHMENT_DRIVE_ID")
    deviation_attachment_folder: str = Field("Avviksmeldinger", validation_alias="DEVIATION_ATTACHMENT_FOLDER")
    # REMINDER_WORKING_HOURS=always sends outside working hours (demos, tests).
    reminder_working_hours: bool = Field(True, validation_alias="REMINDER_WORKING_HOURS")
    playground_config: Path = Field(Path(".m365agentsplayground.yml"), validation_alias="PLAYGROUND_CONFIG")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # The SDK's own variables; masked, and left out of repr.
    sdk_env: dict[str, SecretStr] = Field(default_factory=dict, repr=False, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: the environment wins over .env; no secrets directory.
        given = _GIVEN_ENV.get()
        if given is not None:
            return init_settings, _MappingSource(settings_cls, given)
        sdk = _SdkConnectionSource(settings_cls, dotenv_settings, env_settings)
        return init_settings, sdk, env_settings, dotenv_settings

    @model_validator(mode="before")
    @classmethod
    def _blank_is_default(cls, data: Any) -> Any:
        """Strip values; a blank one means "not set" (as a `.env` line `HOST=` does)."""
        if not isinstance(data, Mapping):
            return data
        clean = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        clean = {k: v for k, v in clean.items() if v != ""}
        return clean

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, raw: object) -> int:
        try:
            value = int(str(raw), 10)
        except ValueError:
            raise ValueError(f"PORT must be a whole number, got {raw!r}") from None
        if not 0 < value < 65536:
            raise ValueError(f"PORT must be between 1 and 65535, got {raw!r}")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, raw: object) -> object:
        async_database_url(str(raw))  # refuses an unknown form early, naming only the scheme
        return raw

    @field_validator("local_mode", "run_workers", "sharepoint_mirror", mode="before")
    @classmethod
    def _flags(cls, raw: object, info: ValidationInfo) -> bool:
        return _flag(str(info.field_name).upper(), raw)

    @field_validator("rooms_membership_type", mode="before")
    @classmethod
    def _membership(cls, raw: object) -> str:
        value = str(raw).strip().lower()
        if value not in ("private", "standard"):
            raise ValueError(f"ROOMS_MEMBERSHIP_TYPE must be private or standard, got {raw!r}")
        return value

    @field_validator("rooms_bot_in_private_channels", mode="before")
    @classmethod
    def _rooms_flag(cls, raw: object) -> bool:
        return _flag("ROOMS_BOT_IN_PRIVATE_CHANNELS", raw)

    @field_validator("rooms_representatives", mode="before")
    @classmethod
    def _representatives(cls, raw: object) -> object:
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return raw

    @property
    def effective_rooms_team_id(self) -> str:
        """The team competition channels are made in; local mode needs none (rooms on disk)."""
        return self.rooms_team_id or self.procurement_team_id or ("local" if self.local_mode else "")

    @field_validator("procurement_user_ids", mode="before")
    @classmethod
    def _ids(cls, raw: object) -> object:
        if isinstance(raw, str):
            return frozenset(p.strip().lower() for p in raw.split(",") if p.strip())
        return raw

    @field_validator("default_language", mode="before")
    @classmethod
    def _language(cls, raw: object) -> str:
        lang = str(raw).strip().lower()
        if lang not in ("nb", "en"):
            raise ValueError(f"DEFAULT_LANGUAGE must be nb or en, got {raw!r}")
        return lang

    @field_validator("graph_base_url", mode="before")
    @classmethod
    def _base_url(cls, raw: object) -> str:
        return str(raw).rstrip("/")

    @field_validator("worker_poll_seconds", "reminder_poll_seconds", mode="before")
    @classmethod
    def _poll(cls, raw: object, info: ValidationInfo) -> float:
        return _seconds(str(info.field_name).upper(), raw)

    @field_validator("outbox_base_backoff_seconds", "outbox_max_backoff_seconds", mode="before")
    @classmethod
    def _outbox_backoff(cls, raw: object, info: ValidationInfo) -> float:
        return _seconds(str(info.field_name).upper(), raw)

    @field_validator("outbox_max_attempts", mode="before")
    @classmethod
    def _outbox_attempts(cls, raw: object) -> int:
        try:
            value = int(str(raw), 10)
        except ValueError:
            raise ValueError(f"OUTBOX_MAX_ATTEMPTS must be a whole number, got {raw!r}") from None
        if not 1 <= value <= 100:
            raise ValueError(f"OUTBOX_MAX_ATTEMPTS must be between 1 and 100, got {raw!r}")
        return value

    @field_validator("reminder_working_hours", mode="before")
    @classmethod
    def _working_hours(cls, raw: object) -> bool:
        return raw if isinstance(raw, bool) else str(raw).lower() != "always"

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, raw: object) -> str:
        return str(raw).upper()

    @model_validator(mode="after")
    def _explicit_mode(self) -> Settings:
        if self.local_mode and self.client_id:
            raise ValueError(
                "LOCAL_MODE=true and CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID are both set: "
                "choose one. For Teams, remove LOCAL_MODE; for local development, unset CLIENTID "
                "(also in .env)."
            )
        if not self.local_mode and not self.client_id:
            raise ValueError(
                "No Entra app configured and LOCAL_MODE is not set. For Teams, set "
                "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID, "
                "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET (or CERTTHUMBPRINT and "
                "CERTKEYFILE) and CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID. For "
                "development on this machine, set LOCAL_MODE=true (anonymous requests, loopback only)."
            )
        if not self.host:
            # Frozen model: fill the derived default in place, once, during validation.
            object.__setattr__(self, "host", "127.0.0.1" if self.local_mode else "0.0.0.0")
        elif self.local_mode and not is_loopback_host(self.host):
            raise ValueError(
                f"LOCAL_MODE=true accepts anonymous requests, so it serves on loopback only: "
                f"HOST must be 127.0.0.1, ::1 or localhost, got {self.host!r}"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy async URL (with its password: for the engine only, never for a log)."""
        if self.database_url is not None:
            return async_database_url(self.database_url.get_secret_value())
        return f"sqlite+aiosqlite:///{(self.data_dir / 'innkjop.db').resolve()}"

    @property
    def database_url_for_log(self) -> str:
        """`effective_database_url` with any password replaced by ***."""
        from sqlalchemy.engine import make_url

        return make_url(self.effective_database_url).render_as_string(hide_password=True)

    @property
    def tenant_filter(self) -> str:
        return (self.allowed_tenant_id or self.tenant_id).lower()

    def sdk_connection_env(self) -> dict[str, str]:
        """The environment the SDK's `load_configuration_from_env` should see (secrets unwrapped)."""
        env = {k: v.get_secret_value() for k, v in self.sdk_env.items()}
        if self.local_mode:
            env[_CONN + "ANONYMOUS_ALLOWED"] = "true"
        return env


def _explain(err: ValidationError) -> str:
    """The validators' own messages (they name the variable); never an input value."""
    lines = []
    for e in err.errors(include_input=False, include_url=False):
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError):
            lines.append(str(cause))
        else:
            where = ".".join(str(p) for p in e["loc"]) or "settings"
            lines.append(f"{where}: {e['msg']}")
    return "\n".join(lines)


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Settings from `env` (a plain mapping: only it is read) or, by default, from the process
    environment over `.env`. A bad or missing value stops the start (SystemExit) with a message
    that names the variable and never shows a secret."""
    token = _GIVEN_ENV.set(dict(env) if env is not None else None)
    try:
        return Settings(_env_file=DOTENV_PATH if dotenv and env is None else None)  # type: ignore[call-arg]
    except ValidationError as err:
        raise SystemExit(_explain(err)) from None
    finally:
        _GIVEN_ENV.reset(token)
