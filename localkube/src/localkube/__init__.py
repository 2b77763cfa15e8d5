"""localkube: a local Kubernetes for developing and testing kubellm (not part of the product).

An API server emulator, a kubelet that runs pods as local processes, the controllers and
service proxy (or a real kube-apiserver & co. with localkube's node: `realkube`), the
`localkube up|down|status` command, and under `localkube.testing` the fixtures the tests,
benchmarks and `kubellm demo` start clusters, MLflow servers and tiny models with. It is
its own distribution (`kubellm-localkube`, `pip install ./localkube`); it imports kubellm,
and kubellm imports it only lazily, from `kubellm demo` and `kubellm localkube`.
"""
