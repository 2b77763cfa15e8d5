"""The objects the differential checks create: two small CRDs and built-in workloads.

`widgets.example.com` is the checklist's CRD (printer column, defaults, enum, bounds, a CEL
rule, status subresource, a described field for `kubectl explain`); `gadgets.example.com`
has the printer-column types a table must render (integer, date, a list, a wide column)
and no status subresource. Workloads run `sleep` or `sh` as processes on localkube's node.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "self.max >= self.min"
              message: "max must be >= min"
              fieldPath: ".max"
            properties:
              size: {type: integer, minimum: 1, maximum: 10, description: "How big."}
              color: {type: string, enum: [red, blue], default: red}
              label: {type: string, maxLength: 8}
              min: {type: integer, default: 0}
              max: {type: integer, default: 5}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""

GADGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size, description: "How big."}
    - {name: Made, type: date, jsonPath: .metadata.creationTimestamp}
    - {name: Tags, type: string, jsonPath: .spec.tags, priority: 1}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              tags: {type: array, items: {type: string}}
"""


def widget(name: str, size: int = 3, **extra: Any) -> JSON:
    meta: JSON = {"name": name, "labels": {"app": "demo"}}
    meta.update(extra.pop("metadata", {}))
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta,
        "spec": {"size": size, **extra},
    }


def widget_yaml(name: str, size: int) -> str:
    return f"""apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
  labels: {{app: demo}}
spec:
  size: {size}
"""


def deployment(name: str, replicas: int = 1, env: str = "1") -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "command": ["sleep", "3600"],
                            "env": [{"name": "A", "value": env}],
                        }
                    ],
                },
            },
        },
    }


def job(name: str, script: str, backoff_limit: int = 6) -> JSON:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}
                    ],
                }
            },
        },
    }
