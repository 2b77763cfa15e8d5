"""The chart's security settings (issue 12): the promotion key, and what each pod may hold."""

from __future__ import annotations

import base64

from tests.unit.chart.conftest import RELEASE, Renderer, Rendering


def test_promotion_key_is_generated_kept_and_given_to_the_operator_only(
    renderer: Renderer,
) -> None:
    rendering = renderer.render("default")
    secret = rendering.one("Secret", f"{RELEASE}-promotion")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key = base64.b64decode(secret["data"]["promotion-key"]).decode()
    assert len(key) == 48
    env = rendering.operator_env["KUBELLM_PROMOTION_KEY"]
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-promotion",
        "key": "promotion-key",
    }


def _pods(rendering: Rendering) -> list[dict[str, object]]:
    return [
        d["spec"]["template"]["spec"]
        for d in rendering.docs
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def test_no_pod_but_the_operator_reads_the_promotion_key(rendering: Rendering) -> None:
    for pod in _pods(rendering):
        text = str(pod)
        if "KUBELLM_PROMOTION_KEY" in text or f"{RELEASE}-promotion" in text:
            assert pod is rendering.operator["spec"]["template"]["spec"]
