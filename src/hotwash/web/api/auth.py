"""`/api/v1` routes: auth."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["auth"])
