"""Routes of the privacy API (mounted under /api/v1/)."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "subject-requests", views.SubjectRequestSubmitApi.as_view(), name="subject-request-submit"
    ),
    path("subject-requests/<int:pk>", views.SubjectRequestDetailApi.as_view()),
    path("subject-requests/<int:pk>/approve", views.SubjectRequestApproveApi.as_view()),
    path("subject-requests/<int:pk>/certificate", views.SubjectRequestCertificateApi.as_view()),
    path("subject-requests/<int:pk>/summary", views.SubjectRequestSummaryApi.as_view()),
    path("subject-requests/<int:pk>/export", views.SubjectRequestExportApi.as_view()),
]
