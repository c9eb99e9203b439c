"""The README documents every setting and every make target (they drift otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from dashboard.settings import DashboardSettings
from webhook.settings import Settings as WebhookSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("settings_class", [WebhookSettings, WorkerSettings, DashboardSettings])
def test_every_setting_is_documented(settings_class: type[BaseSettings]) -> None:
    missing = [
        name.upper() for name in settings_class.model_fields if f"`{name.upper()}`" not in README
    ]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_make_target_is_documented() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):.*## ", makefile, flags=re.MULTILINE)
    assert targets, "no documented targets found in the Makefile"
    missing = [t for t in targets if f"`make {t}`" not in README]
    assert not missing, f"make targets missing from README.md: {missing}"


def test_every_make_variable_is_documented() -> None:
    makefile = (ROOT / "Makefile").read_text()
    variables = re.findall(r"^([A-Z][A-Z_]*) \?=", makefile, flags=re.MULTILINE)
    assert variables, "no overridable variables found in the Makefile"
    missing = [v for v in variables if f"`{v}`" not in README]
    assert not missing, f"make variables missing from README.md: {missing}"
