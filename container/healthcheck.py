"""The container's health check: ``GET /healthz`` of the server in the container (docs/container.md).

Healthy (exit 0) when ``/healthz`` answers 200, asked with ``LIVEMASK_TOKEN`` when it is set. A server
started with ``--token-file`` (no token in the environment) answers 401: that counts as healthy too, as
uvicorn answers only once the models are loaded. ``LIVEMASK_HEALTHZ``: another address (default
``http://127.0.0.1:8000/healthz``). No proxy is used.
"""

import os
import sys
import urllib.error
import urllib.request


def healthy() -> bool:
    url = os.environ.get("LIVEMASK_HEALTHZ", "http://127.0.0.1:8000/healthz")
    token = os.environ.get("LIVEMASK_TOKEN", "").strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=4) as response:
            return response.status == 200
    except urllib.error.HTTPError as err:
        return err.code == 401 and not token
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if healthy() else 1)
