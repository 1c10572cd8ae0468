"""Static checks of the deployment artifacts (CI has no Docker engine and no cluster, DESIGN §2).

Dockerfile, docker-compose.yml, deploy/k8s/*.yaml, the broker and database configs and
docs/operations.md are checked against the code: the processes services/launcher.py can start,
the ports of services/common/config.py, the environment variables the code reads, the RabbitMQ
topology of services/common/messaging.py; and the console (services/console: its web process, its
own database, its HTTP probe /healthz, the four APIs it calls). Each check is a function that returns the problems it
finds; the tests at the end break a copy of an artifact and expect the check to notice.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from services.cli import MIGRATED
from services.common.config import DEFAULT_GRPC_PORTS, SERVICES
from services.console.config import ConsoleSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"
IMAGE = "county-supply"
SERVER_IMAGES = ("postgres:", "rabbitmq:", "eclipse-mosquitto:", "influxdb:", "grafana/")
CONSOLE = "console"  # its compose service, k8s Deployment and Service, its database and role
DATABASES = MIGRATED  # what `supplyctl migrate` knows: the four services and the console


# --------------------------------------------------------------------------- what the code says

@cache
def processes() -> frozenset[tuple[str, str]]:
    """(service, kind) for every process services/launcher.py starts, read from its own usage
    message (`usage: python -m services.<service> api|worker|relay[|ingest]`)."""
    from services.launcher import main

    found = set()
    for service in (*SERVICES, "market", "reports", "notify"):
        with pytest.raises(SystemExit) as exc:
            main(service, ["--no-such-kind--"])
        m = re.fullmatch(rf"usage: python -m services\.{service} ([a-z|]+)", str(exc.value.code))
        assert m, f"services/launcher.py usage message changed: {exc.value.code!r}"
        found |= {(service, kind) for kind in m.group(1).split("|")}
    return frozenset(found)


@cache
def console_processes() -> frozenset[tuple[str, str]]:
    """("console", kind) for every kind services/console/__main__.py starts, read from its usage
    message (`usage: python -m services.console web`); read, not run: the module runs on import."""
    tree = ast.parse((ROOT / "services/console/__main__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = re.fullmatch(r"usage: python -m services\.console ([a-z|]+)", node.value)
            if m:
                return frozenset((CONSOLE, kind) for kind in m.group(1).split("|"))
    raise AssertionError("services/console/__main__.py usage message changed")


def all_processes() -> frozenset[tuple[str, str]]:
    return processes() | console_processes()


def compose_name(service: str, kind: str) -> str:
    """The compose service (and k8s workload) of a process: <service>-<kind>, the console's is
    `console`."""
    return CONSOLE if service == CONSOLE else f"{service}-{kind}"


@cache
def console_default(name: str) -> str:
    """The default services/console/config.py gives variable `name`: the constant after it in
    `_int(env, NAME, default, …)` or `env.get(NAME, default)`."""
    tree = ast.parse((ROOT / "services/console/config.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            args = node.args
            for i, arg in enumerate(args[:-1]):
                if isinstance(arg, ast.Constant) and arg.value == name and isinstance(args[i + 1], ast.Constant):
                    return str(args[i + 1].value)
    raise AssertionError(f"services/console/config.py no longer reads {name} with a constant default")


def _names_in(tree: ast.AST) -> set[str]:
    """Upper-case string constants, and f-strings `{x.upper()}_SUFFIX` expanded per service
    (`{service.upper()}_DATABASE_URL` also for the console: load_settings("console") reads it)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"[A-Z][A-Z0-9_]*[A-Z0-9]", node.value):
                names.add(node.value)
        elif isinstance(node, ast.JoinedStr) and len(node.values) == 2:
            head, tail = node.values
            if (isinstance(head, ast.FormattedValue) and isinstance(head.value, ast.Call)
                    and isinstance(head.value.func, ast.Attribute) and head.value.func.attr == "upper"
                    and isinstance(tail, ast.Constant) and re.fullmatch(r"_[A-Z0-9_]+", tail.value)):
                owners = DATABASES if tail.value == "_DATABASE_URL" else DEFAULT_GRPC_PORTS
                names |= {s.upper() + tail.value for s in owners}
    return names


@cache
def code_env_names() -> frozenset[str]:
    """Every name the code could read from the environment (services/ and simulators/)."""
    names: set[str] = set()
    for folder in ("services", "simulators"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= _names_in(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(names)


@cache
def config_env_names() -> frozenset[str]:
    """The variables services/common/config.py reads: _env/_int/_url(env, NAME, …)."""
    tree = ast.parse((ROOT / "services/common/config.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("_env", "_int", "_url") and len(node.args) >= 2):
            names |= _names_in(ast.Expression(node.args[1]))
    return frozenset(names)


@cache
def supply_env_names() -> frozenset[str]:
    """Every SUPPLY_* name the services read (settings.extra.get("SUPPLY_…"), env.get, …)."""
    return frozenset(n for n in code_env_names() if n.startswith("SUPPLY_"))


@cache
def grpc_calls() -> frozenset[tuple[str, str]]:
    """(caller, callee): services/<caller>/ calls settings.grpc_target("<callee>") of another
    service. Its api and worker need <CALLEE>_GRPC_TARGET in containers (the default, this
    machine, is the caller's own container or pod)."""
    calls = set()
    for caller in SERVICES:
        for path in (ROOT / "services" / caller).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "grpc_target" and node.args
                        and isinstance(node.args[0], ast.Constant) and node.args[0].value in SERVICES
                        and node.args[0].value != caller):
                    calls.add((caller, node.args[0].value))
    return frozenset(calls)


def console_calls() -> frozenset[str]:
    """The services the console calls: those ConsoleSettings.targets gives an address."""
    settings = SimpleNamespace(common=SimpleNamespace(grpc_target=lambda service: service))
    return frozenset(ConsoleSettings.targets.fget(settings))


CALLING_KINDS = ("api", "worker")   # the relay only publishes the outbox
LISTEN_ALL = ("0.0.0.0", "[::]")


def grpc_port(service: str, configured: dict | None = None) -> int:
    return int((configured or {}).get(f"{service.upper()}_GRPC_PORT", DEFAULT_GRPC_PORTS[service]))


# ------------------------------------------------------------------------------ the artifacts

@cache
def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose() -> dict:
    return copy.deepcopy(_compose())


def k8s_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


@cache
def _k8s_docs() -> list[dict]:
    docs = []
    for path in k8s_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                doc.setdefault("metadata", {})["_file"] = path.name
                docs.append(doc)
    return docs


def k8s_docs() -> list[dict]:
    return copy.deepcopy(_k8s_docs())


def env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / "deploy/compose.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value
    return out


def _env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _is_ours(service: dict) -> bool:
    return str(service.get("image", "")).split(":")[0] == IMAGE or "build" in service


def _built_from_dockerfile(service: dict) -> bool:
    build = service.get("build")
    if isinstance(build, str):
        return build in (".", "./") and DOCKERFILE.exists()
    return (isinstance(build, dict) and build.get("context") in (".", "./")
            and build.get("dockerfile", "Dockerfile") == "Dockerfile")


def _command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _has_healthcheck(service: dict) -> bool:
    hc = service.get("healthcheck") or {}
    return bool(hc.get("test")) and not hc.get("disable") and hc.get("test") != ["NONE"]


def _published(spec) -> tuple[str, int]:
    """(published, container port) of a compose port mapping."""
    if isinstance(spec, dict):
        return str(spec.get("published", "")), int(str(spec["target"]).split("/")[0])
    parts = str(spec).split("/")[0].split(":")
    return ":".join(parts[:-1]), int(parts[-1])


# ------------------------------------------------------------------------- compose checks

def compose_process_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for service, kind in sorted(all_processes()):
        name = compose_name(service, kind)
        s = services.get(name)
        if s is None:
            problems.append(f"compose: no service {name} (python -m services.{service} {kind})")
            continue
        if _command(s) != [f"services.{service}", kind]:
            problems.append(f"compose: {name} runs {_command(s)}, not ['services.{service}', '{kind}']")
        if "entrypoint" in s:
            problems.append(f"compose: {name} overrides the image's ENTRYPOINT (python -m)")
        if not _built_from_dockerfile(s):
            problems.append(f"compose: {name} is not built from the Dockerfile")
        deps = _depends(s)
        if deps.get("migrate") != "service_completed_successfully":
            problems.append(f"compose: {name} must wait for migrate (service_completed_successfully)")
        if s.get("restart") in (None, "no"):
            problems.append(f"compose: {name} is not restarted when it exits")
    return problems


def compose_image_problems(doc: dict) -> list[str]:
    problems = []
    process_modules = {f"services.{s}" for s, _ in all_processes()}
    for name, s in doc.get("services", {}).items():
        if not _is_ours(s):
            continue
        if not _built_from_dockerfile(s):
            problems.append(f"compose: {name} uses our image but is not built from the Dockerfile")
        if str(s.get("image", "")).split(":")[0] != IMAGE:
            problems.append(f"compose: {name} builds an image not named {IMAGE}")
        cmd = _command(s)
        module = cmd[0] if cmd else ""
        if module in process_modules:
            if (module.split(".")[1], cmd[1] if len(cmd) > 1 else "") not in all_processes():
                problems.append(f"compose: {name} runs {cmd}: not a process of services/launcher.py "
                                f"or services/console/__main__.py")
        elif module == "services.cli":
            if cmd[1:2] != ["migrate"] or not set(cmd[2:]) <= set(DATABASES):
                problems.append(f"compose: {name} runs supplyctl {cmd[1:]}: only migrate is expected")
        elif not ((ROOT / (module.replace(".", "/") + ".py")).exists()
                  or (ROOT / module.replace(".", "/") / "__main__.py").exists()):
            problems.append(f"compose: {name} runs module {module!r}, which does not exist")
    return problems


def compose_migrate_problems(doc: dict) -> list[str]:
    m = doc.get("services", {}).get("migrate")
    if m is None:
        return ["compose: no one-shot `migrate` service"]
    problems = []
    if _command(m)[:2] != ["services.cli", "migrate"] or set(_command(m)[2:]) != set(DATABASES):
        problems.append(f"compose: migrate runs {_command(m)}; expected supplyctl migrate of "
                        f"{' '.join(DATABASES)} (every service and the console)")
    if m.get("restart", "no") != "no":
        problems.append("compose: migrate is a one-shot job: restart must be \"no\"")
    env = _env_of(m)
    for service in DATABASES:
        if f"{service.upper()}_DATABASE_URL" not in env:
            problems.append(f"compose: migrate has no {service.upper()}_DATABASE_URL")
    return problems


def compose_dependency_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for name, s in services.items():
        for target, condition in _depends(s).items():
            if target not in services:
                problems.append(f"compose: {name} depends on {target}, which does not exist")
                continue
            t = services[target]
            if condition == "service_healthy" and not _has_healthcheck(t):
                problems.append(f"compose: {name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and t.get("restart", "no") != "no":
                problems.append(f"compose: {name} waits for {target} to complete; it restarts forever")
            if set(t.get("profiles") or []) - set(s.get("profiles") or []):
                problems.append(f"compose: {name} depends on {target}, which only runs in a profile")
        mode = str(s.get("network_mode", ""))
        if mode.startswith("service:") and mode.split(":", 1)[1] not in services:
            problems.append(f"compose: {name} uses the network of a missing service ({mode})")
    return problems


def compose_health_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    servers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith(SERVER_IMAGES)}
    for prefix in SERVER_IMAGES:
        if not any(str(s.get("image", "")).startswith(prefix) for s in servers.values()):
            problems.append(f"compose: no server with image {prefix}…")
    for name, s in servers.items():
        if not _has_healthcheck(s):
            problems.append(f"compose: server {name} has no healthcheck")
    for service in SERVICES:
        name = f"{service}-api"
        s = services.get(name, {})
        port = grpc_port(service, _env_of(s))
        test = " ".join(str(t) for t in (s.get("healthcheck") or {}).get("test") or [])
        probe = test.endswith(f"services.common.grpc_client {service}")  # its own port, over TLS
        if not (probe or "grpc_health" in test and "SERVING" in test and f"127.0.0.1:{port}" in test):
            problems.append(f"compose: {name} healthcheck must ask grpc.health.v1 on 127.0.0.1:{port} for SERVING")
        if port not in [_published(p)[1] for p in s.get("ports") or []]:
            problems.append(f"compose: {name} does not publish its gRPC port {port}")
    for name, s in services.items():
        test = " ".join(str(t) for t in (s.get("healthcheck") or {}).get("test") or [])
        if _is_ours(s) and re.search(r"\b(curl|wget)\b", test):
            problems.append(f"compose: {name} healthcheck uses curl/wget, which the image "
                            f"({DOCKERFILE.name}, python:3.11-slim) does not have: use python")
    problems += compose_console_health_problems(services.get(CONSOLE))
    return problems


def compose_console_health_problems(s: dict | None) -> list[str]:
    """The console: HTTP on every interface of its container, its port published, healthy when
    GET /healthz says SERVING (200; 503 otherwise)."""
    if s is None:
        return [f"compose: no service {CONSOLE}"]
    problems = []
    env = _env_of(s)
    port = int(env.get("CONSOLE_HTTP_PORT", console_default("CONSOLE_HTTP_PORT")))
    host = env.get("CONSOLE_HTTP_HOST", console_default("CONSOLE_HTTP_HOST"))
    if host not in LISTEN_ALL:
        problems.append(f"compose: {CONSOLE} CONSOLE_HTTP_HOST={host}: unreachable from outside its "
                        f"container; {' or '.join(LISTEN_ALL)}")
    test = " ".join(str(t) for t in (s.get("healthcheck") or {}).get("test") or [])
    if not (_has_healthcheck(s) and f"http://127.0.0.1:{port}/healthz" in test and "SERVING" in test):
        problems.append(f"compose: {CONSOLE} healthcheck must ask http://127.0.0.1:{port}/healthz for SERVING")
    if port not in [_published(p)[1] for p in s.get("ports") or []]:
        problems.append(f"compose: {CONSOLE} does not publish its HTTP port {port}")
    return problems


def compose_env_problems(doc: dict) -> list[str]:
    known = code_env_names()
    problems = []
    for name, s in doc.get("services", {}).items():
        if not _is_ours(s):
            continue
        for var in _env_of(s):
            if var not in known:
                problems.append(f"compose: {name} sets {var}, which no code in services/ or simulators/ reads")
    return problems


def compose_wiring_problems(doc: dict) -> list[str]:
    """Each process reaches its own service's database and broker user, never another's."""
    services = doc.get("services", {})
    problems = []
    for service, kind in sorted(processes()):
        env = _env_of(services.get(f"{service}-{kind}", {}))
        if not env:
            continue
        own = f"{service.upper()}_DATABASE_URL"
        url = env.get(own, "")
        if not re.fullmatch(rf"postgresql://{service}:.+@postgres:5432/{service}", url):
            problems.append(f"compose: {service}-{kind} {own} must be postgresql://{service}:…@postgres:5432/{service}")
        for other in set(SERVICES) - {service}:
            if f"{other.upper()}_DATABASE_URL" in env:
                problems.append(f"compose: {service}-{kind} is given {other}'s database")
        if not re.fullmatch(rf"amqp://supply-{service}:.+@rabbitmq:5672/supply", env.get("AMQP_URL", "")):
            problems.append(f"compose: {service}-{kind} AMQP_URL must be amqp://supply-{service}:…@rabbitmq:5672/supply")
        if service == "monitoring":
            for var in ("MQTT_URL", "INFLUX_URL"):
                if var not in env:
                    problems.append(f"compose: monitoring-{kind} has no {var}")
    env = _env_of(services.get(CONSOLE, {}))
    if env:
        own = f"{CONSOLE.upper()}_DATABASE_URL"
        if not re.fullmatch(rf"postgresql://{CONSOLE}:.+@postgres:5432/{CONSOLE}", env.get(own, "")):
            problems.append(f"compose: {CONSOLE} {own} must be postgresql://{CONSOLE}:…@postgres:5432/{CONSOLE}")
        for other in SERVICES:
            if f"{other.upper()}_DATABASE_URL" in env:
                problems.append(f"compose: {CONSOLE} is given {other}'s database")
    return problems


def grpc_target_problems(where: str, name: str, env: dict[str, str],
                         apis: dict[str, tuple[str, int]]) -> list[str]:
    """SUPPLY_GRPC_HOST only says where an API listens; every <SERVICE>_GRPC_TARGET set names
    the host (compose service / k8s Service) and port of that service's API. `apis`: service →
    (host, port) of its API."""
    problems = []
    host = env.get("SUPPLY_GRPC_HOST")
    if host is not None and host not in LISTEN_ALL:
        problems.append(f"{where}: {name} SUPPLY_GRPC_HOST={host}: in a container it is the listen "
                        f"address ({' or '.join(LISTEN_ALL)}); calls go to <SERVICE>_GRPC_TARGET")
    for service in SERVICES:
        var = f"{service.upper()}_GRPC_TARGET"
        expected = "{}:{}".format(*apis[service]) if service in apis else None
        if var in env and expected and env[var] != expected:
            problems.append(f"{where}: {name} {var}={env[var]}, expected {expected}")
    return problems


def compose_grpc_problems(doc: dict) -> list[str]:
    """Every process that calls another service reaches that service's API by its service name."""
    services = doc.get("services", {})
    apis = {s: (f"{s}-api", grpc_port(s, _env_of(services.get(f"{s}-api", {})))) for s in SERVICES}
    problems = []
    for name, s in services.items():
        if _is_ours(s):
            problems += grpc_target_problems("compose", name, _env_of(s), apis)
    for service in SERVICES:
        host = _env_of(services.get(f"{service}-api", {})).get("SUPPLY_GRPC_HOST")
        if host not in LISTEN_ALL:
            problems.append(f"compose: {service}-api must listen on 0.0.0.0 (SUPPLY_GRPC_HOST), not {host}")
    for caller, callee in sorted(grpc_calls()):
        var = f"{callee.upper()}_GRPC_TARGET"
        for kind in CALLING_KINDS:
            name = f"{caller}-{kind}"
            if (caller, kind) in processes() and var not in _env_of(services.get(name, {})):
                problems.append(f"compose: {name} calls {callee} but has no {var}")
    console = services.get(CONSOLE, {})
    for callee in sorted(console_calls()):
        var = f"{callee.upper()}_GRPC_TARGET"
        if var not in _env_of(console):
            problems.append(f"compose: {CONSOLE} calls {callee} but has no {var}")
        if _depends(console).get(f"{callee}-api") != "service_healthy":
            problems.append(f"compose: {CONSOLE} must wait for {callee}-api to be healthy")
    return problems


def compose_interpolation_problems(doc_text: str, example: dict[str, str]) -> list[str]:
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", doc_text))
    problems = [f"compose uses ${{{v}}}, missing from deploy/compose.env.example"
                for v in sorted(used - set(example))]
    problems += [f"deploy/compose.env.example has {v}, which docker-compose.yml never uses"
                 for v in sorted(set(example) - used)]
    return problems


SECRET_VARIABLE = re.compile(r"\w+(_PASSWORD|_SECRET|_JWT_KEY|_AUTH_TOKENS)")


def compose_secret_problems(doc_text: str) -> list[str]:
    """Every password, key and token compose interpolates is required (`${NAME:?…}`), so that a
    forgotten one stops `docker compose` instead of starting a server or a process with an empty
    password; among them the database password of every service and of the console."""
    problems = []
    required = set()
    for name, op in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?", doc_text):
        if not SECRET_VARIABLE.fullmatch(name):
            continue
        if op == ":?":
            required.add(name)
        else:
            problems.append(f"compose: ${{{name}{op}…}} must be required: ${{{name}:?set {name}}}")
    for service in DATABASES:
        if f"{service.upper()}_DB_PASSWORD" not in required:
            problems.append(f"compose: no required ${{{service.upper()}_DB_PASSWORD:?…}} ({service}'s database)")
    return problems


# ------------------------------------------------------------------------- Dockerfile checks

def dockerfile_problems(text: str) -> list[str]:
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    problems = []
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if len(froms) < 2:
        problems.append("Dockerfile: not multi-stage (builder + runtime)")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    final = froms[-1].split()[1] if froms else ""
    final = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), final)
    if not final.startswith("python:3.11-slim"):
        problems.append(f"Dockerfile: the runtime stage is {final!r}, not python:3.11-slim")
    if not any("COPY" in ln and "requirements.lock" in ln for ln in lines):
        problems.append("Dockerfile: requirements.lock is not copied into the build")
    if not any(ln.startswith("RUN") and "requirements.lock" in ln
               and ("uv pip sync" in ln or "pip install" in ln) for ln in lines):
        problems.append("Dockerfile: dependencies are not installed from requirements.lock")
    if not any("grpc_tools.protoc" in ln for ln in lines):
        problems.append("Dockerfile: gRPC code is not generated from proto/")
    runtime = lines[lines.index(froms[-1]):] if froms else []
    users = [ln.split(None, 1)[1] for ln in runtime if ln.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("Dockerfile: the runtime stage must end as a non-root USER")
    for what in ("services/", "simulators/", "proto/", "gen"):
        if not any(ln.startswith("COPY") and what in ln for ln in runtime):
            problems.append(f"Dockerfile: the runtime stage does not copy {what}")
    env = " ".join(ln for ln in runtime if ln.startswith("ENV"))
    if not re.search(r"PYTHONPATH=\S*/gen", env):
        problems.append("Dockerfile: PYTHONPATH lacks the generated code (gen)")
    if 'ENTRYPOINT ["python", "-m"]' not in lines:
        problems.append('Dockerfile: ENTRYPOINT must be ["python", "-m"]')
    return problems


def dockerignore_problems(text: str) -> list[str]:
    entries = {ln.strip().rstrip("/") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")}
    return [f".dockerignore: {e} is not excluded" for e in (".venv", "var", "gen", ".git", ".pytest_cache")
            if e not in entries]


# ------------------------------------------------------------------------------ k8s checks

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def _pod(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def _containers(doc: dict) -> list[dict]:
    pod = _pod(doc)
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def _ours(container: dict) -> bool:
    return str(container.get("image", "")).split(":")[0].split("/")[-1] == IMAGE


def _k8s_command(container: dict) -> list[str]:
    """What the container runs after `python -m` (the image's ENTRYPOINT when command is unset)."""
    cmd = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not cmd:
        return args
    if cmd[:2] == ["python", "-m"]:
        return cmd[2:] + args
    return ["<not python -m>", *cmd, *args]


def k8s_parse_problems() -> list[str]:
    problems = []
    if not k8s_files():
        return ["deploy/k8s: no manifests"]
    for doc in _k8s_docs():
        where = doc["metadata"]["_file"]
        if not doc.get("apiVersion") or not doc.get("kind"):
            problems.append(f"{where}: a document without apiVersion/kind")
        elif doc["kind"] != "Kustomization" and not doc["metadata"].get("name"):
            problems.append(f"{where}: {doc['kind']} without metadata.name")
    return problems


def configmap_data(docs: list[dict]) -> dict[str, str]:
    data: dict[str, str] = {}
    for d in docs:
        if d.get("kind") == "ConfigMap":
            data.update({k: str(v) for k, v in (d.get("data") or {}).items()})
    return data


def k8s_process_problems(docs: list[dict]) -> list[str]:
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for d in docs:
        if d.get("kind") not in WORKLOADS:
            continue
        name = d["metadata"]["name"]
        for c in _containers(d):
            if not _ours(c):
                continue
            cmd = _k8s_command(c)
            if d["kind"] == "Job":
                if cmd[:2] != ["services.cli", "migrate"] or not set(cmd[2:]) <= set(DATABASES) or not cmd[2:]:
                    problems.append(f"k8s: Job {name} runs {cmd}; expected services.cli migrate <service>")
                continue
            key = (cmd[0].removeprefix("services.") if cmd else "", cmd[1] if len(cmd) > 1 else "")
            if len(cmd) != 2 or not cmd[0].startswith("services.") or key not in all_processes():
                problems.append(f"k8s: {d['kind']} {name} container {c.get('name')} runs {cmd}: not a process kind")
            elif key in seen:
                problems.append(f"k8s: {key[0]} {key[1]} runs in both {seen[key]} and {name}")
            else:
                seen[key] = name
    for service, kind in sorted(all_processes() - set(seen)):
        problems.append(f"k8s: no workload runs python -m services.{service} {kind}")
    jobs = {tuple(_k8s_command(c)[2:]) for d in docs if d.get("kind") == "Job" for c in _containers(d) if _ours(c)}
    for service in DATABASES:
        if (service,) not in jobs:
            problems.append(f"k8s: no migration Job for {service} (services.cli migrate {service})")
    return problems


def k8s_probe_problems(docs: list[dict]) -> list[str]:
    configured = configmap_data(docs)
    problems = []
    for service in SERVICES:
        if int(configured.get(f"{service.upper()}_GRPC_PORT", DEFAULT_GRPC_PORTS[service])) != DEFAULT_GRPC_PORTS[service]:
            problems.append(f"k8s: ConfigMap {service.upper()}_GRPC_PORT differs from the documented {DEFAULT_GRPC_PORTS[service]}")
    apis = {}
    for d in docs:
        if d.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        for c in _containers(d):
            cmd = _k8s_command(c)
            if _ours(c) and len(cmd) == 2 and cmd[1] == "api":
                apis[cmd[0].removeprefix("services.")] = (d, c)
    for service, (d, c) in sorted(apis.items()):
        port = grpc_port(service, configured)
        name = d["metadata"]["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            grpc = (c.get(probe) or {}).get("grpc")
            command = ((c.get(probe) or {}).get("exec") or {}).get("command") or []
            if command[-2:] == ["services.common.grpc_client", service]:
                continue  # asks health at the service's configured port, over TLS (kubelet's grpc probe cannot)
            if not grpc:
                problems.append(f"k8s: {name} has no grpc {probe}")
            elif int(grpc.get("port", -1)) != port:
                problems.append(f"k8s: {name} {probe} asks port {grpc.get('port')}, the service listens on {port}")
        problems += _k8s_exposure_problems(docs, d, c, port)
    for service in SERVICES:
        if service not in apis:
            problems.append(f"k8s: no API workload for {service}")
    return problems + k8s_console_probe_problems(docs)


def _k8s_exposure_problems(docs: list[dict], d: dict, c: dict, port: int) -> list[str]:
    """The container declares `port`, a Service selects its pods and sends there, a
    PodDisruptionBudget keeps one of them."""
    problems = []
    name = d["metadata"]["name"]
    ports = {p.get("name"): int(p["containerPort"]) for p in c.get("ports") or []}
    if port not in ports.values():
        problems.append(f"k8s: {name} does not declare containerPort {port}")
    pod_labels = d["spec"]["template"]["metadata"].get("labels", {})
    svcs = [s for s in docs if s.get("kind") == "Service"
            and s.get("spec", {}).get("selector")
            and s["spec"]["selector"].items() <= pod_labels.items()]
    if not svcs:
        problems.append(f"k8s: no Service selects the pods of {name}")
    for s in svcs:
        for p in s["spec"].get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            target = ports.get(target, target) if isinstance(target, str) else target
            if int(target) != port:
                problems.append(f"k8s: Service {s['metadata']['name']} sends to {target}, not {port}")
    if not any(p.get("kind") == "PodDisruptionBudget"
               and p["spec"]["selector"]["matchLabels"].items() <= pod_labels.items() for p in docs):
        problems.append(f"k8s: no PodDisruptionBudget for {name}")
    return problems


def k8s_console_probe_problems(docs: list[dict]) -> list[str]:
    """The console's pods listen on every interface, and Kubernetes asks GET /healthz on its port
    (200 SERVING, 503 NOT_SERVING) whether they are ready and alive."""
    found = [(d, c) for d in docs if d.get("kind") in ("Deployment", "StatefulSet")
             for c in _containers(d) if _ours(c) and _k8s_command(c)[:1] == [f"services.{CONSOLE}"]]
    if not found:
        return [f"k8s: no workload runs python -m services.{CONSOLE}"]
    problems = []
    for d, c in found:
        name = d["metadata"]["name"]
        env = _k8s_env(docs, c)
        port = int(env.get("CONSOLE_HTTP_PORT", console_default("CONSOLE_HTTP_PORT")))
        if env.get("CONSOLE_HTTP_HOST", console_default("CONSOLE_HTTP_HOST")) not in LISTEN_ALL:
            problems.append(f"k8s: {name} must listen on 0.0.0.0 (CONSOLE_HTTP_HOST)")
        ports = {p.get("name"): int(p["containerPort"]) for p in c.get("ports") or []}
        for probe in ("readinessProbe", "livenessProbe"):
            http = (c.get(probe) or {}).get("httpGet")
            if not http:
                problems.append(f"k8s: {name} has no httpGet {probe}")
                continue
            asked = http.get("port", -1)
            asked = ports.get(asked, -1) if isinstance(asked, str) else int(asked)
            if http.get("path") != "/healthz" or asked != port:
                problems.append(f"k8s: {name} {probe} asks {http.get('path')} on port {http.get('port')}, "
                                f"expected /healthz on {port}")
        problems += _k8s_exposure_problems(docs, d, c, port)
    return problems


def k8s_resource_problems(docs: list[dict]) -> list[str]:
    problems = []
    for d in docs:
        if d.get("kind") not in WORKLOADS:
            continue
        for c in _containers(d):
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if not (res.get(part) or {}).get(what):
                        problems.append(f"k8s: {d['metadata']['name']} container {c.get('name')} has no {part}.{what}")
    return problems


def k8s_selector_problems(docs: list[dict]) -> list[str]:
    problems = []
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet"):
            sel = d["spec"]["selector"]["matchLabels"]
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            if not sel.items() <= labels.items():
                problems.append(f"k8s: {d['metadata']['name']} selector does not match its pod labels")
    return problems


def k8s_env_problems(docs: list[dict]) -> list[str]:
    known = code_env_names()
    problems = []
    sources = {("ConfigMap", d["metadata"]["name"]) for d in docs if d.get("kind") == "ConfigMap"}
    sources |= {("Secret", d["metadata"]["name"]) for d in docs if d.get("kind") == "Secret"}
    for d in docs:
        keys = []
        if d.get("kind") == "ConfigMap":
            keys = list(d.get("data") or {})
        elif d.get("kind") == "Secret":
            keys = list(d.get("stringData") or {}) + list(d.get("data") or {})
        elif d.get("kind") in WORKLOADS:
            for c in _containers(d):
                if not _ours(c):
                    continue
                keys += [e["name"] for e in c.get("env") or []]
                for ref in c.get("envFrom") or []:
                    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        if field in ref and (kind, ref[field]["name"]) not in sources:
                            problems.append(f"k8s: {d['metadata']['name']} reads {kind} {ref[field]['name']}, defined nowhere in deploy/k8s")
        for key in keys:
            if key not in known:
                problems.append(f"k8s: {d['kind']} {d['metadata']['name']} sets {key}, which no code reads")
    return problems


def _k8s_env(docs: list[dict], container: dict) -> dict[str, str]:
    """A container's environment: its ConfigMaps and Secrets (secret.example.yaml), then env."""
    sources = {}
    for d in docs:
        if d.get("kind") == "ConfigMap":
            sources[("configMapRef", d["metadata"]["name"])] = d.get("data") or {}
        elif d.get("kind") == "Secret":
            sources[("secretRef", d["metadata"]["name"])] = d.get("stringData") or {}
    env: dict[str, str] = {}
    for ref in container.get("envFrom") or []:
        for field in ("configMapRef", "secretRef"):
            if field in ref:
                env.update({k: str(v) for k, v in sources.get((field, ref[field]["name"]), {}).items()})
    env.update({e["name"]: str(e.get("value", "")) for e in container.get("env") or []})
    return env


def k8s_grpc_problems(docs: list[dict]) -> list[str]:
    """Every process that calls another service reaches that service's API by its Service name."""
    configured = configmap_data(docs)
    workloads = {}
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet"):
            for c in _containers(d):
                cmd = _k8s_command(c)
                if _ours(c) and len(cmd) == 2:
                    workloads[(cmd[0].removeprefix("services."), cmd[1])] = (d, c)
    apis = {}
    for service in SERVICES:
        if (service, "api") not in workloads:
            continue
        labels = workloads[(service, "api")][0]["spec"]["template"]["metadata"].get("labels", {})
        for s in docs:
            if (s.get("kind") == "Service" and s.get("spec", {}).get("selector")
                    and s["spec"]["selector"].items() <= labels.items()):
                ports = [int(p["port"]) for p in s["spec"].get("ports") or []]
                port = grpc_port(service, configured)
                apis[service] = (s["metadata"]["name"], port if port in ports else (ports or [0])[0])
    problems = []
    for (_service, kind), (d, c) in sorted(workloads.items()):
        env = _k8s_env(docs, c)
        problems += grpc_target_problems("k8s", d["metadata"]["name"], env, apis)
        if kind == "api" and env.get("SUPPLY_GRPC_HOST") not in LISTEN_ALL:
            problems.append(f"k8s: {d['metadata']['name']} must listen on 0.0.0.0 (SUPPLY_GRPC_HOST)")
    for caller, callee in sorted(grpc_calls()):
        var = f"{callee.upper()}_GRPC_TARGET"
        for kind in CALLING_KINDS:
            if (caller, kind) in workloads and var not in _k8s_env(docs, workloads[(caller, kind)][1]):
                problems.append(f"k8s: {workloads[(caller, kind)][0]['metadata']['name']} calls {callee} but has no {var}")
    for key in sorted(console_processes() & set(workloads)):
        d, c = workloads[key]
        for callee in sorted(console_calls()):
            var = f"{callee.upper()}_GRPC_TARGET"
            if var not in _k8s_env(docs, c):
                problems.append(f"k8s: {d['metadata']['name']} calls {callee} but has no {var}")
    return problems


# --------------------------------------------------------------------------------- the tests

def test_compose_parses_and_lists_every_process():
    assert compose_process_problems(compose()) == []


def test_compose_images_of_ours_are_built_from_the_dockerfile():
    assert compose_image_problems(compose()) == []


def test_compose_migrates_once_before_anything_runs():
    assert compose_migrate_problems(compose()) == []


def test_compose_dependencies_exist_and_healthchecks_back_their_conditions():
    assert compose_dependency_problems(compose()) == []


def test_compose_servers_and_apis_have_healthchecks_on_the_right_ports():
    assert compose_health_problems(compose()) == []


def test_compose_sets_only_variables_the_code_reads():
    assert compose_env_problems(compose()) == []


def test_compose_gives_each_process_its_own_database_and_broker_user():
    assert compose_wiring_problems(compose()) == []


def test_compose_processes_reach_other_services_by_their_grpc_target():
    assert ("allocation", "logistics") in grpc_calls()
    assert compose_grpc_problems(compose()) == []


def test_compose_variables_and_the_env_file_template_agree():
    assert compose_interpolation_problems(COMPOSE.read_text(encoding="utf-8"), env_example()) == []


def test_compose_requires_every_password_key_and_token():
    assert compose_secret_problems(COMPOSE.read_text(encoding="utf-8")) == []


def test_compose_runs_the_console_after_the_apis_with_an_http_healthcheck():
    assert console_processes() == {(CONSOLE, "web")}
    assert console_calls() == {*SERVICES, "market"}  # the four services and the supermarket channel
    assert (console_default("CONSOLE_HTTP_HOST"), console_default("CONSOLE_HTTP_PORT")) == ("127.0.0.1", "8080")
    s = compose()["services"][CONSOLE]
    assert _command(s) == ["services.console", "web"]
    assert compose_console_health_problems(s) == []
    # the first admin: `docker compose run --rm console services.cli user add …` works because the
    # image's ENTRYPOINT is `python -m` and compose does not override it
    assert "entrypoint" not in s
    assert 'ENTRYPOINT ["python", "-m"]' in DOCKERFILE.read_text(encoding="utf-8")
    assert "docker compose --env-file deploy/compose.env run --rm console services.cli user add admin --role admin" \
        in (ROOT / "deploy/compose.env.example").read_text(encoding="utf-8")


def test_dockerfile_installs_the_lock_file_and_runs_as_non_root():
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []
    assert dockerignore_problems((ROOT / ".dockerignore").read_text(encoding="utf-8")) == []


def test_k8s_manifests_parse():
    assert k8s_parse_problems() == []


def test_k8s_runs_every_process_kind_and_a_migration_job_per_service():
    assert k8s_process_problems(k8s_docs()) == []


def test_k8s_grpc_probes_services_and_pdbs_use_the_configured_ports():
    assert k8s_probe_problems(k8s_docs()) == []


def test_k8s_every_container_has_requests_and_limits():
    assert k8s_resource_problems(k8s_docs()) == []


def test_k8s_selectors_match_pod_labels():
    assert k8s_selector_problems(k8s_docs()) == []


def test_k8s_sets_only_variables_the_code_reads():
    assert k8s_env_problems(k8s_docs()) == []


def test_k8s_processes_reach_other_services_by_their_grpc_target():
    assert k8s_grpc_problems(k8s_docs()) == []


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kust["resources"])
    expected = {p.name for p in k8s_files()} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == expected


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Z0-9_]){re.escape(name)}(?![A-Z0-9_])", text) is not None


def test_operations_manual_documents_every_variable_of_config_py():
    names = config_env_names()
    assert {"DATABASE_URL", "AMQP_URL", "SUPPLY_SECRET", "INTAKE_DATABASE_URL", "MONITORING_GRPC_PORT"} <= names
    text = OPERATIONS.read_text(encoding="utf-8")
    assert sorted(n for n in names if not _mentions(text, n)) == []


def test_operations_manual_documents_every_console_variable():
    tree = ast.parse((ROOT / "services/console/config.py").read_text(encoding="utf-8"))
    names = {n for n in _names_in(tree) if n.startswith("CONSOLE_")} | {"CONSOLE_DATABASE_URL"}
    assert {"CONSOLE_HTTP_PORT", "CONSOLE_COOKIE_SECURE", "CONSOLE_TILE_URL"} <= names
    text = OPERATIONS.read_text(encoding="utf-8")
    assert sorted(n for n in names if not _mentions(text, n)) == []


def test_operations_manual_documents_every_supply_variable_the_services_read():
    text = OPERATIONS.read_text(encoding="utf-8")
    missing = sorted(n for n in supply_env_names() if not _mentions(text, n))
    assert missing == [], f"add to docs/operations.md section 3: {missing}"


def test_operations_manual_explains_every_alarm_rule_and_alert_code():
    text = OPERATIONS.read_text(encoding="utf-8")
    catalogue = yaml.safe_load((ROOT / "services/common/reference/catalogue.yaml").read_text(encoding="utf-8"))
    codes = {rule["code"] for sc in catalogue["storage_classes"].values() for rule in sc.get("alarms", [])}
    domain = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "services/monitoring/domain").glob("*.py"))
    other = {"SENSOR_OFFLINE", "SPOILAGE_RRS", "MKT_LIMIT", "SEG_WRONG_CLASS", "RESERVE_FLOOR",
             "NEAR_EXPIRY", "PRICE_RISE"}
    assert sorted(c for c in other if f'"{c}"' not in domain) == [], "alert codes changed in the domain"
    assert sorted(c for c in codes | other if not _mentions(text, c)) == []


# --------------------------------------------------------- servers: broker, database, MQTT

def rabbit_definitions() -> dict:
    return json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text(encoding="utf-8"))


def rabbit_problems(defs: dict, doc: dict) -> list[str]:
    """Per-service users whose permissions fit the topology the code declares and uses."""
    from services.common.messaging import all_subscriptions, exchange_of

    problems = []
    if "supply" not in {v["name"] for v in defs.get("vhosts", [])}:
        problems.append("rabbitmq: no vhost supply")
    perms = {p["user"]: p for p in defs.get("permissions", []) if p.get("vhost") == "supply"}
    users = {u["name"]: u for u in defs.get("users", [])}
    subs = all_subscriptions()
    exchanges = {exchange_of(s) for s in SERVICES}
    queues = {s.queue for s in subs}
    for service in SERVICES:
        user = f"supply-{service}"
        if user not in users or user not in perms:
            problems.append(f"rabbitmq: no user {user} with permissions on vhost supply")
            continue
        p = {k: re.compile(perms[user][k]) for k in ("configure", "write", "read")}
        for name in exchanges | queues:  # every relay declares the whole topology (ADR 0001)
            if not p["configure"].fullmatch(name):
                problems.append(f"rabbitmq: {user} may not declare {name}")
        for q in queues:  # binds need write on the queue, read on the exchange
            if not p["write"].fullmatch(q):
                problems.append(f"rabbitmq: {user} may not bind {q}")
        for ex in exchanges:
            if not p["read"].fullmatch(ex):
                problems.append(f"rabbitmq: {user} may not bind to {ex}")
            if (ex == exchange_of(service)) != bool(p["write"].fullmatch(ex)):
                problems.append(f"rabbitmq: {user} write on {ex} must be {ex == exchange_of(service)}")
        for sub in subs:
            if sub.consumer == service and not p["read"].fullmatch(sub.queue):
                problems.append(f"rabbitmq: {user} may not consume its queue {sub.queue}")
        if not p["write"].fullmatch("amq.default"):
            problems.append(f"rabbitmq: {user} cannot replay dead letters (write on amq.default)")
    # the compose broker fills every password placeholder from its environment
    rabbit = doc.get("services", {}).get("rabbitmq", {})
    script = " ".join(_command(rabbit))
    for u in defs.get("users", []):
        m = re.fullmatch(r"\$\{(\w+)\}", str(u.get("password", "")))
        if not m:
            problems.append(f"rabbitmq: user {u['name']} has no ${{…}} password placeholder")
        elif m.group(1) not in _env_of(rabbit) or f"$${{{m.group(1)}}}" not in script:
            problems.append(f"rabbitmq: compose does not fill {m.group(1)} into definitions.json")
    return problems


def test_rabbitmq_users_permissions_fit_the_event_topology():
    assert rabbit_problems(rabbit_definitions(), compose()) == []


def test_rabbitmq_conf_loads_the_rendered_definitions():
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text(encoding="utf-8")
    target = re.search(r"^load_definitions\s*=\s*(\S+)", conf, re.M)
    assert target, "rabbitmq.conf does not load definitions"
    assert f"> {target.group(1)}" in " ".join(_command(compose()["services"]["rabbitmq"]))


def test_postgres_init_creates_a_database_and_role_per_service_from_the_environment():
    sql = (ROOT / "deploy/postgres/init.sql").read_text(encoding="utf-8")
    dbs = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    assert CONSOLE in DATABASES
    assert dbs == {s: s for s in DATABASES}
    assert set(re.findall(r"CREATE ROLE (\w+) LOGIN", sql)) == set(DATABASES)
    env_vars = set(re.findall(r"\\getenv \w+ (\w+)", sql))
    assert env_vars == {f"{s.upper()}_DB_PASSWORD" for s in DATABASES}
    for var in env_vars:  # an unset password stops the script
        assert re.search(rf"RAISE EXCEPTION '{var} is not set'", sql), var
    limits = {role: int(n) for role, n in re.findall(r"ALTER ROLE (\w+) CONNECTION LIMIT (\d+)", sql)}
    assert set(limits) == set(DATABASES)
    postgres = compose()["services"]["postgres"]
    assert env_vars <= set(_env_of(postgres))
    cmd = " ".join(_command(postgres))
    max_connections = int(re.search(r"max_connections=(\d+)", cmd).group(1))
    assert sum(limits.values()) < max_connections, "the roles' connection limits exceed the server's"
    assert any("deploy/postgres/init.sql:/docker-entrypoint-initdb.d/" in v for v in postgres["volumes"])


def test_mosquitto_refuses_anonymous_clients_and_the_acl_knows_every_compose_user():
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    assert re.search(r"^password_file /mosquitto/config/passwd$", conf, re.M)
    assert re.search(r"^acl_file /mosquitto/config/acl$", conf, re.M)
    acl = (ROOT / "deploy/mosquitto/acl").read_text(encoding="utf-8")
    rules: dict[str, list[str]] = {}
    user = None
    for line in acl.splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:1] == ["topic"] and user:
            rules.setdefault(user, []).append(" ".join(words[1:]))
    services = compose()["services"]
    assert any(v.startswith("./deploy/mosquitto:/mosquitto/config") for v in services["mosquitto"]["volumes"])
    assert rules["monitoring"] == ["read supply/#"]  # read-only
    assert not re.search(r"^\s*pattern\b", acl, re.M), "a pattern applies to every user, monitoring too"
    for name, s in services.items():
        url = _env_of(s).get("MQTT_URL", "")
        if url:
            login = re.match(r"mqtts?://([^:@/]+):", url)
            assert login, f"{name}: MQTT_URL without a user"
            # `{depot}`: one account per gateway (simulators/gateway.py), each in the ACL
            users = [u for u in rules if re.fullmatch(re.escape(login.group(1)).replace(r"\{depot\}", ".+"), u)]
            assert users, f"{name}: MQTT user not in deploy/mosquitto/acl"
            for u in users:
                if "{depot}" in login.group(1):
                    depot = u[len(login.group(1).split("{depot}")[0]):]
                    assert rules[u] == [f"write supply/{depot}/#"], f"{u}: writes outside its depot"
    health = " ".join(services["mosquitto"]["healthcheck"]["test"])
    assert "-u health" in health and "health" in rules


# ------------------------------------------------ the checks notice a broken artifact

def test_a_process_missing_from_compose_is_noticed():
    doc = compose()
    del doc["services"]["intake-relay"]
    assert any("intake-relay" in p for p in compose_process_problems(doc))
    doc = compose()
    doc["services"]["monitoring-ingest"]["command"] = ["services.monitoring", "injest"]
    assert compose_process_problems(doc) and compose_image_problems(doc)


def test_a_missing_or_broken_console_in_compose_is_noticed():
    doc = compose()
    del doc["services"][CONSOLE]
    assert any(f"no service {CONSOLE}" in p for p in compose_process_problems(doc))
    assert any(f"no service {CONSOLE}" in p for p in compose_health_problems(doc))
    doc = compose()
    hc = doc["services"][CONSOLE]["healthcheck"]
    hc["test"] = [w.replace("/healthz", "/") for w in hc["test"]]
    assert any(f"{CONSOLE} healthcheck" in p for p in compose_health_problems(doc))
    hc["test"] = ["CMD", "curl", "-fsS", "http://127.0.0.1:8080/healthz"]
    assert any("curl/wget" in p for p in compose_health_problems(doc))
    doc = compose()
    del doc["services"][CONSOLE]["environment"]["CONSOLE_HTTP_HOST"]
    assert any("CONSOLE_HTTP_HOST" in p for p in compose_health_problems(doc))
    doc = compose()
    del doc["services"][CONSOLE]["environment"]["MONITORING_GRPC_TARGET"]
    del doc["services"][CONSOLE]["depends_on"]["intake-api"]
    problems = compose_grpc_problems(doc)
    assert any(f"{CONSOLE} calls monitoring" in p for p in problems)
    assert any(f"{CONSOLE} must wait for intake-api" in p for p in problems)
    doc = compose()
    doc["services"][CONSOLE]["environment"]["CONSOLE_DATABASE_URL"] = "postgresql://intake:x@postgres:5432/intake"
    assert any("CONSOLE_DATABASE_URL" in p for p in compose_wiring_problems(doc))
    doc = compose()
    doc["services"]["migrate"]["command"].remove(CONSOLE)
    del doc["services"]["migrate"]["environment"]["CONSOLE_DATABASE_URL"]
    problems = compose_migrate_problems(doc)
    assert any("expected supplyctl migrate" in p for p in problems)
    assert any("CONSOLE_DATABASE_URL" in p for p in problems)


def test_an_optional_password_is_noticed():
    text = COMPOSE.read_text(encoding="utf-8")
    optional = text.replace("${CONSOLE_DB_PASSWORD:?set CONSOLE_DB_PASSWORD}", "${CONSOLE_DB_PASSWORD:-}")
    problems = compose_secret_problems(optional)
    assert any("CONSOLE_DB_PASSWORD:-" in p for p in problems)
    assert any("no required ${CONSOLE_DB_PASSWORD" in p for p in problems)


def test_broken_compose_dependencies_and_healthchecks_are_noticed():
    doc = compose()
    doc["services"]["intake-api"]["depends_on"]["rabitmq"] = {"condition": "service_healthy"}
    assert any("rabitmq" in p for p in compose_dependency_problems(doc))
    doc = compose()
    del doc["services"]["postgres"]["healthcheck"]
    assert compose_dependency_problems(doc) and compose_health_problems(doc)
    doc = compose()
    doc["services"]["logistics-api"]["healthcheck"]["test"][-1] = "intake"  # another API's health
    assert any("logistics-api" in p for p in compose_health_problems(doc))


def test_a_mistyped_variable_is_noticed():
    doc = compose()
    doc["services"]["intake-worker"]["environment"]["SUPPLY_TIMEZOME"] = "Asia/Shanghai"
    assert any("SUPPLY_TIMEZOME" in p for p in compose_env_problems(doc))
    docs = k8s_docs()
    next(d for d in docs if d["kind"] == "ConfigMap")["data"]["SUPPLY_LOGLEVEL"] = "INFO"
    assert any("SUPPLY_LOGLEVEL" in p for p in k8s_env_problems(docs))


def test_wrong_wiring_is_noticed():
    doc = compose()
    env = doc["services"]["allocation-relay"]["environment"]
    env["INTAKE_DATABASE_URL"] = "postgresql://intake:x@postgres:5432/intake"
    assert any("intake's database" in p for p in compose_wiring_problems(doc))
    assert compose_interpolation_problems("${NOT_IN_TEMPLATE}", {})


def test_wrong_grpc_addresses_are_noticed():
    doc = compose()
    del doc["services"]["allocation-worker"]["environment"]["LOGISTICS_GRPC_TARGET"]
    assert any("allocation-worker calls logistics" in p for p in compose_grpc_problems(doc))
    doc = compose()
    doc["services"]["allocation-worker"]["environment"]["SUPPLY_GRPC_HOST"] = "logistics-api"
    assert any("allocation-worker SUPPLY_GRPC_HOST" in p for p in compose_grpc_problems(doc))
    doc = compose()
    doc["services"]["allocation-api"]["environment"]["LOGISTICS_GRPC_TARGET"] = "127.0.0.1:50053"
    assert any("allocation-api LOGISTICS_GRPC_TARGET" in p for p in compose_grpc_problems(doc))
    doc = compose()
    doc["services"]["allocation-api"]["network_mode"] = "service:logistics-api"
    del doc["services"]["allocation-api"]["ports"]
    assert any("allocation-api does not publish" in p for p in compose_health_problems(doc))
    docs = k8s_docs()
    worker = next(d for d in docs if d["metadata"].get("name") == "allocation-worker" and d["kind"] == "Deployment")
    worker["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "SUPPLY_GRPC_HOST", "value": "logistics-api"}]
    problems = k8s_grpc_problems(docs)
    assert any("allocation-worker calls logistics" in p for p in problems)
    assert any("allocation-worker SUPPLY_GRPC_HOST" in p for p in problems)
    docs = k8s_docs()
    api = next(d for d in docs if d["metadata"].get("name") == "allocation-api" and d["kind"] == "Deployment")
    api["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LOGISTICS_GRPC_TARGET", "value": "logistics:50053"}]
    assert any("allocation-api LOGISTICS_GRPC_TARGET" in p for p in k8s_grpc_problems(docs))


def test_a_broken_dockerfile_is_noticed():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert any("USER" in p for p in dockerfile_problems(text.replace("USER 10001:10001", "USER root")))
    assert any("requirements.lock" in p for p in dockerfile_problems(
        text.replace("uv pip sync --python /opt/venv/bin/python requirements.lock", "uv pip install grpcio")))


def test_broken_k8s_manifests_are_noticed():
    docs = k8s_docs()
    docs = [d for d in docs if d["metadata"].get("name") != "logistics-relay"]
    assert any("logistics relay" in p for p in k8s_process_problems(docs))
    docs = k8s_docs()
    api = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "monitoring-api")
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"grpc": {"port": 50051}}
    del api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert any("monitoring-api readinessProbe" in p for p in k8s_probe_problems(docs))
    assert any("monitoring-api" in p for p in k8s_resource_problems(docs))


def test_a_missing_or_broken_console_in_k8s_is_noticed():
    docs = [d for d in k8s_docs() if not (d["kind"] == "Deployment" and d["metadata"]["name"] == CONSOLE)]
    assert any(f"services.{CONSOLE} web" in p for p in k8s_process_problems(docs))
    assert any(f"services.{CONSOLE}" in p for p in k8s_probe_problems(docs))
    docs = [d for d in k8s_docs() if d["metadata"].get("name") != f"{CONSOLE}-migrate"]
    assert any(f"no migration Job for {CONSOLE}" in p for p in k8s_process_problems(docs))
    docs = k8s_docs()
    web = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == CONSOLE)
    container = web["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"grpc": {"port": 8080}}
    container["livenessProbe"]["httpGet"]["path"] = "/"
    problems = k8s_probe_problems(docs)
    assert any(f"{CONSOLE} has no httpGet readinessProbe" in p for p in problems)
    assert any(f"{CONSOLE} livenessProbe asks /" in p for p in problems)
    container["env"] = [e for e in container["env"] if e["name"] != "LOGISTICS_GRPC_TARGET"]
    assert any(f"{CONSOLE} calls logistics" in p for p in k8s_grpc_problems(docs))
    next(d for d in docs if d["kind"] == "ConfigMap")["data"]["CONSOLE_HTTP_HOST"] = "127.0.0.1"
    assert any("CONSOLE_HTTP_HOST" in p for p in k8s_probe_problems(docs))


def test_too_wide_or_too_narrow_broker_permissions_are_noticed():
    defs = rabbit_definitions()
    for p in defs["permissions"]:
        if p["user"] == "supply-intake":
            p["write"] = ".*"
        if p["user"] == "supply-logistics":
            p["read"] = r"^(intake|allocation|logistics|monitoring)\.events$"
    problems = rabbit_problems(defs, compose())
    assert any("supply-intake write on logistics.events" in p for p in problems)
    assert any("supply-logistics may not consume" in p for p in problems)
