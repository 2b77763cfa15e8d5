"""The load-test gate: ``kubellm loadtest`` loads a release with Locust and judges it.

One module per job: ``slo`` parses objectives and durations, ``settings`` validates the
command line, ``probe`` checks the target answers, ``runner`` runs Locust as subprocesses
(``locustfile`` is what they load, ``plan`` what they are told), ``figures`` is what they
measure, ``verdict`` the pure pass/fail decision, ``report`` writes it everywhere, ``cli``
wires them. Nothing here imports Locust in the gate's own process: Locust's import
monkey-patches the interpreter with gevent, so it only ever runs in its own processes.
"""
