"""What a debug page may show: Django's filter, plus every setting that holds a connection string.

Django hides settings whose names look secret (KEY, SECRET, PASS, TOKEN, …), not DATABASE_URL, REDIS_URL,
CELERY_BROKER_URL or a cache's LOCATION, which carry passwords as often as not. Debug pages are off unless
asked for (DJANGO_DEBUG=true); when they are on, they still show none of these.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class ConnectionSafeReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|LOCATION|HOSTS|DATABASES|CACHES|CHANNEL_LAYERS",
        flags=re.IGNORECASE,
    )
