"""Run real service processes in tests, and stop or kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.infra import queue_consumers
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, service: str, kind: str, env: dict[str, str], log_dir: Path,
                 extra_env: dict[str, str] | None = None, args: list[str] | None = None):
        self.service = service
        self.kind = kind
        self.env = {**os.environ, **env, **(extra_env or {})}
        self.log_path = log_dir / f"{service}-{kind}-{os.urandom(3).hex()}.log"
        self.args = args or [sys.executable, "-m", f"services.{service}", kind]
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_healthy(self, target: str, timeout: float = 30.0) -> None:
        def serving():
            if not self.alive():
                raise AssertionError(f"{self.service} {self.kind} exited:\n{self.log()[-3000:]}")
            try:
                with grpc.insecure_channel(target) as ch:
                    resp = health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=1)
                    return resp.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False
        eventually(serving, timeout=timeout, interval=0.1, what=f"{self.service} api SERVING")

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if not self.alive():
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.log_file.close()


def consumer_queue(event_type: str, consumer: str) -> str:
    """The queue of `consumer`'s nameko handler for "source:event"."""
    return f"evt-{event_type.replace(':', '-')}--{consumer}.on_{event_type.replace(':', '_')}"


def start_consuming(service: str, kind: str, env: dict[str, str], log_dir: Path, queues: list[str],
                    timeout: float = 30.0, args: list[str] | None = None,
                    **extra_env: str) -> ServiceProcess:
    """A worker process, returned once it consumes from each of `queues`."""
    proc = ServiceProcess(service, kind, env, log_dir, extra_env=extra_env, args=args).start()

    def consuming():
        if not proc.alive():
            raise AssertionError(f"{service} {kind} exited:\n{proc.log()[-3000:]}")
        return all(queue_consumers(env["AMQP_URL"], q) > 0 for q in queues)

    eventually(consuming, timeout=timeout, interval=0.2, what=f"{service} {kind} consuming")
    return proc


def start_probe(env: dict[str, str], log_dir: Path, db: Path, *subscriptions: str,
                timeout: float = 40.0, **extra_env: str) -> ServiceProcess:
    """The probe worker (tests/support/probe_worker.py), consuming once its queues exist."""
    return start_consuming("probe", "worker", env, log_dir,
                           [consumer_queue(s, "probe") for s in subscriptions], timeout=timeout,
                           args=[sys.executable, "tests/support/probe_worker.py", str(db), *subscriptions],
                           **extra_env)
