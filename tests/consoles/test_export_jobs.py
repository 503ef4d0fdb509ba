"""Large exports: above H2H_EXPORT_INLINE_ROWS they are built by a job into a private file, listed on the
auditor's Exports page, downloadable by the requester only, and deleted when they expire."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from edges.auditor.jobs import export_files_cleanup, export_files_expire
from edges.models import ExportFile
from h2h_core.audit.chain import event_hash
from h2h_core.jobs import enqueue
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, UserFactory
from tests.jobs import failed_jobs, queued, run_jobs

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db

EXPORTED = AuditEvent.objects.filter(action="audit.exported")


@pytest.fixture(autouse=True)
def files(settings, tmp_path):
    """The default storage in a directory of this test's own."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "files")}}}
    settings.H2H_EXPORT_INLINE_ROWS = 2
    return tmp_path / "files"


@pytest.fixture
def decisions(cast):
    alice_case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    carol_case = CaseFactory(owner=cast["carol"], team=cast["billing"])
    return ([DecisionFactory(case=alice_case, amount=Decimal(10 + i)) for i in range(3)]
            + [DecisionFactory(case=carol_case, amount=Decimal("75.5"))])


def export_url(dataset="decisions", fmt="csv"):
    return reverse("audit:export", args=[dataset, fmt])


def streamed(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_an_export_within_the_threshold_streams_as_before(client, cast, decisions, settings):
    # given a threshold that the filtered rows do not exceed
    settings.H2H_EXPORT_INLINE_ROWS = 3
    client.force_login(cast["audrey"])
    # when audrey exports alice's three decisions
    response = client.get(export_url(), {"agent": "alice"})
    # then they are streamed from the request, audited once, and nothing is queued
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(streamed(response))))) == 3
    assert EXPORTED.get().after == {"dataset": "decisions", "format": "csv", "filters": {"agent": "alice"}}
    assert not ExportFile.objects.exists() and not queued().exists()


def test_an_export_above_the_threshold_is_built_by_a_job_and_downloaded(client, cast, decisions):
    client.force_login(cast["audrey"])
    # when audrey exports alice's three decisions (more than the threshold of two)
    response = client.get(export_url(), {"agent": "alice"})
    # then she is sent to her Exports page, where the export is queued, audited once, and the page refreshes
    assert response.status_code == 302 and response["Location"] == reverse("audit:exports")
    export = ExportFile.objects.get()
    assert (export.requested_by, export.dataset, export.format, export.status, export.filters) == (
        cast["audrey"], "decisions", "csv", "queued", {"agent": "alice"})
    assert EXPORTED.get().after == {"dataset": "decisions", "format": "csv", "filters": {"agent": "alice"},
                                    "export_file": export.pk}
    assert queued("export_file_build").count() == 1
    page = client.get(reverse("audit:exports")).content.decode()
    assert '<meta http-equiv="refresh"' in page and "being prepared as a file" in page and "queued" in page
    # when the worker runs
    assert run_jobs() == 1
    # then the file is ready, the page offers it and stops refreshing
    export.refresh_from_db()
    assert (export.status, export.row_count, export.finished_at is not None) == ("ready", 3, True)
    assert export.expires_at > timezone.now() + timedelta(days=6)
    page = client.get(reverse("audit:exports")).content.decode()
    download_url = reverse("audit:export_download", args=[export.pk])
    assert download_url in page and 'http-equiv="refresh"' not in page
    # and the download holds exactly alice's decisions, as an attachment, still audited once
    download = client.get(download_url)
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"].startswith('attachment; filename="h2h-decisions-')
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert sorted(r["amount"] for r in rows) == ["10", "11", "12"] and {r["agent"] for r in rows} == {"alice"}
    assert EXPORTED.count() == 1


def test_an_events_export_built_by_a_job_carries_its_own_record_and_recomputes(client, cast, decisions, settings):
    # given three events on record (three small exports)
    client.force_login(cast["audrey"])
    for _ in range(3):
        streamed(client.get(export_url(), {"agent": "carol"}))
    # when audrey exports the audit log as JSON Lines (more events than the threshold)
    settings.H2H_EXPORT_INLINE_ROWS = 2
    assert client.get(export_url("events", "jsonl")).status_code == 302
    # then the file has every event, its own export record first, and every hash recomputes
    run_jobs()
    export = ExportFile.objects.get()
    download = client.get(reverse("audit:export_download", args=[export.pk]))
    assert download["Content-Disposition"].startswith('attachment; filename="h2h-audit-events-')
    records = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert records[0]["action"] == "audit.exported" and records[0]["after"]["export_file"] == export.pk
    for record in records:
        stored = AuditEvent.objects.get(seq=record["seq"])
        assert event_hash({name: getattr(stored, name) for name in record if name != "hash"}) == record["hash"]
    assert export.row_count == len(records) == AuditEvent.objects.count()


def test_nobody_else_downloads_or_sees_an_export(client, cast, decisions):
    # given audrey's export is ready
    client.force_login(cast["audrey"])
    client.get(export_url(), {"agent": "alice"})
    run_jobs()
    export = ExportFile.objects.get(status="ready")
    download_url = reverse("audit:export_download", args=[export.pk])
    otto = UserFactory(username="otto", roles=[Role.AUDITOR])
    # when another auditor, the superuser, a manager or nobody asks for it
    answers = {}
    for person in (otto, cast["admin"], cast["maria"], None):
        client.logout()
        if person is not None:
            client.force_login(person)
        answers[getattr(person, "username", "anonymous")] = client.get(download_url)
    # then nobody gets it, and nothing of it shows
    assert {name: r.status_code for name, r in answers.items()} == {
        "otto": 404, "admin": 404, "maria": 403, "anonymous": 302}
    assert not any(r.streaming or b"alice" in r.content for r in answers.values())
    client.force_login(otto)
    assert download_url not in client.get(reverse("audit:exports")).content.decode()
    export.refresh_from_db()
    assert export.status == "ready" and default_storage.exists(export.file.name)


def test_export_files_are_kept_in_the_private_data_directory():
    from h2h_core import settings as project

    location = Path(project.STORAGES["default"]["OPTIONS"]["location"])
    assert location.is_relative_to(project.VAR_DIR) and not location.is_relative_to(project.STATIC_ROOT)


def test_expired_files_are_removed_by_the_cleanup_job(client, cast, decisions):
    # given two ready exports, one of them past its expiry
    client.force_login(cast["audrey"])
    client.get(export_url(), {"agent": "alice"})
    client.get(export_url("decisions", "jsonl"))
    run_jobs()
    old, new = ExportFile.objects.order_by("pk")
    ExportFile.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert default_storage.exists(old.file.name) and default_storage.exists(new.file.name)
    # when the cleanup job runs
    enqueue(export_files_cleanup)
    assert run_jobs() == 1
    # then the expired file and its row are gone, the other stays, and the audit record remains
    assert not default_storage.exists(old.file.name) and default_storage.exists(new.file.name)
    assert list(ExportFile.objects.values_list("pk", flat=True)) == [new.pk]
    assert EXPORTED.count() == 2


def test_an_export_that_never_finished_is_marked_failed_by_the_cleanup(client, cast, decisions):
    client.force_login(cast["audrey"])
    client.get(export_url())
    export = ExportFile.objects.get(status="queued")
    assert export_files_expire(now=timezone.now() + timedelta(days=2)) == {"deleted": 0, "unfinished": 1}
    export.refresh_from_db()
    assert export.status == "failed" and "Ask for it again" in export.message


def test_a_failing_job_shows_a_failed_export_with_a_message(client, cast, decisions, monkeypatch, files):
    # given building the file breaks
    def broken(export, query):
        raise OSError("disk full")

    monkeypatch.setattr("edges.auditor.jobs._write", broken)
    client.force_login(cast["audrey"])
    client.get(export_url())
    # when the worker runs it
    run_jobs()
    # then the export is failed with a message on the page (no 500), the job is on record as failed, no file
    export = ExportFile.objects.get()
    assert export.status == "failed" and export.message.startswith("The export could not be built")
    assert failed_jobs().count() == 1
    page = client.get(reverse("audit:exports"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "failed" in text and "The export could not be built" in text and 'http-equiv="refresh"' not in text
    assert client.get(reverse("audit:export_download", args=[export.pk])).status_code == 404
    assert not files.exists() or not any(files.rglob("*.csv"))


def test_a_requester_who_is_no_longer_an_auditor_gets_nothing_built(client, cast, decisions, files):
    client.force_login(cast["audrey"])
    client.get(export_url())
    # when audrey stops being an auditor before the worker runs the export
    cast["audrey"].groups.clear()
    run_jobs()
    # then the permission is asked again at run time: nothing is written
    export = ExportFile.objects.get()
    assert (export.status, export.message) == ("failed", "Not built: Exports are for auditors.")
    assert not export.file and (not files.exists() or not any(files.rglob("*.csv")))


def test_a_second_click_does_not_queue_the_same_export_twice(client, cast, decisions):
    client.force_login(cast["audrey"])
    first = client.get(export_url(), {"agent": "alice"})
    second = client.get(export_url(), {"agent": "alice"}, follow=True)
    assert first.status_code == 302 and "already being prepared" in second.content.decode()
    assert ExportFile.objects.count() == 1 and queued("export_file_build").count() == 1 and EXPORTED.count() == 1


def test_a_job_run_twice_builds_the_file_once(client, cast, decisions):
    from edges.auditor.jobs import export_file_build

    client.force_login(cast["audrey"])
    client.get(export_url())
    run_jobs()
    export = ExportFile.objects.get()
    assert export_file_build.call(export.pk) == {"skipped": "not queued"}
    assert ExportFile.objects.get().file.name == export.file.name
    ExportFile.objects.all().delete()
    assert export_file_build.call(export.pk) == {"skipped": "not queued"}


def test_the_exports_page_costs_a_fixed_number_of_queries(client, cast, decisions, django_assert_max_num_queries):
    client.force_login(cast["audrey"])
    for fmt in ("csv", "jsonl"):
        client.get(export_url("decisions", fmt))
        client.get(export_url("events", fmt))
    run_jobs()
    with django_assert_max_num_queries(6):
        assert client.get(reverse("audit:exports")).status_code == 200
