"""A small project for validating one trigger: an http connection `api` the flow calls, one more
connection for the trigger to read, and the flow `f` whose trigger is `{kind: <options>}`."""

from __future__ import annotations

from pathlib import Path

HTTP = """\
kind: Connection
name: api
type: http
system: api
config: {base_url: "https://api.example.com"}
operations:
  post: {method: POST, path: /x, entity: thing, effect: create}
"""


def trigger_project(root: Path, kind: str, trigger: str, connection: tuple[str, str]) -> Path:
    """The project under `root`; `connection` is (name, Connection YAML) of the trigger's connection."""
    (root / "systems").mkdir(parents=True)
    (root / "flows").mkdir()
    (root / "syncline.yaml").write_text("kind: Project\nname: t\n")
    (root / "systems" / "api.yaml").write_text(HTTP)
    (root / "systems" / f"{connection[0]}.yaml").write_text(connection[1])
    (root / "flows" / "f.yaml").write_text(
        f"kind: Flow\nname: f\ntrigger:\n  {kind}: {trigger}\nsteps:\n  - call: api.post\n    with: {{x: 1}}\n"
    )
    return root
