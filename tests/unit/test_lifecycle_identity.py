"""Email normalisation is the cross-CRM merge key: equal people must match, garbage must not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lifecycle import email_domain, normalize_email
from connector.lifecycle.identity import salesforce_id_18


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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),  # Salesforce's documented example
        (" 001D000000IqhSL ", "001D000000IqhSLIAZ"),
        ("001D000000IqhSLIAZ", "001D000000IqhSLIAZ"),
        ("001D000000IqhSLiaz", "001D000000IqhSLIAZ"),  # the suffix is case-insensitive
        ("001D000000IqhSLAAA", None),  # wrong checksum: not this record
        ("001d000000iqhsl", "001d000000iqhslAAA"),  # another record: case matters in the 15
        ("n/a", None),
        ("", None),
        (None, None),
        ("001D000000IqhS", None),
    ],
)
def test_salesforce_ids_are_compared_in_their_18_character_form(
    raw: str | None, expected: str | None
) -> None:
    assert salesforce_id_18(raw) == expected


@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=15, max_size=15
    )
)
def test_15_and_18_character_forms_of_an_id_agree(base: str) -> None:
    long = salesforce_id_18(base)
    assert long is not None
    assert long.startswith(base)
    assert salesforce_id_18(long) == long
    assert salesforce_id_18(long[:15] + long[15:].lower()) == long


def test_every_whitespace_or_control_character_is_rejected_inside_an_address() -> None:
    """The check runs in C (`" " in text or not text.isprintable()`); it must reject exactly the
    characters the per-character definition (`isspace() or not isprintable()`) rejects."""
    rejected = [chr(c) for c in range(0x110000) if chr(c).isspace() or not chr(c).isprintable()]
    assert len(rejected) > 1000
    for char in [*rejected[::7], " ", "\t", "\xa0", "\u2028", "\x00"]:
        assert normalize_email(f"a{char}b@x.io") is None, repr(char)
    assert normalize_email("a.b+c@x.io") == "a.b+c@x.io"
