"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

An 18-character code: registration authority (1), entity type (1), administrative division (6 digits),
organisation code (9) and a check character. The alphabet is the 31 characters below (no I, O, S, V, Z);
the check character is ``31 - (sum(value_i * 3**i mod 31) mod 31)``, with 31 written as ``0``.

The same rule is offered three ways: ``is_valid`` for one code, ``check_character`` to make codes, and
``sql_is_valid`` to check millions of codes inside a DuckDB query.
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
PATTERN = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}")
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def check_character(body: str) -> str:
    """Return the check character for the first 17 characters of a code."""
    if len(body) != 17 or any(ch not in _VALUE for ch in body):
        raise ValueError(f"body must be 17 characters from {ALPHABET}; got {body!r}")
    total = sum(_VALUE[ch] * w for ch, w in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: object) -> str | None:
    """Say what is wrong with ``code`` as a unified social credit code, or ``None`` when it is valid."""
    if not isinstance(code, str):
        return "must be an 18-character unified social credit code; got a non-string"
    if len(code) != 18:
        return f"must be 18 characters long; got {len(code)}"
    if not PATTERN.fullmatch(code):
        return "must use digits and capital letters other than I, O, S, V, Z, with a 6-digit division code"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character must be {expected!r} (GB 32100-2015); got {code[17]!r}"
    return None


def is_valid(code: object) -> bool:
    """True when ``code`` is a well-formed unified social credit code with a correct check character."""
    return problem(code) is None


def sql_is_valid(column: str) -> str:
    """A DuckDB boolean expression that is true when ``column`` holds a valid code (NULL counts invalid)."""
    terms = " + ".join(f"{w} * (strpos('{ALPHABET}', substr({column}, {i + 1}, 1)) - 1)" for i, w in enumerate(WEIGHTS))
    check = f"substr('{ALPHABET}', ((31 - ({terms}) % 31) % 31) + 1, 1)"
    return f"coalesce(regexp_full_match({column}, '{PATTERN.pattern}') AND substr({column}, 18, 1) = {check}, false)"
