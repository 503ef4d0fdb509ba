"""CSV exports neutralise text a spreadsheet would run as a formula; numbers and JSON Lines stay as they are."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from edges.web.csv_cells import csv_cell, neutralise_formula
from h2h_core.audit import audit_record
from tests.factories import CaseFactory
from tests.jobs import run_jobs

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-1+2", "\t=1", "\r=1"]


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("text", FORMULAS)
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert neutralise_formula(text) == "'" + text
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["double charge", "1=1", "", "'=already quoted", "H2H-000123"])
def test_other_text_is_left_alone(text):
    assert neutralise_formula(text) == text


@pytest.mark.parametrize("number", [Decimal("-12.50"), -3, 0, Decimal("12.5"), -1.5])
def test_numbers_stay_numbers(number):
    assert csv_cell(number) == number
    assert csv_cell(number, plain=str) == str(number)


@pytest.fixture
def hostile(cast):
    """Decisions whose rationales are formulas, and one with a negative number column.

    A decision's own amount is positive (a database constraint); its counted amount has no such
    constraint, so it stands for any negative number an export carries.
    """
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    made = [DecisionFactory(case=case, rationale=text, amount=Decimal("10")) for text in FORMULAS]
    made.append(DecisionFactory(case=case, rationale="correction", amount=Decimal("12.50"),
                                counted_amount=Decimal("-12.50")))
    return made


def _by_id(text: str) -> dict[str, dict]:
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


def test_a_decisions_csv_neutralises_rationales_and_keeps_a_negative_amount(client, cast, hostile):
    client.force_login(cast["audrey"])
    rows = _by_id(body(client.get(reverse("audit:export", args=["decisions", "csv"]))))
    for decision, text in zip(hostile, FORMULAS, strict=False):
        assert rows[str(decision.pk)]["rationale"] == "'" + text
        assert rows[str(decision.pk)]["amount"] == "10"
    negative = rows[str(hostile[-1].pk)]
    assert (negative["amount"], negative["counted_amount"], negative["rationale"]) == ("12.5", "-12.5", "correction")
    assert {row["agent"] for row in rows.values()} == {"alice"}


def test_a_decisions_csv_built_by_the_job_is_neutralised_too(client, cast, hostile, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    settings.H2H_EXPORT_INLINE_ROWS = 1
    client.force_login(cast["audrey"])
    assert client.get(reverse("audit:export", args=["decisions", "csv"])).status_code == 302
    run_jobs()
    from edges.models import ExportFile

    download = client.get(reverse("audit:export_download", args=[ExportFile.objects.get().pk]))
    rows = _by_id(b"".join(download.streaming_content).decode())
    assert sorted(row["rationale"] for row in rows.values()) == sorted(["'" + t for t in FORMULAS] + ["correction"])
    assert rows[str(hostile[-1].pk)]["counted_amount"] == "-12.5"


def test_an_events_csv_neutralises_the_reason(client, cast):
    with transaction.atomic():
        audit_record(actor=cast["alice"], action="case.noted", object_type="case", object_id="1",
                     reason='=HYPERLINK("http://x","y")', after={"note": "=1"})
    client.force_login(cast["audrey"])
    text = body(client.get(reverse("audit:export", args=["events", "csv"]), {"action": "case.noted"}))
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["reason"] == '\'=HYPERLINK("http://x","y")'
    assert json.loads(row["after"]) == {"note": "=1"}  # a JSON object starts with "{": no formula
    assert row["seq"].isdigit()


def test_json_lines_are_not_changed(client, cast, hostile):
    client.force_login(cast["audrey"])
    text = body(client.get(reverse("audit:export", args=["decisions", "jsonl"])))
    records = {record["id"]: record for record in map(json.loads, text.splitlines())}
    assert [records[d.pk]["rationale"] for d in hostile[:-1]] == FORMULAS
    assert records[hostile[-1].pk]["counted_amount"] == "-12.5"
