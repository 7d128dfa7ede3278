"""List endpoints' paging: ?limit=&offset= in, {items, limit, offset, next_offset} out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Sources without a native offset are read from the top, so a deep offset costs a longer read.
MAX_OFFSET = 100_000


@dataclass(frozen=True, slots=True)
class PageParams:
    """A validated page request."""

    limit: int
    offset: int

    @property
    def probe(self) -> int:
        """How many rows to read from `offset` to know whether a next page exists."""
        return self.limit + 1

    @property
    def through(self) -> int:
        """How many rows to read from the top when the source has no offset of its own."""
        return self.offset + self.limit + 1


def _params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


Page = Annotated[PageParams, Depends(_params)]
"""FastAPI parameter type: `async def route(page: Page)` takes ?limit= and ?offset=."""


def page_of(rows: Sequence[Any], params: PageParams) -> dict[str, Any]:
    """The page for rows read from `offset` (up to params.probe of them)."""
    items = list(rows[: params.limit])
    more = len(rows) > params.limit
    return {
        "items": items,
        "limit": params.limit,
        "offset": params.offset,
        "next_offset": params.offset + params.limit if more else None,
    }


def page_from_top(rows: Sequence[Any], params: PageParams) -> dict[str, Any]:
    """The page for rows read from the very first one (up to params.through of them)."""
    return page_of(rows[params.offset :], params)
