"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from .tracing import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_platform.settings")

# Under gunicorn the post_fork hook has done this already; runserver gets it here. It must
# precede get_wsgi_application(), which fixes the middleware list.
tracing_configure()
application = get_wsgi_application()
