"""After many reloads the service keeps only the newest project versions (and their connections)."""

from __future__ import annotations

from pathlib import Path

from runtime.service.service import KEPT_PLANS, Service

FLOW = """kind: Flow
name: f
description: version {n}
trigger: {{manual: {{}}}}
steps: [{{set: {{n: {n}}}}}]
"""


async def test_reloads_keep_a_bounded_number_of_versions(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text("kind: Project\nname: p\n")
    (tmp_path / "flows").mkdir()
    flow = tmp_path / "flows" / "f.yaml"
    flow.write_text(FLOW.format(n=0))
    service = Service(tmp_path, "memory://", workers=1, triggers=False)
    await service.start()
    try:
        versions = [service.plan.version]
        for n in range(1, KEPT_PLANS + 3):
            flow.write_text(FLOW.format(n=n))
            assert await service.reload() == []
            versions.append(service.plan.version)
        assert len(set(versions)) == KEPT_PLANS + 3
        assert list(service._plans) == versions[-KEPT_PLANS:]
        assert set(service._executors) <= set(service._plans)
    finally:
        await service.stop(1.0)
