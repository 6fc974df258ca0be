from django.urls import path

from keyfob.support import views

app_name = "support"
urlpatterns = [
    path("", views.list_view, name="list"),
    path("new/", views.new_view, name="new"),
    path("<int:pk>/", views.detail_view, name="detail"),
    path("<int:pk>/call/", views.call_view, name="call"),
    path("<int:pk>/documents/<str:kind>/", views.document_view, name="document"),
    path("<int:pk>/code/send/", views.send_code_view, name="send-code"),
    path("<int:pk>/code/check/", views.check_code_view, name="check-code"),
    path("<int:pk>/disable/", views.disable_view, name="disable"),
    path("<int:pk>/cancel/", views.staff_cancel_view, name="cancel-request"),
    path("<int:pk>/address/", views.change_address_view, name="change-address"),
    # The customer's side: reached from the sign-in's code page, and from an e-mail.
    path("request/", views.open_view, name="open"),
    path("cancel/<str:value>/", views.cancel_link_view, name="cancel"),
    # "I no longer have access to my e-mail address", from "Can't sign in?".
    path("lost-email/", views.lost_email_view, name="lost-email"),
    path("lost-email/code/", views.lost_email_code_view, name="lost-email-code"),
    path("lost-email/sent/", views.lost_email_sent_view, name="lost-email-sent"),
]
