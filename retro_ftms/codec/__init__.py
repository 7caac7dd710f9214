"""FTMS codec (layer 1): treadmill byte layouts as frozen value types, no I/O.

Every decoder raises only `retro_ftms.errors.CodecError` on malformed bytes; every encoder raises it on
values outside their field's range.
"""

from retro_ftms.codec._parameters import ParameterValue
from retro_ftms.codec.control_point import (
    ControlPointRequest,
    ControlPointResponse,
    OpCode,
    ResultCode,
    StopPause,
)
from retro_ftms.codec.feature import FitnessMachineFeature, MachineFeature, TargetSettingFeature
from retro_ftms.codec.machine_status import MachineStatus, MachineStatusCode
from retro_ftms.codec.ranges import HeartRateRange, InclinationRange, SpeedRange
from retro_ftms.codec.training_status import TrainingStatus, TrainingStatusCode
from retro_ftms.codec.treadmill_data import TreadmillData, TreadmillDataAssembler
from retro_ftms.codec.uuids import (
    CONTROL_POINT_UUID,
    FITNESS_MACHINE_FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    SUPPORTED_HEART_RATE_RANGE_UUID,
    SUPPORTED_INCLINATION_RANGE_UUID,
    SUPPORTED_SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    TREADMILL_SERVICE_DATA,
    uuid16,
)

__all__ = [
    "CONTROL_POINT_UUID",
    "FITNESS_MACHINE_FEATURE_UUID",
    "FTMS_SERVICE_UUID",
    "MACHINE_STATUS_UUID",
    "SUPPORTED_HEART_RATE_RANGE_UUID",
    "SUPPORTED_INCLINATION_RANGE_UUID",
    "SUPPORTED_SPEED_RANGE_UUID",
    "TRAINING_STATUS_UUID",
    "TREADMILL_DATA_UUID",
    "TREADMILL_SERVICE_DATA",
    "ControlPointRequest",
    "ControlPointResponse",
    "FitnessMachineFeature",
    "HeartRateRange",
    "InclinationRange",
    "MachineFeature",
    "MachineStatus",
    "MachineStatusCode",
    "OpCode",
    "ParameterValue",
    "ResultCode",
    "SpeedRange",
    "StopPause",
    "TargetSettingFeature",
    "TrainingStatus",
    "TrainingStatusCode",
    "TreadmillData",
    "TreadmillDataAssembler",
    "uuid16",
]
