"""POST /v1/metrics with raw OTLP JSON (64-bit integers as strings): sums, gauges and
explicit histograms on /metrics under Prometheus names, exponential histograms refused per
data point, the name translation rules one by one, and OTLP metrics in check_conformance."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.management import call_command
from google.rpc.status_pb2 import Status

from ingest.otlp.metrics import prometheus_name
from ingest.service_metrics import PREFIX
from telemetry_platform.redis_client import redis_client
from tests.ingest.otlp.otlp_helpers import attr, now_nanos, post_otlp

pytestmark = pytest.mark.django_db(transaction=True)

DELTA, CUMULATIVE = 1, 2  # AggregationTemporality numbers, as the JSON mapping allows


@pytest.fixture(autouse=True)
def _empty_service_metrics():
    for key in redis_client().scan_iter(f"{PREFIX}*"):
        redis_client().delete(key)


def point(value: dict, **extra) -> dict:
    return {
        "startTimeUnixNano": now_nanos(120),
        "timeUnixNano": now_nanos(),
        "attributes": [attr("route", "/verify"), attr("user.id", "user_929583699")],
        **value,
        **extra,
    }


def metrics_request(*metrics: dict) -> dict:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": [attr("service.name", "control-service")]},
                "scopeMetrics": [{"scope": {"name": "control"}, "metrics": list(metrics)}],
            }
        ]
    }


def exposition(client, prefix: str) -> list[str]:
    text = client.get("/metrics").content.decode()
    assert "user_929583699" not in text
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_raw_json_sums_gauges_and_histograms_appear_under_prometheus_names(client, api_key):
    """Ints as strings (asInt, count, bucketCounts, nanos): a delta counter accumulates
    across two exports, a gauge keeps its last value, a histogram's buckets are cumulative;
    a user.id attribute is never a label."""
    app = f"app{uuid.uuid4().hex[:8]}"

    def export(requests: str, memory: float, counts: list[str]):
        body = metrics_request(
            {
                "name": f"{app}.requests",
                "unit": "{request}",
                "sum": {
                    "aggregationTemporality": DELTA,
                    "isMonotonic": True,
                    "dataPoints": [point({"asInt": requests})],
                },
            },
            {
                "name": f"{app}.memory.usage",
                "unit": "By",
                "gauge": {"dataPoints": [point({"asDouble": memory})]},
            },
            {
                "name": f"{app}.latency",
                "unit": "ms",
                "histogram": {
                    "aggregationTemporality": CUMULATIVE,
                    "dataPoints": [
                        point(
                            {
                                "count": str(sum(map(int, counts))),
                                "sum": 812.5,
                                "bucketCounts": counts,
                                "explicitBounds": [100.0, 500.0],
                            }
                        )
                    ],
                },
            },
        )
        response = post_otlp(client, api_key.secret, "/v1/metrics", body)
        assert response.status_code == 200, response.content
        assert response.json() == {}

    export("7", 1024.0, ["1", "2", "0"])
    export("5", 2048.0, ["1", "2", "1"])

    lines = exposition(client, app)
    assert [line for line in lines if line.startswith(f"{app}_requests_total{{")] == [
        next(line for line in lines if line.startswith(f"{app}_requests_total{{"))
    ]
    assert any(
        re.match(rf'^{app}_requests_total\{{.*route="/verify".*\}} 12\.0$', line) for line in lines
    ), lines
    assert any(re.match(rf"^{app}_memory_usage_bytes\{{.*\}} 2048\.0$", line) for line in lines)
    buckets = {
        re.search(r'le="([^"]+)"', line).group(1): line.rsplit(" ", 1)[1]
        for line in lines
        if line.startswith(f"{app}_latency_milliseconds_bucket{{")
    }
    assert buckets == {"100.0": "1.0", "500.0": "3.0", "+Inf": "4.0"}, lines
    assert any(
        re.match(rf"^{app}_latency_milliseconds_count\{{.*\}} 4\.0$", line) for line in lines
    )
    assert not any("user_id" in line for line in lines)


def test_exponential_histogram_points_are_refused_each_with_a_reason(client, api_key):
    """Each exponential histogram data point is one rejected data point, named by its path
    with unsupported_metric_type; the sum beside it is accepted."""
    app = f"app{uuid.uuid4().hex[:8]}"
    exponential = {
        "count": "3",
        "sum": 1.5,
        "scale": 2,
        "zeroCount": "0",
        "positive": {"offset": 1, "bucketCounts": ["1", "2"]},
    }
    body = metrics_request(
        {
            "name": f"{app}.size",
            "unit": "By",
            "exponentialHistogram": {
                "aggregationTemporality": DELTA,
                "dataPoints": [point(exponential), point(exponential)],
            },
        },
        {
            "name": f"{app}.jobs",
            "sum": {
                "aggregationTemporality": DELTA,
                "isMonotonic": True,
                "dataPoints": [point({"asInt": "2"})],
            },
        },
    )

    response = post_otlp(client, api_key.secret, "/v1/metrics", body)

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "2"
    path = "resourceMetrics[0].scopeMetrics[0].metrics[0].exponentialHistogram.dataPoints"
    assert f"{path}[0]: unsupported_metric_type at data" in partial["errorMessage"]
    assert f"{path}[1]: unsupported_metric_type at data" in partial["errorMessage"]
    lines = exposition(client, app)
    assert any(line.startswith(f"{app}_jobs_total{{") for line in lines)
    assert not any(line.startswith(f"{app}_size") for line in lines)


# (name, unit, counter, ratio_gauge) -> Prometheus name: one case per rule of the README.
TRANSLATION_RULES = [
    pytest.param("http.server.active", "", False, False, "http_server_active", id="dots"),
    pytest.param("my-app/queue depth", "", False, False, "my_app_queue_depth", id="other-chars"),
    pytest.param("a..b__c", "", False, False, "a_b_c", id="repeats-folded"),
    pytest.param("rpc.duration", "s", False, False, "rpc_duration_seconds", id="unit-s"),
    pytest.param("rpc.duration", "ms", False, False, "rpc_duration_milliseconds", id="unit-ms"),
    pytest.param("payload.size", "By", False, False, "payload_size_bytes", id="unit-By"),
    pytest.param("rpc_seconds", "s", False, False, "rpc_seconds", id="unit-already-suffix"),
    pytest.param("io.rate", "1/s", False, True, "io_rate_per_second", id="per-unit"),
    pytest.param("net.io", "By/s", False, True, "net_io_bytes_per_second", id="unit-per-unit"),
    pytest.param("http.requests", "{request}", True, False, "http_requests_total", id="braces"),
    pytest.param("cpu.utilization", "1", False, True, "cpu_utilization_ratio", id="ratio-gauge"),
    pytest.param("jobs", "1", True, False, "jobs_total", id="one-on-a-counter"),
    pytest.param("jobs", "", True, False, "jobs_total", id="counter-total"),
    pytest.param("jobs_total", "", True, False, "jobs_total", id="total-not-doubled"),
    pytest.param("bytes.sent", "By", True, False, "bytes_sent_bytes_total", id="unit-then-total"),
    pytest.param("5xx.count", "", False, False, "_5xx_count", id="leading-digit"),
]


@pytest.mark.parametrize(("name", "unit", "counter", "ratio", "expected"), TRANSLATION_RULES)
def test_prometheus_name_translation(name, unit, counter, ratio, expected):
    assert prometheus_name(name, unit, counter=counter, ratio_gauge=ratio) == expected


def test_metrics_received_over_otlp_count_as_emitted_for_check_conformance(
    client, api_key, tmp_path, capsys
):
    """An alert on an OTLP counter passes check_conformance once the counter was received;
    one on a metric never received fails (exit 1, named)."""
    app = f"app{uuid.uuid4().hex[:8]}"
    body = metrics_request(
        {
            "name": f"{app}.payments.failed",
            "sum": {
                "aggregationTemporality": DELTA,
                "isMonotonic": True,
                "dataPoints": [point({"asInt": "3"})],
            },
        }
    )
    assert post_otlp(client, api_key.secret, "/v1/metrics", body).status_code == 200
    good = tmp_path / "good.yaml"
    good.write_text(
        "groups:\n- name: payments\n  rules:\n  - alert: PaymentsFailing\n"
        f"    expr: rate({app}_payments_failed_total[5m]) > 0\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "groups:\n- name: payments\n  rules:\n  - alert: RefundsFailing\n"
        f"    expr: rate({app}_refunds_failed_total[5m]) > 0\n"
    )

    call_command("check_conformance", str(good), "--format", "json")

    with pytest.raises(SystemExit) as failed:
        call_command("check_conformance", str(bad), "--format", "json")
    assert failed.value.code == 1
    assert f"{app}_refunds_failed_total" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x0a\xff\xff\xff garbage", "application/x-protobuf"),
        (b'{"resourceMetrics": [{"scopeMetrics": "many"}]}', "application/json"),
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "sum": '
            b'{"dataPoints": [{"asInt": "seven"}]}}]}]}]}',
            "application/json",
        ),
    ],
)
def test_unparseable_metrics_are_400_with_a_reason_in_the_request_encoding(
    client, api_key, body, content_type
):
    response = post_otlp(client, api_key.secret, "/v1/metrics", body, content_type=content_type)
    assert response.status_code == 400
    assert response["Content-Type"] == content_type
    if content_type == "application/json":
        assert response.json()["code"] == 3 and response.json()["message"]
    else:
        status = Status.FromString(response.content)
        assert status.code == 3 and status.message.startswith("malformed_protobuf:")
