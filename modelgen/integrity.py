"""What a generated module's header records about itself, and how its text is made safe.

A generated module records three hashes in its first lines: its model's source (``source
sha256``), what it was built from (``build hash``: model, method, backend, modelgen) and its own
text (``text sha256``, computed with that line's value read as zeros). The runtime checks the
text hash *before* executing the file, so an edited or replaced module never runs.

User text reaches generated code only in comments and docstrings (names are identifiers, strings
are written with ``repr``); :func:`comment_text` makes it unable to end the comment, and
:func:`check_generated_text` refuses a module with a character that could (a line break other
than ``\\n``, a control or bidirectional-override character) or with any coding declaration
but the fixed first line.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "CODING_LINE",
    "TEXT_HASH_PLACEHOLDER",
    "comment_text",
    "check_generated_text",
    "text_hash",
    "seal",
    "header_field",
]

CODING_LINE = "# -*- coding: utf-8 -*-"
TEXT_HASH_FIELD = "# text sha256:"
TEXT_HASH_PLACEHOLDER = "0" * 64
HEADER_LINES = 16  # the header fields are read from this many first lines

# Unicode categories that never appear in generated code: controls (line breaks included),
# format characters (bidirectional overrides: "Trojan source"), line and paragraph separators,
# surrogates, private-use and unassigned code points
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_TEXT_HASH_LINE = re.compile(r"^# text sha256:[ ]+([0-9a-f]{64})$", re.MULTILINE)


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def comment_text(text: str) -> str:
    """Return ``text`` fit for one line of a generated comment or docstring.

    Tabs become spaces; other control, format and line-separating characters and backslashes
    are shown as ``<U+XXXX>``: what the user wrote stays readable, and nothing can end the
    comment or be decoded into code. (Docstrings receive only model names, which are identifiers.)
    """
    out = []
    for ch in str(text):
        if ch == "\t":
            out.append(" ")
        elif ch == "\\" or _unsafe(ch):
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def check_generated_text(text: str) -> None:
    """Raise ValueError unless ``text`` is a generated module's text that no user text has altered.

    Its first line is the fixed coding line, it declares no other coding, and it holds no
    character that Python or an editor would read as a line break (other than ``\\n``), no
    control and no bidirectional-formatting character.
    """
    lines = text.split("\n", 2)
    if lines[0] != CODING_LINE or (len(lines) > 1 and re.search(r"coding[:=]", lines[1])):
        raise ValueError("a generated module must start with the fixed coding line")
    bad = next((ch for ch in text if ch != "\n" and _unsafe(ch)), None)
    if bad is not None:
        raise ValueError(f"a generated module may not contain the character U+{ord(bad):04X}")


def text_hash(text: str) -> str:
    """Return the sha256 of a module's text, its own ``# text sha256:`` value read as zeros."""
    canonical = _TEXT_HASH_LINE.sub(lambda m: m.group(0).replace(m.group(1), TEXT_HASH_PLACEHOLDER), text, 1)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal(text: str) -> str:
    """Return ``text`` (rendered with the placeholder text hash) with its text hash filled in."""
    digest = text_hash(text)
    return text.replace(f"{TEXT_HASH_FIELD}   {TEXT_HASH_PLACEHOLDER}", f"{TEXT_HASH_FIELD}   {digest}", 1)


def header_field(text: str, field: str) -> str | None:
    """Return the value of ``# <field>:`` in the first lines of a generated module, or None."""
    prefix = f"# {field}:"
    for line in text.split("\n", HEADER_LINES)[:HEADER_LINES]:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None
