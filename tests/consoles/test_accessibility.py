"""Every control of every console page has a name, charts have a text alternative, status is announced.

A structural check on the rendered HTML (no browser needed): a control without a label cannot be
used with a screen reader, whatever it looks like.
"""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.factories import CaseFactory
from tests.jobs import run_jobs

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db


class Controls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.labels_for, self.controls, self.problems = set(), [], []
        self.label_depth = 0
        self.button = None
        self.svg_charts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.label_depth += 1
            if attrs.get("for"):
                self.labels_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea"):
            if attrs.get("type") in ("hidden", "submit"):
                return
            self.controls.append((tag, attrs, self.label_depth > 0))
        elif tag == "button":
            self.button = {"attrs": attrs, "text": ""}
        elif tag == "svg" and attrs.get("role") == "img":
            self.svg_charts += 1
            if not attrs.get("aria-labelledby"):
                self.problems.append("a chart without aria-labelledby")

    def handle_endtag(self, tag):
        if tag == "label":
            self.label_depth -= 1
        elif tag == "button" and self.button is not None:
            if not self.button["text"].strip() and not self.button["attrs"].get("aria-label"):
                self.problems.append(f"a button without a name: {self.button['attrs']}")
            self.button = None

    def handle_data(self, data):
        if self.button is not None:
            self.button["text"] += data

    def unnamed(self):
        return [
            (tag, attrs) for tag, attrs, wrapped in self.controls
            if not wrapped and attrs.get("id") not in self.labels_for
            and not attrs.get("aria-label") and not attrs.get("aria-labelledby")
        ]


def manager_pages(cast):
    from authority.models import Grant

    grant = Grant.objects.filter(subject_user=cast["alice"]).order_by("pk").first()
    return [reverse("authority:approvals"), reverse("authority:matrix"), reverse("authority:pending"),
            reverse("authority:people"), reverse("authority:delegations"), reverse("authority:what_if"),
            reverse("authority:dashboard"), reverse("authority:grant_edit", args=[grant.pk]),
            reverse("authority:grant_end", args=[grant.pk]),
            reverse("authority:grant_new") + f"?subject=user-{cast['alice'].pk}&kind=refund&purpose=temporary",
            reverse("authority:what_if") + "?person=alice&kind=refund&amount=700&currency=EUR&category=complaint",
            reverse("authority:outcomes")]


def auditor_pages(decision):
    return [reverse("audit:decisions"), reverse("audit:log"), reverse("audit:decision", args=[decision.pk]),
            reverse("audit:grant", args=[decision.grant_id]), reverse("audit:authority_at"),
            reverse("audit:authority_at") + "?subject=person&person=alice", reverse("audit:changes"),
            reverse("audit:chain"), reverse("audit:verify"), reverse("audit:review") + "?size=5&seed=3",
            reverse("audit:flags"), reverse("audit:outcomes")]


def test_every_control_on_every_console_page_has_a_name(client, cast):
    decision = DecisionFactory(case=CaseFactory(owner=cast["alice"], team=cast["retention"]))
    problems = []
    for who, pages in (("maria", manager_pages(cast)), ("audrey", auditor_pages(decision))):
        client.force_login(cast[who])
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            parser = Controls()
            parser.feed(response.text)
            problems += [f"{url}: unnamed {tag} {attrs}" for tag, attrs in parser.unnamed()]
            problems += [f"{url}: {problem}" for problem in parser.problems]
            assert '<main id="main"' in response.text
            assert 'lang="en"' in response.text
    assert not problems, "\n".join(problems)


def test_results_and_outcomes_are_announced_and_carry_words_not_only_colour(client, cast):
    DecisionFactory(case=CaseFactory(owner=cast["alice"], team=cast["retention"]))
    client.force_login(cast["audrey"])
    log = client.get(reverse("audit:decisions")).text
    assert 'class="result-count" role="status"' in log
    client.post(reverse("audit:verify_request"), {"scope": "full"})
    assert 'role="status"' in client.get(reverse("audit:verify")).text  # queued, and said so
    run_jobs(queues="audit")
    verified = client.get(reverse("audit:verify")).text
    assert 'role="status"' in verified and ">Intact</span>" in verified
    client.force_login(cast["maria"])
    board = client.get(reverse("authority:dashboard")).text
    assert board.count("<title id=") == board.count('<svg class="chart"') == 9
