"""The simulated controllers of localkube: each one an API client of the emulator.

`kubelet` (scheduler + kubelet), `replicasets`, `deployments`, `jobs`, `autoscaling`
(HPA v2); pure decision functions live beside them (`rollout`, `jobstatus`, `podstatus`,
`env`, `replicas`) so they are unit-tested without a server.
"""
