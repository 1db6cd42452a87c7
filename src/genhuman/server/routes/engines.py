"""``/v1/engines``: the engines this server offers and whether each can run here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from genhuman.errors import InputError
from genhuman.server.models import EngineList, errors
from genhuman.server.services import Services, caller, services

router = APIRouter(prefix="/v1/engines", tags=["engines"], dependencies=[Depends(caller)],
                   responses=errors(401, 403))


@router.get("", response_model=EngineList, summary="Engines and their availability")
def list_engines(parts: Annotated[Services, Depends(services)]) -> dict[str, Any]:
    from genhuman.engines import ENGINES
    from genhuman.request import AnimateRequest, request_options

    out: list[dict[str, Any]] = []
    for name in parts.settings.engines or list(ENGINES):
        options = [field for field, spec in request_options(AnimateRequest)
                   if spec.server and (spec.engines is None or name in spec.engines)]
        try:
            parts.check_engine(name)
            out.append({"name": name, "available": True, "options": options})
        except InputError as exc:
            out.append({"name": name, "available": False, "reason": str(exc), "options": options})
    return {"engines": out, "default": parts.settings.default_engine}
