"""The simulated controllers of localkube: each one an API client of the emulator.

Modules: `kubelet` (scheduler + kubelet) with `podruntime` (one pod's processes),
`replicasets`, `deployments`, `jobs`, `autoscaling` (HPA v2); pure decision functions live
beside them (`rollout`, `jobstatus`, `podstatus`, `env`, `replicas`, `probes`) so they are
unit-tested without a server; `base` holds informers, work queues and the event recorder.

Writing manifests that run both here and on a real cluster:

* Bind servers to the pod IP: `--host $(POD_IP)` with env `POD_IP` from
  `fieldRef: status.podIP`. Each pod has its own loopback address (127.64.x.y), so
  replicas can share a port; on a cluster the same manifest binds the pod's interface.
* Write results to `${KUBELLM_TERMINATION_LOG:-/dev/termination-log}`; the kubelet copies
  it into `state.terminated.message` (<= 4096 bytes) as a real kubelet does.
* Paths under a volume's `mountPath` in `command`, `args` and env values are rewritten
  onto the local directory standing for the volume; `KUBELLM_MOUNTS` (JSON) has the map
  for code that builds paths itself. The image is ignored: the command must exist locally
  (the emulator's own interpreter comes first on PATH, so `python` and `kubellm` work).
* Timings (backoffs, probe periods, deadlines, TTLs, grace periods, HPA sync) are
  multiplied by the cluster's time scale (`--time-scale`, tests use 0.1).
* Pod-process faults: `cluster.pod_faults`, `POST /_localkube/pod-faults`, or the pod
  annotation `localkube.kubellm.dev/fault` (see :mod:`faults`).
"""
