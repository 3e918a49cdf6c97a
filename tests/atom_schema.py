"""RFC 4287's RELAX NG schema for the feed tests: appendix B's compact syntax as the RFC prints it
(tests/schemas/atom.rnc) and its XML syntax (tests/schemas/atom.rng), converted with rnc2rng.

rnc2rng writes the unused declaration ``xmlns:local=""`` (the compact ``namespace local = ""``),
which XML namespaces forbid for a prefix; the conversion drops it and changes nothing else. The
unit tests check that atom.rng is exactly this conversion of atom.rnc. Regenerate it with
``python -m tests.atom_schema``.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]
from rnc2rng import parser, serializer  # type: ignore[import-untyped]

SCHEMAS = Path(__file__).resolve().parent / "schemas"
RNC = SCHEMAS / "atom.rnc"
RNG = SCHEMAS / "atom.rng"
_EMPTY_PREFIX = '\n         xmlns:local=""'


def convert() -> str:
    """atom.rnc in XML syntax, as rnc2rng converts it (less the empty prefix declaration)."""
    with RNC.open() as compact:
        xml = serializer.XMLSerializer().toxml(parser.parse(f=compact))
    if _EMPTY_PREFIX not in xml:
        raise ValueError("rnc2rng's output changed: look at the conversion again")
    return xml.replace(_EMPTY_PREFIX, "") + "\n"


class AtomValidator:
    """Validates documents against atom.rng with lxml (libxml2's RELAX NG)."""

    def __init__(self) -> None:
        self._schema = etree.RelaxNG(etree.parse(str(RNG)))

    @staticmethod
    def parse(document: bytes) -> etree._ElementTree:
        return etree.ElementTree(etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True)))

    def validate(self, tree: etree._ElementTree) -> bool:
        return bool(self._schema.validate(tree))

    @property
    def error_log(self) -> str:
        return str(self._schema.error_log)


def atom_validator() -> AtomValidator:
    return AtomValidator()


if __name__ == "__main__":
    RNG.write_text(convert())
