"""`/api/v1` routes: postmortems."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["postmortems"])
