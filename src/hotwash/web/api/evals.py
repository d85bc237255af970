"""`/api/v1` routes: evals."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["evals"])
