"""Simulated traffic for the 10 kommuner: citizens report through intake, police act on the cases.

Citizens send reports, tips and Bestil-en-betjent requests at rates scaled from the district's size
and national per-capita report rates (TRAFFIC below, with its sources), following the rhythm of a
day (burglaries are found when people come home, violence and youth parties peak at night,
traffic complaints at rush hour), on a clock that runs as fast as the demo rules' deadlines (24 h
in 3 minutes). "Police" then record actions through intake's police API, mostly in time,
sometimes late, sometimes at a time the citizen asked for, so the deadlines service has met,
warned and breached deadlines to show. Everything goes over HTTP, as the portal and police
systems would; nothing is written to a database or topic directly.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from demo.identity import officer_token
from shared.settings import CommonSettings

LOCAL = ZoneInfo("Europe/Copenhagen")

# --- How much happens: the district's size and national report rates ---------------------------
# The police district has about 490,000 inhabitants (the figure the project works with; the 10
# kommuner's own populations below sum to ~470,000 and only set each kommune's share).
DISTRICT_POPULATION = 490_000
# Denmark's population, Danmarks Statistik (FOLK1A), 1 January 2024: 5,961,000, rounded.
DENMARK_POPULATION = 5_961_000

# Reports per year in all of Denmark, per category, and where the number comes from. "DST" is
# Danmarks Statistik's table of reported crimes (statistikbanken.dk/straf12, seasonally adjusted
# quarters). Where no national statistic counts what the portal calls a category (a citizen's
# complaint about speeding is not a charge), the number is an ASSUMPTION, marked as such: an
# order of magnitude chosen so the mix looks like a police district's inbox.
NATIONAL_REPORTS_PER_YEAR: dict[str, tuple[int, str]] = {
    "burglary_home": (14_956, "DST: reported burglaries in homes (indbrud i beboelse), 2022 (Ritzau, Dec 2023)"),
    "violence": (29_012, "DST: reported crimes of violence, Q1 2023 (7,253, seasonally adjusted) x 4"),
    "other": (18_128, "DST: reported vandalism (hærværk), Q4 2023 (4,532, seasonally adjusted) x 4"),
    "rape": (2_000, "ASSUMPTION: reported rapes after the 2021 consent law, order of magnitude"),
    "traffic": (20_000, "ASSUMPTION: citizens' complaints about speeding and dangerous driving"),
    "youth_party_nuisance": (15_000, "ASSUMPTION: complaints about noise and youth gatherings"),
    "vulnerable_person": (12_000, "ASSUMPTION: concern reports about confused or unwell persons"),
    "it_crime": (9_000, "ASSUMPTION: online extortion, sharing of images, hacked accounts reported by citizens"),
    "domestic_violence": (8_000, "ASSUMPTION: partner and family violence reported by victims or neighbours"),
    "drug_dealing_street": (6_000, "ASSUMPTION: reports of open drug dealing in public places"),
    "fraud_elderly": (6_000, "ASSUMPTION: phone and doorstep fraud against the elderly"),
    "gang_related": (2_000, "ASSUMPTION: reports of gang intimidation"),
    "drug_dealing_school": (600, "ASSUMPTION: drug dealing at or near a school"),
}
NATIONAL_TIPS_PER_YEAR = (8_000, "ASSUMPTION: tips about drug dealing through the portal")
NATIONAL_OFFICER_REQUESTS_PER_YEAR = (3_000, "ASSUMPTION: Bestil en betjent (traffic controls, talks)")
IN_PROGRESS_SHARE = 0.10  # ASSUMPTION: burglaries reported while the burglar is still there
ACUTE_SHARE = {"violence": 0.5, "rape": 0.3}  # ASSUMPTION: share needing a patrol at once

# The rhythm of a day: relative weight of each local hour 0-23 (ASSUMPTIONS drawn from the usual
# patterns: night-time violence and noise, burglaries discovered after work, rush-hour traffic,
# office hours for fraud and requests). Only the shape matters; each is normalised to mean 1.
HOURLY_PROFILES: dict[str, list[float]] = {
    "after_work": [2, 1, 1, 1, 1, 1, 2, 4, 5, 5, 5, 5, 6, 6, 7, 8, 10, 10, 9, 8, 6, 5, 4, 3],
    "night": [9, 9, 8, 6, 3, 2, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 10],
    "rush_hour": [0.5, 0.3, 0.2, 0.2, 0.3, 1, 4, 9, 8, 5, 4, 4, 4, 4, 5, 8, 9, 7, 5, 3, 2, 2, 1, 1],
    "office": [0.5, 0.3, 0.2, 0.2, 0.2, 0.5, 1, 3, 7, 9, 10, 10, 9, 9, 9, 8, 7, 5, 4, 3, 3, 2, 1, 1],
    "flat": [1] * 24,
}
PROFILE_OF = {
    "burglary_home": "after_work",
    "violence": "night",
    "rape": "night",
    "youth_party_nuisance": "night",
    "domestic_violence": "night",
    "gang_related": "night",
    "traffic": "rush_hour",
    "drug_dealing_school": "office",
    "fraud_elderly": "office",
    "it_crime": "office",
    "tip": "office",
    "officer_request": "office",
    "vulnerable_person": "flat",
    "drug_dealing_street": "after_work",
    "other": "after_work",
}

# --- Compressed time -----------------------------------------------------------------------------
# One real second of the demo is 8 simulated minutes (24 h pass in 3 min, as in the demo rules,
# services/deadlines/data/demo-minutes.yaml). At that speed the district's real volume would give
# one report every 5 s, too few to show in a five-minute demo, so the demo sends VOLUME times the
# real number: the mix and the daily rhythm stay the real ones, the amount is amplified. Both are
# demo settings, not claims about the district.
SPEED = 480.0
VOLUME = 8.0
# Some kinds are rare even at that volume (about 5 Bestil-en-betjent requests and 0.5 reports of
# drug dealing at a school in a two-minute run), so chance alone may show none. These extra
# submissions, at these seconds into the run, make sure every path of the system appears once.
SHOWCASE = [(12.0, "officer_request"), (25.0, "drug_dealing_school"), (50.0, "officer_request")]

# Kommunekode, name, population (approx., Danmarks Statistik 2024, rounded), a town centre inside the kommune.
KOMMUNER = [
    ("0265", "Roskilde", 91_000, (55.6415, 12.0803)),
    ("0316", "Holbæk", 73_000, (55.7167, 11.7167)),
    ("0259", "Køge", 62_000, (55.4580, 12.1821)),
    ("0253", "Greve", 51_000, (55.5833, 12.3000)),
    ("0326", "Kalundborg", 48_000, (55.6795, 11.0886)),
    ("0329", "Ringsted", 36_000, (55.4426, 11.7901)),
    ("0306", "Odsherred", 33_000, (55.9236, 11.6708)),
    ("0350", "Lejre", 29_000, (55.6047, 11.9748)),
    ("0269", "Solrød", 24_000, (55.5333, 12.2167)),
    ("0336", "Stevns", 24_000, (55.3167, 12.3833)),
]
STREETS = ["Algade", "Skolevej", "Stationsvej", "Kirkevej", "Møllevej", "Bakkevej", "Strandvejen", "Engvej"]
DESCRIPTIONS = {
    "burglary_home": "Indbrud i huset mens vi var på arbejde. Terrassedøren er brudt op.",
    "traffic": "Biler kører alt for stærkt forbi skolen om morgenen.",
    "youth_party_nuisance": "Store fester i parken hver weekend med høj musik til langt ud på natten.",
    "violence": "Et slagsmål foran kiosken, en person blev slået.",
    "vulnerable_person": "En forvirret ældre mand går rundt på vejen og virker syg.",
    "drug_dealing_street": "Der handles hash fra en bil ved boldbanen hver aften.",
    "domestic_violence": "Høje skrig og slag fra lejligheden ved siden af.",
    "fraud_elderly": "Min mor er blevet ringet op af en falsk bankrådgiver og har givet sin kode.",
    "it_crime": "Min datter er blevet afpresset med billeder på sociale medier.",
    "drug_dealing_school": "Unge sælger stoffer lige uden for skolens port i frikvarteret.",
    "gang_related": "Grupper i ens jakker samles og truer forbipasserende.",
    "rape": "Jeg er blevet overfaldet og voldtaget.",
    "other": "Hærværk på busstoppestedet igen.",
}
SCHOOLS = ["Roskilde Katedralskole", "Holbæk Gymnasium", "Køge Handelsskole", "Greve Gymnasium", "Ringsted Skole"]
TOPICS = {
    "traffic_control": "Fartkontrol ved skolen om morgenen",
    "talk": "Foredrag om indbrudssikring i grundejerforeningen",
}


def district_per_day(national_per_year: int) -> float:
    """A national yearly count scaled to the district's population, per day."""
    return national_per_year * DISTRICT_POPULATION / DENMARK_POPULATION / 365.0


def daily_volumes() -> dict[str, float]:
    """Expected submissions per real day in the district, per kind ("tip", "officer_request" or a category)."""
    volumes = {category: district_per_day(n) for category, (n, _) in NATIONAL_REPORTS_PER_YEAR.items()}
    volumes["tip"] = district_per_day(NATIONAL_TIPS_PER_YEAR[0])
    volumes["officer_request"] = district_per_day(NATIONAL_OFFICER_REQUESTS_PER_YEAR[0])
    return volumes


def hourly_weight(kind: str, hour: int) -> float:
    profile = HOURLY_PROFILES[PROFILE_OF[kind]]
    return profile[hour] * 24 / sum(profile)


def rates_per_demo_second(local_hour: int, *, speed: float = SPEED, volume: float = VOLUME) -> dict[str, float]:
    """What the demo sends per real second at a simulated local hour: real daily rate x rhythm x speed x volume."""
    return {
        kind: per_day / 86_400 * hourly_weight(kind, local_hour) * speed * volume
        for kind, per_day in daily_volumes().items()
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class OfficerTokens:
    """Each demo officer's access token, from signing in at the provider's login form; reused until near expiry."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._tokens: dict[str, tuple[str, float]] = {}
        self.sign_ins = 0

    async def get(self, username: str) -> str:
        token, until = self._tokens.get(username, ("", 0.0))
        if time.monotonic() < until:
            return token
        tokens = await asyncio.to_thread(officer_token, self.issuer, username)
        self.sign_ins += 1
        token = str(tokens["access_token"])
        self._tokens[username] = (token, time.monotonic() + float(str(tokens.get("expires_in", 60))) - 30)
        return token


@dataclass
class Stats:
    reports: int = 0
    tips: int = 0
    requests: int = 0
    actions: int = 0
    later_visits: int = 0
    late_on_purpose: int = 0
    acks: int = 0
    late_acks: int = 0
    refused: int = 0
    errors: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


# Acknowledgement timeouts of the demo alert policy (demo/notify-policy.yaml), by alert severity:
# critical alerts run on the akut chain, warnings on the lokal chain.
DEMO_ACK_TIMEOUTS = {"critical": 20.0, "warning": 40.0}
ACK_IN_TIME, ACK_LATE = 0.65, 0.25  # ASSUMPTION: the rest are never acknowledged while the demo runs


def acknowledger(alert: dict[str, Any]) -> str | None:
    """Who takes an alert on: the officer of the roster it reached last (a user of the development realm).

    None when no delivery names an officer yet: nobody acknowledges it yet.
    """
    officers = [d for d in alert.get("deliveries", []) if d.get("recipient_id") not in (None, "vagtcentral")]
    if not officers:
        return None
    return str(max(officers, key=lambda d: d.get("created_at") or "")["recipient_id"])


class Simulator:
    def __init__(self, intake: str, *, seed: int, portal_key: str, police_key: str, speed: float = SPEED,
                 volume: float = VOLUME, start: datetime | None = None, notify: str | None = None,
                 ack_timeouts: dict[str, float] | None = None, showcase: bool = True,
                 officer_tokens: OfficerTokens | None = None) -> None:  # fmt: skip
        self.intake = intake.rstrip("/")
        self.notify = notify.rstrip("/") if notify else None
        self.ack_timeouts = ack_timeouts or DEMO_ACK_TIMEOUTS
        self.showcase = list(SHOWCASE) if showcase else []
        self.decided: set[tuple[str, str]] = set()  # (alert id, reason): a breach superseding a warning is new
        self.rng = random.Random(seed)
        self.portal = auth(portal_key)
        self.police = auth(police_key)
        self.speed = speed
        self.volume = volume
        self.start = start or datetime.now(UTC)  # the simulated clock starts at the real time
        self.began = time.monotonic()
        self.stats = Stats()
        self.pending: set[asyncio.Task[None]] = set()
        # Officers acknowledge as themselves, with their own access token from the identity provider.
        self.officer_tokens = officer_tokens

    def simulated_now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.began) * self.speed)

    def kommune(self) -> tuple[str, str, tuple[float, float]]:
        code, name, _, centre = self.rng.choices(KOMMUNER, weights=[k[2] for k in KOMMUNER])[0]
        return code, name, centre

    def place(self, centre: tuple[float, float]) -> dict[str, Any]:
        return {
            "address": f"{self.rng.choice(STREETS)} {self.rng.randint(1, 120)}",
            "position": {
                "lat": round(centre[0] + self.rng.uniform(-0.008, 0.008), 5),
                "lon": round(centre[1] + self.rng.uniform(-0.012, 0.012), 5),
            },
        }

    def contact(self) -> dict[str, str]:
        n = self.rng.randint(1000, 9999)
        return {"name": f"Demo Borger {n}", "phone": f"+45{self.rng.randint(20, 99)}{self.rng.randint(100000, 999999)}"}

    async def post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        try:
            response = await client.post(
                self.intake + path, json=body, headers=headers | {"Idempotency-Key": str(uuid.uuid4())}
            )
        except httpx.HTTPError as error:
            self.stats.errors += 1
            print(f"[demo] {path}: {error!r}", file=sys.stderr)
            return None
        if response.status_code == 202:
            return response.json()
        if response.status_code in (409, 422):
            self.stats.refused += 1  # e.g. an action on a case a late police action already closed
        else:
            self.stats.errors += 1
            print(f"[demo] {path}: HTTP {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return None

    def next_submission(self) -> tuple[float, str]:
        """Seconds until the next submission and its kind, from the rates at the simulated hour (Poisson)."""
        rates = rates_per_demo_second(self.simulated_now().astimezone(LOCAL).hour, speed=self.speed,
                                      volume=self.volume)  # fmt: skip
        total = sum(rates.values())
        kind = self.rng.choices(list(rates), weights=list(rates.values()))[0]
        return self.rng.expovariate(total), kind

    async def submit(self, client: httpx.AsyncClient, kind: str, window: dict[str, float]) -> None:
        code, _, centre = self.kommune()
        if kind == "tip":
            await self.tip(client, code, window)
        elif kind == "officer_request":
            await self.officer_request(client, code, window)
        else:
            await self.report(client, kind, code, centre, window)

    async def report(
        self, client: httpx.AsyncClient, category: str, code: str, centre: tuple[float, float], window: dict[str, float]
    ) -> None:
        body: dict[str, Any] = {
            "category": category,
            "description": DESCRIPTIONS[category],
            "kommune": code,
            "contact": self.contact(),
        }
        body |= self.place(centre)
        if category == "burglary_home":
            body["in_progress"] = self.rng.random() < IN_PROGRESS_SHARE
        if category in ACUTE_SHARE:
            body["acute"] = self.rng.random() < ACUTE_SHARE[category]
        if category == "drug_dealing_school":
            body["institution"] = self.rng.choice(SCHOOLS)  # intake requires it for this category
        accepted = await self.post(client, "/v1/reports", body, self.portal)
        if not accepted:
            return
        self.stats.reports += 1
        self.stats.by_category[category] = self.stats.by_category.get(category, 0) + 1
        case = accepted["case_id"]
        acute = body.get("in_progress") or body.get("acute") or category == "drug_dealing_school"
        if category == "burglary_home" and not acute:
            self.burglary_police(case, window)
        elif acute:
            self.acute_police(case, category, window)
            if category == "burglary_home":  # the follow-up is owed after every burglary
                self.later(case, self.rng.uniform(0.3, 0.9) * window["followup"], "followup_done")
        elif self.rng.random() < 0.5:
            self.later(case, self.rng.uniform(5, 60), "dispatched")

    def burglary_police(self, case: str, window: dict[str, float]) -> None:
        """The 24-hour guarantee: mostly met, a citizen now and then asks for a later visit, sometimes late."""
        guarantee, followup = window["burglary"], window["followup"]
        fate = self.rng.random()
        if fate < 0.12:
            # The citizen asks police to come later (after work, say); the patrol comes at that time.
            self.stats.later_visits += 1
            ask_at = self.rng.uniform(0.05, 0.3) * guarantee
            come = guarantee * self.rng.uniform(1.3, 1.6)
            self.later(case, ask_at, "citizen_requested_later", requested_in=come)
            self.later(case, come * 0.98, "on_scene", then=[("followup_done", 0.3 * followup)])
        elif fate < 0.85:
            self.later(case, self.rng.uniform(0.2, 0.9) * guarantee, "on_scene",
                       then=[("followup_done", self.rng.uniform(0.2, 0.7) * followup)])  # fmt: skip
        else:
            self.stats.late_on_purpose += 1  # every patrol busy elsewhere: the guarantee breaks
            self.later(case, self.rng.uniform(1.05, 1.3) * guarantee, "on_scene")

    def acute_police(self, case: str, category: str, window: dict[str, float]) -> None:
        at_once = window["at_once"]
        if self.rng.random() < 0.08:
            self.stats.late_on_purpose += 1
            return  # every patrol busy: nobody gets there while the demo runs, so it breaches
        self.later(case, self.rng.uniform(0.02, 0.1) * at_once, "dispatched")
        on_time = self.rng.random() < 0.85
        if not on_time:
            self.stats.late_on_purpose += 1
        arrive = self.rng.uniform(0.2, 0.9) * at_once if on_time else self.rng.uniform(1.05, 1.4) * at_once
        follow = [("school_and_ssp_contacted", 0.4 * window["ssp"])] if category == "drug_dealing_school" else []
        self.later(case, arrive, "on_scene", then=follow)

    async def tip(self, client: httpx.AsyncClient, code: str, window: dict[str, float]) -> None:
        anonymous = self.rng.random() < 0.6
        category = self.rng.choice(
            ["drug_dealing_street", "drug_dealing_street", "drug_dealing_school", "gang_related"]
        )
        body: dict[str, Any] = {
            "category": category,
            "description": "Jeg har set de samme personer handle med stoffer flere gange i denne uge.",
            "kommune": code,
            "anonymous": anonymous,
        }
        if not anonymous:
            body["contact"] = self.contact()
        accepted = await self.post(client, "/v1/tips", body, self.portal)
        if accepted:
            self.stats.tips += 1
            self.later(accepted["case_id"], self.rng.uniform(0.3, 1.15) * window["tip"], "dispatched")

    async def officer_request(self, client: httpx.AsyncClient, code: str, window: dict[str, float]) -> None:
        kind = self.rng.choice(["traffic_control", "talk"])
        body = {"request_type": kind, "description": TOPICS[kind], "kommune": code, "contact": self.contact()}
        accepted = await self.post(client, "/v1/officer-requests", body, self.portal)
        if accepted:
            self.stats.requests += 1
            reply = self.rng.uniform(0.2, 1.1) * window["reply"]
            carry_out = self.rng.uniform(0.2, 0.5) * window["carry_out"]
            self.later(accepted["case_id"], reply, "replied", then=[("carried_out", carry_out)])

    def later(self, case: str, after: float, action: str, *, requested_in: float | None = None,
              then: list[tuple[str, float]] | None = None) -> None:  # fmt: skip
        async def act() -> None:
            await asyncio.sleep(after)
            body: dict[str, Any] = {
                "action": action,
                "occurred_at": datetime.now(UTC).isoformat(),
                "officer_id": "demo-1",
            }
            if requested_in is not None:
                body["requested_time"] = (datetime.now(UTC) + timedelta(seconds=requested_in - after)).isoformat()
            async with httpx.AsyncClient(timeout=10) as client:
                if await self.post(client, f"/v1/cases/{case}/actions", body, self.police):
                    self.stats.actions += 1
            for next_action, delay in then or []:
                self.later(case, delay, next_action)

        self.spawn(act())

    async def duty_officers(self, every: float = 2.0) -> None:
        """Officers watch notify's alert list and acknowledge: mostly in time, some late, some never.

        A late acknowledgement comes after the chain's ack timeout, so notify escalates first; an
        alert nobody acknowledges runs through its whole chain. A breach superseding a warning is a
        new decision (notify opens the alert again: an ack of the warning is not an ack of the breach).
        """
        assert self.notify is not None
        async with httpx.AsyncClient(timeout=10, headers=self.police) as client:
            while True:
                try:
                    page = await client.get(f"{self.notify}/v1/alerts", params={"state": "unresolved", "limit": 500})
                    alerts = page.json()["items"] if page.status_code == 200 else []
                except (httpx.HTTPError, ValueError):
                    alerts = []
                for alert in alerts:
                    key = (alert["id"], alert["reason"])
                    if alert["state"] == "acknowledged" or key in self.decided:
                        continue
                    self.decided.add(key)
                    timeout = self.ack_timeouts.get(alert["severity"], 30.0)
                    roll = self.rng.random()
                    if roll < ACK_IN_TIME:
                        self.acknowledge(alert, self.rng.uniform(0.2, 0.8) * timeout, late=False)
                    elif roll < ACK_IN_TIME + ACK_LATE:
                        self.acknowledge(alert, self.rng.uniform(1.2, 2.2) * timeout, late=True)
                await asyncio.sleep(every)

    def acknowledge(self, alert: dict[str, Any], after: float, *, late: bool) -> None:
        by = acknowledger(alert)
        if by is None or self.officer_tokens is None:
            return

        async def ack() -> None:
            await asyncio.sleep(after)
            assert by is not None and self.officer_tokens is not None
            try:
                token = await self.officer_tokens.get(by)
            except (httpx.HTTPError, ValueError) as error:
                self.stats.errors += 1
                print(f"[demo] ack: {by} cannot sign in: {error!r}", file=sys.stderr)
                return
            async with httpx.AsyncClient(timeout=10, headers=auth(token)) as client:
                try:
                    answer = await client.post(f"{self.notify}/v1/alerts/{alert['id']}/ack")
                except httpx.HTTPError as error:
                    self.stats.errors += 1
                    print(f"[demo] ack: {error!r}", file=sys.stderr)
                    return
            if answer.status_code == 200:
                self.stats.acks += 1
                self.stats.late_acks += late
            elif answer.status_code != 409:  # 409: resolved first (the patrol arrived): nothing to take on
                self.stats.errors += 1
                print(f"[demo] ack: HTTP {answer.status_code}: {answer.text[:200]}", file=sys.stderr)

        self.spawn(ack())

    def spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def drain(self, seconds: float) -> None:
        """Lets scheduled police actions happen for a while after the citizens stop reporting."""
        end = time.monotonic() + seconds
        while self.pending and time.monotonic() < end:
            await asyncio.sleep(1)
        for task in list(self.pending):
            task.cancel()

    def progress_line(self, left: float) -> str:
        s = self.stats
        clock = self.simulated_now().astimezone(LOCAL).strftime("%a %H:%M")
        return (f"[demo] {left:>4.0f}s left, simulated clock {clock}: {s.reports} reports, {s.tips} tips, "
                f"{s.requests} Bestil-en-betjent, {s.actions} police actions, {s.acks} acks")  # fmt: skip

    async def run(self, seconds: float, window: dict[str, float], drain: float = 0.0,
                  progress: Callable[[], Awaitable[str]] | None = None, every: float = 10.0) -> Stats:  # fmt: skip
        """Citizens submit for `seconds`; then police keep acting for up to `drain` seconds more."""
        end = time.monotonic() + seconds
        last_print = time.monotonic()
        officers = asyncio.create_task(self.duty_officers()) if self.notify else None
        showcase = sorted(self.showcase)
        async with httpx.AsyncClient(timeout=10) as client:
            while time.monotonic() < end:
                while showcase and time.monotonic() - self.began >= showcase[0][0]:
                    await self.submit(client, showcase.pop(0)[1], window)
                wait, kind = self.next_submission()
                await asyncio.sleep(min(wait, max(0.0, end - time.monotonic())))
                if time.monotonic() >= end:
                    break
                await self.submit(client, kind, window)
                if time.monotonic() - last_print >= every:
                    last_print = time.monotonic()
                    extra = await progress() if progress else ""
                    print(self.progress_line(end - time.monotonic()) + extra, flush=True)
        if drain:
            print(f"[demo] citizens done; police keep working for up to {drain:.0f}s more ...", flush=True)
            drain_end = time.monotonic() + drain
            while self.pending and time.monotonic() < drain_end:
                await asyncio.sleep(min(every, drain_end - time.monotonic()))
                extra = await progress() if progress else ""
                print(self.progress_line(0) + extra, flush=True)
            await self.drain(0)
        if officers:
            officers.cancel()
        return self.stats


# Seconds per window in services/deadlines/data/demo-minutes.yaml (the police act relative to them).
DEMO_WINDOWS = {
    "burglary": 180.0,  # burglary_home_24h: 24 h
    "at_once": 40.0,  # the "at once" guarantees: the district's 15 min
    "followup": 300.0,  # tryghedsopfoelgning_burglary
    "ssp": 240.0,  # drug_dealing_school_ssp
    "tip": 240.0,  # drug_tip_triage
    "reply": 300.0,  # bestil_en_betjent_reply: 14 d
    "carry_out": 480.0,  # bestil_en_betjent_carried_out: 30 d
}


def describe_rates() -> str:
    """The expected real daily volume in the district, per kind, for the demo's opening lines."""
    volumes = daily_volumes()
    top = sorted(volumes.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{kind} {per_day:.1f}" for kind, per_day in top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intake", default="http://127.0.0.1:8001")
    parser.add_argument("--seconds", type=float, default=120, help="how long citizens keep reporting")
    parser.add_argument("--volume", type=float, default=VOLUME, help="times the district's real volume")
    parser.add_argument("--drain", type=float, default=0, help="then let police act this many seconds more")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--notify", default=None, help="notify's URL: acknowledge its alerts as officers would")
    parser.add_argument("--portal-key", default="dev-portal-key")
    parser.add_argument("--police-key", default="dev-police-key")
    parser.add_argument("--issuer", default=CommonSettings().oidc_issuer_url,
                        help="the identity provider the officers sign in at to acknowledge")  # fmt: skip
    args = parser.parse_args()
    print(f"[demo] the district's expected submissions per day: {describe_rates()}")
    sim = Simulator(args.intake, seed=args.seed, portal_key=args.portal_key, police_key=args.police_key,
                    volume=args.volume, notify=args.notify, officer_tokens=OfficerTokens(args.issuer))  # fmt: skip
    stats = asyncio.run(sim.run(args.seconds, DEMO_WINDOWS, args.drain))
    print(f"[demo] simulated: {stats}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
