"""Erasure of one data subject's events: bounded batches under a lock, holds kept, a certificate.

Resumable: each batch commits with the request's progress, and a new run (after a
killed worker) starts where the rows left off, since the rows erased are gone. A
session-level advisory lock per request keeps two workers from running the same one;
it dies with the worker's connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ingest.chain import keyed_digest, keyed_digest_valid
from ingest.erasure import events_erase
from ingest.platform_audit import audit_event_record
from telemetry_platform.conf import telemetry_settings
from telemetry_platform.locks import advisory_key, session_lock_try

from .models import SubjectRequest
from .selectors import holds_active, subject_counts, subject_rows_held, subject_rows_unheld

Status = SubjectRequest.Status
RUNNABLE = (Status.APPROVED, Status.RUNNING, Status.RETAINED)
CERTIFICATE_VERSION = "subject-erasure-certificate.v1"


def _lock_key(request_id: int) -> int:
    return advisory_key("privacy-erasure", request_id)


@contextmanager
def erasure_lock(request_id: int) -> Iterator[bool]:
    """Try the request's session-level advisory lock; yield whether it was taken."""
    with session_lock_try(_lock_key(request_id)) as acquired:
        yield acquired


def race_margin_seconds() -> float:
    """How long after the suppression point a batch prepared before it may still commit:
    one plan refresh interval (processes then refuse the subject) and one statement."""
    return (
        telemetry_settings.PLAN_REFRESH_SECONDS
        + telemetry_settings.DB_STATEMENT_TIMEOUT_MS / 1000
        + 0.5
    )


def subject_request_erase(
    *, request_id: int, batch_size: int = 5000, pause_seconds: float = 0.0
) -> SubjectRequest | None:
    """Run (or resume) an approved erasure; return it, or None if another worker runs it.

    A completed erasure is returned as it is (a duplicate task erases and certifies nothing).

    Rows under an active legal hold are kept and listed in the certificate; the request
    then stays ``retained`` and a later run (the beat's) erases them once released.
    """
    with erasure_lock(request_id) as acquired:
        if not acquired:
            return None
        request = SubjectRequest.objects.get(pk=request_id)
        if request.kind == SubjectRequest.Kind.ERASURE and request.status == Status.COMPLETED:
            # A duplicate (queued twice, or redelivered after the worker acknowledged late):
            # the erasure has its certificate; nothing to do.
            return request
        if request.kind != SubjectRequest.Kind.ERASURE or request.status not in RUNNABLE:
            raise ValueError(f"subject request {request_id} is not an approved erasure")
        hashes = list(request.subject_hashes)
        if request.started_at is None:
            request.counts_before = subject_counts(hashes)
            request.started_at = timezone.now()
        request.status = Status.RUNNING
        request.save(update_fields=["counts_before", "started_at", "status"])
        swept_after_margin = False
        while True:
            erased = _erase_batch(request, hashes, batch_size)
            if erased:
                if pause_seconds:
                    time.sleep(pause_seconds)
                continue
            if swept_after_margin:
                break
            # A batch prepared before the processes refreshed their plans may commit
            # just after the suppression point: sweep once more when that cannot be.
            wait = race_margin_seconds() - (timezone.now() - request.suppressed_at).total_seconds()
            if wait > 0:
                time.sleep(wait)
            swept_after_margin = True
        return _certify(request, hashes)


def _erase_batch(request: SubjectRequest, hashes: list[str], batch_size: int) -> int:
    with transaction.atomic():
        # Holds are read in the batch's transaction: a hold placed meanwhile applies.
        rows = subject_rows_unheld(hashes, holds_active(), limit=batch_size)
        erased = events_erase(rows, erased_by=request.reference, erased_at=timezone.now())
        if erased:
            SubjectRequest.objects.filter(pk=request.pk).update(
                rows_erased=F("rows_erased") + erased
            )
        return erased


@transaction.atomic
def _certify(request: SubjectRequest, hashes: list[str]) -> SubjectRequest:
    request.refresh_from_db()
    retained = subject_rows_held(hashes, holds_active())
    finished_at = timezone.now()
    certificate: dict[str, Any] = {
        "version": CERTIFICATE_VERSION,
        "request": request.pk,
        "reference": request.reference,
        "reason": request.reason,
        "ticket": request.ticket,
        "requested_by": request.requested_by.get_username(),
        "approved_by": request.approved_by.get_username() if request.approved_by else None,
        "identifier_kinds": list(request.identifier_kinds),
        "subject_hashes": hashes,
        "created_at": request.created_at.isoformat(),
        "approved_at": request.approved_at.isoformat() if request.approved_at else None,
        "suppressed_at": request.suppressed_at.isoformat() if request.suppressed_at else None,
        "started_at": request.started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "counts_before": request.counts_before,
        "counts_after": subject_counts(hashes),
        "rows_erased": request.rows_erased,
        "rows_retained": sum(entry["rows"] for entry in retained),
        "retained": retained,
        "found_nothing": not request.counts_before,
    }
    request.certificate = certificate
    request.certificate_digest = certificate_digest(certificate)
    request.finished_at = finished_at
    request.status = Status.RETAINED if retained else Status.COMPLETED
    request.save()
    audit_event_record(
        event_name="privacy.erasure.certified",
        actor=None,
        attributes={
            "subject_request": str(request.pk),
            "status": request.status,
            "rows_erased": str(request.rows_erased),
            "rows_retained": str(certificate["rows_retained"]),
            "certificate_digest": request.certificate_digest,
        },
    )
    return request


def _certificate_bytes(certificate: dict[str, Any]) -> bytes:
    return json.dumps(certificate, sort_keys=True, separators=(",", ":")).encode("utf-8")


def certificate_digest(certificate: dict[str, Any]) -> str:
    """Keyed digest (the audit digest key) of a certificate's canonical JSON."""
    key_id = telemetry_settings.AUDIT_DIGEST_KEY_ID
    return keyed_digest(
        _certificate_bytes(certificate),
        key_id=key_id,
        key=telemetry_settings.AUDIT_DIGEST_KEYS[key_id],
    )


def certificate_valid(certificate: dict[str, Any], digest: str) -> bool:
    """Whether ``digest`` is the keyed digest of ``certificate`` (any configured digest key)."""
    return keyed_digest_valid(
        digest, _certificate_bytes(certificate), keys=telemetry_settings.AUDIT_DIGEST_KEYS
    )
