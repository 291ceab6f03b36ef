"""The OTLP log mapping as plain data: routes read per policy epoch, matched per record."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase

from telemetry_platform.conf import telemetry_settings

from .models import OtlpLogRoute
from .selectors import policy_epoch_get


@dataclass(frozen=True, slots=True)
class LogRoute:
    """One route: patterns (blank matches anything) and the schema it sends records to."""

    name: str
    match_event_name: str
    match_scope: str
    match_service: str
    schema_name: str  # blank: the matching records are rejected

    def matches(self, event_name: str, scope: str, service: str) -> bool:
        """Return True if a record of ``event_name`` from ``scope`` and ``service`` matches."""
        return all(
            not pattern or fnmatchcase(value, pattern)
            for pattern, value in (
                (self.match_event_name, event_name),
                (self.match_scope, scope),
                (self.match_service, service),
            )
        )


def route_for(
    routes: tuple[LogRoute, ...], *, event_name: str, scope: str, service: str
) -> LogRoute | None:
    """The first route (in priority order) a record matches, or None."""
    for route in routes:
        if route.matches(event_name, scope, service):
            return route
    return None


class LogRouteCache:
    """Per-process copy of the routes, reloaded when the policy epoch moves (route changes
    bump it), read at most once per PLAN_REFRESH_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._checked_at = 0.0
        self._routes: tuple[LogRoute, ...] = ()

    def get(self) -> tuple[LogRoute, ...]:
        """The routes in priority order, as of the last epoch read."""
        now = time.monotonic()
        if self._epoch is not None and now - self._checked_at < (
            telemetry_settings.PLAN_REFRESH_SECONDS
        ):
            return self._routes
        epoch = policy_epoch_get()
        with self._lock:
            if epoch != self._epoch:
                self._routes = tuple(
                    LogRoute(
                        route.name,
                        route.match_event_name,
                        route.match_scope,
                        route.match_service,
                        route.schema_name,
                    )
                    for route in OtlpLogRoute.objects.all()
                )
                self._epoch = epoch
            self._checked_at = now
        return self._routes

    def clear(self) -> None:
        """Forget the routes (tests, and after a change in this process)."""
        with self._lock:
            self._epoch = None
            self._routes = ()


otlp_log_routes = LogRouteCache()
