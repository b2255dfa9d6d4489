"""The HTTP routes, one APIRouter per concern; :func:`modelops.serving.app.create_app` includes them.

Routes are module-level functions that reach the shared :class:`~modelops.serving.state.ServingState`
through ``request.app.state.serving`` (:func:`~modelops.serving.state.state_of`): no closures, so
each route reads and tests on its own.
"""
