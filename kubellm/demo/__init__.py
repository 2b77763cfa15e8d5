"""`kubellm demo`: the whole lifecycle on one laptop, installed the way a cluster installs it.

It starts localkube and an MLflow server on loopback, renders the Helm chart with helm and
applies it with kubectl (so the operator runs as the chart's Deployment, a pod like any
other), applies `examples/tiny-pretrain.yaml`, and shows live progress until the first
version is promoted. Then it prints how to talk to the production endpoint. Every process it
started is stopped on exit, including on Ctrl-C, and also when the demo itself is killed
(SIGKILL, the OOM killer, a closed terminal): a :class:`~localkube.lifetime.Guard`
tags every process it starts and its watchdog stops them; the next demo in the same workdir
stops whatever a dead one left and says so, and starts from a clean slate (the previous
run's files move to `previous-run/`). A pod that is not Ready after 60 s ends the demo with
its name, reason and last log lines; every failure ends in one sentence and exit code 1.

The parts: `chart` (what is installed), `progress` (watching it), `summary` (the endpoint and
commands printed at the end), `running` (the command, its workdir and cleanup), `common`.
"""

from kubellm.demo.chart import demo_manifest, manifest_name, render_chart
from kubellm.demo.common import DemoFailure, share_root
from kubellm.demo.progress import refusal
from kubellm.demo.running import register, run_demo
from kubellm.demo.summary import check_endpoint, gateway_address

__all__ = [
    "DemoFailure",
    "check_endpoint",
    "demo_manifest",
    "gateway_address",
    "manifest_name",
    "refusal",
    "register",
    "render_chart",
    "run_demo",
    "share_root",
]
