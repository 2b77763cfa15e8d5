"""Test support shipped with the package: tiny models and local services.

Kept in the package (not only under tests/) because benchmarks and `kubellm demo` use the
same tiny model builder, and because the e2e tests of a downstream cluster can reuse it.
"""
