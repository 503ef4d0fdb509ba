"""What every API view shares: JSON only, token or session auth, documented errors, strict filters."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from authority import policy
from edges.api.pagination import Pages
from edges.api.parsers import JSONParser
from edges.api.schema import ApiSchema
from edges.api.serializers.bound import validated
from h2h_core.models import Case

User = get_user_model()


class ApiMixin:
    """JSON only, token or session auth, documented errors."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]
    schema = ApiSchema()


def query(serializer_class, request) -> dict:
    """Validate the query string with `serializer_class`; bad filters are a 400, not an empty list.

    A plain dict, not the QueryDict: DRF reads a blank form value as "absent", so `?status=` would
    quietly list everything; here a blank value is checked like any other and refused.
    """
    asked = validated(serializer_class, {key: request.query_params.get(key) for key in request.query_params})
    return {key: value for key, value in asked.items() if value is not None}


def body(serializer_class, request) -> dict:
    """Validate the request's body with `serializer_class` (a serializer kept per process reads it)."""
    return validated(serializer_class, request.data)


#: What the views read with a case they may see (the evaluation reads the customer and the owner).
VISIBLE_CASE_RELATED = ("customer", "team", "owner")
NOT_VISIBLE = "No such case, or you may not see it."


def visible_case(user, pk: int) -> Case:
    """Return the case if the caller may see it; otherwise 404, whether or not it exists."""
    case = policy.case_visible_to(user, pk, related=VISIBLE_CASE_RELATED)
    if case is None:
        raise NotFound(NOT_VISIBLE)
    return case


def user_named(username: str, *, field: str):
    if username == "me":
        raise ValidationError({field: ["Give a username here, not `me`."]})
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationError({field: [f"No user is called {username!r}."]})
    return user


def username_or_me(request, username: str) -> str:
    """A username filter where `me` names the caller."""
    return request.user.get_username() if username == "me" else username


class ResourceViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A listed, numbered resource: filters validated by `query_class`, applied by `filter_list`.

    `render` answers with one row read afresh (`rendered`: the queryset that loads what the output serializer
    shows), not through the caller's visibility: a step may have just moved the row out of it.
    """

    pagination_class = Pages
    lookup_value_regex = "[0-9]+"
    query_class: type | None = None

    def filter_queryset(self, queryset):
        if self.action != "list" or self.query_class is None:
            return queryset
        return self.filter_list(queryset, query(self.query_class, self.request))

    def filter_list(self, queryset: QuerySet, filters: dict) -> QuerySet:
        return queryset

    def rendered(self) -> QuerySet:
        raise NotImplementedError

    def render(self, obj: Model, *, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer_class()(self.rendered().get(pk=obj.pk)).data, status=code)

    def created(self, obj: Model) -> Response:
        """201 with the new row, and where it lives (the list path plus its id)."""
        response = self.render(obj, code=status.HTTP_201_CREATED)
        response["Location"] = f"{self.request.path}{obj.pk}/"
        return response
