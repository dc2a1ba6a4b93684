from django.urls import path

from traceability.epcis import views

app_name = "epcis"

urlpatterns = [
    path("capture", views.CaptureView.as_view(), name="capture"),
    path("capture/<int:capture_id>", views.CaptureDetailView.as_view(), name="capture-detail"),
    path("events", views.EventsView.as_view(), name="events"),
]
