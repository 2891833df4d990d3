"""/dev/mpesa/: the Daraja simulator's endpoints (mounted only when MPESA_SIMULATOR is on)."""

from django.urls import path

from . import simulator

app_name = "mpesa_simulator"
urlpatterns = [
    path("", simulator.prompts_page, name="prompts"),
    path("oauth/v1/generate", simulator.oauth, name="oauth"),
    path("mpesa/stkpush/v1/processrequest", simulator.stk_push, name="stk_push"),
    path("mpesa/stkpushquery/v1/query", simulator.stk_query, name="stk_query"),
    path(
        "prompts/<str:checkout_request_id>/<str:action>/",
        simulator.answer_prompt,
        name="answer",
    ),
]
