"""Simulated traffic for the 10 kommuner: citizens report through intake, police act on the cases.

Citizens send reports, tips and Bestil-en-betjent requests in a realistic mix, weighted by each
kommune's population. "Police" then record actions through intake's police API, mostly in time,
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# Kommunekode, name, population (approx.), a town centre inside the kommune.
KOMMUNER = [
    ("0265", "Roskilde", 90_000, (55.6415, 12.0803)),
    ("0316", "Holbæk", 72_000, (55.7167, 11.7167)),
    ("0259", "Køge", 62_000, (55.4580, 12.1821)),
    ("0253", "Greve", 51_000, (55.5833, 12.3000)),
    ("0326", "Kalundborg", 48_000, (55.6795, 11.0886)),
    ("0329", "Ringsted", 35_000, (55.4426, 11.7901)),
    ("0306", "Odsherred", 33_000, (55.9236, 11.6708)),
    ("0350", "Lejre", 28_000, (55.6047, 11.9748)),
    ("0269", "Solrød", 23_000, (55.5333, 12.2167)),
    ("0336", "Stevns", 23_000, (55.3167, 12.3833)),
]
STREETS = ["Algade", "Skolevej", "Stationsvej", "Kirkevej", "Møllevej", "Bakkevej", "Strandvejen", "Engvej"]
REPORTS = [  # category, weight, description
    ("burglary_home", 26, "Indbrud i huset mens vi var på arbejde. Terrassedøren er brudt op."),
    ("traffic", 14, "Biler kører alt for stærkt forbi skolen om morgenen."),
    ("youth_party_nuisance", 9, "Store fester i parken hver weekend med høj musik til langt ud på natten."),
    ("violence", 8, "Et slagsmål foran kiosken, en person blev slået."),
    ("vulnerable_person", 7, "En forvirret ældre mand går rundt på vejen og virker syg."),
    ("drug_dealing_street", 7, "Der handles hash fra en bil ved boldbanen hver aften."),
    ("domestic_violence", 5, "Høje skrig og slag fra lejligheden ved siden af."),
    ("fraud_elderly", 5, "Min mor er blevet ringet op af en falsk bankrådgiver og har givet sin kode."),
    ("it_crime", 4, "Min datter er blevet afpresset med billeder på sociale medier."),
    ("drug_dealing_school", 3, "Unge sælger stoffer lige uden for skolens port i frikvarteret."),
    ("gang_related", 2, "Grupper i ens jakker samles og truer forbipasserende."),
    ("rape", 1, "Jeg er blevet overfaldet og voldtaget."),
    ("other", 9, "Hærværk på busstoppestedet igen."),
]
TOPICS = {
    "traffic_control": "Fartkontrol ved skolen om morgenen",
    "talk": "Foredrag om indbrudssikring i grundejerforeningen",
}
SCHOOLS = ["Roskilde Katedralskole", "Holbæk Gymnasium", "Køge Handelsskole", "Greve Gymnasium", "Ringsted Skole"]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Stats:
    reports: int = 0
    tips: int = 0
    requests: int = 0
    actions: int = 0
    refused: int = 0
    errors: int = 0


class Simulator:
    def __init__(self, intake: str, *, rate: float, seed: int, portal_key: str, police_key: str) -> None:
        self.intake = intake.rstrip("/")
        self.rate = rate
        self.rng = random.Random(seed)
        self.portal = auth(portal_key)
        self.police = auth(police_key)
        self.stats = Stats()
        self.pending: set[asyncio.Task[None]] = set()

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
        response = await client.post(
            self.intake + path, json=body, headers=headers | {"Idempotency-Key": str(uuid.uuid4())}
        )
        if response.status_code == 202:
            return response.json()
        if response.status_code in (409, 422):
            self.stats.refused += 1  # the simulator is allowed to be a clumsy citizen now and then
        else:
            self.stats.errors += 1
            print(f"[demo] {path}: HTTP {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return None

    async def one_submission(self, client: httpx.AsyncClient, window: dict[str, float]) -> None:
        roll = self.rng.random()
        code, _, centre = self.kommune()
        if roll < 0.18:
            await self.tip(client, code, centre, window)
        elif roll < 0.26:
            await self.officer_request(client, code, centre, window)
        else:
            await self.report(client, code, centre, window)

    async def report(
        self, client: httpx.AsyncClient, code: str, centre: tuple[float, float], window: dict[str, float]
    ) -> None:
        category, _, text = self.rng.choices(REPORTS, weights=[r[1] for r in REPORTS])[0]
        body: dict[str, Any] = {"category": category, "description": text, "kommune": code, "contact": self.contact()}
        body |= self.place(centre)
        if category == "burglary_home":
            body["in_progress"] = self.rng.random() < 0.1
        if category in ("violence", "rape"):
            body["acute"] = self.rng.random() < 0.5
        if category == "drug_dealing_school":
            body["institution"] = self.rng.choice(SCHOOLS)
        accepted = await self.post(client, "/v1/reports", body, self.portal)
        if not accepted:
            return
        self.stats.reports += 1
        case = accepted["case_id"]
        acute = body.get("in_progress") or body.get("acute") or category == "drug_dealing_school"
        if category == "burglary_home" and not acute:
            self.burglary_police(case, window["burglary"])
        elif acute:
            self.acute_police(case, category, window["at_once"])
        elif self.rng.random() < 0.5:
            self.later(case, self.rng.uniform(5, 60), "dispatched")

    def burglary_police(self, case: str, window: float) -> None:
        fate = self.rng.random()
        if fate < 0.12:
            # The citizen asks police to come later; they come at that time.
            ask_at = self.rng.uniform(0.05, 0.3) * window
            come = window * self.rng.uniform(1.3, 1.6)
            self.later(case, ask_at, "citizen_requested_later", requested_in=come)
            self.later(case, come * 0.98, "on_scene", then=[("followup_done", 0.3 * window)])
        elif fate < 0.82:
            self.later(case, self.rng.uniform(0.2, 0.9) * window, "on_scene", then=[("followup_done", 0.4 * window)])
        else:
            self.later(case, self.rng.uniform(1.05, 1.3) * window, "on_scene")  # late: a breach first

    def acute_police(self, case: str, category: str, window: float) -> None:
        if self.rng.random() < 0.1:
            return  # every patrol busy: nobody gets there while the demo runs, so it breaches
        self.later(case, self.rng.uniform(0.02, 0.1) * window, "dispatched")
        on_time = self.rng.random() < 0.85
        arrive = self.rng.uniform(0.2, 0.9) * window if on_time else self.rng.uniform(1.05, 1.4) * window
        follow = [("school_and_ssp_contacted", 0.5 * window)] if category == "drug_dealing_school" else []
        self.later(case, arrive, "on_scene", then=follow)

    async def tip(
        self, client: httpx.AsyncClient, code: str, centre: tuple[float, float], window: dict[str, float]
    ) -> None:
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
            self.later(accepted["case_id"], self.rng.uniform(0.3, 1.2) * window["tip"], "dispatched")

    async def officer_request(
        self, client: httpx.AsyncClient, code: str, centre: tuple[float, float], window: dict[str, float]
    ) -> None:
        kind = self.rng.choice(["traffic_control", "talk"])
        body = {
            "request_type": kind,
            "description": TOPICS[kind],
            "kommune": code,
            "contact": self.contact(),
        }  # fmt: skip
        accepted = await self.post(client, "/v1/officer-requests", body, self.portal)
        if accepted:
            self.stats.requests += 1
            reply = self.rng.uniform(0.2, 1.1) * window["reply"]
            self.later(
                accepted["case_id"],
                reply,
                "replied",
                then=[("carried_out", self.rng.uniform(0.2, 0.5) * window["carry_out"])],
            )

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

        task = asyncio.create_task(act())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def drain(self, seconds: float) -> None:
        """Lets scheduled police actions happen for a while after the citizens stop reporting."""
        end = time.monotonic() + seconds
        while self.pending and time.monotonic() < end:
            await asyncio.sleep(1)
        for task in list(self.pending):
            task.cancel()

    async def run(self, seconds: float, window: dict[str, float], drain: float = 0.0) -> Stats:
        end = time.monotonic() + seconds
        last_print = 0.0
        async with httpx.AsyncClient(timeout=10) as client:
            while time.monotonic() < end:
                await self.one_submission(client, window)
                if time.monotonic() - last_print > 10:
                    last_print = time.monotonic()
                    s = self.stats
                    print(
                        f"[demo] {int(end - time.monotonic()):>4}s left: {s.reports} reports, {s.tips} tips, "
                        f"{s.requests} requests, {s.actions} police actions, {s.refused} refused",
                        flush=True,
                    )
                await asyncio.sleep(self.rng.expovariate(self.rate))
        if drain:
            print(f"[demo] citizens done; police keep working for up to {drain:.0f}s more ...", flush=True)
            await self.drain(drain)
        return self.stats


# Seconds per window in services/deadlines/rules/demo-minutes.yaml (the police act relative to them).
DEMO_WINDOWS = {"burglary": 180.0, "at_once": 40.0, "tip": 240.0, "reply": 300.0, "carry_out": 480.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intake", default="http://127.0.0.1:8001")
    parser.add_argument("--seconds", type=float, default=120, help="how long citizens keep reporting")
    parser.add_argument("--rate", type=float, default=1.0, help="submissions per second (average)")
    parser.add_argument("--drain", type=float, default=0, help="then let police act this many seconds more")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--portal-key", default="dev-portal-key")
    parser.add_argument("--police-key", default="dev-police-key")
    args = parser.parse_args()
    sim = Simulator(args.intake, rate=args.rate, seed=args.seed, portal_key=args.portal_key, police_key=args.police_key)
    stats = asyncio.run(sim.run(args.seconds, DEMO_WINDOWS, args.drain))
    print(f"[demo] simulated: {stats}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
