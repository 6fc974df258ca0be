"""Account → Team; site/urls.py mounts these under /account/ in the `account` namespace."""

from django.urls import URLPattern, path

from keyfob.teams import views

urlpatterns: list[URLPattern] = [
    path("team/", views.team_view, name="team"),
    path("team/invite/", views.invite_view, name="team-invite"),
    path("team/defaults/", views.defaults_view, name="team-defaults"),
    path("team/members/<int:pk>/", views.grant_view, name="team-grant"),
    path("team/members/<int:pk>/remove/", views.remove_view, name="team-remove"),
    path("team/invitations/<int:pk>/withdraw/", views.withdraw_view, name="team-withdraw"),
    path("team/invitations/<int:pk>/accept/", views.accept_view, name="team-accept"),
    path("team/invitations/<int:pk>/decline/", views.decline_view, name="team-decline"),
    path("team/acting/<int:pk>/leave/", views.leave_view, name="team-leave"),
]
