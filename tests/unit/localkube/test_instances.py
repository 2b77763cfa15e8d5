"""Address blocks, instance state and the listening-socket probe, without a cluster."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from localkube import instances
from localkube.instances import AddressBlocks, InstanceState, claim_blocks


def test_slots_are_disjoint_and_never_overlap_the_service_blocks():
    nets = []
    for slot in range(instances.SLOTS):
        b = AddressBlocks.for_slot(slot)
        nets += [ipaddress.ip_network(b.pods), ipaddress.ip_network(b.services)]
    for i, a in enumerate(nets):
        assert all(not a.overlaps(b) for b in nets[i + 1 :]), a
    assert AddressBlocks.for_slot(0) == AddressBlocks(0, "127.64.0.0/16", "127.96.0.0/16")
    with pytest.raises(ValueError):
        AddressBlocks.for_slot(instances.SLOTS)


def test_the_claim_marker_is_outside_what_the_pod_pool_hands_out():
    from localkube.networking import IpPool

    blocks = AddressBlocks.for_slot(3)
    assert blocks.marker == "127.67.255.255"
    assert blocks.contains("127.67.1.2") and blocks.contains("127.99.0.9")
    assert not blocks.contains("127.0.0.1") and not blocks.contains("nonsense")
    pool = IpPool(blocks.pods)
    pool._cursor = pool.network.num_addresses - 3  # the last two hosts, then wrap around
    handed = {pool.allocate(f"pod-{i}") for i in range(4)}
    assert blocks.marker not in handed


def test_state_round_trips_with_the_keys_the_test_harness_reads():
    state = InstanceState(
        pid=12,
        url="https://127.0.0.1:1",
        kubeconfig="/k",
        workdir="/w",
        tag="localkube-12-ab",
        pod_cidr="127.65.0.0/16",
        service_cidr="127.97.0.0/16",
        admin_url="https://127.0.0.1:1",
        process_start=99,
    )
    data = state.to_json()
    assert {"pid", "url", "kubeconfig", "adminUrl", "podCIDR", "serviceCIDR", "tag"} <= set(data)
    assert data["controlPlane"] == "localkube" and data["processStart"] == 99
    assert InstanceState.from_json(data) == state


def test_listening_addresses_reads_only_listening_ipv4_sockets(tmp_path: Path):
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st\n"
        "   0: 0100417F:7CFF 00000000:0000 0A 0\n"  # 127.65.0.1:31999 LISTEN
        "   1: 0100007F:1F90 0100007F:C350 01 0\n"  # 127.0.0.1:8080 ESTABLISHED
    )
    assert instances.listening_addresses(table) == ["127.65.0.1"]
    assert instances.listening_addresses(tmp_path / "missing") == []


def test_a_claimed_slot_is_skipped_until_released():
    first = claim_blocks()
    try:
        second = claim_blocks()
        try:
            assert second.blocks.slot != first.blocks.slot
        finally:
            second.release()
        with pytest.raises(instances.NoFreeBlocks):
            claim_blocks([first.blocks.slot])
    finally:
        first.release()
    again = claim_blocks([first.blocks.slot])
    again.release()


def test_a_slot_with_anything_listening_inside_is_skipped():
    blocks = AddressBlocks.for_slot(31)
    squatter = socket.socket()
    try:
        squatter.bind(("127.127.3.4", 0))  # a leftover pod of some older localkube
        squatter.listen(1)
        with pytest.raises(instances.NoFreeBlocks, match="31: in use"):
            claim_blocks([blocks.slot])
    finally:
        squatter.close()


def test_take_over_refuses_a_live_workdir_and_clears_a_dead_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KUBELLM_LOCALKUBE_RUN_DIR", str(tmp_path / "run"))
    live = InstanceState(pid=os.getpid(), url="u", kubeconfig="k", workdir=str(tmp_path))
    instances.register(live)
    assert oct((tmp_path / instances.STATE_FILE).stat().st_mode & 0o777) == "0o600"
    assert [s.pid for s in instances.running_instances()] == [os.getpid()]
    with pytest.raises(instances.InstanceRunning, match="already running"):
        instances.take_over_workdir(tmp_path)

    dead = InstanceState(pid=os.getpid(), url="u", kubeconfig="k", workdir=str(tmp_path))
    dead.process_start = -1  # the pid now belongs to another process
    instances.register(dead)
    assert instances.running_instances() == []
    note = instances.take_over_workdir(tmp_path)
    assert note is not None and "died without stopping" in note
    assert not (tmp_path / instances.STATE_FILE).exists()
    assert instances.take_over_workdir(tmp_path) is None
