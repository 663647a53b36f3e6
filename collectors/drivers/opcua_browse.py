"""OPC-UA discovery: browse the server's address space from the Objects folder (or a given node) level by level,
in batches of 100 nodes, then read each variable's data type, access level, array shape, description and value in
batched Read requests. Used by OpcUaDriver.discover, inside the driver's own event loop."""
from __future__ import annotations

import logging

from asyncua import Client, ua

from collectors.base import DiscoveredTag
from collectors.drivers.opcua_nodes import ACCESS_WRITE, BUILTIN_BY_ID, HAS_PROPERTY, TYPES, convert_value, show_value

log = logging.getLogger("collectors.drivers.opcua")


async def _browse_all(client: Client, nodes: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    out: list[list[ua.ReferenceDescription]] = []
    for k in range(0, len(nodes), 100):
        part = nodes[k:k + 100]
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 1000
        for nid in part:
            desc = ua.BrowseDescription()
            desc.NodeId = nid
            desc.BrowseDirection = ua.BrowseDirection.Forward
            desc.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
            desc.IncludeSubtypes = True
            desc.NodeClassMask = int(ua.NodeClass.Object) | int(ua.NodeClass.Variable)
            desc.ResultMask = int(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(desc)
        results = await client.uaclient.browse(params)
        for result in results:
            refs = list(result.References or [])
            cp = result.ContinuationPoint
            while cp:
                nxt = ua.BrowseNextParameters()
                nxt.ContinuationPoints = [cp]
                more = await client.uaclient.browse_next(nxt)
                refs += list(more[0].References or [])
                cp = more[0].ContinuationPoint
            out.append(refs)
    return out

async def browse_tree(client: Client, start: ua.NodeId, depth: int, limit: int, include_server: bool,
                       include_properties: bool, read_values: bool, namespaces: list[str], namespace_uris: bool,
                      where: str = "") -> list[DiscoveredTag]:
    top: list[DiscoveredTag] = []
    seen = {start}
    level: list[tuple[ua.NodeId, list[DiscoveredTag]]] = [(start, top)]
    variables: list[tuple[ua.NodeId, DiscoveredTag]] = []
    count = 0
    truncated = False
    for _ in range(depth):
        if not level or truncated:
            break
        refs_per_node = await _browse_all(client, [nid for nid, _ in level])
        nxt: list[tuple[ua.NodeId, list[DiscoveredTag]]] = []
        for (_parent, siblings), refs in zip(level, refs_per_node, strict=True):
            for ref in refs:
                if not include_properties and ref.ReferenceTypeId == HAS_PROPERTY:
                    continue
                nid = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
                if nid in seen or getattr(ref.NodeId, "ServerIndex", 0):
                    continue
                if not include_server and nid == ua.NodeId(ua.ObjectIds.Server):
                    continue
                if count >= limit:
                    truncated = True
                    break
                seen.add(nid)
                count += 1
                tag = DiscoveredTag(address=address_text(nid, namespaces, namespace_uris), data_type="",
                                    name=ref.BrowseName.Name if ref.BrowseName else str(nid),
                                    description=ref.DisplayName.Text if ref.DisplayName else "")
                siblings.append(tag)
                if ref.NodeClass == ua.NodeClass.Variable:
                    variables.append((nid, tag))
                nxt.append((nid, tag.children))
        level = nxt
    if truncated:
        log.info("OPC-UA discover on %s stopped at the limit of %d nodes", where, limit)
    await _describe_variables(client, variables, read_values)
    return top

async def _describe_variables(client: Client, variables: list[tuple[ua.NodeId, DiscoveredTag]],
                              read_values: bool) -> None:
    attrs = [ua.AttributeIds.DataType, ua.AttributeIds.AccessLevel, ua.AttributeIds.ValueRank,
             ua.AttributeIds.ArrayDimensions, ua.AttributeIds.Description]
    if read_values:
        attrs.append(ua.AttributeIds.Value)
    per = len(attrs)
    step = max(1, 500 // per)
    for k in range(0, len(variables), step):
        part = variables[k:k + step]
        params = ua.ReadParameters()
        for nid, _tag in part:
            for attr in attrs:
                rv = ua.ReadValueId()
                rv.NodeId = nid
                rv.AttributeId = attr
                params.NodesToRead.append(rv)
        dvs = await client.uaclient.read(params)
        for j, (_nid, tag) in enumerate(part):
            got = {}
            for a, dv in zip(attrs, dvs[j * per:(j + 1) * per], strict=False):
                ok = dv.StatusCode is None or not dv.StatusCode.is_bad()
                got[a] = dv.Value.Value if ok and dv.Value is not None else None
                if a == ua.AttributeIds.Value:
                    got["variant_type"] = dv.Value.VariantType if ok and dv.Value is not None else None
            _fill_variable(tag, got)

def _fill_variable(tag: DiscoveredTag, got: dict) -> None:
    dt = got.get(ua.AttributeIds.DataType)
    base = None
    if isinstance(dt, ua.NodeId) and dt.NamespaceIndex == 0 and isinstance(dt.Identifier, int):
        base = BUILTIN_BY_ID.get(dt.Identifier)
    vt = got.get("variant_type")
    if base is None and vt is not None:
        base = vt.name if vt.name in TYPES else ("String" if vt.name == "LocalizedText" else None)
    base = base or "Variant"
    value = got.get(ua.AttributeIds.Value)
    rank = got.get(ua.AttributeIds.ValueRank)
    dims = got.get(ua.AttributeIds.ArrayDimensions)
    is_array = isinstance(value, (list, tuple)) or (isinstance(rank, int) and rank >= 1)
    if is_array and base != "Variant":
        n = len(value) if isinstance(value, (list, tuple)) else (dims[0] if dims else 0)
        tag.data_type = f"{base}[{n}]" if n else f"{base}[]"
    else:
        tag.data_type = base
    access = got.get(ua.AttributeIds.AccessLevel)
    tag.writable = bool(access & ACCESS_WRITE) if isinstance(access, int) else None
    desc = got.get(ua.AttributeIds.Description)
    if isinstance(desc, ua.LocalizedText) and desc.Text:
        tag.description = desc.Text
    if value is not None:
        try:
            tag.value = convert_value(value, "Variant", None)
        except Exception:
            tag.value = show_value(value)

def address_text(nid: ua.NodeId, namespaces: list[str], namespace_uris: bool) -> str:
    text = nid.to_string()
    if namespace_uris and nid.NamespaceIndex and nid.NamespaceIndex < len(namespaces):
        return f"nsu={namespaces[nid.NamespaceIndex]};" + text.split(";", 1)[1]
    return text
