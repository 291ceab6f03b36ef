"""The built web emitter run by Node as a desktop shell's main process runs it, against the
live server: no sendBeacon, pagehide or localStorage, Node's fetch (which sends no
``Origin``), a file for storage, ``close()`` awaited on quit."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from ingest.models import ApiKey, Event
from ingest.services import api_key_create
from tests.factories import CLIENT_TELEMETRY_SCHEMA, REPO_ROOT, client_telemetry_schema_register

EMITTER = REPO_ROOT / "clients/web/dist/index.js"

# What a desktop shell's main process does (see clients/web/README.md): an emitter with the
# fetch transport and a file store, events, then `await emitter.close()` on before-quit.
SHELL = """
import { createEmitter, fetchTransport } from %(module)s;
import { readFileSync, writeFileSync, existsSync } from "node:fs";
const path = %(store)s;
const read = () => (existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : {});
const storage = {
  getItem: (k) => read()[k] ?? null,
  setItem: (k, v) => writeFileSync(path, JSON.stringify({ ...read(), [k]: v })),
  removeItem: (k) => { const all = read(); delete all[k]; writeFileSync(path, JSON.stringify(all)); },
};
const emitter = createEmitter({
  endpoint: %(endpoint)s, apiKey: %(key)s, transport: fetchTransport(fetch),
  storage, persistKey: "unsent", lifecycle: null, flushIntervalMs: 600000,
  base: { surface: "CLIENT_SURFACE_DESKTOP", client_build_id: "desktop-7", app_version: "2.3.0" },
});
for (let i = 0; i < 3; i++) emitter.emit({ reconnect: { attempt: i + 1, reason_code: "desktop" } });
await emitter.close();  // before-quit
console.log(JSON.stringify({ stats: emitter.stats(), queued: emitter.queue.size,
                             stored: storage.getItem("unsent") }));
"""


def run_shell(tmp_path, endpoint: str, key: str) -> dict:
    node = shutil.which("node")
    if node is None or not EMITTER.is_file():
        pytest.fail("node or clients/web/dist missing: run `make web-client`", pytrace=False)
    script = tmp_path / "shell.mjs"
    script.write_text(
        SHELL
        % {
            "module": json.dumps(EMITTER.as_uri()),
            "store": json.dumps(str(tmp_path / "telemetry.json")),
            "endpoint": json.dumps(endpoint),
            "key": json.dumps(key),
        }
    )
    completed = subprocess.run(
        [node, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(completed.stdout)


def desktop_key(*, allow_no_origin: bool) -> str:
    return api_key_create(
        name=f"desktop-{allow_no_origin}",
        source="desktop-shell",
        actor=None,
        kind=ApiKey.Kind.PUBLISHABLE,
        allowed_schemas=[CLIENT_TELEMETRY_SCHEMA],
        allowed_surfaces=["CLIENT_SURFACE_DESKTOP"],
        allowed_origins=["https://app.example.com"],
        allow_no_origin=allow_no_origin,
    ).secret


@pytest.mark.django_db(transaction=True)
def test_a_desktop_shell_emits_through_the_emitter_with_a_key_allowing_no_origin(
    live_server, platform_config, tmp_path
):
    client_telemetry_schema_register()
    result = run_shell(
        tmp_path, f"{live_server.url}/api/v1/events", desktop_key(allow_no_origin=True)
    )
    assert result["stats"]["sent"] == 3 and result["stats"]["rejected"] == 0, result
    assert result["queued"] == 0 and result["stored"] is None
    events = list(Event.objects.filter(source="desktop-shell"))
    assert sorted(int(e.payload["reconnect"]["attempt"]) for e in events) == [1, 2, 3]
    assert {e.payload["surface"] for e in events} == {"CLIENT_SURFACE_DESKTOP"}


@pytest.mark.django_db(transaction=True)
def test_a_shell_without_origin_is_refused_unless_the_key_allows_it(
    live_server, platform_config, tmp_path
):
    """403 origin_required is not retried: counted as rejected, nothing stored or kept."""
    client_telemetry_schema_register()
    result = run_shell(
        tmp_path, f"{live_server.url}/api/v1/events", desktop_key(allow_no_origin=False)
    )
    assert result["stats"]["sent"] == 0 and result["stats"]["rejected"] == 3, result
    assert result["stored"] is None
    assert not Event.objects.filter(source="desktop-shell").exists()
