"""Glob patterns as this tool reads them: branch patterns, scope filters and exception resources.

One dialect everywhere, chosen to match Bitbucket Cloud's branch patterns:

- ``*`` matches any run of characters, **including** ``/``: Bitbucket documents ``*`` as matching
  every branch and ``release/*`` as matching release branches, and a branch permission on
  ``release/*`` also guards ``release/1.x/hotfix``. ``fnmatch`` agrees (it has no path semantics).
- ``?`` matches exactly one character; ``[abc]`` / ``[!abc]`` a character class.
- The whole name must match (``main`` does not match ``maintenance``), case-sensitively, because
  Git branch names and Bitbucket slugs are case-sensitive.

Patterns are compiled to regular expressions once; ``glob_problem`` says what is wrong with a
pattern a user wrote (for validation messages).
"""

from __future__ import annotations

import functools
import re


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob, or None when it is."""
    if not pattern.strip():
        return "empty pattern"
    if pattern != pattern.strip():
        return f"pattern {pattern!r} has leading or trailing spaces"
    index = 0
    while index < len(pattern):
        if pattern[index] == "[":
            end = pattern.find("]", index + 2)
            if end == -1:
                return f"pattern {pattern!r} has an unclosed '['"
            index = end
        elif pattern[index] == "]":
            return f"pattern {pattern!r} has a ']' without '['"
        index += 1
    return None


@functools.lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression equivalent to ``pattern`` (anchored at both ends)."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[" and (end := pattern.find("]", index + 2)) != -1:
            body = pattern[index + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            parts.append(f"[{'^' if negate else ''}{body}]")
            index = end
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    """True when ``name`` matches ``pattern`` as a whole (see the module docstring)."""
    return compile_glob(pattern).fullmatch(name) is not None


def any_glob_match(patterns: tuple[str, ...] | list[str], name: str) -> bool:
    return any(glob_match(pattern, name) for pattern in patterns)


def repository_matches(patterns: tuple[str, ...] | list[str], full_name: str) -> bool:
    """True when a repository matches any pattern.

    A pattern containing ``/`` is matched against the full name (``acme/payments-*``), one
    without against the slug alone (``payments-*`` matches in every workspace).
    """
    slug = full_name.split("/", 1)[-1]
    return any(glob_match(p, full_name if "/" in p else slug) for p in patterns)
