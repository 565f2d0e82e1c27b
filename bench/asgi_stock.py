"""The app with Django's stock ASGI handler, for the benchmarks' comparison with the single-hop one."""

from django.core.asgi import get_asgi_application

from config.asgi import application_for

application = application_for(get_asgi_application())
