"""Who is calling, and what they may do: Airflow's own authentication and permissions.

A plugin's FastAPI app is mounted beside Airflow's API and inherits none of its checks, so every
route depends on :func:`current_user` (Airflow's ``get_user``: the bearer token, or the UI's JWT
cookie) and asks Airflow's auth manager before it shows or triggers anything. Airflow is imported
inside the functions: ``include/modelops`` never imports it at module level (tests/unit/test_import_rules.py),
and the plugin file must import quickly.

Each piece is a small FastAPI dependency so tests swap it through ``app.dependency_overrides``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, HTTPException, Request, status

log = logging.getLogger(__name__)

Method = Literal["GET", "POST"]


async def current_user(request: Request) -> Any:
    """The signed-in Airflow user, or 401 when the request carries no valid credential.

    Calls Airflow's ``get_user`` with what its own dependencies would have extracted (the
    ``Authorization: Bearer`` header through Airflow's ``bearer_scheme``; the cookie it reads itself).
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    return await get_user(request, None, credentials)


def login_url(next_url: str) -> str:
    """Where Airflow's auth manager signs people in, coming back to ``next_url`` afterwards."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=next_url)


class Authorizer(Protocol):
    def allowed(self, user: Any, method: Method, dag_id: str) -> bool: ...


class AirflowAuthorizer:
    """Asks the configured auth manager about the runs of one DAG (what a Models page shows and
    what its actions create)."""

    def allowed(self, user: Any, method: Method, dag_id: str) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        return get_auth_manager().is_authorized_dag(
            method=method, access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
        )


_AIRFLOW_AUTHORIZER = AirflowAuthorizer()


def authorizer() -> Authorizer:
    return _AIRFLOW_AUTHORIZER


def user_name(user: Any) -> str:
    try:
        return str(user.get_name())
    except Exception:  # a user object without a name must not hide the real error
        return "this user"


def refusal(user: Any, method: Method, dag_id: str) -> str:
    """The 403 message: who, which permission, which DAG, and what to ask for."""
    permission = "read" if method == "GET" else "trigger"
    return (
        f"{user_name(user)} may not {permission} runs of DAG {dag_id} "
        f"(Airflow permission: {method} on DAG runs of {dag_id}). Ask an Airflow admin for it."
    )


def require(authz: Authorizer, user: Any, method: Method, dag_id: str) -> None:
    """403 unless ``user`` holds ``method`` on the runs of ``dag_id``."""
    if not authz.allowed(user, method, dag_id):
        log.info("refused %s on runs of %s to %s", method, dag_id, user_name(user))
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=refusal(user, method, dag_id))


class Access:
    """The caller and their permission checks, handed to a route as one dependency."""

    def __init__(self, user: Any, authz: Authorizer):
        self.user = user
        self.authz = authz

    def can(self, method: Method, dag_id: str) -> bool:
        return self.authz.allowed(self.user, method, dag_id)

    def require(self, method: Method, dag_id: str) -> None:
        require(self.authz, self.user, method, dag_id)


def access(user: Annotated[Any, Depends(current_user)], authz: Annotated[Authorizer, Depends(authorizer)]) -> Access:
    return Access(user, authz)
