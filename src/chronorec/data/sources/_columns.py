"""Column resolution: which source column plays which canonical role.

Canonical keys are ``user``, ``item``, ``time`` (becomes column ``ts``), ``category``, ``brand``,
``rating``, ``session``; any other key of a user mapping becomes an extra categorical column of
that name. Without a mapping a column is recognised by its name, compared case-insensitively and
ignoring ``_``, ``-`` and spaces, against :data:`ALIASES` (first alias wins, so ``timestamp`` beats
``time`` when a file has both). A mapping (``{"user": "userId", "time": "timestamp"}``) overrides
the aliases key by key; a mapped column that does not exist is an error that lists the columns
and suggests the closest name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from chronorec.errors import ChronorecError

CANONICAL = ("user", "item", "time", "category", "brand", "rating", "session")

ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userid", "user", "uid", "reviewerid", "visitorid", "customerid", "userids"),
    "item": ("itemid", "item", "movieid", "asin", "productid", "businessid", "trackid", "articleid", "iid"),
    "time": ("timestamp", "time", "ts", "unixreviewtime", "unixtimestamp", "datetime", "eventtime", "date"),
    "category": ("category", "cateid", "cate", "categoryid", "catid", "icategory", "catelast", "genre"),
    "brand": ("brand", "brandid"),
    "rating": ("rating", "overall", "score", "stars"),
    "session": ("sessionid", "session"),
}


def norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in "_- ").lstrip("\ufeff")


def closest(name: str, candidates: Iterable[str]) -> str | None:
    cands = list(candidates)
    by_norm = {norm(c): c for c in cands}
    hit = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[hit[0]] if hit else None


def _listing(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    return f"columns are: {shown}"


def check_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Validate the mapping's shape (keys are roles, values column names); ``time`` may also be ``ts``."""
    out: dict[str, str] = {}
    for key, col in (mapping or {}).items():
        if not isinstance(key, str) or not isinstance(col, str) or not key or not col:
            raise ChronorecError(f"bad column mapping entry {key!r}: {col!r}; expected role=column names")
        role = "time" if key == "ts" else key
        if role in out:
            raise ChronorecError(f"column mapping names the role '{role}' twice")
        out[role] = col
    return out


def resolve(
    header: Sequence[str],
    *,
    file: Path,
    required: Sequence[str],
    optional: Sequence[str] = (),
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Map canonical roles to the file's column names.

    ``defaults`` gives layout-specific candidate names per role, tried before :data:`ALIASES`.
    Every key of ``mapping`` is included (unknown keys become extra columns). Returns
    ``{role: column}`` in the order required, optional, extra mapped keys.
    """
    mapped = check_mapping(mapping)
    header = [h.lstrip("\ufeff") for h in header]
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(norm(h), h)
    out: dict[str, str] = {}
    for role, col in mapped.items():
        if col not in header:
            hint = closest(col, header)
            tip = f"; did you mean '{hint}'?" if hint else ""
            raise ChronorecError(
                f"mapping {role}={col}: no column '{col}'; {_listing(header)}{tip}", file=file, column=col
            )
    for role in [*required, *optional]:
        if role in mapped:
            out[role] = mapped[role]
            continue
        cands = [*(defaults or {}).get(role, ()), *ALIASES.get(role, ())]
        found = next((by_norm[norm(c)] for c in cands if norm(c) in by_norm), None)
        if found is not None and found not in out.values():
            out[role] = found
        elif role in required:
            tried = "/".join(dict.fromkeys(cands)) or role
            free = [h for h in header if h not in out.values()]
            hint = next((h for h in (closest(c, free) for c in cands or [role]) if h), None)
            tip = f"; did you mean '{hint}'? (pass a mapping {role}={hint})" if hint else ""
            raise ChronorecError(
                f"no {role} column (looked for {tried}); {_listing(list(header))}{tip}", file=file
            )
    for role, col in mapped.items():
        out.setdefault(role, col)
    core = [r for r in ("user", "item", "time") if r in out]
    for i, a in enumerate(core):  # user and item ids (or a time) read from one column is never meant
        for b in core[i + 1:]:
            if out[a] == out[b]:
                raise ChronorecError(
                    f"roles {a} and {b} both read column '{out[a]}'; map each to its own column",
                    file=file, column=out[a],
                )
    return out
