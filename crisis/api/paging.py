"""Cursor query parameters and `next` links, the same on every list the API serves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import Query, Request

from crisis.api.problems import Problem
from crisis.domain.pages import MAX_LIMIT, BadCursor, Page

T = TypeVar("T")

CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="The `next` cursor of the previous page; none for the first."),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


@contextmanager
def cursors() -> Iterator[None]:
    """A cursor this API did not hand out is a 400 naming the parameter, never a traceback."""
    try:
        yield
    except BadCursor as exc:
        raise Problem(
            400, str(exc), code="bad_cursor", errors=[{"field": "cursor", "message": str(exc)}]
        ) from exc


def next_link(request: Request, page: Page[T]) -> str | None:
    """The URL of the next page (this request's path and filters, the page's cursor); None at the end."""
    if page.next is None:
        return None
    url = request.url.include_query_params(cursor=page.next)
    return f"{url.path}?{url.query}"
