"""Paged, sorted lists in the provider's wrapper:
`{"data": [...], "paginationInfo": {"page", "pageSize", "totalItems", "totalPages"}}`."""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local.emulator.api.problems import FieldError, validation_failed

DEFAULT_PAGE_SIZE = 50  # both seeds' example paginationInfo

SortKey = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class QueryNames:
    """The two flavors spell the same parameters differently."""

    page: str
    page_size: str
    sort_by: str
    sort_dir: str


DATA_SERVICES_NAMES = QueryNames("page", "page-size", "sort-by", "sort-dir")
V2020_NAMES = QueryNames("page", "pageSize", "sortBy", "sortDir")


@dataclass(frozen=True)
class Sorting:
    """The sortable fields of one list, and its order when the client names none."""

    keys: Mapping[str, SortKey]
    default_by: str | None = None  # None: the list's own order (e.g. creation order)
    default_dir: str = "asc"


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_size: int
    sort_by: str | None
    sort_dir: str


def parse_page_request(
    query: Mapping[str, str], names: QueryNames, sorting: Sorting, page_size_max: int
) -> PageRequest:
    """Every problem in the query is reported at once, as the provider's `errors` list allows."""
    errors: list[FieldError] = []
    page = _positive_int(query, names.page, 1, None, errors)
    page_size = _positive_int(query, names.page_size, DEFAULT_PAGE_SIZE, page_size_max, errors)
    sort_by = query.get(names.sort_by, sorting.default_by)
    if sort_by is not None and sort_by not in sorting.keys:
        allowed = ", ".join(sorted(sorting.keys))
        errors.append(
            FieldError("err_invalid_sort_by", names.sort_by, f"{sort_by} is not one of {allowed}")
        )
    sort_dir = query.get(names.sort_dir, sorting.default_dir)
    if sort_dir not in ("asc", "desc"):
        errors.append(
            FieldError("err_invalid_sort_dir", names.sort_dir, f"{sort_dir} is not asc or desc")
        )
    if errors:
        raise validation_failed(errors)
    return PageRequest(page, page_size, sort_by, sort_dir)


def _positive_int(
    query: Mapping[str, str],
    name: str,
    default: int,
    maximum: int | None,
    errors: list[FieldError],
) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        limit = f"from 1 to {maximum}" if maximum is not None else "1 or more"
        errors.append(FieldError("err_invalid_value", name, f"{text} must be an integer {limit}"))
    return value


def page_of(
    items: Sequence[dict[str, Any]], request: PageRequest, sorting: Sorting
) -> dict[str, Any]:
    ordered = list(items)
    if request.sort_by is not None:
        key = sorting.keys[request.sort_by]
        # missing values last whichever the direction; stable, so ties keep the list's order
        present = [item for item in ordered if key(item) is not None]
        missing = [item for item in ordered if key(item) is None]
        present.sort(key=key, reverse=request.sort_dir == "desc")
        ordered = present + missing
    elif request.sort_dir == "desc":
        ordered.reverse()
    first = (request.page - 1) * request.page_size
    return {
        "data": ordered[first : first + request.page_size],
        "paginationInfo": {
            "page": request.page,
            "pageSize": request.page_size,
            "totalItems": len(ordered),
            "totalPages": math.ceil(len(ordered) / request.page_size),
        },
    }
