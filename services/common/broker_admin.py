"""A RabbitMQ vhost of its own for a run of the demo or a benchmark, so that events left in
durable queues by an earlier run (or by another tool) never reach this run's consumers."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, urlparse, urlunparse


def fresh_vhost(amqp_url: str, vhost: str) -> str:
    """Recreate `vhost` empty (rabbitmqctl, on the broker's machine) and return `amqp_url`
    pointing at it. Without rabbitmqctl the URL is returned unchanged."""
    if not shutil.which("rabbitmqctl"):
        return amqp_url
    user = urlparse(amqp_url).username or "guest"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                   check=True, capture_output=True)
    return urlunparse(urlparse(amqp_url)._replace(path="/" + quote(vhost, safe="")))
