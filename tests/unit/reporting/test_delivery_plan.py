"""The delivery plan as data (COUNCIL_DELIVERY_PLAN_FILE), and the e-mail each council gets."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, time
from typing import Any

import pytest
import yaml

from services.reporting.adapters.delivery_plan_file import DEFAULT_PLAN_FILE, load_plan, parse_plan
from services.reporting.adapters.mailer import CouncilMailer
from services.reporting.domain.delivery_message import council_mail
from services.reporting.domain.delivery_plan import AfterPeriod, Once, RetryPolicy
from services.reporting.domain.periods import Period
from shared.datafile import DataFileError
from shared.reference import kommuner
from shared.smtp import SmtpServer

Q3 = Period.parse("2026-Q3")


def plan_of(*deliveries: dict[str, Any], **top: Any) -> Any:
    return {"version": 1, "closed_also": ["grundlovsdag"], "deliveries": list(deliveries), **top}


def delivery(**over: Any) -> dict[str, Any]:
    return {
        "id": "lokalraad-0265",
        "council": "0265",
        "recipients": ["lokalraad-roskilde@kommune.example"],
        "report": {"scope": "0265", "period": "quarter"},
        "when": {"working_day": 5, "at": "08:00"},
    } | over


def problems_of(document: Any) -> list[str]:
    with pytest.raises(DataFileError) as caught:
        parse_plan(document, "plan.yaml")
    return caught.value.problems


def test_the_development_plan_sends_every_lokalraad_and_the_kredsraad_its_quarter_on_the_5th_working_day() -> None:
    plan = load_plan(DEFAULT_PLAN_FILE)
    councils = {str(e.council) for e in plan.entries}
    assert councils == {"kreds", *kommuner()}
    for e in plan.entries:
        assert e.report.scope == e.council and e.report.kind == "quarter"
        assert e.schedule == AfterPeriod(5, time(8, 0))
        assert all(r.endswith(("@politi.example", "@kommune.example")) for r in e.recipients)
    assert plan.calendar.closed_also == {"grundlovsdag", "juleaftensdag", "nytaarsaftensdag"}


def test_the_plan_as_written_in_yaml_with_a_once_entry_and_a_focus_area() -> None:
    text = """
version: 1
deliveries:
  - id: kredsraad-ekstra
    council: kreds
    recipients: [kredsraad@politi.example]
    report: {scope: kreds, period: quarter, focus_area: indbrud}
    when: {period: 2026-Q3, at: 2026-10-09T08:00}
  - id: lokalraad-0253-kreds
    council: "0253"
    recipients: [lokalraad-greve@kommune.example]
    report: {scope: kreds, period: month}
    when: {working_day: 3, at: "07:30"}
"""
    plan = parse_plan(yaml.safe_load(text), "plan.yaml")
    once, monthly = plan.entries
    # A date and time without an offset is Copenhagen's: 08:00 summer time is 06:00 UTC.
    assert once.schedule == Once(Q3, datetime(2026, 10, 9, 6, 0, tzinfo=UTC))
    assert once.report.focus_area == "indbrud" and once.filename(Q3) == "raadsrapport-kreds-2026-Q3-indbrud.pdf"
    assert monthly.schedule == AfterPeriod(3, time(7, 30)) and monthly.kind == "month"
    assert plan.calendar.closed_also == frozenset()


def test_a_bad_plan_names_every_problem_with_its_place() -> None:
    found = problems_of(
        plan_of(
            delivery(council=265),  # unquoted: YAML reads 0265 as a number
            delivery(id="lokalraad-0265", recipients=["ok@kommune.example", "not an address", "OK@kommune.example"]),
            delivery(id="greve", council="0253", report={"scope": "0265", "period": "quarter"}),
            delivery(id="both", when={"working_day": 5, "period": "2026-Q3", "at": "08:00"}),
            delivery(id="clock", when={"working_day": 5, "at": 480}),  # YAML 1.1 reads 08:00 unquoted as 480
            delivery(id="once", when={"period": "2026-03", "at": "2026-04-09T08:00"}),
            delivery(id="Bad Id", report={"scope": "0265", "period": "week", "focus_area": "cykler"}, extra=1),
            closed_also=["sankthans"],
        )
    )
    expected = [
        "plan.yaml: closed_also: ['sankthans'] must be a list of grundlovsdag, juleaftensdag, nytaarsaftensdag, 1_maj",
        "plan.yaml: delivery 'lokalraad-0265'.council: 265 must be 'kreds' or a kommunekode in quotes, e.g. '0265'",
        "plan.yaml: delivery 'lokalraad-0265'.id: 'lokalraad-0265' is used twice; each delivery needs its own id",
        "plan.yaml: delivery 'lokalraad-0265'.recipients #2: 'not an address' is not an e-mail address like"
        " navn@kommune.example",
        "plan.yaml: delivery 'lokalraad-0265'.recipients #3: 'OK@kommune.example' is listed twice",
        "plan.yaml: delivery 'greve'.report.scope: the lokalråd of 0253 may get its own kommune's report or kreds's",
        "plan.yaml: delivery 'both'.when: give either working_day (every period) or period (once), with at",
        "plan.yaml: delivery 'clock'.when.at: 480 must be a local time in quotes such as '08:00' (with working_day),"
        " or a date and time such as 2026-10-09T08:00 (with period; Europe/Copenhagen unless an offset is given)",
        "plan.yaml: delivery 'once'.when.period: must be a quarter, as the report's period is",
        "plan.yaml: delivery 'Bad Id'.id: 'Bad Id' must be a name of lower-case letters, digits and '-', e.g."
        " lokalraad-0265",
        "plan.yaml: delivery 'Bad Id'.report.period: 'week' must be one of quarter, month, year",
        "plan.yaml: delivery 'Bad Id'.report.focus_area: 'cykler' is not a focus area; known: indbrud,"
        " faerdselssikkerhed, narkotika_gadeplan, unges_fester, psykisk_syge_udsatte, lokal_tilstedevaerelse,"
        " kriminalitetsforebyggelse",
        "plan.yaml: delivery 'Bad Id'.extra: unknown field; a delivery has id, council, recipients, report, when",
    ]
    assert sorted(found) == sorted(expected)


def test_an_empty_plan_sends_nothing_and_a_missing_one_is_named() -> None:
    assert parse_plan({"version": 1, "deliveries": []}, "plan.yaml").entries == ()
    assert problems_of({"version": 1}) == [
        "plan.yaml: deliveries: must be a list of deliveries (an empty list sends nothing)"
    ]
    assert problems_of(plan_of(delivery(when={"working_day": 5}))) == [
        "plan.yaml: delivery 'lokalraad-0265'.when.at: missing"
    ]


def test_each_recipient_of_each_entry_and_period_has_a_message_id_of_its_own_the_same_on_every_try() -> None:
    plan = parse_plan(plan_of(delivery(recipients=["a@kommune.example", "b@kommune.example"])), "plan.yaml")
    (entry,) = plan.entries
    first = entry.message_id(Q3, "a@kommune.example", "politi.example")
    assert first == entry.message_id(Q3, "A@Kommune.Example", "politi.example")  # the same mailbox
    assert first.startswith("<lokalraad-0265.2026-Q3.") and first.endswith("@politi.example>")
    others = {
        entry.message_id(Q3, "b@kommune.example", "politi.example"),
        entry.message_id(Q3.shifted(1), "a@kommune.example", "politi.example"),
    }
    assert first not in others and len(others) == 2


def test_the_email_says_which_report_and_period_and_what_for_faa_sager_means_with_the_pdf_attached() -> None:
    (entry,) = parse_plan(plan_of(delivery()), "plan.yaml").entries
    composed = datetime(2026, 10, 7, 6, 0, 3, tzinfo=UTC)
    mail = council_mail(entry, Q3, threshold=10, figures_as_of=composed)
    assert mail.subject == "Rådsrapport 3. kvartal 2026: Roskilde Kommune"
    assert mail.text.startswith("Til Lokalrådet i Roskilde\n")
    assert (
        "rådsrapport om Roskilde Kommune i 3. kvartal 2026 (1. juli – 30. september 2026):"
        " raadsrapport-0265-2026-Q3.pdf." in mail.text
    )
    assert 'Hvor færre end 10 sager ligger bag et tal, står der "for få sager"' in mail.text
    assert "opgjort 7. oktober 2026 kl. 08.00" in mail.text
    mailer = CouncilMailer(SmtpServer("127.0.0.1", 1025), "raadsrapporter@politi.example", timeout=10)
    message_id = entry.message_id(Q3, entry.recipients[0], mailer.domain)
    built = mailer.message(to=entry.recipients[0], subject=mail.subject, text=mail.text, message_id=message_id,
                           composed_at=composed, pdf=b"%PDF-1.7 test", filename=entry.filename(Q3))  # fmt: skip
    # As the receiving end reads it, after the trip through bytes.
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == message_id and parsed["To"] == "lokalraad-roskilde@kommune.example"
    assert parsed["Subject"] == "Rådsrapport 3. kvartal 2026: Roskilde Kommune"
    assert parsed["Date"] == "Wed, 07 Oct 2026 06:00:03 +0000"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "raadsrapport-0265-2026-Q3.pdf"
    assert attachment.get_content() == b"%PDF-1.7 test"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "for få sager" in body.get_content()


def test_a_kreds_report_with_a_focus_area_says_so_in_subject_and_text() -> None:
    (entry,) = parse_plan(
        plan_of(delivery(id="kredsraad", council="kreds", report={"scope": "kreds", "period": "year",
                                                                  "focus_area": "indbrud"})), "plan.yaml"
    ).entries  # fmt: skip
    mail = council_mail(entry, Period.parse("2026"), threshold=10, figures_as_of=datetime(2027, 1, 8, tzinfo=UTC))
    assert mail.subject == "Rådsrapport 2026: Midt- og Vestsjællands Politi, hele kredsen – Indbrud"
    assert mail.text.startswith("Til Kredsrådet\n")
    assert "hele kredsen, indsatsområdet indbrud i 2026 (1. januar – 31. december 2026)" in mail.text


def test_retries_back_off_up_to_the_cap_and_stop_after_the_last_attempt_or_a_permanent_refusal() -> None:
    policy = RetryPolicy(base=60, cap=600, max_attempts=4)
    assert policy.after(1, False, lambda: 0.0) == ("retry", 30.0)
    assert policy.after(1, False, lambda: 0.999999)[1] == pytest.approx(60.0)
    assert policy.after(3, False, lambda: 1.0) == ("retry", 240.0)
    assert policy.after(4, False, lambda: 0.5) == ("failed", 0.0)
    assert policy.after(1, True, lambda: 0.5) == ("failed", 0.0)
    assert RetryPolicy(base=60, cap=600, max_attempts=20).after(10, False, lambda: 1.0) == ("retry", 600.0)
