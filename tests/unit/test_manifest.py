"""The Teams app package: rendering from settings, contents, icons, and offline schema validation.

Validation runs the real validator (manifest/validate_manifest.mjs) with the schemas bundled in
the npm package @microsoft/app-manifest. Without node or that package these tests fail rather
than skip: CI installs both (`npm install`).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from manifest import build, make_icons

CLIENT_ID = "5b3c1c0e-7a51-4c1e-9f0a-2f4f9d1e8a11"
TEAMS_APP_ID = "0f6f3c6a-3d2e-4b8e-8f4e-8e2c6a1b9d77"
NB_COMMANDS = [
    ("hjelp", "Vis hva assistenten kan"),
    ("behovsmelding", "Meld et nytt innkjøpsbehov"),
    "mine behovsmeldinger",
    "mine kontrakter",
    "ny kontrakt",
    "språk engelsk",
]
EN_COMMANDS = ["help", "needs report", "my needs reports", "my contracts", "new contract", "language norwegian"]


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not installed: the manifest validator needs Node.js (CI installs it)")
    package = build.PROJECT_DIR / "node_modules" / "@microsoft" / "app-manifest" / "package.json"
    if not package.is_file():
        pytest.fail(
            f"{package.parent} is missing: run `npm install` in {build.PROJECT_DIR} "
            "(the manifest test validates against the schema bundled in @microsoft/app-manifest)"
        )
    return path


def run_validator(node: str, manifest_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(build.VALIDATOR_SCRIPT), str(manifest_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_package(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    return json.loads(files["manifest.json"].decode("utf-8")), files


@pytest.fixture(scope="module")
def local_package(node: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built (and validated with node) with no client id: local mode."""
    out = tmp_path_factory.mktemp("local") / "appPackage.zip"
    build.build_package(build.config_from_env({}), out)
    return out


@pytest.fixture(scope="module")
def configured_package(node: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built (and validated with node) with an Entra app, Teams app id, domain and version."""
    env = {
        build.CLIENT_ID_VAR: CLIENT_ID,
        "TEAMS_APP_ID": TEAMS_APP_ID,
        "BOT_DOMAIN": "https://Innkjop.Kommune.example.no/",
        "APP_VERSION": "2.3.4",
    }
    out = tmp_path_factory.mktemp("configured") / "sub" / "appPackage.zip"
    build.build_package(build.config_from_env(env), out)
    return out


def test_package_holds_manifest_icons_and_english_strings_at_root(configured_package: Path) -> None:
    _, files = read_package(configured_package)
    assert sorted(files) == sorted(build.PACKAGE_FILES)
    assert files["color.png"] == (build.MANIFEST_DIR / "color.png").read_bytes()
    assert files["en.json"] == (build.MANIFEST_DIR / "en.json").read_bytes()


def test_configured_ids_domain_and_version(configured_package: Path) -> None:
    manifest, _ = read_package(configured_package)
    assert manifest["manifestVersion"].startswith("1.2")
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert manifest["id"] == TEAMS_APP_ID
    assert manifest["version"] == "2.3.4"
    assert manifest["bots"][0]["botId"] == CLIENT_ID
    assert manifest["webApplicationInfo"] == {
        "id": CLIENT_ID,
        "resource": f"api://innkjop.kommune.example.no/botid-{CLIENT_ID}",
    }
    assert manifest["validDomains"] == ["innkjop.kommune.example.no"]


def test_local_package_uses_placeholder_ids_and_no_domains(local_package: Path) -> None:
    manifest, _ = read_package(local_package)
    assert manifest["id"] == build.DEFAULT_TEAMS_APP_ID
    assert manifest["version"] == build.DEFAULT_APP_VERSION
    assert manifest["bots"][0]["botId"] == build.LOCAL_PLACEHOLDER_ID
    assert manifest["webApplicationInfo"]["id"] == build.LOCAL_PLACEHOLDER_ID
    assert "validDomains" not in manifest


def test_names_bot_scopes_and_norwegian_commands(configured_package: Path) -> None:
    manifest, _ = read_package(configured_package)
    assert manifest["name"] == {
        "short": "Innkjøpsassistenten",
        "full": "Innkjøpsassistenten – Innkjøpsseksjonen",
    }
    assert manifest["localizationInfo"]["defaultLanguageTag"] == "nb-NO"
    assert manifest["developer"]["websiteUrl"].startswith("https://")
    bot = manifest["bots"][0]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    # Photos and files for a deviation report are sent in the personal chat (issue 11).
    assert bot["supportsFiles"] is True
    assert bot["isNotificationOnly"] is False
    assert sorted(scope for cl in bot["commandLists"] for scope in cl["scopes"]) == [
        "groupChat",
        "personal",
        "team",
    ]
    for command_list in bot["commandLists"]:
        commands = command_list["commands"]
        assert [c["title"] for c in commands] == [item[0] if isinstance(item, tuple) else item for item in NB_COMMANDS]
        for item, command in zip(NB_COMMANDS, commands, strict=True):
            assert command["description"]
            if isinstance(item, tuple):
                assert command["description"] == item[1]


def test_english_strings_translate_every_command(configured_package: Path) -> None:
    manifest, files = read_package(configured_package)
    strings = json.loads(files["en.json"].decode("utf-8"))
    assert manifest["localizationInfo"]["additionalLanguages"] == [{"languageTag": "en", "file": "en.json"}]
    assert strings["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.Localization.schema.json")
    assert strings["name.short"] == "Procurement Assistant"
    assert build.check_localization(manifest, strings) == []
    titles = [strings[f"bots[0].commandLists[0].commands[{i}].title"] for i in range(len(NB_COMMANDS))]
    # The bot's text routes understand these English titles too (bot/routes*.py).
    assert titles == EN_COMMANDS


def test_every_command_is_one_the_bot_answers() -> None:
    """A command in the manifest's list reaches a real route (not the welcome card that
    answers anything unknown), in both languages and every scope."""
    from bot.routes import build_router

    manifest = build.render_manifest(build.config_from_env({}))
    strings = build.load_localization()
    router = build_router()
    titles = {c["title"] for cl in manifest["bots"][0]["commandLists"] for c in cl["commands"]}
    titles |= {v for k, v in strings.items() if k.startswith("bots[") and k.endswith(".title")}
    assert titles == {item[0] if isinstance(item, tuple) else item for item in NB_COMMANDS} | set(EN_COMMANDS)
    for title in sorted(titles):
        assert router.match_text(title) is not None, f"the bot has no command {title!r}"


def test_message_action_reports_a_deviation(configured_package: Path) -> None:
    """ "Meld avvik" on any message: an action command whose fetchTask the bot answers
    (bot/routes/deviation_report.py registers composeExtension/fetchTask and submitAction)."""
    from bot.routes import build_router
    from bot.routes.deviation_report import COMMAND_ID

    manifest, _ = read_package(configured_package)
    (extension,) = manifest["composeExtensions"]
    assert extension["botId"] == CLIENT_ID
    (command,) = extension["commands"]
    assert command == {
        "id": COMMAND_ID,
        "type": "action",
        "title": "Meld avvik",
        "description": command["description"],
        "context": ["message"],
        "fetchTask": True,
    }
    assert command["description"]
    router = build_router()
    assert {"composeExtension/fetchTask", "composeExtension/submitAction"} <= set(router.invokes)


def test_description_names_the_workflows() -> None:
    manifest = build.render_manifest(build.config_from_env({}))
    strings = build.load_localization()
    nb = [
        manifest["description"]["short"],
        manifest["description"]["full"],
        *(c["description"] for cl in manifest["bots"][0]["commandLists"] for c in cl["commands"]),
    ]
    en = [
        strings["description.short"],
        strings["description.full"],
        *(v for k, v in strings.items() if k.endswith(".description")),
    ]
    for words, lines in (
        (("behovsmelding", "avvik", "samhandlingsrom", "kontraktsregister", "påminnelse", "arkiv"), nb),
        (("needs report", "deviation", "collaboration room", "contract register", "reminder", "archive"), en),
    ):
        text = " ".join(lines[:2]).lower()
        assert all(word in text for word in words), (words, text)


def documented_permissions() -> tuple[list[str], dict[str, str]]:
    """From docs/permissions.md: the RSC table's names in order, and every call table row's
    permission → kind ("RSC" or "Application")."""
    text = (build.PROJECT_DIR / "docs" / "permissions.md").read_text(encoding="utf-8")
    rsc: list[str] = []
    kinds: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if not cells or set(cells[0]) <= {"-"} or cells[0] in ("Area", "RSC permission"):
            continue
        if section == "RSC permissions in the manifest":
            rsc.append(cells[0].strip("`"))
        elif section == "Calls and permissions":
            least = re.match(r"`([^`]+)`", cells[3])
            assert least, line
            kinds[least.group(1)] = cells[4]
    return rsc, kinds


def test_manifest_asks_for_exactly_the_documented_rsc_permissions(configured_package: Path) -> None:
    """RSC lets the procurement team's owner grant the app Graph access to that one team (the
    competition rooms); the manifest must ask for what docs/permissions.md lists, no more."""
    manifest, _ = read_package(configured_package)
    granted = manifest["authorization"]["permissions"]["resourceSpecific"]
    names = [p["name"] for p in granted]
    assert all(p["type"] == "Application" for p in granted)
    rsc, kinds = documented_permissions()
    assert names == rsc
    assert len(set(names)) == len(names)
    # Every RSC permission a call needs is in the manifest, and the manifest asks for nothing
    # the calls table does not use.
    assert {name for name, kind in kinds.items() if kind == "RSC"} == set(names)
    assert all(name.endswith(".Group") for name in names)
    assert not any(name.endswith(".Group") for name, kind in kinds.items() if kind == "Application")


def test_manifest_declares_private_channel_support(configured_package: Path) -> None:
    """Issue 10: the room's welcome may be posted in a private channel (bots there are a preview)."""
    manifest, _ = read_package(configured_package)
    assert manifest["supportsChannelFeatures"] == "tier1"
    assert "team" in manifest["bots"][0]["scopes"]


def test_every_graph_call_in_the_code_is_documented() -> None:
    """A new Graph call in integrations/ must get its row (and permission) in docs/permissions.md."""
    text = (build.PROJECT_DIR / "docs" / "permissions.md").read_text(encoding="utf-8")
    calls = {
        "integrations/directory.py": ["GET /users/", "checkMemberGroups"],
        "integrations/teams_apps.py": ["installedApps", "/appCatalogs/teamsApps", "/chat"],
        "integrations/teams_rooms.py": [
            "/channels?$filter",
            "POST /teams/{id}/channels`",
            "POST /teams/{id}/members",
            "/channels/{id}/members`",
            "filesFolder",
            "/children",
            "/tabs",
            "POST /teams`",
        ],
        "integrations/sharepoint.py": ["listItem/fields"],
        "integrations/sharepoint_lists.py": ["POST /sites/{id}/lists`", "/columns", "$filter=fields/", "$top"],
        "integrations/drive_uploads.py": [":/content", "createUploadSession"],
    }
    for module, needles in calls.items():
        assert (build.PROJECT_DIR / module).is_file(), module
        assert module in text, module
        for needle in needles:
            assert needle in text, (module, needle)


def _rgba_pixels(data: bytes) -> list[tuple[int, int, int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        raw = image.convert("RGBA").tobytes()
    return [(raw[i], raw[i + 1], raw[i + 2], raw[i + 3]) for i in range(0, len(raw), 4)]


def test_icons_sizes_and_outline_only_white_on_transparent(configured_package: Path) -> None:
    _, files = read_package(configured_package)
    with Image.open(io.BytesIO(files["color.png"])) as color:
        assert (color.format, color.size) == ("PNG", (192, 192))
    with Image.open(io.BytesIO(files["outline.png"])) as outline:
        assert (outline.format, outline.size) == ("PNG", (32, 32))
        assert "A" in outline.getbands()
    pixels = _rgba_pixels(files["outline.png"])
    assert all((r, g, b) == (255, 255, 255) or a == 0 for r, g, b, a in pixels)
    assert any(a == 0 for *_, a in pixels), "needs a transparent background"
    assert any(a == 255 for *_, a in pixels), "needs a visible white figure"
    # Full bleed: the colour icon has no transparent corners.
    assert all(a == 255 for *_, a in _rgba_pixels(files["color.png"]))


def test_make_icons_draws_icons_that_pass_the_checks(tmp_path: Path) -> None:
    color, outline = make_icons.write_icons(tmp_path)
    assert build.check_icons(color, outline) == []


def test_check_icons_rejects_a_coloured_outline(tmp_path: Path) -> None:
    outline = tmp_path / "outline.png"
    image = Image.new("RGBA", (32, 32), (255, 255, 255, 0))
    image.putpixel((5, 5), (0, 84, 153, 255))
    image.save(outline)
    problems = build.check_icons(build.MANIFEST_DIR / "color.png", outline)
    assert any("hvite" in p for p in problems)


def test_rendered_manifest_passes_the_node_validator(node: str, local_package: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(local_package) as archive:
        archive.extractall(tmp_path)
    result = run_validator(node, tmp_path / "manifest.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def _broken_copy(package: Path, tmp_path: Path, change: Any) -> Path:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path)
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    change(manifest)
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return manifest_path


def test_validator_rejects_a_bot_id_that_is_not_a_guid(node: str, local_package: Path, tmp_path: Path) -> None:
    def change(m: dict[str, Any]) -> None:
        m["bots"][0]["botId"] = "not-a-guid"

    result = run_validator(node, _broken_copy(local_package, tmp_path, change))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/bots/0/botId" in result.stderr


def test_validator_rejects_a_missing_required_field(node: str, local_package: Path, tmp_path: Path) -> None:
    result = run_validator(node, _broken_copy(local_package, tmp_path, lambda m: m.pop("developer")))
    assert result.returncode == 1
    assert "developer" in result.stderr


def test_validator_rejects_bad_english_strings_and_missing_files(
    node: str, local_package: Path, tmp_path: Path
) -> None:
    manifest_path = _broken_copy(local_package, tmp_path, lambda m: None)
    strings_path = tmp_path / "en.json"
    strings = json.loads(strings_path.read_text(encoding="utf-8"))
    strings["name.short"] = "A name far longer than thirty characters"
    strings_path.write_text(json.dumps(strings), encoding="utf-8")
    (tmp_path / "outline.png").unlink()
    result = run_validator(node, manifest_path)
    assert result.returncode == 1
    assert "/name.short" in result.stderr
    assert "outline.png" in result.stderr


def test_validator_never_fetches_an_unbundled_schema(node: str, local_package: Path, tmp_path: Path) -> None:
    def change(m: dict[str, Any]) -> None:  # v1.18 was never published, so it is not bundled
        m["$schema"] = "https://developer.microsoft.com/json-schemas/teams/v1.18/MicrosoftTeams.schema.json"
        m["manifestVersion"] = "1.18"

    result = run_validator(node, _broken_copy(local_package, tmp_path, change))
    assert result.returncode == 1
    assert "not bundled" in result.stderr


def test_build_fails_clearly_on_an_invalid_manifest(node: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = build.render_manifest

    def broken(config: build.PackageConfig) -> dict[str, Any]:
        manifest = original(config)
        manifest["accentColor"] = "blue"
        return manifest

    monkeypatch.setattr(build, "render_manifest", broken)
    out = tmp_path / "appPackage.zip"
    with pytest.raises(build.ManifestError) as excinfo:
        build.build_package(build.config_from_env({}), out)
    assert excinfo.value.exit_code == build.EXIT_INVALID
    assert "/accentColor" in str(excinfo.value)
    assert not out.exists()


def test_values_are_emitted_as_json_not_pasted() -> None:
    name = 'Kommune "X" \\ {{AS}}'
    config = build.config_from_env({"MANIFEST_DEVELOPER_NAME": name})
    assert build.render_manifest(config)["developer"]["name"] == name


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({build.CLIENT_ID_VAR: "not-a-guid"}, build.CLIENT_ID_VAR),
        ({"TEAMS_APP_ID": "123"}, "TEAMS_APP_ID"),
        ({"APP_VERSION": "1.0"}, "APP_VERSION"),
        ({"APP_VERSION": "1.0.0-beta"}, "APP_VERSION"),
        ({"BOT_DOMAIN": "innkjop.example.no/api/messages"}, "BOT_DOMAIN"),
        ({"BOT_DOMAIN": "innkjop.example.no:3978"}, "BOT_DOMAIN"),
        ({"MANIFEST_PRIVACY_URL": "http://example.no/personvern"}, "MANIFEST_PRIVACY_URL"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], needle: str) -> None:
    with pytest.raises(build.ManifestError) as excinfo:
        build.config_from_env(env)
    assert needle in str(excinfo.value)
    assert excinfo.value.exit_code == build.EXIT_FAILURE


def test_flags_override_the_environment() -> None:
    env = {build.CLIENT_ID_VAR: CLIENT_ID, "APP_VERSION": "1.2.3", "BOT_DOMAIN": "a.example.no"}
    config = build.config_from_env(env, client_id="", app_version="9.9.9", bot_domain="b.example.no")
    assert config.local_mode and config.bot_id == build.LOCAL_PLACEHOLDER_ID
    assert (config.app_version, config.bot_domain) == ("9.9.9", "b.example.no")


def test_localization_check_finds_unknown_and_missing_keys() -> None:
    manifest = build.render_manifest(build.config_from_env({}))
    strings = build.load_localization()
    strings["bots[0].commandLists[0].commands[11].title"] = "ghost"
    del strings["bots[0].commandLists[2].commands[0].description"]
    problems = build.check_localization(manifest, strings)
    assert len(problems) == 2
    assert any("commands[11]" in p for p in problems)
    assert any("commandLists[2].commands[0].description" in p for p in problems)


def test_same_settings_give_the_same_bytes(tmp_path: Path) -> None:
    config = build.config_from_env({build.CLIENT_ID_VAR: CLIENT_ID})
    build.build_package(config, tmp_path / "a.zip", validate=False)
    build.build_package(config, tmp_path / "b.zip", validate=False)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_main_in_local_mode_says_local_only(node: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "load_dotenv_file", lambda: None)
    for name in (build.CLIENT_ID_VAR, "TEAMS_APP_ID", "BOT_DOMAIN", "APP_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_VERSION", "3.0.0")
    out, err = io.StringIO(), io.StringIO()
    code = build.main(["--out", str(tmp_path / "pkg.zip"), "--app-version", "3.1.0"], out=out, err=err)
    assert code == 0, err.getvalue()
    assert "bare for lokal bruk" in out.getvalue()
    manifest, _ = read_package(tmp_path / "pkg.zip")
    assert manifest["version"] == "3.1.0"


def test_main_reports_bad_settings_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "load_dotenv_file", lambda: None)
    monkeypatch.setenv("TEAMS_APP_ID", "nope")
    out, err = io.StringIO(), io.StringIO()
    assert build.main(["--out", str(tmp_path / "pkg.zip")], out=out, err=err) == 2
    assert "TEAMS_APP_ID" in err.getvalue()
    assert not (tmp_path / "pkg.zip").exists()
