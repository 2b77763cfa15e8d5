"""`kubellm operator`: run the kopf operator (standalone, all or some namespaces)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import zlib
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    import kopf

    from kubellm.operator.config import OperatorConfig
    from kubellm.operator.handlers import build_registry
    from kubellm.operator.kube import RestKubeApi
    from kubellm.operator.reconciling import Reconciler

    env = dict(os.environ)
    if args.namespaces:
        env["KUBELLM_NAMESPACES"] = args.namespaces
    if args.tracking_uri:
        env["KUBELLM_MLFLOW_TRACKING_URI"] = args.tracking_uri
    if args.allowed_tracking_uris:
        env["KUBELLM_ALLOWED_TRACKING_URIS"] = args.allowed_tracking_uris
    if args.webhook_port is not None:
        env["KUBELLM_WEBHOOK_PORT"] = str(args.webhook_port)
    if args.poll_interval:
        env["KUBELLM_POLL_INTERVAL"] = args.poll_interval
    secret_file = args.webhook_secret_file or env.get("KUBELLM_WEBHOOK_SECRET_FILE")
    if secret_file:
        with open(secret_file) as fh:
            env["KUBELLM_WEBHOOK_SECRET"] = fh.read().strip()
    config = OperatorConfig.from_env(env)
    config.http_policy().apply()  # bounded MLflow calls: every client of this process
    reconciler = Reconciler(RestKubeApi(), config)
    registry = build_registry(reconciler, config)
    host = env.get("KUBELLM_LIVENESS_HOST", "0.0.0.0")
    liveness = f"http://{host}:{args.liveness_port}/healthz" if args.liveness_port else None
    if args.verbose:  # otherwise the root logging set up by `kubellm --log-level` applies
        logging.getLogger("kopf").setLevel(logging.DEBUG)
    # With peering, kopf pauses every replica whose priority ties with another's: derive a
    # distinct one per pod (its hostname) unless one is given.
    priority = int(env.get("KUBELLM_PRIORITY") or zlib.crc32(socket.gethostname().encode()) % 997)
    kopf.run(
        registry=registry,
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=priority if args.peering else None,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        liveness_endpoint=liveness,
    )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "operator",
        help="run the operator (kopf) against the current kubeconfig or in-cluster config",
        description=(
            "Reconcile LLM resources into training Jobs, gated rollouts and serving. "
            "Settings also come from KUBELLM_* environment variables (see the Helm chart)."
        ),
    )
    p.add_argument(
        "--namespaces",
        default=None,
        help="comma-separated namespaces to watch (default: all)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="default MLflow tracking URI (env KUBELLM_MLFLOW_TRACKING_URI)",
    )
    p.add_argument(
        "--allowed-tracking-uris",
        default=None,
        help=(
            "comma-separated tracking URIs an LLM may name besides --tracking-uri; the "
            "operator reaches (and sends its MLflow credentials to) no other "
            "(env KUBELLM_ALLOWED_TRACKING_URIS)"
        ),
    )
    p.add_argument(
        "--webhook-port",
        type=int,
        default=None,
        help="port of /webhooks/mlflow, /metrics, /healthz (default 8080)",
    )
    p.add_argument(
        "--webhook-secret-file",
        default=None,
        help="file holding the webhook HMAC secret (env KUBELLM_WEBHOOK_SECRET)",
    )
    p.add_argument(
        "--poll-interval",
        default=None,
        help="registry polling interval, e.g. 30s (env KUBELLM_POLL_INTERVAL)",
    )
    p.add_argument(
        "--liveness-port",
        type=int,
        default=int(os.environ.get("KUBELLM_LIVENESS_PORT", "8081")),
        help="kopf liveness endpoint port (0 disables; default 8081)",
    )
    p.add_argument(
        "--peering",
        default=os.environ.get("KUBELLM_PEERING") or None,
        help="kopf peering name for several replicas (default: standalone)",
    )
    p.add_argument("--verbose", action="store_true", help="kopf debug logging")
    p.set_defaults(handler=_run)
