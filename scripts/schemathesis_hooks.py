"""Schemathesis hooks for scripts/schemathesis.sh: authenticate as the configured admin.

The key is cached and fetched again after a 401 (a generated `POST /v1/logout` revokes the
key that made it, which is the point of logout).
"""

import json
import os
import urllib.request

import schemathesis


@schemathesis.auth()
class AdminLoginKey:
    def get(self, case, context):
        body = json.dumps(
            {"username": "admin", "password": os.environ["ST_ADMIN_PASSWORD"]}
        ).encode()
        request = urllib.request.Request(
            os.environ["ST_BASE_URL"] + "/v1/login",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["api_key"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Plugin uploads (`POST /v1/plugins`) are raw bytes, like application/octet-stream.
schemathesis.serializer.alias("application/wasm", "application/octet-stream")
