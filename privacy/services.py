"""Writes of data-subject requests: submit, approve (four eyes), reject, lift a suppression."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.services import suppression_epoch_bump
from ingest.platform_audit import audit_event_record

from .identifiers import IdentifierError, subject_hashes_from
from .models import SubjectRequest
from .tasks import erase_subject

Kind = SubjectRequest.Kind
Status = SubjectRequest.Status
SUBMIT_PERMISSION = "privacy.add_subjectrequest"
APPROVE_PERMISSION = "privacy.approve_subjectrequest"


class SubjectRequestError(Exception):
    """A request cannot be made or moved on; ``code`` says why (an API error code)."""

    def __init__(self, code: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _audit(event_name: str, request: SubjectRequest, actor: AbstractBaseUser | None, **extra: str):
    # Never the hashes nor the identifiers: that a request exists, its kind and state.
    audit_event_record(
        event_name=event_name,
        actor=actor,
        attributes={
            "subject_request": str(request.pk),
            "kind": request.kind,
            "status": request.status,
            **extra,
        },
    )


@transaction.atomic
def subject_request_submit(
    *,
    kind: str,
    identifiers: Mapping[str, Sequence[str]] | None,
    reason: str,
    actor: AbstractBaseUser,
    ticket: str = "",
    lifts: SubjectRequest | None = None,
) -> SubjectRequest:
    """Record a request from raw identifiers (hashed here; the values are not kept).

    An access request is answered at once (its export is read on demand) and a
    suppression applies at once (it only protects); an erasure and the lifting of a
    suppression wait for another person's approval.
    """
    if not actor.has_perm(SUBMIT_PERMISSION):
        raise SubjectRequestError("forbidden", "you may not submit data-subject requests")
    if kind not in Kind.values:
        raise SubjectRequestError("invalid_kind", f"one of {', '.join(Kind.values)}", field="kind")
    if not reason or not reason.strip():
        raise SubjectRequestError("missing_reason", "a reason is required", field="reason")
    if kind == Kind.SUPPRESSION_LIFT:
        if lifts is None or lifts.suppressed_at is None or lifts.suppression_lifted_at:
            raise SubjectRequestError(
                "not_suppressed", "name a request whose suppression is in force", field="lifts"
            )
        hashes, kinds = list(lifts.subject_hashes), list(lifts.identifier_kinds)
    else:
        try:
            hashes = subject_hashes_from(identifiers or {})
        except IdentifierError as exc:
            raise SubjectRequestError("invalid_identifiers", exc.message, field=exc.field) from None
        kinds = sorted(identifiers or {})
    now = timezone.now()
    request = SubjectRequest.objects.create(
        kind=kind,
        subject_hashes=hashes,
        identifier_kinds=kinds,
        reason=reason.strip()[:300],
        ticket=ticket.strip()[:100],
        requested_by=actor,
        lifts=lifts if kind == Kind.SUPPRESSION_LIFT else None,
        status=Status.PROPOSED,
    )
    if kind == Kind.ACCESS:
        request.status, request.finished_at = Status.COMPLETED, now
    elif kind == Kind.SUPPRESSION:
        request.status, request.suppressed_at, request.finished_at = Status.COMPLETED, now, now
        suppression_epoch_bump()
    request.save()
    _audit("privacy.subject_request.submitted", request, actor, ticket=request.ticket)
    return request


@transaction.atomic
def subject_request_approve(*, request: SubjectRequest, actor: AbstractBaseUser) -> SubjectRequest:
    """Approve a proposed erasure or suppression lift: by someone other than who asked.

    An approved erasure suppresses the subject in the same transaction (ingest refuses
    their events from the next plan refresh on) and is queued for a worker on commit.
    """
    request = SubjectRequest.objects.select_for_update().get(pk=request.pk)
    if not actor.has_perm(APPROVE_PERMISSION):
        raise SubjectRequestError("forbidden", "you may not approve data-subject requests")
    if request.status != Status.PROPOSED:
        raise SubjectRequestError("not_proposed", f"the request is {request.status}")
    if request.requested_by_id == actor.pk:
        raise SubjectRequestError("four_eyes", "another person must approve your request")
    now = timezone.now()
    request.approved_by, request.approved_at = actor, now
    if request.kind == Kind.ERASURE:
        request.status, request.suppressed_at = Status.APPROVED, now
        request.save()
        transaction.on_commit(lambda: erase_subject.delay(request.pk))
    elif request.kind == Kind.SUPPRESSION_LIFT:
        request.status, request.finished_at = Status.COMPLETED, now
        request.save()
        SubjectRequest.objects.filter(pk=request.lifts_id).update(suppression_lifted_at=now)
    else:
        raise SubjectRequestError("not_reviewed", "this kind of request needs no approval")
    suppression_epoch_bump()
    _audit("privacy.subject_request.approved", request, actor)
    return request


@transaction.atomic
def subject_request_reject(*, request: SubjectRequest, actor: AbstractBaseUser) -> SubjectRequest:
    """Refuse a proposed request (any approver, the requester included: withdrawing)."""
    request = SubjectRequest.objects.select_for_update().get(pk=request.pk)
    if not actor.has_perm(APPROVE_PERMISSION) and request.requested_by_id != actor.pk:
        raise SubjectRequestError("forbidden", "you may not reject data-subject requests")
    if request.status != Status.PROPOSED:
        raise SubjectRequestError("not_proposed", f"the request is {request.status}")
    request.status, request.finished_at = Status.REJECTED, timezone.now()
    request.save()
    _audit("privacy.subject_request.rejected", request, actor)
    return request


def subject_request_download_record(
    *, request: SubjectRequest, actor: AbstractBaseUser, what: str
) -> None:
    """Record that someone downloaded a request's certificate or its access export
    (``what``: certificate, export.jsonl, export.csv): who took a copy is part of the trail."""
    _audit("privacy.subject_request.downloaded", request, actor, download=what)
