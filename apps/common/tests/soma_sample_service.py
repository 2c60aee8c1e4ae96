"""A minimal service on the base, run as a real process by test_service_process.py."""

import asyncio
import sys

from fastapi import APIRouter
from pydantic import SecretStr

from soma_service import ServiceSettings, create_app, serve


class SampleSettings(ServiceSettings):
    api_token: SecretStr


router = APIRouter()


@router.get("/slow")
async def slow(seconds: float = 1.0) -> dict:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


if __name__ == "__main__":
    sys.exit(serve(SampleSettings, lambda settings: create_app(settings, routers=[router])))
