"""`/api/v1` routes: flags."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["flags"])
