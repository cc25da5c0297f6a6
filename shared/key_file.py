"""The API key file (API_KEYS_FILE): hashed keys of the machines that call us, several per client, each with an expiry.

    keys:
      - {name: portal, role: portal, key_id: portal-2026-12, sha256: <64 hex>, expires: 2027-06-30}
      - {name: portal, role: portal, key_id: portal-2027-06, sha256: <64 hex>, expires: 2027-12-31}

- `name`: the client (the citizen portal, a police system, a council secretariat). Audit rows
  record it (`key:<name>`), idempotency keys and rate limits are per client. Entries that share a
  name are keys of one client, so they must share its role.
- `role`: portal, police or council.
- `key_id`: which key of the client; logs and metrics name a key by it. Unique in the file;
  optional for a client with one key (its name is the id then), so older files load as they are.
- `sha256`: the hex SHA-256 of the key. The key itself is never stored.
- `expires` (optional): the last day the key works, in Danish time (`2027-06-30`: refused from
  midnight that night), or an instant with its zone (`2027-06-30T12:00:00+02:00`: refused from then).
  Without it a key works until it is removed.

`KeyFile` holds the keys last read well. It re-reads the file when its content changes, checked
at most every `check_every` seconds by the requests that ask for the keys, so a key is added or
removed without a restart. A file that is malformed at start-up stops the service with the entry
named; one that becomes malformed later keeps the keys read before, logs an error naming the
problem, and shows on /metrics (`api_keys_reload_errors_total`, `api_keys_file_rejected`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from shared.clock import Clock
from shared.metrics import API_KEY_EXPIRY, API_KEYS_FILE_REJECTED, API_KEYS_RELOAD_ERRORS

log = logging.getLogger(__name__)

ROLES = frozenset({"portal", "police", "council"})
FIELDS = ("name", "role", "key_id", "sha256", "expires")
# A key's `expires` date is a day in the district: it ends at midnight Danish time.
LOCAL = ZoneInfo("Europe/Copenhagen")
# A key that expires within this is logged as a warning at every load (ApiKeyExpiresSoon alerts on it too).
EXPIRY_WARNING = timedelta(days=14)
CHECK_EVERY_SECONDS = 2.0
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key of a client as the file holds it: its hash, never the key."""

    name: str
    role: str
    key_id: str
    sha256: str
    expires_at: datetime | None = None  # the first instant the key is refused, in UTC
    expires: str = ""  # the same as written for people: "2027-06-30"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def expiry_value(value: object) -> date | datetime:
    """`expires` as a date or an aware datetime (YAML gives those; a string in ISO form is read too)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"expires {value.isoformat()} has no time zone: write it as 2027-06-30T12:00:00+02:00")
    if isinstance(value, date):  # a datetime is a date too
        return value
    raise ValueError(
        f"expires {value!r} is not a date: write the last day the key works (2027-06-30)"
        " or an instant with its zone (2027-06-30T12:00:00+02:00)"
    )


def parse_expiry(value: object) -> tuple[datetime, str]:
    """`expires` as (first instant refused, text for people); ValueError says what a valid one looks like."""
    value = expiry_value(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC), value.isoformat()
    end_of_day = datetime.combine(value + timedelta(days=1), clock_time(0), tzinfo=LOCAL)
    return end_of_day.astimezone(UTC), value.isoformat()


def parse_keys(document: object) -> tuple[ApiKey, ...]:
    """The keys of a parsed key file; ValueError names the entry and the problem (never a key)."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValueError("the file must be a mapping with a list `keys:`")
    items = document.get("keys") or []
    if not isinstance(items, list):
        raise ValueError("`keys:` must be a list of {name, role, key_id, sha256, expires}")
    keys: list[ApiKey] = []
    for i, item in enumerate(items):
        keys.append(_entry(i, item))
    if not keys:
        raise ValueError("no keys configured")
    _check_together(keys)
    return tuple(keys)


def _entry(i: int, item: object) -> ApiKey:
    if not isinstance(item, dict):
        raise ValueError(f"entry #{i + 1} is not a mapping of {', '.join(FIELDS)}")
    label = str(item.get("key_id") or item.get("name") or f"#{i + 1}")
    unknown = sorted(str(k) for k in item if k not in FIELDS)
    if unknown:
        # A misspelt `expires` must not leave a key that never expires.
        raise ValueError(f"key {label}: unknown field {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"key {label}: name (the client's name) is missing")
    role = item.get("role")
    if role not in ROLES:
        raise ValueError(f"key {label}: role must be one of {sorted(ROLES)}")
    key_id = item.get("key_id", name)
    if not isinstance(key_id, str) or ("key_id" in item and not _KEY_ID.match(key_id)):
        raise ValueError(
            f"key {label}: key_id must be up to 64 letters, digits, '.', '_' or '-', beginning with a letter or digit"
        )
    digest = str(item.get("sha256", "")).lower()
    if not _SHA256.match(digest):
        raise ValueError(f"key {label}: sha256 must be 64 hex characters")
    expires_at, expires = None, ""
    if item.get("expires") is not None:
        try:
            expires_at, expires = parse_expiry(item["expires"])
        except ValueError as exc:
            raise ValueError(f"key {label}: {exc}") from None
    return ApiKey(name=name, role=str(role), key_id=key_id, sha256=digest, expires_at=expires_at, expires=expires)


def _check_together(keys: list[ApiKey]) -> None:
    """One role per client, one entry per key id, one entry per key."""
    role_of: dict[str, ApiKey] = {}
    by_id: dict[str, ApiKey] = {}
    by_hash: dict[str, ApiKey] = {}
    for key in keys:
        first = role_of.setdefault(key.name, key)
        if first.role != key.role:
            raise ValueError(
                f"key {key.key_id}: client {key.name} has role {first.role} in key {first.key_id} and {key.role}"
                " here; a client has one role (give the other system a name of its own)"
            )
        if key.key_id in by_id:
            raise ValueError(
                f"key id {key.key_id} appears twice: every key needs a key_id of its own"
                " (several keys of one client each need one)"
            )
        by_id[key.key_id] = key
        if key.sha256 in by_hash:
            raise ValueError(f"keys {by_hash[key.sha256].key_id} and {key.key_id} are the same key (same sha256)")
        by_hash[key.sha256] = key


def read_keys(path: Path) -> tuple[tuple[ApiKey, ...], str]:
    """The file's keys and the SHA-256 of its bytes; ValueError starting with the path says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"API_KEYS_FILE {path}: cannot read it ({exc.strerror})") from exc
    return _parse_bytes(path, data), hashlib.sha256(data).hexdigest()


def _parse_bytes(path: Path, data: bytes) -> tuple[ApiKey, ...]:
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"API_KEYS_FILE {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"API_KEYS_FILE {path}: not YAML: {getattr(exc, 'problem', None) or exc}{where}") from None
    except ValueError as exc:  # PyYAML builds dates itself: `2027-06-31` fails here, not in parse_expiry
        raise ValueError(f"API_KEYS_FILE {path}: a value cannot be read ({exc}); is every date a real day?") from None
    try:
        return parse_keys(document)
    except ValueError as exc:
        raise ValueError(f"API_KEYS_FILE {path}: {exc}") from None


class KeyFile:
    """The keys of API_KEYS_FILE as last read well, re-read when the file's content changes."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock,
        check_every: float = CHECK_EVERY_SECONDS,
        ticker: Callable[[], float] = time.monotonic,
    ) -> None:
        """Reads the file now; a malformed one raises ValueError (start-up stops with the reason)."""
        self.path = path
        self._clock = clock
        self._check_every = check_every
        self._ticker = ticker
        self._keys, self._seen = read_keys(path)
        self._next_check = ticker() + check_every
        self._announce((), self._keys)
        API_KEYS_FILE_REJECTED.set(0)

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """The keys in force, after re-reading the file if a check is due."""
        if self._ticker() >= self._next_check:
            self.refresh()
        return self._keys

    def refresh(self) -> None:
        """Re-reads the file if its content changed since last seen; a bad file keeps the keys in force."""
        self._next_check = self._ticker() + self._check_every
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self._rejected(f"unreadable: {exc.strerror}", f"API_KEYS_FILE {self.path}: cannot read it ({exc.strerror})")
            return
        seen = hashlib.sha256(data).hexdigest()
        if seen == self._seen:
            return
        try:
            keys = _parse_bytes(self.path, data)
        except Exception as exc:  # whatever the file holds, the requests asking for keys must not fail on it
            self._rejected(seen, str(exc) if isinstance(exc, ValueError) else f"API_KEYS_FILE {self.path}: {exc!r}")
            return
        previous, self._keys, self._seen = self._keys, keys, seen
        API_KEYS_FILE_REJECTED.set(0)
        added = sorted({k.key_id for k in keys} - {k.key_id for k in previous})
        removed = sorted({k.key_id for k in previous} - {k.key_id for k in keys})
        log.info(
            "API_KEYS_FILE re-read: %d keys of %d clients; added: %s; removed: %s",
            len(keys), len({k.name for k in keys}), ", ".join(added) or "none", ", ".join(removed) or "none",
        )  # fmt: skip
        self._announce(previous, keys)

    def _rejected(self, seen: str, problem: str) -> None:
        """Once per bad version of the file: an error line and the counter; the gauge stays up until a good one."""
        API_KEYS_FILE_REJECTED.set(1)
        if seen == self._seen:
            return
        self._seen = seen
        API_KEYS_RELOAD_ERRORS.inc()
        log.error(
            "%s; the %d keys read before stay in use until the file is fixed, and a restart would refuse to start",
            problem, len(self._keys),
        )  # fmt: skip

    def _announce(self, previous: tuple[ApiKey, ...], keys: tuple[ApiKey, ...]) -> None:
        """Each key's expiry on /metrics, and a warning for a key that has expired or soon will."""
        for old in previous:
            if old.expires_at is not None and not any((k.name, k.key_id) == (old.name, old.key_id) for k in keys):
                try:
                    API_KEY_EXPIRY.remove(old.name, old.key_id)
                except KeyError:
                    pass
        now = self._clock.now()
        for key in keys:
            if key.expires_at is None:
                try:
                    API_KEY_EXPIRY.remove(key.name, key.key_id)
                except KeyError:
                    pass
                continue
            API_KEY_EXPIRY.labels(key.name, key.key_id).set(key.expires_at.timestamp())
            if key.expired(now):
                log.warning(
                    "API key %s of %s expired on %s and is refused: remove it from API_KEYS_FILE",
                    key.key_id, key.name, key.expires, extra={"key": key.name, "key_id": key.key_id},
                )  # fmt: skip
            elif key.expires_at - now < EXPIRY_WARNING:
                days = (key.expires_at - now).total_seconds() / 86400
                log.warning(
                    "API key %s of %s expires on %s (in %.1f days): make the client a new key and rotate"
                    " (README: Rotating an API key)",
                    key.key_id, key.name, key.expires, days, extra={"key": key.name, "key_id": key.key_id},
                )  # fmt: skip
