"""`./dev run --as NAME`: the Playground's yml with NAME as the current user (tools/playground_as.py).

The whole `./dev run --as siri` journey is tests/e2e/test_dev_run.py.
"""

from __future__ import annotations

import pytest

from integrations.directory import _read_playground_users
from tools.playground_as import REPO_CONFIG, config_as, parse

REPO_YML = REPO_CONFIG.read_text(encoding="utf-8")


def test_the_repo_yml_has_six_people_with_kari_as_current_user() -> None:
    config = parse(REPO_YML)
    assert config.current.name == "Kari Nordmann"
    assert [p.key for p in config.people] == ["kari", "ingrid", "per", "siri", "lars", "nina"]
    assert [p.role for p in config.people][:4] == ["innkjøpskontakt", "innkjøper", "innkjøpskontakt", "avtaleforvalter"]


@pytest.mark.parametrize("wanted", ["ingrid", "Ingrid", "INGRID", "Ingrid Haugen", "ingrid-haugen"])
def test_ingrid_becomes_the_current_user_and_kari_takes_her_place(wanted: str) -> None:
    yml, person = config_as(REPO_YML, wanted)
    assert person.name == "Ingrid Haugen"
    config = parse(yml)
    assert config.current.fields["id"] == "29:ingrid-haugen-a1"
    assert config.current.fields["aadObjectId"] == "00000000-0000-4000-8000-0000000000a1"
    # Still six people (the Playground wants exactly five users besides the current one).
    assert [p.key for p in config.users] == ["kari", "per", "siri", "lars", "nina"]
    assert "  id: a:personal-ingrid-haugen" in yml
    assert "# Ingrid Haugen, innkjøper, Innkjøpsseksjonen (the user typing in the web UI)" in yml
    assert "  # Kari Nordmann, innkjøpskontakt, Helse og mestring\n  - id: 29:kari-nordmann-a2" in yml
    # Everything else (tenant, bot, team, channels) as in the repo's file.
    assert yml.split("personalChat:")[1].split("\n", 2)[2] == REPO_YML.split("personalChat:")[1].split("\n", 2)[2]
    assert yml.split("# Ingrid Haugen")[0] == REPO_YML.split("# Kari Nordmann")[0]
    # The bot's local directory reads the same people from it.
    assert _read_playground_users(yml) == _read_playground_users(REPO_YML)


def test_kari_gives_the_repo_yml_back_unchanged() -> None:
    yml, person = config_as(REPO_YML, "kari")
    assert person.name == "Kari Nordmann"
    assert yml == REPO_YML


def test_an_unknown_name_lists_the_names() -> None:
    with pytest.raises(LookupError) as err:
        config_as(REPO_YML, "bob")
    assert str(err.value.args[0]) == "unknown person 'bob' for --as: choose one of kari, ingrid, per, siri, lars, nina"
