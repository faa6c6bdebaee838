"""Whether a name and value can go out as an HTTP header: names are tokens (RFC 9110), values hold
no CR, LF or other control character (a tab is allowed), which would split the message.

Used by validate (SL045, literal `respond` headers) and by the `respond` step at run time."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAMES = {"\r": "CR", "\n": "LF", "\x00": "NUL"}
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` cannot be sent as an HTTP header, or None when it can."""
    if not _TOKEN.match(name):
        return f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+.^_`|~-)"
    bad = _CONTROL.search(value)
    if bad is not None:
        char = bad.group()
        what = _NAMES.get(char, f"control character U+{ord(char):04X}")
        return f"header {name} holds {what} at position {bad.start()} (it would split the response)"
    return None


def literal_header_problem(name: str, template: str) -> str | None:
    """`header_problem` for a header as written in a flow: the name, and the value's literal text
    (outside `{{ }}`/`{% %}`), which every rendering keeps."""
    return header_problem(name, _TEMPLATE.sub("", template))
