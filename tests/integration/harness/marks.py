"""Markers shared by the test modules."""

from __future__ import annotations

import pytest

from .servers import server_kind


def diverges_on_prosody(reason: str) -> pytest.MarkDecorator:
    """Prosody, the reference server, is known to differ from the rule the test checks.

    strict: if Prosody starts passing, the reason (or our reading of the RFC) was wrong.
    """
    return pytest.mark.xfail(server_kind() == "prosody", reason=f"prosody: {reason}", strict=True)


def amphi_only(reason: str) -> pytest.MarkDecorator:
    """Checks a choice amphi made where the RFC leaves room (e.g. its own limits)."""
    return pytest.mark.skipif(server_kind() != "amphi", reason=reason)
