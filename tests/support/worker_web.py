"""Read a worker's web views (``/metrics``, ``/ready``, ``/health``) over HTTP, as a scraper or a probe does."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: A scrape: metric sample name -> its labels (sorted pairs) -> value.
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def get(port: int, path: str) -> tuple[int, bytes]:
    """(status, body) of ``GET path`` on the worker's web port; (0, b"") while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""  # not listening yet


def scrape(port: int) -> Samples:
    """Every sample of the worker's ``/metrics`` (which must answer 200)."""
    status, body = get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out
