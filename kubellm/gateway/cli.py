"""``kubellm gateway``: the OpenAI-aware front door of every LLM the operator manages.

Every flag can also come from the environment (``--hold-timeout`` from
``KUBELLM_GATEWAY_HOLD_TIMEOUT`` and so on), which is how the Helm chart configures it; a
flag on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from typing import Any

__all__ = ["parse_seconds", "register", "run_gateway"]

log = logging.getLogger(__name__)


def parse_seconds(text: str) -> float:
    """``"90s"``, ``"2m"``, ``"1m30s"``, ``"500ms"`` or a plain number of seconds."""
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?", text)
        if not text or parts is None:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None
        h, m, s, ms = (int(p or 0) for p in parts.groups())
        value = h * 3600 + m * 60 + s + ms / 1000
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _add(parser: argparse.ArgumentParser, flag: str, help: str, **kw: Any) -> None:
    env_name = "KUBELLM_GATEWAY_" + flag.lstrip("-").replace("-", "_").upper()
    default = os.environ.get(env_name, kw.pop("default", None))
    shown = f" (env {env_name}" + (f"; default {default}" if default is not None else "") + ")"
    parser.add_argument(flag, default=default, help=help + shown, **kw)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "gateway",
        help="OpenAI-aware gateway: route by model and release weight, hold at zero, retry",
        description=(
            "Proxy /v1/completions and /v1/chat/completions to the release of the LLM the "
            "request's model names (weights from the LLM's status), hold requests while an "
            "LLM scales from zero, retry a refused or 503 attempt once on another pod. "
            "/v1/models lists every LLM. The admin port serves /demand (read by the "
            "operator), /metrics, /healthz and /readyz."
        ),
    )
    _add(p, "--host", "address to bind", default="0.0.0.0")
    _add(p, "--port", "port of the OpenAI API", type=int, default=8000)
    _add(p, "--admin-host", "address of the admin port (default: --host)")
    _add(p, "--admin-port", "port of /demand, /metrics, /healthz, /readyz", type=int, default=9090)
    _add(p, "--namespaces", "comma-separated namespaces to front (default: all)", default="")
    _add(
        p,
        "--hold-timeout",
        "longest wait for a replica (scale from zero) before 503",
        type=parse_seconds,
        default="120s",
    )
    _add(p, "--max-held", "requests held per LLM at most", type=int, default=256)
    _add(
        p,
        "--connect-timeout",
        "time to connect to a pod before trying another",
        type=parse_seconds,
        default="3s",
    )
    _add(
        p,
        "--readiness-check-interval",
        "while requests wait for an LLM with no ready pod, how often the gateway runs a "
        "starting pod's own readiness check itself (0: wait for the kubelet's Ready)",
        type=parse_seconds,
        default="100ms",
    )
    p.set_defaults(handler=run_gateway)


async def _main(args: argparse.Namespace) -> None:
    from kubellm.gateway.catalog import Catalog
    from kubellm.gateway.proxy import (
        Gateway,
        GatewaySettings,
        build_admin_app,
        build_app,
        serve,
    )
    from kubellm.gateway.watching import KubeWatchClient, watch_all

    settings = GatewaySettings(
        hold_timeout=_seconds(args.hold_timeout),
        max_held=int(args.max_held),
        connect_timeout=_seconds(args.connect_timeout),
        probe_interval=_seconds(args.readiness_check_interval),
    )
    namespaces = [n.strip() for n in str(args.namespaces or "").split(",") if n.strip()]
    catalog = Catalog()
    gateway = Gateway(catalog, settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with KubeWatchClient.from_environment() as client:
        tasks = await watch_all(client, catalog, namespaces)
        admin = await serve(build_admin_app(gateway), args.admin_host or args.host, args.admin_port)
        api = await serve(build_app(gateway), args.host, int(args.port))
        log.info(
            "gateway on %s:%s (admin %s:%s), fronting %s",
            args.host,
            args.port,
            args.admin_host or args.host,
            args.admin_port,
            ", ".join(namespaces) or "all namespaces",
        )
        try:
            await stop.wait()
        finally:
            log.info("gateway stopping")
            await api.cleanup()
            await admin.cleanup()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await gateway.close()


def _seconds(value: Any) -> float:
    return value if isinstance(value, float) else parse_seconds(str(value))


def run_gateway(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        print(f"kubellm gateway: {exc}", file=sys.stderr)
        return 1
    return 0
