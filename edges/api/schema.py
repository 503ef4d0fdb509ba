"""OpenAPI generation: every operation documents the error responses it can give, in the one error shape."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularSwaggerSplitView

from edges.api.serializers.common import ErrorSerializer

ERRORS_EVERYWHERE = {
    "400": "Invalid input (query string, body or header); `details` names the fields.",
    "401": "No or invalid credentials.",
    "403": "Not allowed: a role or a domain rule refused it (a refused decision carries its verdict).",
    "404": "No such resource, or not visible to you.",
    "406": "Only application/json responses are offered.",
}
ERRORS_ON_WRITES = {
    "409": "The state forbids it (case not open, already decided), or the same Idempotency-Key is still running.",
    "415": "Send application/json.",
    "422": "This Idempotency-Key was already used with a different request.",
}


class ApiSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the documented error responses of each operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(ERRORS_EVERYWHERE)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(ERRORS_ON_WRITES)
        errors.update(getattr(self.view, "extra_error_responses", {}))
        for status, description in errors.items():
            if status not in responses:
                response = self._get_response_for_code(ErrorSerializer, status, direction=direction)
                response["description"] = description
                responses[status] = response
        return responses


class SwaggerUI(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar: no CDN, its script served from 'self' (the CSP allows no inline
    script), and no badge fetched from the public validator."""

    def _dump(self, data):
        if isinstance(data, dict) and data == dict(spectacular_settings.SWAGGER_UI_SETTINGS):
            data = {**data, "validatorUrl": None}
        return super()._dump(data)
