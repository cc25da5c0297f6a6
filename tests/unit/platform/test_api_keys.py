"""API keys: several per client, each with an id and an expiry; the key file re-read when it changes; new-key."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI
from prometheus_client import REGISTRY

from shared.auth import ApiClient, ApiKeys, hash_key, main, require_role
from shared.clock import ManualClock
from shared.http import install_problem_handlers, install_request_context
from shared.key_file import KeyFile, parse_expiry
from shared.logs import configure
from shared.ratelimit import rate_limits

OLD, NEW, POLICE, EXPIRED = "old-portal-key", "new-portal-key", "a-police-key", "an-expired-key"
NOW = datetime(2027, 6, 20, 10, 0, tzinfo=UTC)


def line(name: str, role: str, key: str, key_id: str | None = None, expires: str | None = None) -> str:
    fields = [f"name: {name}", f"role: {role}"]
    fields += [f"key_id: {key_id}"] if key_id else []
    fields += [f"sha256: {hash_key(key)}"]
    fields += [f"expires: {expires}"] if expires else []
    return "  - {" + ", ".join(fields) + "}\n"


def write(path: Path, *lines: str) -> Path:
    """Replaces the file as an operator's tooling should: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text("keys:\n" + "".join(lines))
    os.replace(fresh, path)
    return path


ROTATING = (
    line("portal", "portal", OLD, "portal-2026-12", "2027-06-30"),
    line("portal", "portal", NEW, "portal-2027-06", "2027-12-31"),
    line("politiets-systemer", "police", POLICE),
)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


# --- loading -------------------------------------------------------------------------------------


def test_several_keys_of_one_client_each_identify_the_client_and_say_which_key(tmp_path: Path) -> None:
    keys = ApiKeys.load(write(tmp_path / "keys.yaml", *ROTATING), clock=ManualClock(NOW))
    assert keys.identify(OLD) == ApiClient(name="portal", role="portal", key_id="portal-2026-12")
    assert keys.identify(NEW) == ApiClient(name="portal", role="portal", key_id="portal-2027-06")
    # A client with one key needs no key_id: its name is the id.
    assert keys.identify(POLICE) == ApiClient(name="politiets-systemer", role="police", key_id="politiets-systemer")
    assert keys.identify("not-a-key") is None
    assert keys.identify(hash_key(OLD)) is None  # the stored hash is not a key


def test_a_file_in_the_format_before_key_ids_loads_as_it_is(tmp_path: Path) -> None:
    before = tmp_path / "keys.yaml"
    before.write_text(
        "keys:\n"
        "  - {name: dev-portal, role: portal, sha256: 2504d188b031010e18d0044ecd3b43837eee251acf284a4e15da0282e6d5f384}\n"
        "  - {name: dev-police, role: police, sha256: db4151ad6f1b5c43ba35b88716206c1a8f8f139ef8720e763df3d03fe2876a1f}\n"
    )
    keys = ApiKeys.load(before)
    assert keys.identify("dev-portal-key") == ApiClient(name="dev-portal", role="portal", key_id="dev-portal")
    assert keys.identify("dev-police-key") == ApiClient(name="dev-police", role="police", key_id="dev-police")


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            (line("portal", "portal", OLD, "portal-a"), line("portal", "police", NEW, "portal-b")),
            "key portal-b: client portal has role portal in key portal-a and police here",
        ),
        ((line("portal", "portal", OLD, "k1"), line("borger", "portal", NEW, "k1")), "key id k1 appears twice"),
        # Two keys of one client without ids would both be "portal" in logs: refused, saying why.
        ((line("portal", "portal", OLD), line("portal", "portal", NEW)), "key id portal appears twice.*need one"),
        ((line("portal", "portal", OLD, "a"), line("portal", "portal", OLD, "b")), "keys a and b are the same key"),
        ((line("portal", "portal", OLD, "a", "2027-06-31"),), "a value cannot be read .*real day"),
        ((line("portal", "portal", OLD, "a", "'2027-06-31'"),), "key a: expires '2027-06-31' is not a date"),
        ((line("portal", "portal", OLD, "a", "2027-06-30 12:00:00"),), "key a: expires .* has no time zone"),
        ((line("portal", "portal", OLD, "a b"),), "key a b: key_id must be"),
        (
            ("  - {name: portal, role: portal, sha256: " + hash_key(OLD) + ", expiry: 2027-06-30}\n",),
            "key portal: unknown field expiry",
        ),
        (("  - {role: portal, sha256: " + hash_key(OLD) + "}\n",), "key #1: name .* is missing"),
        (("  - portal\n",), "entry #1 is not a mapping"),
        ((), "no keys configured"),
    ],
)
def test_a_malformed_file_stops_start_up_naming_the_entry_and_the_problem(
    tmp_path: Path, lines: tuple[str, ...], problem: str
) -> None:
    path = write(tmp_path / "keys.yaml", *lines)
    with pytest.raises(ValueError, match=f"^API_KEYS_FILE {re.escape(str(path))}: {problem}") as caught:
        ApiKeys.load(path)
    for key in (OLD, NEW):
        assert key not in str(caught.value)


def test_a_file_that_is_not_yaml_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: portal, role: portal\n  - oops: [\n")
    with pytest.raises(ValueError, match=r"not YAML: .* at line 3"):
        ApiKeys.load(path)


@pytest.mark.parametrize(
    ("written", "first_refused", "shown"),
    [
        # A date is the last day the key works, in Danish time: summer (UTC+2) and winter (UTC+1).
        ("2027-06-30", datetime(2027, 6, 30, 22, 0, tzinfo=UTC), "2027-06-30"),
        ("2027-01-31", datetime(2027, 1, 31, 23, 0, tzinfo=UTC), "2027-01-31"),
        ("'2027-06-30'", datetime(2027, 6, 30, 22, 0, tzinfo=UTC), "2027-06-30"),  # quoted: a string
        ("2027-06-30T12:00:00+02:00", datetime(2027, 6, 30, 10, 0, tzinfo=UTC), "2027-06-30T12:00:00+02:00"),
        ("'2027-06-30T10:00:00Z'", datetime(2027, 6, 30, 10, 0, tzinfo=UTC), "2027-06-30T10:00:00+00:00"),
    ],
)
def test_expires_is_read_as_the_last_day_or_an_instant_with_its_zone(
    tmp_path: Path, written: str, first_refused: datetime, shown: str
) -> None:
    clock = ManualClock(first_refused - timedelta(seconds=1))
    keys = ApiKeys.load(write(tmp_path / "keys.yaml", line("portal", "portal", OLD, "p1", written)), clock=clock)
    assert keys.identify(OLD) is not None
    clock.set(first_refused)
    assert keys.identify(OLD) is None
    assert keys.refusal(OLD) == f"This API key expired on {shown}; ask the police district for a new one."


def test_an_expiry_that_is_neither_a_date_nor_an_instant_says_what_to_write() -> None:
    for value in (True, 20270630, "next year"):
        with pytest.raises(ValueError, match=r"write the last day the key works \(2027-06-30\)"):
            parse_expiry(value)


# --- at request time -----------------------------------------------------------------------------


def test_an_expired_key_is_refused_and_its_neighbour_of_the_same_client_still_works(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    keys = ApiKeys.load(write(tmp_path / "keys.yaml", *ROTATING), clock=clock)
    assert keys.identify(OLD) is not None
    clock.set(datetime(2027, 6, 30, 21, 59, 59, tzinfo=UTC))  # 23:59:59 on the 30th in Denmark
    assert keys.identify(OLD) is not None
    clock.set(datetime(2027, 6, 30, 22, 0, tzinfo=UTC))
    assert keys.identify(OLD) is None
    assert keys.identify(NEW) == ApiClient(name="portal", role="portal", key_id="portal-2027-06")
    assert keys.refusal(OLD) == "This API key expired on 2027-06-30; ask the police district for a new one."
    assert keys.refusal("never-issued") == "The API key is not valid."


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The service's log lines as JSON, configured as shared/cli.py does."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure("intake", "INFO", "json", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def portal_app(keys: ApiKeys) -> FastAPI:
    app = FastAPI()
    app.state.api_keys = keys
    app.state.rate_limits = rate_limits(6000, 100, 6000, 100)
    install_problem_handlers(app)

    @app.get("/things", dependencies=[Depends(require_role("portal"))])
    async def things() -> dict[str, str]:
        logging.getLogger("services.test").info("listing things")
        return {"ok": "yes"}

    install_request_context(app)
    return app


async def get(app: FastAPI, key: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/things", headers={"Authorization": f"Bearer {key}"})


async def test_over_http_an_expired_key_is_a_401_problem_that_says_so_and_logs_name_the_key_used(
    tmp_path: Path, lines: io.StringIO
) -> None:
    clock = ManualClock(datetime(2027, 7, 1, 8, 0, tzinfo=UTC))
    app = portal_app(ApiKeys.load(write(tmp_path / "keys.yaml", *ROTATING), clock=clock))
    expired = await get(app, OLD)
    assert expired.status_code == 401 and expired.headers["content-type"] == "application/problem+json"
    assert expired.headers["www-authenticate"] == "Bearer"
    assert expired.json()["detail"] == "This API key expired on 2027-06-30; ask the police district for a new one."
    assert (await get(app, "wrong")).json()["detail"] == "The API key is not valid."
    assert (await get(app, NEW)).status_code == 200
    assert (await get(app, POLICE)).status_code == 403
    logged = lines.getvalue()
    assert OLD not in logged and NEW not in logged  # never the key
    records = [json.loads(text) for text in logged.splitlines()]
    (listing,) = [r for r in records if r["message"] == "listing things"]
    assert (listing["key"], listing["key_id"]) == ("portal", "portal-2027-06")
    access = [r for r in records if r["logger"] == "shared.http.access"]
    assert [(r["status"], r.get("key_id")) for r in access] == [
        (401, None), (401, None), (200, "portal-2027-06"), (403, "politiets-systemer")
    ]  # fmt: skip


# --- re-reading the file -------------------------------------------------------------------------


def test_a_key_added_and_later_the_old_one_removed_take_effect_without_a_new_object(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.yaml", ROTATING[0], ROTATING[2])
    keys = ApiKeys.load(path, clock=ManualClock(NOW), check_every=0)
    assert keys.identify(NEW) is None
    write(path, *ROTATING)  # the new key beside the old one
    assert keys.identify(NEW) == ApiClient(name="portal", role="portal", key_id="portal-2027-06")
    assert keys.identify(OLD) is not None
    write(path, ROTATING[1], ROTATING[2])  # the client has switched: the old one goes
    assert keys.identify(OLD) is None
    assert keys.refusal(OLD) == "The API key is not valid."
    assert keys.identify(NEW) is not None


def test_the_file_is_checked_at_most_every_check_every_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.yaml", ROTATING[0])
    now = [100.0]
    source = KeyFile(path, clock=ManualClock(NOW), check_every=5.0, ticker=lambda: now[0])
    write(path, *ROTATING)
    now[0] = 104.9
    assert [k.key_id for k in source.keys] == ["portal-2026-12"]
    now[0] = 105.0
    assert [k.key_id for k in source.keys] == ["portal-2026-12", "portal-2027-06", "politiets-systemer"]


def test_a_file_that_turns_malformed_keeps_the_keys_logs_the_problem_once_and_shows_on_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "keys.yaml", *ROTATING)
    keys = ApiKeys.load(path, clock=ManualClock(NOW), check_every=0)
    errors_before = sample("api_keys_reload_errors_total") or 0.0
    assert sample("api_keys_file_rejected") == 0
    # An operator adds a third portal key but gives it the police role.
    write(path, *ROTATING, line("portal", "police", "third-key", "portal-2028"))
    with caplog.at_level(logging.ERROR, logger="shared.key_file"):
        for _ in range(3):  # every request checks; the same bad file is one error
            assert keys.identify(OLD) == ApiClient(name="portal", role="portal", key_id="portal-2026-12")
            assert keys.identify("third-key") is None
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "key portal-2028: client portal has role portal in key portal-2026-12 and police here" in error
    assert "the 3 keys read before stay in use" in error
    assert sample("api_keys_reload_errors_total") == errors_before + 1
    assert sample("api_keys_file_rejected") == 1
    path.unlink()  # gone altogether: still the old keys, one more error
    assert keys.identify(NEW) is not None
    assert sample("api_keys_reload_errors_total") == errors_before + 2
    write(path, *ROTATING[1:])  # fixed: the file is read again and the alert clears
    assert keys.identify(OLD) is None and keys.identify(NEW) is not None
    assert sample("api_keys_file_rejected") == 0


# --- expiry warnings -----------------------------------------------------------------------------


def test_keys_expiring_within_14_days_or_expired_are_warned_of_at_load_and_each_expiry_is_a_gauge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "keys.yaml",
        line("raadet", "council", "k-soon", "raadet-soon", "2027-06-30"),  # 10 days from NOW
        line("raadet", "council", "k-later", "raadet-later", "2027-07-15"),  # 25 days
        line("raadet", "council", "k-gone", "raadet-gone", "2027-06-01"),
        line("raadet", "council", "k-never", "raadet-never"),
    )
    with caplog.at_level(logging.WARNING, logger="shared.key_file"):
        ApiKeys.load(path, clock=ManualClock(NOW), check_every=0).identify("k-soon")
    warned = sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert len(warned) == 2
    assert warned[0].startswith("API key raadet-gone of raadet expired on 2027-06-01 and is refused")
    assert warned[1].startswith("API key raadet-soon of raadet expires on 2027-06-30 (in 10.5 days)")
    assert sample("api_key_expiry_timestamp_seconds", client="raadet", key_id="raadet-soon") == (
        datetime(2027, 6, 30, 22, 0, tzinfo=UTC).timestamp()
    )
    assert sample("api_key_expiry_timestamp_seconds", client="raadet", key_id="raadet-never") is None


def test_a_key_removed_from_the_file_leaves_no_expiry_series_behind(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.yaml", line("byraad", "council", "k1", "byraad-1", "2028-01-31"),
                 line("byraad", "council", "k2", "byraad-2", "2028-06-30"))  # fmt: skip
    keys = ApiKeys.load(path, clock=ManualClock(NOW), check_every=0)
    assert sample("api_key_expiry_timestamp_seconds", client="byraad", key_id="byraad-1") is not None
    write(path, line("byraad", "council", "k2", "byraad-2", "2028-06-30"))
    keys.identify("k2")
    assert sample("api_key_expiry_timestamp_seconds", client="byraad", key_id="byraad-1") is None
    assert sample("api_key_expiry_timestamp_seconds", client="byraad", key_id="byraad-2") is not None


# --- python -m shared.auth new-key ---------------------------------------------------------------


def test_new_key_prints_the_key_once_and_a_line_that_loads_with_its_hash(tmp_path: Path) -> None:
    out = io.StringIO()
    clock = ManualClock(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))  # already the 7th in Denmark
    code = main(["new-key", "--name", "portal", "--role", "portal", "--expires", "2027-06-30"], out=out, clock=clock)
    assert code == 0
    printed = out.getvalue()
    (key,) = re.findall(r"^ {4}(\S+)$", printed, re.MULTILINE)
    assert len(key) >= 43 and printed.count(key) == 1
    (yaml_line,) = [text for text in printed.splitlines() if text.startswith("  - {")]
    assert yaml_line == (
        f"  - {{name: portal, role: portal, key_id: portal-2026-12-07, sha256: {hash_key(key)}, expires: 2027-06-30}}"
    )
    keys = ApiKeys.load(write(tmp_path / "keys.yaml", yaml_line + "\n"), clock=clock)
    assert keys.identify(key) == ApiClient(name="portal", role="portal", key_id="portal-2026-12-07")
    clock.set(datetime(2027, 6, 30, 22, 0, tzinfo=UTC))
    assert keys.identify(key) is None


def test_new_key_takes_an_instant_or_never_and_refuses_a_past_or_unreadable_expiry(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    out = io.StringIO()
    args = ["new-key", "--name", "kommune-0265", "--role", "council", "--key-id", "roskilde-1"]
    assert main([*args, "--expires", "2027-01-01T00:00:00+01:00"], out=out, clock=clock) == 0
    assert main([*args, "--expires", "never"], out=out, clock=clock) == 0
    lines = [text for text in out.getvalue().splitlines() if text.startswith("  - {")]
    assert lines[0].endswith("expires: '2027-01-01T00:00:00+01:00'}") and "expires" not in lines[1]
    for line_text in lines:
        assert ApiKeys.load(write(tmp_path / "keys.yaml", line_text + "\n"), clock=clock)
    for bad in ("2026-12-05", "31-12-2027", "2027-01-01T00:00:00"):
        with pytest.raises(SystemExit) as exited:
            main([*args, "--expires", bad], out=io.StringIO(), clock=clock)
        assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["new-key", "--name", "x", "--role", "admin", "--expires", "never"], out=io.StringIO(), clock=clock)
