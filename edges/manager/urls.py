from django.urls import path

from edges.manager import ai_agents, ai_vs_human, grants, hand_offs, shadow, team, views

urlpatterns = [
    path("", views.my_authority, name="mine"),
    # The manager console.
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve/", views.approve, name="approve"),
    path("approvals/<int:pk>/reject/", views.reject, name="reject"),
    path("pending/", views.pending_grants, name="pending"),
    path("pending/<int:pk>/confirm/", views.check_grant, {"outcome": "confirm"}, name="confirm"),
    path("pending/<int:pk>/reject/", views.check_grant, {"outcome": "reject"}, name="reject_grant"),
    path("matrix/", grants.matrix, name="matrix"),
    path("grants/new/", grants.grant_new, name="grant_new"),
    path("grants/<int:pk>/edit/", grants.grant_edit, name="grant_edit"),
    path("grants/<int:pk>/end/", grants.grant_end_view, name="grant_end"),
    path("people/", team.people, name="people"),
    path("delegations/", team.delegations, name="delegations"),
    path("delegations/<int:pk>/revoke/", team.delegation_revoke_view, name="delegation_revoke"),
    path("what-if/", team.what_if, name="what_if"),
    path("dashboard/", team.dashboard, name="dashboard"),
    path("shadow/", shadow.shadow_decisions, name="shadow"),
    path("hand-offs/", hand_offs.hand_offs, name="hand_offs"),
    path("ai-vs-human/", ai_vs_human.ai_vs_human, name="ai_vs_human"),
    path("ai-vs-human.csv", ai_vs_human.ai_vs_human_csv, name="ai_vs_human_csv"),
    path("ai-agents/", ai_agents.ai_agents, name="ai_agents"),
    path("ai-agents/new/", ai_agents.ai_agent_new, name="ai_agent_new"),
    path("ai-agents/<int:pk>/", ai_agents.ai_agent_detail, name="ai_agent"),
    path("ai-agents/<int:pk>/suspend/", ai_agents.ai_agent_suspend_view, name="ai_agent_suspend"),
    path("ai-agents/<int:pk>/reinstate/", ai_agents.ai_agent_reinstate_view, name="ai_agent_reinstate"),
    path("ai-agents/<int:pk>/token/", ai_agents.ai_agent_token_view, name="ai_agent_token"),
    path("ai-agents/<int:pk>/hand-off-cases/", ai_agents.ai_agent_hand_off_cases_view,
         name="ai_agent_hand_off_cases"),
]
