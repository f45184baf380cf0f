"""The README's settings table is the settings: every variable chalicelib/settings.py reads,
each once, with the default the local stage gets when it is unset."""
from __future__ import annotations

import re
from dataclasses import fields

from chalicelib.settings import PORT_VARS, LocalPorts, Settings
from tests.conftest import ROOT


class Reads(dict):
    """An empty environment that remembers every variable asked for."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def get(self, name, default=None):
        self.names.add(name)
        return default


def readme_table() -> dict[str, str]:
    """{variable: its default cell} from the README's "Settings" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        name, default = [cell.strip() for cell in row.strip("|").split("|")][:2]
        name = name.strip("`")
        assert name not in table, f"{name} is listed twice"
        table[name] = default
    return table


def shown(value) -> str | None:
    """A default as the table writes it; None: the table says "unset"."""
    if value in (None, "", ()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def test_the_table_names_every_variable_settings_reads():
    reads = Reads()
    Settings.from_env(reads)
    assert reads.names == set(readme_table())


def test_the_table_gives_each_default():
    local = Settings.from_env({})
    expected = {name: getattr(local, f.name) for f in fields(Settings)
                for name in f.metadata["env"]}
    ports = LocalPorts()
    expected.update({name: getattr(ports, attr) for attr, name in PORT_VARS.items()})
    wrong = {}
    for name, cell in readme_table().items():
        if name == "UPSTREAMS":  # a JSON document: the cell names the port it is built on
            assert "PULSE_DEMO_UPSTREAM_PORT" in cell
            continue
        literal = re.match(r"`([^`]*)`", cell)
        value = expected[name]
        if shown(value) is None:
            ok = cell.startswith("unset")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            ok = literal is not None and float(literal.group(1)) == value
        else:
            ok = literal is not None and literal.group(1) == shown(value)
        if not ok:
            wrong[name] = (cell, shown(value))
    assert not wrong, wrong
