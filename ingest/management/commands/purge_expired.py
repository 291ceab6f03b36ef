"""manage.py purge_expired: run the retention purge now, in this process or through Celery."""

from django.core.management.base import BaseCommand, CommandError

from governance.models import EventClass
from ingest.services import events_purge_expired
from ingest.tasks import purge_expired_events


class Command(BaseCommand):
    help = "Delete events older than their class retention (the task beat runs hourly)."

    def add_arguments(self, parser):
        parser.add_argument("--event-class", default=None, help="only this event class")
        parser.add_argument(
            "--async",
            action="store_true",
            dest="use_celery",
            help="enqueue the Celery task instead",
        )

    def handle(self, *args: object, **options: object) -> None:
        event_class = options["event_class"]
        if event_class and not EventClass.objects.filter(name=event_class).exists():
            raise CommandError(f"no event class {event_class!r}")
        if options["use_celery"]:
            result = purge_expired_events.delay(event_class)
            self.stdout.write(f"Enqueued purge task {result.id}.")
            return
        result = events_purge_expired(event_class=event_class)
        for name, deleted in result.deleted.items():
            cutoff = result.cutoffs[name].isoformat(timespec="seconds")
            self.stdout.write(f"{name}: deleted {deleted} events older than {cutoff}")
        self.stdout.write(self.style.SUCCESS(f"Purged {result.total_deleted} events."))
