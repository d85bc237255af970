"""`/api/v1` routes: incidents."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["incidents"])
