"""The row template's precomputed referral options (dashboard.format.options_by_selected)."""

from __future__ import annotations

from dashboard.format import options_by_selected

CHOICES = [{"code": "online", "label": "Online"}, {"code": "friend", "label": "A <friend>"}]


def test_one_string_per_selected_choice_escaped() -> None:
    options = options_by_selected(CHOICES)
    assert options["friend"] == (
        '<option value="online">Online</option>'
        '<option value="friend" selected>A &lt;friend&gt;</option>'
    )
    assert options["online"].count(" selected") == 1
    assert " selected" not in options[None]
    assert set(options) == {"online", "friend", None}
