"""telemetry-client schema-check against a live server: exit 0, 1 (annotations), 2."""

from __future__ import annotations

import io
import json

import pytest

from ingest.services import api_key_create
from telemetry_client.cli import main
from tests.factories import (
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_schema_register,
)

BROKEN = CLIENT_TELEMETRY_PROTO.replace("uint32 attempt = 1;", "string attempt = 1;")


@pytest.fixture
def server(live_server, platform_config):
    client_telemetry_schema_register()
    key = api_key_create(name="ci", kind="schema_check", actor=None).secret
    return live_server.url, key


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A client repository checked out in the working directory, protos under proto/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "proto").mkdir()
    return tmp_path / "proto"


def run(server, *args: str) -> tuple[int, str]:
    url, key = server
    out = io.StringIO()
    status = main(
        ["schema-check", *args, "--name", CLIENT_TELEMETRY_SCHEMA, "--url", url, "--key", key],
        stdout=out,
    )
    return status, out.getvalue()


def test_compatible_change_exits_0(server, repo):
    """An additive change is compatible: exit 0 and a one-line verdict."""
    added = CLIENT_TELEMETRY_PROTO.replace(
        "uint32 attempt = 1;", "uint32 attempt = 1;\n  bool cold = 99;"
    )
    (repo / "client_telemetry.proto").write_text(added)
    status, output = run(server, "proto")
    assert status == 0
    assert output == f"{CLIENT_TELEMETRY_SCHEMA}: compatible under WIRE_JSON\n"


def test_breaking_change_exits_1_with_github_annotations(server, repo):
    """A breaking change exits 1 and prints a GitHub error annotation on file and line."""
    (repo / "client_telemetry.proto").write_text(BROKEN)
    status, output = run(server, "proto", "--format", "github")
    assert status == 1
    line = BROKEN.splitlines().index("  string attempt = 1;") + 1
    assert output.splitlines()[0].startswith(
        f"::error file=proto/client_telemetry.proto,line={line},"
        "title=FIELD_WIRE_JSON_COMPATIBLE_TYPE::reconnect.attempt: uint32 attempt = 1 -> "
        "string attempt = 1 (against v1). "
    )
    assert len(output.splitlines()) == 1


def test_breaking_change_text_and_json_formats(server, repo):
    """Text names file:line, rule, path, old and new; JSON is the server's answer."""
    (repo / "client_telemetry.proto").write_text(BROKEN)
    status, text = run(server, "proto")
    assert status == 1
    assert "proto/client_telemetry.proto:" in text
    assert (
        "FIELD_WIRE_JSON_COMPATIBLE_TYPE at reconnect.attempt (against v1): uint32 attempt = 1 "
        "-> string attempt = 1." in text
    )
    status, raw = run(server, "proto", "--format", "json")
    assert status == 1
    answer = json.loads(raw)
    assert answer["compatible"] is False
    assert [v["rule"] for v in answer["violations"]] == ["FIELD_WIRE_JSON_COMPATIBLE_TYPE"]


def test_sources_that_do_not_compile_exit_2_with_an_annotation(server, repo):
    """A syntax error is unusable input: exit 2, protoc's line as an annotation."""
    (repo / "client_telemetry.proto").write_text(BROKEN.replace("string attempt = 1;", "strin g;"))
    status, output = run(server, "proto", "--format", "github")
    assert status == 2
    assert output.startswith("::error file=proto/client_telemetry.proto,line=")
    assert "title=proto_compile_error::" in output


@pytest.mark.parametrize("problem", ["empty", "unknown-schema", "bad-key"])
def test_other_unusable_input_exits_2(server, repo, problem):
    """No sources, an unknown schema or a refused key: exit 2 with the reason."""
    url, key = server
    if problem != "empty":
        (repo / "client_telemetry.proto").write_text(CLIENT_TELEMETRY_PROTO)
    name = "openagents.sync.nope.v1" if problem == "unknown-schema" else CLIENT_TELEMETRY_SCHEMA
    key = "tgp_000000000000_nope" if problem == "bad-key" else key
    out = io.StringIO()
    status = main(["schema-check", "proto", "--name", name, "--url", url, "--key", key], stdout=out)
    assert status == 2
    expected = {"empty": "no .proto files", "unknown-schema": "HTTP 404", "bad-key": "HTTP 401"}
    assert expected[problem] in out.getvalue()
    if problem == "bad-key":
        assert key not in out.getvalue()
