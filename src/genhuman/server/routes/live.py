"""Live conversation over WebRTC: the ``/live`` page and its signalling endpoints.

  GET    /live                        the page (?portrait=NAME)
  GET    /v1/live/portraits           portraits a session may use
  GET    /v1/live/portraits/{name}    a portrait's image (the picker's thumbnail)
  GET    /v1/live/config              ICE servers and the turn settings the page shows
  POST   /v1/live/offer               {sdp, type: "offer", portrait} -> {sdp, type: "answer", session}
  GET    /v1/live/sessions            your running sessions
  DELETE /v1/live/sessions/{id}       end a session (the page's Stop; closing the tab ends it too)

The same token rules as the jobs API apply (``caller``). Sessions past ``--max-sessions``
are refused with 503 and one sentence.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from genhuman.errors import InputError
from genhuman.server.auth import Caller
from genhuman.server.services import caller

router = APIRouter(tags=["live"])


class Offer(BaseModel):
    sdp: str = Field(max_length=64 * 1024, description="the browser's SDP offer (ICE gathering complete)")
    type: str = Field("offer", pattern="^offer$")
    portrait: Optional[str] = Field(None, max_length=200, description="a name from /v1/live/portraits")


def live_sessions(request: Request) -> Any:
    sessions = getattr(request.app.state, "live", None)
    if sessions is None:
        raise HTTPException(404, "live conversation is not enabled on this server")
    return sessions


@router.get("/live", include_in_schema=False)
def live_page(request: Request) -> FileResponse:
    from genhuman.server.routes.page import page_with_session

    return page_with_session(request, "live.html")


@router.get("/v1/live/portraits", summary="Portraits for live sessions")
def portraits(live: Annotated[Any, Depends(live_sessions)], _who: Annotated[Caller, Depends(caller)]) -> dict:
    return {"portraits": [{"name": name, "url": f"/v1/live/portraits/{name}"} for name in live.portraits],
            "default": live.default_portrait}


@router.get("/v1/live/portraits/{name}", summary="A portrait's image")
def portrait_image(name: str, live: Annotated[Any, Depends(live_sessions)]) -> FileResponse:
    path = live.portraits.get(name)
    if path is None:
        raise HTTPException(404, f"no portrait named {name[:60]!r}")
    return FileResponse(path, headers={"Cache-Control": "max-age=300"})


@router.get("/v1/live/config", summary="ICE servers and turn settings")
def config(live: Annotated[Any, Depends(live_sessions)], _who: Annotated[Caller, Depends(caller)]) -> dict:
    return {"ice_servers": [{"urls": u} for u in live.ice_servers], "silence_s": live.options.silence,
            "max_sessions": live.options.max_sessions, "running": len(live.sessions),
            "ready": live.ready}


@router.post("/v1/live/offer", summary="Start a live session (WebRTC offer -> answer)")
async def offer(body: Offer, live: Annotated[Any, Depends(live_sessions)],
                who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    from genhuman.live.sessions import SessionLimit

    try:
        session, answer = await live.open(body.sdp, body.portrait, who.owner)
    except SessionLimit as exc:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "30"})
    except InputError:
        raise
    except ValueError as exc:  # aiortc's words for an SDP it cannot parse or answer
        raise InputError(f"the offer could not be answered: {str(exc)[:200]}") from None
    return JSONResponse({"sdp": answer, "type": "answer", "session": session})


@router.get("/v1/live/sessions", summary="Your running live sessions")
def sessions(live: Annotated[Any, Depends(live_sessions)], who: Annotated[Caller, Depends(caller)]) -> dict:
    mine = [s for s in live.sessions.values() if who.admin or s.owner == who.owner]
    return {"sessions": [{"id": s.id, "portrait": s.portrait, "state": s.conversation.state} for s in mine],
            "running": len(live.sessions), "max_sessions": live.options.max_sessions}


@router.delete("/v1/live/sessions/{session}", summary="End a live session")
async def end(session: str, live: Annotated[Any, Depends(live_sessions)],
              who: Annotated[Caller, Depends(caller)]) -> dict:
    if not await live.close(session[:64], None if who.admin else who.owner):
        raise HTTPException(404, f"no live session with id {session[:40]!r}")
    return {"closed": session[:64]}
