"""App configuration for ingest."""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"

    def ready(self) -> None:
        """Install the event store's side of governance's ports (governance.ports)."""
        # Imported here, once the app registry is ready: these modules use the models.
        from governance.ports import ports_install

        from .catalogue import metric_catalogue
        from .partitions import event_class_partition_ensure
        from .platform_audit import audit_event_record
        from .retention import purge_preview
        from .selectors import stored_events_latest

        ports_install(
            audit_event_record=audit_event_record,
            event_class_partition_ensure=event_class_partition_ensure,
            purge_preview=purge_preview,
            stored_events_latest=stored_events_latest,
            metric_catalogue=metric_catalogue,
        )
