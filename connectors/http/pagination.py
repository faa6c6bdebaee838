"""Pagination helpers: body paths (`$`, JSONPath, dotted keys), Link headers and the next page's URL.

A body path is `$` (the whole document), a JSONPath (`$.data`, `$.items[*]`, RFC 9535) or a dotted
key (`data.items`, `links.0.href`). `items` selects the list of a page's items; `next` and
`next_cursor` select one value. The styles (config.py) cover the vendors' own schemes: `next_link`
(Link header, Salesforce `nextRecordsUrl`, Dynamics `@odata.nextLink`, SAP `d.__next`, Zuora
`nextPage`), `cursor` (Chargebee `next_offset`, Stripe `has_more` + `starting_after`), `offset`
(NetSuite SuiteQL `hasMore` + offset) and `page`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import httpx
import jsonpath_rfc9535

_MISSING: Any = object()


@functools.lru_cache(maxsize=256)
def _compiled(path: str) -> Any:
    return jsonpath_rfc9535.compile(path)


def check_path(path: str) -> str:
    """Validate a body path; raise ValueError when it does not parse."""
    path = path.strip()
    if not path:
        raise ValueError("a body path must not be empty")
    if path.startswith("$") and path != "$":
        try:
            _compiled(path)
        except jsonpath_rfc9535.JSONPathError as exc:
            raise ValueError(f"invalid JSONPath {path!r}: {exc}") from None
    return path


def select(document: Any, path: str) -> list[Any]:
    """Every value the path selects (zero, one or more)."""
    path = path.strip()
    if path == "$":
        return [document]
    if path.startswith("$"):
        return list(_compiled(path).find(document).values())
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return []
    return [node]


def select_items(document: Any, path: str) -> list[Any]:
    """A page's items: the list at `path`, or the values a multi-node JSONPath selects.

    Raises ValueError when the path selects one value that is not a list.
    """
    path = path.strip()
    found = select(document, path)
    if path.startswith("$") and path != "$" and not _compiled(path).singular_query():
        return found  # `$.data[*]`, filters, slices: the selected nodes are the items
    if not found or found[0] is None:
        return []
    if isinstance(found[0], list):
        return list(found[0])
    raise ValueError(f"items path {path!r} selected a {type(found[0]).__name__}, not a list")


def select_one(document: Any, path: str) -> Any:
    """The first value the path selects, or None."""
    found = select(document, path)
    return found[0] if found else None


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_PARAM = re.compile(r'\s*;\s*([^=;,\s]+)\s*=\s*("([^"]*)"|[^;,\s]*)')


def link_rel(values: list[str], rel: str) -> str | None:
    """The target of the first Link header entry whose `rel` contains `rel` (RFC 8288)."""
    for value in values:
        for match in _LINK.finditer(value):
            for param in _PARAM.finditer(match[2]):
                if param[1].lower() != "rel":
                    continue
                rels = (param[3] if param[3] is not None else param[2]).lower().split()
                if rel in rels:
                    return match[1].strip()
    return None


def next_link(location: str, headers: httpx.Headers, document: Any) -> str | None:
    """The next page's URL (possibly relative) from a header or the body, or None."""
    if location.lower().startswith("header:"):
        name = location[7:].strip()
        if name.lower() == "link":
            return link_rel(headers.get_list("link"), "next")
        value = headers.get(name)
        return value.strip() or None if value else None
    value = select_one(document, location)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def more_pages(document: Any, flag: str | None, items: list[Any], limit: int | None) -> bool:
    """Whether an offset page is followed by another: the body's flag when there is one (it must be
    exactly true), else a full page (as long as `limit`, or any non-empty page without a limit)."""
    if not items:
        return False
    if flag is not None:
        return select_one(document, flag) is True
    return limit is None or len(items) >= limit
