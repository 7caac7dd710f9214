"""The configuration tables: `[safety]`, `[session]`, `[ble]`, `[heart_rate]`, `[mqtt]`, `[log]`, `[history]`.

Values come from, highest precedence first: environment variables `RETRO_FTMS_<TABLE>__<KEY>` (e.g.
`RETRO_FTMS_SAFETY__MAX_SPEED_KMH=3.5`), the TOML file given with `--config`, and the defaults. There is no
implicit file: `config/retro-ftms.toml` documents every key with its default. Unknown tables and keys are
errors, in the file and in `RETRO_FTMS_<TABLE>__<KEY>` variables alike, and every error is a `ConfigError`
naming the file (or "environment"), the key, the value and the rule. Values in the file must have the
right TOML type (`port = 1883`, not `"1883"`); environment values are text and are converted.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import stat
import tomllib
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from retro_ftms.errors import ConfigError
from retro_ftms.program.model import NOT_SET, Shown, error_value, explain, relevant_errors, toml_error
from retro_ftms.safety.limits import KEYS as SAFETY_KEYS
from retro_ftms.safety.limits import SafetyConfig

if TYPE_CHECKING:
    from retro_ftms.ble.ftms_client import TreadmillQuirks

_LOGGER = logging.getLogger(__name__)

ENV_PREFIX: Final = "RETRO_FTMS_"
ENV_NESTED_DELIMITER: Final = "__"
ENVIRONMENT: Final = "environment"
MQTT_PORT: Final = 1883
MQTTS_PORT: Final = 8883
_SCHEMES: Final = {"mqtt": False, "mqtts": True}  # scheme -> TLS
_URL_PARTS: Final = ("host", "port", "username", "password", "tls")
# The environment `load_config` was given, for `AppConfig.settings_customise_sources`; None: os.environ.
_ENVIRON: Final[ContextVar[Mapping[str, str] | None]] = ContextVar("retro_ftms_config_environ", default=None)
_SECRET_KEYS: Final = {"password", "url"}
# Permission bits that let the group or others read a file: a password file with them is refused, as ssh
# refuses such a private key (any local user could read the broker password).
_SHARED_READ_BITS: Final = stat.S_IRGRP | stat.S_IROTH
_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

_BOUND_TYPES: Final = {"less_than_equal", "greater_than_equal", "less_than", "greater_than"}


def _text_to_path(value: object) -> object:
    """TOML has no path type: a string is a path, also under the strict check of the file."""
    return Path(value) if isinstance(value, str) else value


_PathOrNone = Annotated[Path | None, BeforeValidator(_text_to_path)]


def _list_to_tuple(value: object) -> object:
    """A TOML array is a list: taken as the tuple, also under the strict check of the file."""
    return tuple(value) if isinstance(value, list) else value


_Specs = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]


class SessionConfig(BaseModel):
    """`[session]`: how a guided session presents itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Unit for the display and the pre-flight questions; program files carry their own unit.
    units: Literal["mph", "kmh"] = "kmh"
    # The program `run` uses when no `--program` is given (a built-in name or a file path).
    program: str | None = Field(default=None, min_length=1)
    # Whose session it is when no `--person` is given: each person has their own history and course.
    person: str = Field(default="default", min_length=1, max_length=64)


class CuesConfig(BaseModel):
    """`[cues]`: spoken cues for a person who faces away from the screen (README "Spoken cues")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Speak the cues; unset: speak when the engine is installed (else the terminal bell). False: no cues at
    # all, and every command goes out exactly when the rules allow it (`--voice/--no-voice` beat this).
    voice: bool | None = None
    # The speech program (a name on PATH or a path); espeak-ng is offline and a Debian package.
    engine: str = Field(default="espeak-ng", min_length=1)
    # Every rise is announced at least this many session seconds before its command (which waits if need
    # be); 60 s at most, or the announcement is forgotten before the change.
    lead_s: float = Field(default=10.0, ge=0.0, le=60.0)
    # Loudness of speech and beeps, 0-100 % (100: the engine's normal loudness).
    volume: int = Field(default=100, ge=0, le=100)


class BleConfig(BaseModel):
    """`[ble]`: finding and talking to the treadmill."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The treadmill `run` drives when neither `--device` nor `--simulator` is given (address or name);
    # None: `run` needs one of them. Never "whichever treadmill answers": the belt runs under a person.
    device: str | None = Field(default=None, min_length=1)
    # A Bumble HCI transport instead of the OS Bluetooth stack, for `run` and `scan` without `--transport`.
    transport: str | None = Field(default=None, min_length=1)
    # How long `scan` listens (without `--timeout`) and how long `run` looks for the treadmill.
    scan_timeout_s: float = Field(default=10.0, gt=0, le=120)
    connect_timeout_s: float = Field(default=20.0, gt=0, le=120)
    # design.md: a Control Point procedure gets about 2 s before it counts as failed.
    cp_timeout_s: float = Field(default=2.0, gt=0, le=10)
    # After a link loss, how long to keep trying to reconnect (to send Stop first); 0 disables it.
    reconnect_window_s: float = Field(default=30.0, ge=0, le=600)
    # How the treadmill departs from FTMS where the client cannot tell by itself (ftms.md §9):
    # the unit it reads Set Target Speed in; "mph" for machines that run a 2.0 target at 2 mph.
    speed_target_units: Literal["kmh", "mph"] = "kmh"
    # Reported incline is multiplied by this; 0.16 for BH Fitness (0-1000 for 0-16 %, i.e. / 6.25).
    # Only ever below 1: a wrong value hides real incline, so set it only for a machine that needs it.
    incline_report_scale: float = Field(default=1.0, ge=0.1, le=1.0)
    # Seconds the belt needs after Start before it takes a speed command (KingSmith: about 5); 0: none.
    spin_up_s: float = Field(default=0.0, ge=0, le=10)
    # Ignore all-zero Treadmill Data records that cannot be real (a machine waking up or going to sleep).
    ignore_zero_records: bool = True

    def treadmill_quirks(self) -> TreadmillQuirks:
        """The client's view of these settings."""
        from retro_ftms.ble.ftms_client import TreadmillQuirks  # noqa: PLC0415  (bleak loads when used)

        return TreadmillQuirks(
            speed_target_units=self.speed_target_units,
            incline_report_scale=self.incline_report_scale,
            spin_up_s=self.spin_up_s,
            ignore_zero_records=self.ignore_zero_records,
        )


class HeartRateConfig(BaseModel):
    """`[heart_rate]`: a BLE heart-rate strap to watch, for `[safety] max_heart_rate_bpm` and the display."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The strap's address or advertised name (`--hr-device` beats it); None: no strap.
    device: str | None = Field(default=None, min_length=1)
    # Finding and connecting the strap; one not reached in time ends the run before anything moves.
    connect_timeout_s: float = Field(default=20.0, gt=0, le=120)


class HistoryConfig(BaseModel):
    """`[history]`: where sessions, check-ins and progressions are kept (`--history` beats it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The SQLite file; None: `history.sqlite3` in the user's data directory (platformdirs).
    path: _PathOrNone = None


class LogConfig(BaseModel):
    """`[log]`: diagnostic logging (the event log is `--events`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The least severe record logged; `-v` (INFO) and `-vv` (DEBUG) lower it, never raise it.
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # Also write the log to this file (appended); None logs to stderr only.
    file: _PathOrNone = None


def _check_id(value: str) -> str:
    if not value or not set(value) <= _ID_CHARS:
        raise ValueError("may use only letters, digits, '_' and '-' (Home Assistant ids)")
    return value


def _check_topic(value: str) -> str:
    if not value or value.startswith("/") or value.endswith("/") or {"+", "#"} & set(value):
        raise ValueError("must be a topic without wildcards (+, #) and without a leading or trailing '/'")
    return value


class MqttConfig(BaseModel):
    """`[mqtt]`: the optional broker. With no `host` (or `url`) MQTT is off and the session runs the same.

    `url` (`mqtt://user:pass@host:port`, `mqtts://` for TLS) is an alternative to `host`, `port`,
    `username`, `password` and `tls`: give one or the other, except that a url without a password takes
    it from `password` or `password_file` (which is read into `password`). `port` defaults to 1883, or
    8883 with TLS; `base_topic` to `retro_ftms/<device_id>`. Secrets are `SecretStr`: they never show in
    reprs or dumps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr | None = None
    host: str | None = Field(default=None, min_length=1)
    port: int = Field(default=MQTT_PORT, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # A file holding the password (mode 0600, one line), instead of `password`: kept out of the process
    # list, unlike a password in `--mqtt URL`. Read when the configuration is loaded.
    password_file: _PathOrNone = None
    tls: bool = False
    # A CA bundle to trust for TLS (a private broker); None uses the system's trust store.
    ca_file: _PathOrNone = None
    device_id: str = "treadmill"
    # The device's name in Home Assistant (its entity ids follow it: "Hall" gives sensor.hall_speed);
    # None: the treadmill's name (`[[treadmills]] name`, the simulator's or the --device name).
    device_name: str | None = Field(default=None, min_length=1, max_length=64)
    base_topic: str = "retro_ftms/treadmill"
    # The MQTT client identifier; None lets the client library generate one.
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # RESUME over MQTT after a user pause (never after a safety stop); off by default (design.md).
    allow_remote_resume: bool = False
    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @model_validator(mode="wrap")
    @classmethod
    def _derive(cls, data: Any, handler: ModelWrapValidatorHandler[MqttConfig]) -> MqttConfig:
        """Split `url` into its parts; derive `base_topic` and (after validation, so that a textual
        `tls` from the environment counts) `port` where they were not given."""
        if not isinstance(data, Mapping):
            return handler(data)
        values = dict(data)
        url = values.get("url")
        raw_url = url.get_secret_value() if isinstance(url, SecretStr) else url
        if isinstance(raw_url, str):
            parts: dict[str, object] = {}
            with contextlib.suppress(ValueError):  # the url field validator reports it with its own key
                parts = parse_mqtt_url(raw_url)
            # A password may come separately (environment, password file) when the url has none.
            given = [
                key
                for key in _URL_PARTS
                if values.get(key) is not None and (key != "password" or "password" in parts)
            ]
            if given:
                keys = ", ".join(given)
                raise ValueError(
                    f"url and {keys} are alternatives: give the url or the separate keys, not both"
                )
            values |= parts
        if values.get("password") is not None and values.get("password_file") is not None:
            raise ValueError(
                "password (or a password in the url) and password_file are alternatives: give one"
            )
        if values.get("base_topic") is None and isinstance(values.get("device_id", "treadmill"), str):
            values["base_topic"] = f"retro_ftms/{values.get('device_id', 'treadmill')}"
        port_given = values.get("port") is not None
        if not port_given:
            values.pop("port", None)
        config = handler(values)
        if not port_given and config.tls:
            config = config.model_copy(update={"port": MQTTS_PORT})
        if config.password_file is not None:  # checked by `_readable_password_file`
            config = config.model_copy(update={"password": read_password_file(config.password_file)})
        return config

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_mqtt_url(value.get_secret_value())
        return value

    @field_validator("password_file")
    @classmethod
    def _readable_password_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_password_file(value)
        return value

    @field_validator("device_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value)

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        return _check_topic(value)

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Self:
        """A CA file is only used with TLS. Checked once a broker is given: a file may name the CA and
        leave the broker, and with it TLS, to `--mqtt mqtts://...` (checked again by `with_url`)."""
        if self.ca_file is not None and self.host is not None and not self.tls:
            raise ValueError("ca_file is only used with TLS: set tls = true (or use an mqtts:// url)")
        return self

    @property
    def enabled(self) -> bool:
        return self.host is not None

    @classmethod
    def from_url(cls, url: str, *, base: MqttConfig | None = None, source: str = "--mqtt") -> MqttConfig:
        """`base` (default: the defaults) with the broker of `url`; a bad URL: `ConfigError` from `source`."""
        return (base if base is not None else cls()).with_url(url, source=source)

    def with_url(self, url: str, *, source: str = "--mqtt") -> MqttConfig:
        """This configuration with its broker replaced by `url` (how `--mqtt URL` overrides a file)."""
        try:
            parts = parse_mqtt_url(url)
        except ValueError as exc:
            raise ConfigError(source, "mqtt.url", Shown(mask_url(url)), str(exc)) from exc
        if self.ca_file is not None and not parts["tls"]:
            rule = "mqtt.ca_file is only used with TLS: use an mqtts:// url (or remove ca_file)"
            raise ConfigError(source, "mqtt.url", Shown(mask_url(url)), rule)
        if "password" in parts:
            _LOGGER.warning(
                "%s: a password in the URL shows in the process list to every local user: "
                "use RETRO_FTMS_MQTT__PASSWORD or [mqtt] password_file instead",
                source,
            )
        keep = self.model_dump(exclude={"url", *_URL_PARTS})
        if "password" not in parts and self.password is not None and self.password_file is None:
            keep["password"] = self.password  # from the environment: a url without a password keeps it
        try:
            return type(self).model_validate({**keep, "url": url})
        except ValidationError as exc:
            first = relevant_errors(exc.errors(include_url=False))[0]
            rule = explain(first, tuple(type(self).model_fields))
            raise ConfigError(source, "mqtt.url", Shown(mask_url(url)), rule) from exc


def parse_mqtt_url(url: str) -> dict[str, object]:
    """`mqtt[s]://[user[:password]@]host[:port][/]` as MqttConfig keys; ValueError names what is wrong."""
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(
            "not a valid mqtt:// or mqtts:// URL: the port must be a number from 1 to 65535"
        ) from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError("the URL must start with mqtt:// or mqtts:// (TLS)")
    if not parts.hostname:
        raise ValueError("the URL names no broker host")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError("the URL takes no path, query or fragment (set mqtt.base_topic for topics)")
    if port == 0:
        raise ValueError("the port must be from 1 to 65535")
    tls = _SCHEMES[scheme]
    values: dict[str, object] = {
        "host": parts.hostname,
        "port": port if port is not None else (MQTTS_PORT if tls else MQTT_PORT),
        "tls": tls,
    }
    if parts.username is not None:
        values["username"] = unquote(parts.username)
    if parts.password is not None:
        values["password"] = SecretStr(unquote(parts.password))
    return values


def read_password_file(path: Path) -> SecretStr:
    """The password in `path` (one trailing newline dropped); ValueError says what is wrong with the file.

    Refused when the group or others may read it, and when it is not a regular file (a FIFO would hang).
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise ValueError("not a regular file")
    mode = stat.S_IMODE(status.st_mode)
    if mode & _SHARED_READ_BITS:
        raise ValueError(f"the group or others may read it (mode {mode:04o}): chmod 600 {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror}") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ValueError("the file is empty")
    return SecretStr(password)


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{user}:***@{host}").geturl()
    except ValueError:
        return "(an unreadable URL)"


class ServiceConfig(BaseModel):
    """`[service]`: `retro-ftms serve`, the long-running service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # An armed session waits this long (seconds) for a person to press Start on the treadmill's console,
    # then disarms itself: a network message alone never starts a belt, and an old arming never does.
    arm_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    # Longest wait between two attempts to reach a treadmill that sleeps or is switched off (seconds).
    reconnect_max_s: float = Field(default=30.0, ge=1, le=600)
    # "journald": each log line starts with its syslog priority (<3> error ... <7> debug), which
    # systemd-journald reads as the level when stderr is the journal; "plain": a time stamp instead.
    log_format: Literal["plain", "journald"] = "plain"
    # The web panel's token (`serve --panel`), given in its URL (`?token=`); None: one is generated at
    # start (and logged) when the panel listens beyond 127.0.0.1. Long enough not to be guessed.
    panel_token: str | None = Field(default=None, min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


class TreadmillConfig(BaseModel):
    """One `[[treadmills]]` table of `retro-ftms serve`: a real treadmill (`device`) or `simulator = true`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The name people know it by: Home Assistant's device name (unless `[mqtt] device_name`), the logs.
    name: str = Field(min_length=1, max_length=48)
    device: str | None = Field(default=None, min_length=1)  # address or advertised name
    transport: str | None = Field(default=None, min_length=1)  # a Bumble HCI transport; None: the OS stack
    simulator: bool = False
    faults: _Specs = ()  # simulator only: `--fault` specs
    quirks: _Specs = ()  # simulator only: `--quirk` profiles
    # Simulator only: a simulated person presses Start on the console this long after each arming.
    console_start_after_s: float | None = Field(default=None, ge=0, le=3600)
    person: str | None = Field(default=None, min_length=1)  # who walks on it (history, courses)
    # Topics and Home Assistant ids: `retro_ftms/<device_id>`; None: derived from `name`.
    device_id: str | None = None
    program: str | None = Field(default=None, min_length=1)  # selected at start-up, for ARM without a name
    # The event log (JSON Lines) of every session on this treadmill, appended; `t` counts from the start.
    events: _PathOrNone = None

    @field_validator("device_id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return None if value is None else _check_id(value)

    @model_validator(mode="after")
    def _one_treadmill(self) -> Self:
        if self.simulator == (self.device is not None):
            raise ValueError("give either device (a real treadmill) or simulator = true")
        if not self.simulator and (self.faults or self.quirks or self.console_start_after_s is not None):
            raise ValueError("faults, quirks and console_start_after_s go with simulator = true")
        if self.simulator and self.transport is not None:
            raise ValueError("transport goes with device (the simulator runs in the service's process)")
        return self

    @property
    def id(self) -> str:
        """`device_id`, or the name made into an id (`Hall 2` -> `hall_2`)."""
        if self.device_id is not None:
            return self.device_id
        return "".join(c if c in _ID_CHARS else "_" for c in self.name.lower())


class AppConfig(BaseSettings):
    """The whole configuration. Build it with `load_config`; `AppConfig()` gives defaults plus environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    # Tables default to their own defaults; `model_validate({})` because SafetyConfig's fields are typed
    # with positional `Field` defaults that type checkers do not read as defaults.
    safety: SafetyConfig = Field(default_factory=lambda: SafetyConfig.model_validate({}))
    session: SessionConfig = Field(default_factory=SessionConfig)
    cues: CuesConfig = Field(default_factory=CuesConfig)
    ble: BleConfig = Field(default_factory=BleConfig)
    heart_rate: HeartRateConfig = Field(default_factory=HeartRateConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    treadmills: tuple[TreadmillConfig, ...] = ()

    @field_validator("treadmills")
    @classmethod
    def _distinct(cls, value: tuple[TreadmillConfig, ...]) -> tuple[TreadmillConfig, ...]:
        for what, keys in (("name", [t.name for t in value]), ("device_id", [t.id for t in value])):
            if len(set(keys)) != len(keys):
                raise ValueError(f"every treadmill needs its own {what}: {', '.join(keys)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment before the init values (the file), and no .env or secrets directory."""
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return env, init_settings

    def with_mqtt_url(self, url: str, *, source: str = "--mqtt") -> AppConfig:
        """This configuration with `--mqtt URL` applied (the option beats file and environment)."""
        return self.model_copy(update={"mqtt": self.mqtt.with_url(url, source=source)})


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def load_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> AppConfig:
    """Defaults, overridden by the TOML file at `path` (if any), overridden by `RETRO_FTMS_*` in `env`.

    Raises the first problem as a `ConfigError` (file or "environment", key, value, rule).
    """
    source = str(path) if path is not None else ENVIRONMENT
    file_data = _read_file(path) if path is not None else {}
    _check_file(file_data, source)
    _check_env_tables(env)
    env_source = _MappingEnvSource(AppConfig, env)
    try:
        env_data = env_source()
    except SettingsError as exc:
        raise ConfigError(ENVIRONMENT, "RETRO_FTMS_*", NOT_SET, f"cannot parse: {exc}") from exc
    token = _ENVIRON.set(env)
    try:
        return AppConfig(**file_data)
    except ValidationError as exc:
        first = relevant_errors(exc.errors(include_url=False))[0]
        origin = ENVIRONMENT if _provided(env_data, first["loc"]) else source
        raise _config_error(first, origin) from exc
    finally:
        _ENVIRON.reset(token)


def _read_file(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(source, "file", NOT_SET, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "file", NOT_SET, f"cannot read the file: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(exc, text, source=source, error_type=ConfigError) from exc


def _check_file(data: Mapping[str, Any], source: str) -> None:
    """Unknown tables, and each table alone with strict types, so file errors name the file."""
    tables = AppConfig.model_fields
    for name, value in data.items():
        if name not in tables:
            raise ConfigError(source, name, Shown("(a table)"), _unknown("table", name, tables))
        if name == "treadmills":
            _check_treadmills(value, source)
            continue
        if not isinstance(value, dict):
            raise ConfigError(source, name, value, f"must be a table: [{name}]")
        model = tables[name].annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"AppConfig.{name} is not a table")
        try:
            model.model_validate(value, strict=True)
        except ValidationError as exc:
            first = relevant_errors(exc.errors(include_url=False))[0]
            first["loc"] = (name, *first["loc"])
            raise _config_error(first, source) from exc


def _check_treadmills(value: object, source: str) -> None:
    """`[[treadmills]]`: an array of tables, each checked alone with strict types."""
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        raise ConfigError(source, "treadmills", Shown("(not tables)"), "must be tables: [[treadmills]]")
    for index, table in enumerate(value):
        try:
            TreadmillConfig.model_validate(table, strict=True)
        except ValidationError as exc:
            first = relevant_errors(exc.errors(include_url=False))[0]
            first["loc"] = ("treadmills", index, *first["loc"])
            raise _config_error(first, source) from exc


def _check_env_tables(env: Mapping[str, str]) -> None:
    """`RETRO_FTMS_<TABLE>__<KEY>` with an unknown table would be ignored by the source: reject it."""
    tables = AppConfig.model_fields
    for name, value in env.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or ENV_NESTED_DELIMITER not in upper[len(ENV_PREFIX) :]:
            continue
        table = upper[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER, 1)[0].lower()
        if table not in tables:
            raise ConfigError(ENVIRONMENT, name, value, _unknown("table", table, tables))


def _unknown(what: str, name: str, known: Mapping[str, object] | Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"unknown {what} (did you mean '{close[0]}'?)" if close else f"unknown {what}"


def _provided(env_data: Mapping[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Whether the environment set the value at `loc` (or, for a table-level rule, anything in it)."""
    node: Any = env_data
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return bool(loc)


def _config_error(error: ErrorDetails, source: str) -> ConfigError:
    loc = error["loc"]
    where = ".".join(str(part) for part in loc) or "file"
    value = error_value(error)
    if loc and str(loc[-1]) in _SECRET_KEYS and value is not NOT_SET:
        value = Shown(mask_url(value) if isinstance(value, str) and loc[-1] == "url" else "***")
    rule = explain(error, _known_keys(loc))
    reason = _bound_reason(loc, error["type"])
    return ConfigError(source, where, value, f"{rule} ({reason})" if reason else rule)


def _bound_reason(loc: tuple[int | str, ...], error_type: str) -> str | None:
    """Why a `[safety]` bound exists: the key's ceiling (the table in safety.limits) or its sanity bound."""
    key = SAFETY_KEYS.get(str(loc[1])) if len(loc) == 2 and loc[0] == "safety" else None
    if key is None or error_type not in _BOUND_TYPES:
        return None
    ceiling_side = error_type.startswith("less") == (key.looser == "higher")
    return key.why if ceiling_side else key.bound_why


def _known_keys(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    if len(loc) >= 2 and loc[0] in AppConfig.model_fields:
        model = AppConfig.model_fields[str(loc[0])].annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            return tuple(model.model_fields)
    return tuple(AppConfig.model_fields)
