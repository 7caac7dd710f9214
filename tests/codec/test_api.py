"""The codec's public surface: what the brief promises is exported, and the layer imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

from retro_ftms import codec

PROMISED = {
    "FTMS_SERVICE_UUID", "FITNESS_MACHINE_FEATURE_UUID", "TREADMILL_DATA_UUID", "TRAINING_STATUS_UUID",
    "SUPPORTED_SPEED_RANGE_UUID", "SUPPORTED_INCLINATION_RANGE_UUID", "SUPPORTED_HEART_RATE_RANGE_UUID",
    "CONTROL_POINT_UUID", "MACHINE_STATUS_UUID", "uuid16", "TREADMILL_SERVICE_DATA",
    "TreadmillData", "TreadmillDataAssembler",
    "MachineFeature", "TargetSettingFeature", "FitnessMachineFeature",
    "SpeedRange", "InclinationRange", "HeartRateRange", "OpCode", "ResultCode", "StopPause",
    "ControlPointRequest", "ControlPointResponse", "MachineStatusCode", "MachineStatus",
    "TrainingStatusCode", "TrainingStatus",
}  # fmt: skip


def test_all_is_exact_and_importable() -> None:
    assert set(codec.__all__) >= PROMISED
    assert len(codec.__all__) == len(set(codec.__all__))
    for name in codec.__all__:
        assert hasattr(codec, name), name


def test_codec_imports_only_the_standard_library_and_errors() -> None:
    allowed_project = ("retro_ftms.codec", "retro_ftms.errors")
    for path in Path(codec.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in {"bleak", "bumble", "aiomqtt", "asyncio"}, (path.name, name)
                if top == "retro_ftms":
                    assert name.startswith(allowed_project), (path.name, name)
