"""`/api/v1` routes: diagnosis."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["diagnosis"])
