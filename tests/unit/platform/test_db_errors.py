"""Which database errors are waited out and which are given up on (shared/db.py: is_transient)."""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import _base

from shared.db import is_timeout, is_transient


def test_bad_query_input_is_never_transient() -> None:
    # Both spellings of asyncpg's DataError: the client-side one is an InterfaceError, which as a
    # class means "connection gone"; retrying the same input can never succeed.
    assert not is_transient(_base.DataError("invalid input for query argument $1"))
    assert not is_transient(asyncpg.exceptions.DataError("invalid input for query argument $1"))


def test_a_lost_connection_is_still_transient() -> None:
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert is_transient(_base.InterfaceError("connection is closed"))
    assert is_transient(OSError("connection refused"))


def test_timeouts_are_recognised_so_callers_can_cap_them() -> None:
    assert is_timeout(TimeoutError())
    assert is_timeout(asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"))
    assert not is_timeout(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
