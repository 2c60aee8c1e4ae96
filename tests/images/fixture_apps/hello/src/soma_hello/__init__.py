"""A minimal ASGI app: the release pipeline's image tests need something real to run."""


async def app(scope, receive, send):
    """Answer every HTTP request with ``ok``; lifespan events are acknowledged so uvicorn starts cleanly."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
