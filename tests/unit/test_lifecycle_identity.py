"""Email normalisation is the cross-CRM merge key: equal people must match, garbage must not."""

from __future__ import annotations

import pytest

from connector.lifecycle import email_domain, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("ana@acme.com", "ana@acme.com", id="already-normal"),
        pytest.param("  Ana@ACME.com\t", "ana@acme.com", id="spaces-and-case"),
        pytest.param("\u00a0ana@acme.com\u2003", "ana@acme.com", id="unicode-spaces"),
        pytest.param("\ufeffana@acme.com\u200b", "ana@acme.com", id="invisible-characters"),
        pytest.param("STRASSE@Acme.DE", "strasse@acme.de", id="casefold"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("n/a", None, id="no-at"),
        pytest.param("a@b@c.com", None, id="two-ats"),
        pytest.param("@acme.com", None, id="empty-local"),
        pytest.param("ana@", None, id="empty-domain"),
        pytest.param("ana smith@acme.com", None, id="inner-space"),
        pytest.param("ana\x00@acme.com", None, id="nul-byte"),
        pytest.param("ana\x1b[31m@acme.com", None, id="terminal-escape"),
        pytest.param("a" * 250 + "@acme.example", None, id="longer-than-smtp-allows"),
        pytest.param("a" * 200 + "@acme.example", "a" * 200 + "@acme.example", id="long-but-valid"),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(" Ana@Acme.COM ", "acme.com", id="normalised"),
        pytest.param(None, "", id="none"),
        pytest.param("not-an-email", "", id="invalid"),
    ],
)
def test_email_domain(raw: str | None, expected: str) -> None:
    assert email_domain(raw) == expected


def test_every_whitespace_or_control_character_is_rejected_inside_an_address() -> None:
    """The check runs in C (`" " in text or not text.isprintable()`); it must reject exactly the
    characters the per-character definition (`isspace() or not isprintable()`) rejects."""
    rejected = [chr(c) for c in range(0x110000) if chr(c).isspace() or not chr(c).isprintable()]
    assert len(rejected) > 1000
    for char in [*rejected[::7], " ", "\t", "\xa0", "\u2028", "\x00"]:
        assert normalize_email(f"a{char}b@x.io") is None, repr(char)
    assert normalize_email("a.b+c@x.io") == "a.b+c@x.io"
