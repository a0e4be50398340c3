"""API errors: JSON `{"error": code, "message": text}` with the right status.

A handler raises `ApiError`; `install_error_handlers` turns it (and every HTTP error
Flask raises, and anything unexpected) into that JSON. No stack trace leaves the
process: unexpected errors are logged with their trace and answered with a plain 500.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("cmbcluster.errors")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class NotFound(ApiError):
    def __init__(self, message: str = "not found"):
        super().__init__(404, "not_found", message)


class Conflict(ApiError):
    def __init__(self, code: str, message: str):
        super().__init__(409, code, message)


def error_body(code: str, message: str) -> dict:
    return {"error": code, "message": message}


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return jsonify(error_body(err.code, err.message)), err.status, err.headers

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        headers = {k: v for k, v in err.get_headers() if k.lower() in ("allow", "retry-after")}
        return jsonify(error_body(code, err.description or err.name)), err.code, headers

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return jsonify(error_body("internal", "internal error")), 500
