"""OpenAPI helpers for routes that read their body raw (for speed and size limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["json_body"]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a raw JSON body as `model` (published by the app)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }
