"""kubellm.gateway: the OpenAI-aware front door of the releases (`kubellm gateway`).

`routing` (pure decisions), `catalog` (the cluster as the gateway sees it), `watching`
(list/watch into the catalog), `traffic` (in flight, held, cold starts), `demand` (what the
operator reads), `proxy` (the HTTP apps), `metrics`, `cli`. Nothing here imports the operator.
"""
