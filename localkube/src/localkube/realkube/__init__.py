"""A real Kubernetes control plane with localkube's kubelet and service proxy as its node.

`controlplane` runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler built
from the Kubernetes Go modules (`make realkube`); `node` registers a Node and runs pods with
localkube's kubelet; `cluster` wires both behind the interface of `LocalCluster`.
"""
