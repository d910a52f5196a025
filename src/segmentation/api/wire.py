"""OpenAPI helpers for routes that read their body raw (for speed and size limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["file_upload", "json_body"]


def file_upload(**parts: dict[str, Any]) -> dict[str, Any]:
    """The multipart/form-data media type of an upload: a required binary `file` part and
    the optional text `parts` given (name -> its schema)."""
    return {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}, **parts},
        }
    }


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
