"""Service discovery answers as data, and the XEP-0115 verification hash."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"


@dataclass
class Info:
    identities: list[tuple[str, str, str, str]]  # category, type, xml:lang, name
    features: list[str]
    forms: list[dict[str, list[str]]] = field(default_factory=list)

    def form(self, form_type: str) -> dict[str, list[str]] | None:
        for f in self.forms:
            if f.get("FORM_TYPE") == [form_type]:
                return f
        return None


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def parse_info(query: ET.Element) -> Info:
    info = Info(
        identities=[(i.get("category", ""), i.get("type", ""), i.get(XML_LANG, ""), i.get("name", ""))
                    for i in query.findall(f"{{{NS_INFO}}}identity")],
        features=[f.get("var", "") for f in query.findall(f"{{{NS_INFO}}}feature")],
    )
    for x in query.findall(f"{{{NS_DATA}}}x"):
        form: dict[str, list[str]] = {}
        for fld in x.findall(f"{{{NS_DATA}}}field"):
            form[fld.get("var", "")] = [v.text or "" for v in fld.findall(f"{{{NS_DATA}}}value")]
        info.forms.append(form)
    return info


def info_of(iq: Any) -> Info:
    query = iq.xml.find(f"{{{NS_INFO}}}query")
    assert iq["type"] == "result" and query is not None, f"no disco#info result: {iq}"
    return parse_info(query)


def caps_ver(info: Info, algo: str = "sha-1") -> str:
    """XEP-0115 §5.1 verification string, hashed and base64-encoded."""
    s = ""
    for cat, typ, lang, name in sorted(info.identities):
        s += f"{cat}/{typ}/{lang}/{name}<"
    for f in sorted(info.features):
        s += f + "<"
    for form in sorted(info.forms, key=lambda f: f.get("FORM_TYPE", [""])[0]):
        s += form.get("FORM_TYPE", [""])[0] + "<"
        for var in sorted(k for k in form if k != "FORM_TYPE"):
            s += var + "<" + "".join(v + "<" for v in sorted(form[var]))
    h = hashlib.new(algo.replace("-", ""), s.encode())
    return base64.b64encode(h.digest()).decode()


CAPS = "{http://jabber.org/protocol/caps}c"


async def stream_caps(server: Any, user: str, password: str) -> tuple[str, str, str]:
    """(node, ver, hash) of the caps element in the stream features, before or after SASL."""
    from .raw import RawStream, local

    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    try:
        before = await raw.open()
        assert local(await raw.auth_scram(user, password, "SCRAM-SHA-1")) == "success"
        after = await raw.open()
        c = after.find(CAPS) if after.find(CAPS) is not None else before.find(CAPS)
        assert c is not None, f"no caps in stream features: {ET.tostring(after)!r}"
        return c.get("node", ""), c.get("ver", ""), c.get("hash", "")
    finally:
        await raw.close()
