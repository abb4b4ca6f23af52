"""Email normalisation: the key that resolves one person across HubSpot and Salesforce.

Both CRMs store whatever a form or an import typed in, so the same person shows up as
" Ana@Example.com" in one and "ana@example.com\u200b" in the other. Matching on a normalised email
is what keeps one timeline per person; rejecting malformed values (None) keeps unrelated records
from being merged on garbage such as "n/a" or "".
"""

from __future__ import annotations

# Characters that are invisible but not `str.isspace()`: they arrive via copy-paste from web pages
# and spreadsheets and would otherwise make two equal addresses differ.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
MAX_EMAIL_LENGTH = 254
"""The longest address SMTP can carry (RFC 5321 path limit); anything longer is not an address."""


def normalize_email(raw: str | None) -> str | None:
    """Return the comparable form of an address, or None when it cannot be an address.

    Strips surrounding whitespace (unicode included) and invisible characters, then casefolds. A
    value is rejected unless it has exactly one "@" with a non-empty local part and domain and no
    whitespace or control characters inside, and no more than 254 characters — a merge key must
    never be a guess.
    """
    if raw is None:
        return None
    text = raw.strip().strip(_INVISIBLE).strip().casefold()
    if not text or len(text) > MAX_EMAIL_LENGTH or text.count("@") != 1:
        return None
    if any(char.isspace() or not char.isprintable() for char in text):
        return None
    local, domain = text.split("@")
    if not local or not domain:
        return None
    return text


def email_domain(email: str | None) -> str:
    """The domain of a (possibly unnormalised) address, "" when there is none.

    Criteria compare it with lists (free mail, competitors), so it is casefolded like the address.
    """
    normalized = normalize_email(email)
    if normalized is None:
        return ""
    return normalized.split("@", 1)[1]
