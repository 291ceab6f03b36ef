"""Violation reports in the admin: a list per source, schema, code and field path with a
sparkline, and a drill-down with hourly and daily series, from the same selector as the API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from governance.roles import READ_ONLY_AUDITOR, SECURITY_ANALYST
from ingest.models import IngestTally
from ingest.pipeline.tally import hour_of
from ingest.services import api_key_create
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
    user_with_role,
)

pytestmark = pytest.mark.django_db
LIST = "/admin/violations/"
DETAIL = "/admin/violations/detail/"


def _send(client, secret: str, events: list[dict]) -> None:
    response = client.post(
        f"/api/v1/events?schema={CLIENT_TELEMETRY_SCHEMA}",
        data=json.dumps({"events": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content


def _bad(count: int, version: str) -> list[dict]:
    events = client_telemetry_events(count * 4)[::4]  # reconnect members
    return [dict(e, reconnect={"attempt": "x"}, app_version=version) for e in events]


@pytest.fixture
def rejected(client, platform_config):
    """web-shell sends 3 bad events from 1.2.0; a day-old tally adds 40 from 1.1.9."""
    client_telemetry_schema_register()
    key = api_key_create(name="web-shell", source="web-shell", actor=None)
    _send(client, key.secret, _bad(3, "1.2.0"))
    IngestTally.objects.create(
        hour=hour_of(datetime.now(UTC) - timedelta(days=2)),
        source="web-shell",
        event_class="client_diagnostic",
        schema_name=CLIENT_TELEMETRY_SCHEMA,
        status="rejected",
        code="wrong_type",
        field_path="reconnect.attempt",
        app_version="1.1.9",
        count=40,
    )


def _as(client, *roles: str):
    client.force_login(user_with_role("viewer", *roles))
    return client


def test_list_shows_each_kind_with_counts_and_a_sparkline(client, rejected):
    """The 24 h list has web-shell's wrong_type at reconnect.attempt: 3 in the last hour,
    a sparkline, and a link to its drill-down; the 30 d window also has the older 40."""
    page = _as(client, READ_ONLY_AUDITOR).get(LIST).content.decode()
    rows = page.split('id="violations-table"', 1)[1].split("</table>", 1)[0]
    row = rows.split('class="violation-row"')[1]
    assert "web-shell" in row and "1.2.0" in row
    assert "reconnect.<wbr>attempt" in row and "&lt;wbr" not in page  # wraps after dots only
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["3", "3"]
    assert '<svg class="sparkline"' in row
    link = re.search(r'class="violation-link" href="([^"]+)"', row).group(1)
    assert link.startswith(DETAIL) and "field=reconnect.attempt" in link

    month = client.get(LIST, {"window": "30d"}).content.decode()
    assert month.count('class="violation-row"') == 2
    assert "43 rejected in the last 30d" in month


def test_drill_down_has_a_headline_hourly_and_daily_series(client, rejected):
    """One (source, schema, code, field path): the headline a client team reads, 24 hourly
    and 30 daily bars, and each app version's share."""
    query = urlencode(
        {
            "source": "web-shell",
            "schema": CLIENT_TELEMETRY_SCHEMA,
            "code": "wrong_type",
            "field": "reconnect.attempt",
        }
    )
    page = _as(client, READ_ONLY_AUDITOR).get(f"{DETAIL}?{query}").content.decode()
    assert (
        '<p id="violation-headline">reconnect.attempt: wrong_type, 3 in the last hour from '
        "web-shell 1.2.0</p>" in page
    )
    assert '<td class="num" id="count-hour">3</td>' in page
    assert '<td class="num" id="count-day">3</td>' in page
    assert '<td class="num" id="count-30d">43</td>' in page
    hourly = page.split('id="hourly"', 1)[1].split("</section>", 1)[0]
    daily = page.split('id="daily"', 1)[1].split("</section>", 1)[0]
    assert hourly.count("<rect") == 24 and daily.count("<rect") == 30
    versions = page.split('id="versions"', 1)[1].split("</table>", 1)[0]
    assert versions.index("1.2.0") < versions.index("1.1.9")


def test_another_field_path_is_not_mixed_in(client, rejected):
    """The drill-down of a field with no violations shows none (exact match, not prefix)."""
    query = urlencode(
        {
            "source": "web-shell",
            "schema": CLIENT_TELEMETRY_SCHEMA,
            "code": "wrong_type",
            "field": "reconnect",
        }
    )
    page = _as(client, READ_ONLY_AUDITOR).get(f"{DETAIL}?{query}").content.decode()
    assert '<td class="num" id="count-30d">0</td>' in page


def test_violation_pages_need_the_tally_permission(client, rejected):
    """A security analyst is refused both pages (403), never shown counts."""
    viewer = _as(client, SECURITY_ANALYST)
    assert viewer.get(LIST).status_code == 403
    assert viewer.get(DETAIL, {"source": "web-shell", "code": "wrong_type"}).status_code == 403
