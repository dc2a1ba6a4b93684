import os

from django.core.wsgi import get_wsgi_application

from traceability.core.runtime import heap_settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traceability.settings")

application = get_wsgi_application()
heap_settle(urls=True)  # loaded: out of the garbage collector's full collections
