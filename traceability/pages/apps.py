from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "traceability.pages"
    label = "pages"
    verbose_name = "Web pages"
