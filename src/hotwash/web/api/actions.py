"""`/api/v1` routes: actions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["actions"])
