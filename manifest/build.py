"""Build the Teams app package (``appPackage.zip``) from settings.

    innkjop-manifest [--out appPackage.zip] [--client-id GUID] [--teams-app-id GUID]
                     [--bot-domain HOST] [--app-version X.Y.Z] [--no-validate]
    python -m manifest.build …

Settings come from the environment (and a ``.env`` file found from the current directory
upwards); command-line flags override them:

    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID  Entra app client id = bot id (GUID).
                              Unset: local mode, a placeholder id, the package is for local use only.
    TEAMS_APP_ID              the Teams app id (GUID); default DEFAULT_TEAMS_APP_ID below. Keep it
                              stable: Teams treats a new id as a different app.
    BOT_DOMAIN                public host name of the bot (e.g. innkjop.example.no); sets
                              validDomains and the webApplicationInfo resource. Unset: no validDomains.
    APP_VERSION               the app's version, X.Y.Z (default 1.0.0); raise it for every upload.
    MANIFEST_DEVELOPER_NAME, MANIFEST_WEBSITE_URL, MANIFEST_PRIVACY_URL, MANIFEST_TERMS_URL
                              the publisher shown in Teams (https URLs); placeholders by default.

The template is rendered with every value emitted as JSON, the result is checked (icons,
English strings) and validated offline against the schema bundled in the npm package
``@microsoft/app-manifest`` by ``validate_manifest.mjs`` (needs ``node`` and ``npm install``;
``--no-validate`` skips it). The zip holds manifest.json, color.png, outline.png and en.json
at its root, with fixed timestamps so the same input gives the same bytes.

Exit status: 0 package written, 1 the manifest is invalid, 2 bad settings or the validator
cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from PIL import Image

MANIFEST_DIR = Path(__file__).resolve().parent
PROJECT_DIR = MANIFEST_DIR.parent
TEMPLATE_NAME = "manifest.template.json.j2"
VALIDATOR_SCRIPT = MANIFEST_DIR / "validate_manifest.mjs"
NODE_PACKAGE = "@microsoft/app-manifest"

CLIENT_ID_VAR = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"
# The Teams app id used when TEAMS_APP_ID is not set: fixed, so rebuilt packages update the
# same app instead of adding a new one. Another municipality should pick its own GUID.
DEFAULT_TEAMS_APP_ID = "368d3630-54da-41fb-a685-fcfc4a5052fa"
# Bot id in local mode (no Entra app): a valid GUID that is obviously not a real app.
LOCAL_PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_APP_VERSION = "1.0.0"
DEFAULT_DEVELOPER_NAME = "Kommunen – Innkjøpsseksjonen"
DEFAULT_WEBSITE_URL = "https://www.kommune.example.no/innkjop"
DEFAULT_PRIVACY_URL = "https://www.kommune.example.no/personvern"
DEFAULT_TERMS_URL = "https://www.kommune.example.no/innkjop/vilkar"
# Municipal blue, the background of color.png (manifest/make_icons.py).
ACCENT_COLOR = "#005499"

PACKAGE_FILES = ("manifest.json", "color.png", "outline.png", "en.json")
COLOR_ICON_SIZE = (192, 192)
OUTLINE_ICON_SIZE = (32, 32)

EXIT_OK, EXIT_INVALID, EXIT_FAILURE = 0, 1, 2

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
_COMMAND_KEY = re.compile(
    r"^bots\[0\]\.commandLists\[(?P<list>\d+)\]\.commands\[(?P<command>\d+)\]\.(?P<field>title|description)$"
)
_TOP_LEVEL_STRINGS = ("name.short", "name.full", "description.short", "description.full")


class ManifestError(Exception):
    """Bad settings, or a manifest that fails a check; ``exit_code`` says which."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class PackageConfig:
    client_id: str = ""
    teams_app_id: str = DEFAULT_TEAMS_APP_ID
    bot_domain: str = ""
    app_version: str = DEFAULT_APP_VERSION
    developer_name: str = DEFAULT_DEVELOPER_NAME
    website_url: str = DEFAULT_WEBSITE_URL
    privacy_url: str = DEFAULT_PRIVACY_URL
    terms_url: str = DEFAULT_TERMS_URL

    @property
    def local_mode(self) -> bool:
        """No Entra app configured: the bot id is a placeholder and the package is local only."""
        return not self.client_id

    @property
    def bot_id(self) -> str:
        return self.client_id or LOCAL_PLACEHOLDER_ID

    @property
    def web_application_resource(self) -> str:
        # The Application ID URI form Teams documents for bot SSO; RSC only needs a value.
        if self.bot_domain:
            return f"api://{self.bot_domain}/botid-{self.bot_id}"
        return f"api://botid-{self.bot_id}"


def _normalise_domain(raw: str) -> str:
    domain = raw.strip().lower()
    for scheme in ("https://", "http://"):
        if domain.startswith(scheme):
            domain = domain[len(scheme) :]
    domain = domain.rstrip("/")
    if domain and not _HOST.match(domain):
        raise ManifestError(
            f"BOT_DOMAIN må være et vertsnavn som innkjop.kommune.no, uten sti eller port; fikk {raw!r} "
            f"(BOT_DOMAIN must be a host name without path or port)"
        )
    return domain


def _guid(name: str, value: str) -> str:
    value = value.strip()
    if not _GUID.match(value):
        raise ManifestError(f"{name} må være en GUID, fikk {value!r} ({name} must be a GUID)")
    return value.lower()


def _https(name: str, value: str) -> str:
    value = value.strip()
    if not value.startswith("https://") or len(value) <= len("https://") or " " in value:
        raise ManifestError(f"{name} må være en https-adresse, fikk {value!r} ({name} must be an https URL)")
    return value


def config_from_env(
    env: Mapping[str, str],
    *,
    client_id: str | None = None,
    teams_app_id: str | None = None,
    bot_domain: str | None = None,
    app_version: str | None = None,
) -> PackageConfig:
    """Settings from ``env``, overridden by any argument that is not None; validated."""

    def pick(override: str | None, name: str, default: str = "") -> str:
        if override is not None:
            return override.strip()
        return env.get(name, "").strip() or default

    raw_client_id = pick(client_id, CLIENT_ID_VAR)
    version = pick(app_version, "APP_VERSION", DEFAULT_APP_VERSION)
    if not _SEMVER.match(version):
        raise ManifestError(
            f"APP_VERSION må ha formen X.Y.Z med bare tall, fikk {version!r} (APP_VERSION must be X.Y.Z)"
        )
    developer_name = pick(None, "MANIFEST_DEVELOPER_NAME", DEFAULT_DEVELOPER_NAME)
    if len(developer_name) > 32:
        raise ManifestError(
            f"MANIFEST_DEVELOPER_NAME kan ha høyst 32 tegn, fikk {len(developer_name)} (at most 32 characters)"
        )
    return PackageConfig(
        client_id=_guid(CLIENT_ID_VAR, raw_client_id) if raw_client_id else "",
        teams_app_id=_guid("TEAMS_APP_ID", pick(teams_app_id, "TEAMS_APP_ID", DEFAULT_TEAMS_APP_ID)),
        bot_domain=_normalise_domain(pick(bot_domain, "BOT_DOMAIN")),
        app_version=version,
        developer_name=developer_name,
        website_url=_https("MANIFEST_WEBSITE_URL", pick(None, "MANIFEST_WEBSITE_URL", DEFAULT_WEBSITE_URL)),
        privacy_url=_https("MANIFEST_PRIVACY_URL", pick(None, "MANIFEST_PRIVACY_URL", DEFAULT_PRIVACY_URL)),
        terms_url=_https("MANIFEST_TERMS_URL", pick(None, "MANIFEST_TERMS_URL", DEFAULT_TERMS_URL)),
    )


def _finalize(value: Any) -> Markup:
    # Every {{ … }} becomes a JSON literal; Markup is output the template built itself.
    if isinstance(value, Markup):
        return value
    return Markup(json.dumps(value, ensure_ascii=False))


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(MANIFEST_DIR)),
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )


def render_manifest(config: PackageConfig) -> dict[str, Any]:
    """The manifest as a dict, rendered from the template with ``config``."""
    text = (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            teams_app_id=config.teams_app_id,
            bot_id=config.bot_id,
            app_version=config.app_version,
            developer_name=config.developer_name,
            website_url=config.website_url,
            privacy_url=config.privacy_url,
            terms_url=config.terms_url,
            accent_color=ACCENT_COLOR,
            valid_domains=[config.bot_domain] if config.bot_domain else [],
            web_application_resource=config.web_application_resource,
        )
    )
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:  # a template bug, not a settings problem
        raise ManifestError(f"{TEMPLATE_NAME} ga ikke gyldig JSON (invalid JSON): {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"{TEMPLATE_NAME} må gi et JSON-objekt (must render a JSON object)")
    return manifest


def load_localization(name: str = "en.json") -> dict[str, Any]:
    data = json.loads((MANIFEST_DIR / name).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ManifestError(f"{name} må være et JSON-objekt (must be a JSON object)")
    return data


def check_localization(manifest: Mapping[str, Any], strings: Mapping[str, Any]) -> list[str]:
    """Problems with a localization file: keys naming commands the manifest lacks, missing strings."""
    problems: list[str] = []
    command_lists = manifest.get("bots", [{}])[0].get("commandLists", [])
    expected = {
        f"bots[0].commandLists[{i}].commands[{j}].{field}"
        for i, command_list in enumerate(command_lists)
        for j, command in enumerate(command_list.get("commands", []))
        for field in ("title", "description")
        if field in command
    }
    for key in strings:
        if key == "$schema" or key in _TOP_LEVEL_STRINGS:
            continue
        if _COMMAND_KEY.match(key) and key not in expected:
            problems.append(f"{key}: manifestet har ingen slik kommando (no such command in the manifest)")
    for key in sorted(expected - set(strings)):
        problems.append(f"{key}: mangler oversettelse (translation missing)")
    for key in _TOP_LEVEL_STRINGS:
        if key not in strings:
            problems.append(f"{key}: mangler oversettelse (translation missing)")
    return problems


def _pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    data = image.convert("RGBA").tobytes()
    return [(data[i], data[i + 1], data[i + 2], data[i + 3]) for i in range(0, len(data), 4)]


def check_icons(color_path: Path, outline_path: Path) -> list[str]:
    """Problems with the icons: sizes, and an outline that is not white on transparent."""
    problems: list[str] = []
    with Image.open(color_path) as color:
        if color.format != "PNG" or color.size != COLOR_ICON_SIZE:
            problems.append(f"{color_path.name}: må være PNG 192×192, er {color.format} {color.size}")
    with Image.open(outline_path) as outline:
        if outline.format != "PNG" or outline.size != OUTLINE_ICON_SIZE:
            problems.append(f"{outline_path.name}: må være PNG 32×32, er {outline.format} {outline.size}")
        elif "A" not in outline.getbands():
            problems.append(f"{outline_path.name}: må ha gjennomsiktig bakgrunn (needs an alpha channel)")
        else:
            pixels = _pixels(outline)
            if any(a > 0 and (r, g, b) != (255, 255, 255) for r, g, b, a in pixels):
                problems.append(f"{outline_path.name}: bare hvite piksler er lov (only white pixels allowed)")
            if not any(a == 0 for *_, a in pixels) or not any(a > 0 for *_, a in pixels):
                problems.append(f"{outline_path.name}: må være hvit figur på gjennomsiktig bakgrunn")
    return problems


def find_node_package() -> Path | None:
    """The installed ``@microsoft/app-manifest`` (project's node_modules, then the current directory's)."""
    for base in (PROJECT_DIR, Path.cwd()):
        candidate = base / "node_modules" / "@microsoft" / "app-manifest"
        if (candidate / "package.json").is_file():
            return candidate
    return None


def validate_with_node(manifest_path: Path) -> None:
    """Run validate_manifest.mjs on a manifest (with its icons and en.json beside it)."""
    node = shutil.which("node")
    if node is None:
        raise ManifestError(
            "Kan ikke validere manifestet: fant ikke «node». Installer Node.js og kjør `npm install`, "
            "eller bruk --no-validate. (Cannot validate: node not found.)"
        )
    if find_node_package() is None:
        raise ManifestError(
            f"Kan ikke validere manifestet: {NODE_PACKAGE} er ikke installert i {PROJECT_DIR / 'node_modules'}. "
            f"Kjør `npm install` i prosjektmappen, eller bruk --no-validate. (Cannot validate: run npm install.)"
        )
    try:
        result = subprocess.run(
            [node, str(VALIDATOR_SCRIPT), str(manifest_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManifestError(f"Validatoren kunne ikke kjøres (validator failed to run): {exc}") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode == EXIT_INVALID:
        raise ManifestError(f"Manifestet er ugyldig (invalid manifest):\n{output}", EXIT_INVALID)
    if result.returncode != EXIT_OK:
        raise ManifestError(f"Validatoren feilet (validator error, exit {result.returncode}):\n{output}")


def _write_zip(out: Path, staging: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in PACKAGE_FILES:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, (staging / name).read_bytes())
    os.replace(partial, out)


def build_package(config: PackageConfig, out: Path, *, validate: bool = True) -> dict[str, Any]:
    """Render, check, validate and zip the package to ``out``; returns the manifest written."""
    manifest = render_manifest(config)
    strings = load_localization()
    problems = check_localization(manifest, strings)
    problems += check_icons(MANIFEST_DIR / "color.png", MANIFEST_DIR / "outline.png")
    if problems:
        raise ManifestError("Pakken har feil (package problems):\n  - " + "\n  - ".join(problems), EXIT_INVALID)
    with tempfile.TemporaryDirectory(prefix="appPackage-") as tmp:
        staging = Path(tmp)
        (staging / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        for name in PACKAGE_FILES[1:]:
            shutil.copyfile(MANIFEST_DIR / name, staging / name)
        if validate:
            validate_with_node(staging / "manifest.json")
        _write_zip(out, staging)
    return manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="innkjop-manifest",
        description="Bygg Teams-apppakken appPackage.zip fra innstillingene "
        "(Build the Teams app package from the settings).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("appPackage.zip"),
        help="zip-filen som skrives; standard appPackage.zip (output file)",
    )
    parser.add_argument(
        "--client-id",
        default=None,
        help=f"Entra-appens klient-id = bot-id; standard {CLIENT_ID_VAR} (bot/app id)",
    )
    parser.add_argument(
        "--teams-app-id",
        default=None,
        help=f"Teams-appens id; standard TEAMS_APP_ID eller {DEFAULT_TEAMS_APP_ID}",
    )
    parser.add_argument(
        "--bot-domain",
        default=None,
        help="botens offentlige vertsnavn; standard BOT_DOMAIN (public host name)",
    )
    parser.add_argument(
        "--app-version",
        default=None,
        help=f"appversjon X.Y.Z; standard APP_VERSION eller {DEFAULT_APP_VERSION}",
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="hopp over skjemavalideringen med node (skip the schema validation)",
    )
    return parser


def load_dotenv_file() -> None:
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    args = build_parser().parse_args(argv)
    load_dotenv_file()
    try:
        config = config_from_env(
            os.environ,
            client_id=args.client_id,
            teams_app_id=args.teams_app_id,
            bot_domain=args.bot_domain,
            app_version=args.app_version,
        )
        if config.local_mode:
            print(
                f"Merk: {CLIENT_ID_VAR} er ikke satt, så bot-id-en er plassholderen {LOCAL_PLACEHOLDER_ID}. "
                "Pakken er bare for lokal bruk og virker ikke i Teams. "
                "(Local use only: no Entra app client id configured.)",
                file=stdout,
            )
        build_package(config, args.out, validate=not args.no_validate)
    except ManifestError as exc:
        print(str(exc), file=stderr)
        return exc.exit_code
    if args.no_validate:
        print("Merk: manifestet er ikke validert (--no-validate).", file=stdout)
    print(
        f"Skrev {args.out} (Teams-app-id {config.teams_app_id}, bot-id {config.bot_id}, versjon {config.app_version}).",
        file=stdout,
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
