from django.urls import path

from traceability.epcis import views

app_name = "epcis"

# EPC URNs and Digital Links contain colons and slashes: path converters, and fixed suffixes.
urlpatterns = [
    path("capture", views.CaptureView.as_view(), name="capture"),
    path("capture/<int:capture_id>", views.CaptureDetailView.as_view(), name="capture-detail"),
    path("events", views.EventsView.as_view(), name="events"),
    path("events/<path:event_id>", views.EventDetailView.as_view(), name="event-detail"),
    path("epcs/<path:epc>/events", views.EpcEventsView.as_view(), name="epc-events"),
    path("eventTypes", views.EventTypesView.as_view(), name="event-types"),
]
