"""The OPC-UA machine through asyncua's real client: browse names, string node ids, reads, writes the model sees."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua

from plant import State
from plant.tags import OPCUA_NAMESPACE, OPCUA_VARS

from .conftest import endpoint

MID = "M-UA"
NS = 2  # what urn:oee:plant resolves to on our servers (test_browse_names_and_namespace checks it)


def run(coro):
    return asyncio.run(coro)


async def connected(plant):
    c = Client(endpoint(plant, MID)["protocol_config"]["endpoint"], timeout=5)
    await c.connect()
    return c


def test_endpoint_config(plant):
    ep = endpoint(plant, MID)
    cfg = ep["protocol_config"]
    assert cfg["endpoint"] == f"opc.tcp://127.0.0.1:{ep['port']}/oee/"
    assert cfg["namespace"] == OPCUA_NAMESPACE
    tags = {t["name"]: t for t in ep["tags"]}
    ns = cfg["namespace_index"]
    assert tags["ProductionCount"]["address"] == f"ns={ns};s={MID}.ProductionCount"
    assert tags["OrderId"]["data_type"] == "String" and tags["Running"]["data_type"] == "Boolean"


def test_browse_names_and_namespace(plant):
    async def go():
        c = await connected(plant)
        try:
            ns = await c.get_namespace_index(OPCUA_NAMESPACE)
            assert ns == endpoint(plant, MID)["protocol_config"]["namespace_index"] == NS
            children = await c.nodes.objects.get_children()
            names = {(await n.read_browse_name()).to_string(): n for n in children}
            machine = names[f"{ns}:{MID}"]
            assert machine.nodeid == ua.NodeId(MID, ns)
            assert (await machine.read_display_name()).Text.startswith(MID)
            variables = {(await v.read_browse_name()).Name: v for v in await machine.get_children()}
            assert set(variables) == {name for name, _t in OPCUA_VARS}
            assert variables["ProductionCount"].nodeid.to_string() == f"ns={ns};s={MID}.ProductionCount"
            assert await c.nodes.objects.get_child([f"{ns}:{MID}", f"{ns}:State"]) == variables["State"]
            access = await variables["ProductCode"].read_attribute(ua.AttributeIds.UserAccessLevel)
            assert access.Value.Value & ua.AccessLevel.CurrentWrite.mask
        finally:
            await c.disconnect()

    run(go())


def test_read_values_match_the_model(plant):
    async def go():
        c = await connected(plant)
        try:
            for _ in range(2):
                plant.advance(700)
                snap = plant.snapshot(MID)
                tags = endpoint(plant, MID)["tags"]
                nodes = [c.get_node(t["address"]) for t in tags]
                values = await c.read_values(nodes)
                for t, v in zip(tags, values, strict=True):
                    if t["data_type"] == "Double":
                        assert v == pytest.approx(snap[t["name"]]), t["name"]
                    else:
                        assert v == snap[t["name"]], t["name"]
            dv = await c.get_node(f"ns={NS};s={MID}.State").read_data_value()
            assert dv.StatusCode.is_good() and dv.SourceTimestamp is not None
            assert dv.Value.VariantType == ua.VariantType.Int32
        finally:
            await c.disconnect()

    run(go())


def test_writes_are_seen_by_the_model(plant):
    async def go():
        c = await connected(plant)
        try:
            plant.advance(120)
            node = c.get_node(f"ns={NS};s={MID}.ProductionCount")
            await node.write_value(ua.Variant(777, ua.VariantType.Int32))
            assert plant.machine(MID).counters["total"] == 777
            assert await node.read_value() == 777

            await c.get_node(f"ns={NS};s={MID}.CounterReset").write_value(ua.Variant(True, ua.VariantType.Boolean))
            assert plant.machine(MID).counters == {"total": 0, "good": 0, "reject": 0}
            assert await c.get_node(f"ns={NS};s={MID}.CounterReset").read_value() is False
            assert await node.read_value() == 0

            await c.get_node(f"ns={NS};s={MID}.OrderId").write_value(ua.Variant("WO-UA-1", ua.VariantType.String))
            assert plant.machine(MID).order_id == "WO-UA-1"

            m = plant.machine(MID)
            other = 12 if m.product.code == 11 else 11
            busy = m.state in (State.FAULTED, State.CHANGEOVER)
            await c.get_node(f"ns={NS};s={MID}.ProductCode").write_value(ua.Variant(other, ua.VariantType.Int32))
            if not busy:
                assert m.state == State.CHANGEOVER and m.product.code == other
                assert await c.get_node(f"ns={NS};s={MID}.State").read_value() == 6
        finally:
            await c.disconnect()

    run(go())


def test_status_write_is_accepted_then_restated(plant):
    async def go():
        c = await connected(plant)
        try:
            speed = c.get_node(f"ns={NS};s={MID}.Speed")
            await speed.write_value(ua.Variant(-1.0, ua.VariantType.Double))
            assert await speed.read_value() == pytest.approx(plant.snapshot(MID)["Speed"])
            with pytest.raises(ua.UaStatusCodeError) as info:
                await speed.write_value(ua.Variant(1, ua.VariantType.Int64))  # wrong type
            assert info.value.code == ua.StatusCodes.BadTypeMismatch
        finally:
            await c.disconnect()

    run(go())
