"""Test support: a local cluster, an MLflow server, tiny models, a pod-security checker.

In the localkube distribution, not in the product: the tests, the benchmarks and
`kubellm demo` share them, and the e2e tests of a downstream cluster can reuse them.
"""
