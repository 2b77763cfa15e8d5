"""A container that cannot start says why: CrashLoopBackOff and the reason, in kubectl."""

from __future__ import annotations

import socket
import sys

from localkube.testing.localkube import Cluster

from .controllers_support import apply, needs_kubectl, wait_for

pytestmark = needs_kubectl


def test_a_pod_whose_port_is_taken_shows_the_reason_in_describe(localkube: Cluster, ns: str):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        serve = f"import socket; socket.socket().bind(('127.0.0.1', {port})); print('serving')"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "x",
                        "command": [sys.executable, "-c", serve],
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                    }
                ]
            },
        }
        apply(localkube, ns, pod)

        def crashlooping() -> str:
            out = localkube.kubectl("get", "pod", "web", "-n", ns, "--no-headers").stdout
            return out if "CrashLoopBackOff" in out else ""

        row = wait_for(crashlooping, timeout=30, interval=0.3, what="CrashLoopBackOff")
        assert row.split()[1] == "0/1"
        describe = localkube.kubectl("describe", "pod", "web", "-n", ns).stdout
        assert "Reason:    CrashLoopBackOff" in describe
        assert "OSError: [Errno 98] Address already in use" in describe
        assert "Back-off restarting failed container web" in describe
    finally:
        taken.close()
