"""Admin forms of governance: registering a schema from uploaded .proto files."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from .choices import RevisionStatus
from .models import EventClass

MAX_PROTO_BYTES = 1024 * 1024


def json_object_parse(text: str) -> dict[str, Any]:
    """A sample event typed into a form: a JSON object, or a ValidationError that says
    why (never the value, never a 500 for a number too long or nesting too deep)."""
    try:
        sample = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"not valid JSON (line {exc.lineno})") from None
    except (ValueError, RecursionError):
        raise forms.ValidationError(
            "not valid JSON here: a number too long or nesting too deep"
        ) from None
    if not isinstance(sample, dict):
        raise forms.ValidationError("the sample must be a JSON object")
    return sample


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class SchemaRegisterForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="e.g. openagents.sync.client_telemetry.v1")
    event_class = forms.ModelChoiceField(
        queryset=EventClass.objects.order_by("name"),
        required=False,
        help_text="Required for a new schema; a new revision keeps its schema's class.",
    )
    message = forms.CharField(
        max_length=300, help_text="Fully qualified event message, e.g. pkg.v1.Event"
    )
    files = MultipleFileField(help_text=".proto files (every file the schema needs; 1 MiB each)")
    roles = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Optional explicit roles, one ROLE=FIELD_PATH per line (e.g. occurred_at=ts).",
    )
    status = forms.ChoiceField(choices=RevisionStatus.choices, initial=RevisionStatus.ACTIVE)

    def clean_files(self) -> dict[str, str]:
        sources = {}
        for upload in self.cleaned_data["files"]:
            if upload.size > MAX_PROTO_BYTES:
                raise forms.ValidationError(f"{upload.name} is larger than 1 MiB")
            try:
                sources[upload.name] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError(f"{upload.name} is not UTF-8 text") from None
        return sources

    def clean_roles(self) -> dict[str, str]:
        roles = {}
        for line in self.cleaned_data["roles"].splitlines():
            if not line.strip():
                continue
            role, sep, path = line.partition("=")
            if not sep or not role.strip() or not path.strip():
                raise forms.ValidationError(f"expected ROLE=FIELD_PATH, got {line.strip()!r}")
            roles[role.strip()] = path.strip()
        return roles
