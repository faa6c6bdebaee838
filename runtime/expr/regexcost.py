"""How large a regular expression becomes when the `regex` module compiles it, estimated from its text.

The module expands counted repetitions while compiling: `a{1000000}` takes a second, and
`((a{1000}){1000}){1000}` never finishes, in one call nothing can interrupt. `expanded_size`
reads the pattern without compiling it: each atom (a character, an escape, a class) counts 1, a
sequence adds its items, a group counts its contents, and a quantifier multiplies what it repeats by
its lower bound (`{m}`, `{m,}`, `{m,n}`; `*`, `+`, `?` and `{,n}` by 1). The estimate stops as
soon as it passes `limit`, so reading a hostile pattern is as quick as reading a short one.
"""

from __future__ import annotations

MAX_EXPANDED = 100_000
"""Largest estimated size a pattern may have (`a{100000}` compiles in about 0.1 s)."""


def expanded_size(pattern: str, limit: int = MAX_EXPANDED) -> int:
    """Estimated size of `pattern` once its counted repetitions are expanded (more than `limit`
    means "too large"; the exact figure past the limit is not computed)."""
    stack: list[int] = [0]  # the running size of each open group's contents
    last = 0  # the size of the item a quantifier would repeat
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            last = 1
            stack[-1] += 1
            continue
        if c == "[":
            i = _class_end(pattern, i)
            last = 1
            stack[-1] += 1
            continue
        if c == "(":
            stack.append(0)
            i += 1
            last = 0
            continue
        if c == ")" and len(stack) > 1:
            inner = stack.pop()
            stack[-1] += inner
            last = inner
            i += 1
            continue
        if c == "{":
            low, end = _bound(pattern, i)
            if end > i:
                stack[-1] += last * (max(low, 1) - 1)  # the item was counted once already
                last *= max(low, 1)
                i = end
                if stack[-1] > limit or last > limit:
                    return limit + 1
                continue
        if c not in "*+?|":
            last = 1
            stack[-1] += 1
        i += 1
    return sum(stack)


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class opening at `start` (`[]a]` and `[^]a]` hold a `]`)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    depth = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # the regex module's nested sets ([[a-z]--[aeiou]])
            depth += 1
        elif c == "]":
            depth -= 1
            if not depth:
                return i + 1
        i += 1
    return i


def _bound(pattern: str, start: int) -> tuple[int, int]:
    """The lower bound of a `{m}`, `{m,}`, `{m,n}` or `{,n}` quantifier at `start`, and the index after
    it; `(0, start)` when the brace is a literal one."""
    close = pattern.find("}", start + 1, start + 64)
    if close < 0:
        return 0, start
    body = pattern[start + 1 : close]
    low = body.split(",", 1)[0].strip()
    if not body or not all(part.strip().isdigit() or not part.strip() for part in body.split(",", 1)):
        return 0, start
    return (int(low) if low else 0), close + 1
