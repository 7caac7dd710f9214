"""The application configuration: precedence, error messages, the documented file, MQTT URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from retro_ftms.edge.config import AppConfig, MqttConfig, TreadmillConfig, load_config, mask_url
from retro_ftms.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DOC_FILE = REPO / "config" / "retro-ftms.toml"
STRICTER = "the default: a safety rule can only be made stricter"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "retro-ftms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value


# -- precedence ---------------------------------------------------------------------------------------


def test_no_file_no_environment_gives_the_defaults() -> None:
    config = load_config(None, env={})
    assert config.safety.max_speed_kmh == 4.0
    assert config.session.units == "kmh"
    assert config.ble.cp_timeout_s == 2.0
    assert not config.mqtt.enabled
    assert config.mqtt.base_topic == "retro_ftms/treadmill"
    assert config.log.level == "WARNING"


def test_environment_beats_file_beats_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "[safety]\nmax_speed_kmh = 3.0\nmax_incline_pct = 2.0\n[ble]\ndevice = 'AA:BB'\n")
    env = {"RETRO_FTMS_SAFETY__MAX_SPEED_KMH": "3.5", "retro_ftms_session__units": "mph", "UNRELATED": "x"}
    config = load_config(path, env=env)
    assert config.safety.max_speed_kmh == 3.5  # environment
    assert config.safety.max_incline_pct == 2.0  # file
    assert config.safety.first_speed_max_kmh == 1.6  # default
    assert config.ble.device == "AA:BB"
    assert config.session.units == "mph"


def test_environment_reads_the_given_mapping_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRO_FTMS_SAFETY__MAX_SPEED_KMH", "2.0")
    assert load_config(None, env={}).safety.max_speed_kmh == 4.0
    assert load_config(None).safety.max_speed_kmh == 2.0


def test_environment_values_are_converted() -> None:
    env = {
        "RETRO_FTMS_SAFETY__MAX_HEART_RATE_BPM": "150",
        "RETRO_FTMS_MQTT__HOST": "broker",
        "RETRO_FTMS_MQTT__TLS": "true",
        "RETRO_FTMS_MQTT__ALLOW_REMOTE_RESUME": "1",
        "RETRO_FTMS_LOG__FILE": "/tmp/retro.log",
    }
    config = load_config(None, env=env)
    assert config.safety.max_heart_rate_bpm == 150
    assert (config.mqtt.host, config.mqtt.tls, config.mqtt.port) == ("broker", True, 8883)
    assert config.mqtt.allow_remote_resume is True
    assert config.log.file == Path("/tmp/retro.log")


def test_config_is_immutable() -> None:
    config = load_config(None, env={})
    with pytest.raises(ValueError, match="frozen"):
        config.safety = config.safety


# -- errors -------------------------------------------------------------------------------------------


def test_ceiling_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[safety]\nmax_speed_kmh = 6.0\n")
    error = config_error(path)
    assert (error.source, error.where, error.value) == (str(path), "safety.max_speed_kmh", 6.0)
    assert error.rule == "must be at most 5.9 (the backward-walking ceiling)"


def test_ceiling_in_the_environment_names_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[safety]\nmax_speed_kmh = 3.0\n")
    error = config_error(path, {"RETRO_FTMS_SAFETY__MAX_SPEED_KMH": "7"})
    assert (error.source, error.where, error.value) == ("environment", "safety.max_speed_kmh", "7")
    assert error.rule == "must be at most 5.9 (the backward-walking ceiling)"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("speed_rise_max_kmh", "0.5", f"must be at most 0.32 ({STRICTER})"),
        ("rise_interval_s", "10", f"must be at least 15.0 ({STRICTER})"),
        ("data_timeout_s", "30", "must be at most 5.0 (the data-timeout ceiling)"),
        ("max_speed_kmh", "fast", "must be a number"),
    ],
)
def test_safety_keys_end_at_their_ceilings(key: str, value: str, rule: str) -> None:
    error = config_error(None, {f"RETRO_FTMS_SAFETY__{key.upper()}": value})
    assert (error.where, error.rule) == (f"safety.{key}", rule)


def test_inconsistent_safety_table(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[safety]\nmax_speed_kmh = 1.0\n"))
    assert error.where == "safety"
    assert error.rule == "first_speed_max_kmh must not exceed max_speed_kmh"


def test_unknown_key_and_table_in_the_file(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[safety]\nmax_sped_kmh = 3.0\n"))
    assert (error.where, error.rule) == ("safety.max_sped_kmh", "unknown key (did you mean 'max_speed_kmh'?)")
    error = config_error(write(tmp_path, "[safty]\nmax_speed_kmh = 3.0\n"))
    assert (error.where, error.rule) == ("safty", "unknown table (did you mean 'safety'?)")
    error = config_error(write(tmp_path, "safety = 3\n"))
    assert (error.where, error.rule) == ("safety", "must be a table: [safety]")


def test_unknown_key_and_table_in_the_environment() -> None:
    error = config_error(None, {"RETRO_FTMS_SAFETY__MAX_SPED": "3"})
    assert (error.source, error.where, error.rule) == (
        "environment",
        "safety.max_sped",
        "unknown key (did you mean 'max_speed_kmh'?)",
    )
    error = config_error(None, {"RETRO_FTMS_SAFTY__MAX_SPEED_KMH": "3"})
    assert (error.source, error.where) == ("environment", "RETRO_FTMS_SAFTY__MAX_SPEED_KMH")
    assert error.rule == "unknown table (did you mean 'safety'?)"


def test_file_types_are_strict(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[mqtt]\nport = '1883'\n"))
    assert (error.where, error.value, error.rule) == ("mqtt.port", "1883", "must be a whole number")
    error = config_error(write(tmp_path, "[mqtt]\ntls = 1\n"))
    assert (error.where, error.rule) == ("mqtt.tls", "must be true or false")
    error = config_error(write(tmp_path, "[log]\nlevel = 'LOUD'\n"))
    assert error.rule == "must be one of 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[safety]\nmax_speed_kmh = \n"))
    assert error.where == "line 2"
    assert error.rule.startswith("not valid TOML:")
    error = config_error(tmp_path / "absent.toml")
    assert (error.where, error.rule) == ("file", "no such file")


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[mqtt]\nurl = 'http://me:hunter2@broker'\n"))
    assert "hunter2" not in str(error)
    assert error.where == "mqtt.url"
    assert repr(error.value) == "http://me:***@broker"
    error = config_error(write(tmp_path, "[mqtt]\nhost = 'h'\npassword = 12345\n"))
    assert "12345" not in str(error)
    assert "hunter2" not in repr(load_config(None, env={"RETRO_FTMS_MQTT__URL": "mqtt://me:hunter2@h"}))


# -- the documented file ------------------------------------------------------------------------------


def test_documented_file_loads_to_the_defaults() -> None:
    assert load_config(DOC_FILE, env={}) == load_config(None, env={})


def _sections(text: str) -> dict[str, str]:
    """Tables by name: `[name]`, and an array of tables shown commented out (`# [[treadmills]]`)."""
    parts = re.split(r"^(?:\[(\w+)\]|# \[\[(\w+)\]\])\s*$", text, flags=re.MULTILINE)
    return {parts[i] or parts[i + 1]: parts[i + 2] for i in range(1, len(parts), 3)}


def test_documented_file_mentions_every_key_in_its_table() -> None:
    sections = _sections(DOC_FILE.read_text(encoding="utf-8"))
    assert set(sections) == set(AppConfig.model_fields)
    for table, field in AppConfig.model_fields.items():
        model = TreadmillConfig if table == "treadmills" else field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        for key in model.model_fields:
            pattern = rf"^#?\s*{key}\s*="
            assert re.search(pattern, sections[table], flags=re.MULTILINE), f"[{table}] {key} is undocumented"


def test_documented_file_has_a_comment_for_every_key() -> None:
    for line in DOC_FILE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^#?\s*\w+\s*=", line) and not line.startswith("# ") and "#" not in line:
            assert line.split("=")[0].strip() in {"tls", "discovery_prefix"}, line


# -- MQTT URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", ("broker", 1883, False, None, None)),
        ("mqtts://broker", ("broker", 8883, True, None, None)),
        ("mqtt://user:pass@127.0.0.1:1884", ("127.0.0.1", 1884, False, "user", "pass")),
        ("MQTTS://u@[::1]:9000/", ("::1", 9000, True, "u", None)),
        ("mqtt://us%40er:p%3Ass@host", ("host", 1883, False, "us@er", "p:ss")),
    ],
)
def test_mqtt_url_parts(url: str, expected: tuple[str, int, bool, str | None, str | None]) -> None:
    config = MqttConfig.from_url(url)
    password = config.password.get_secret_value() if config.password else None
    assert (config.host, config.port, config.tls, config.username, password) == expected
    assert config.enabled


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://broker", "the URL must start with mqtt:// or mqtts:// (TLS)"),
        ("mqtt://", "the URL names no broker host"),
        ("mqtt://broker:99999", "not a valid mqtt:// or mqtt:// URL"),
        ("mqtt://broker:port", "not a valid mqtt:// or mqtts:// URL"),
        ("mqtt://broker/topic", "the URL takes no path, query or fragment"),
        ("mqtt://broker?x=1", "the URL takes no path, query or fragment"),
    ],
)
def test_bad_mqtt_urls(url: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MqttConfig.from_url(url)
    assert (caught.value.source, caught.value.where) == ("--mqtt", "mqtt.url")
    assert caught.value.rule.startswith(rule.replace("mqtt:// URL", "mqtts:// URL"))


def test_mqtt_option_overrides_file_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nhost = 'old'\nusername = 'x'\ndevice_id = 'tm2'\nkeepalive_s = 10\n")
    config = load_config(path, env={}).with_mqtt_url("mqtts://new:secret@broker:8884")
    mqtt = config.mqtt
    assert (mqtt.host, mqtt.port, mqtt.tls, mqtt.username) == ("broker", 8884, True, "new")
    assert (mqtt.device_id, mqtt.base_topic, mqtt.keepalive_s) == ("tm2", "retro_ftms/tm2", 10)
    assert MqttConfig.from_url("mqtts://new:secret@broker:8884", base=load_config(path, env={}).mqtt) == mqtt


def test_url_and_host_are_alternatives(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[mqtt]\nurl = 'mqtt://a'\nhost = 'b'\n"))
    assert error.where == "mqtt"
    assert error.rule.startswith("url and host are alternatives")


def test_mqtt_derived_defaults_and_checks(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[mqtt]\nhost = 'h'\ndevice_id = 'kitchen_1'\n"), env={})
    assert config.mqtt.base_topic == "retro_ftms/kitchen_1"
    assert config.mqtt.port == 1883
    error = config_error(write(tmp_path, "[mqtt]\ndevice_id = 'a/b'\n"))
    assert error.where == "mqtt.device_id"
    error = config_error(write(tmp_path, "[mqtt]\nbase_topic = 'x/#'\n"))
    assert error.where == "mqtt.base_topic"
    error = config_error(write(tmp_path, "[mqtt]\nhost = 'h'\nca_file = 'ca.pem'\n"))
    assert error.rule.startswith("ca_file is only used with TLS")
    config = load_config(write(tmp_path, "[mqtt]\nhost = 'h'\ntls = true\nca_file = 'ca.pem'\n"), env={})
    assert config.mqtt.ca_file == Path("ca.pem")


def test_mask_url() -> None:
    assert mask_url("mqtt://u:p@h:1") == "mqtt://u:***@h:1"
    assert mask_url("mqtt://h") == "mqtt://h"


def test_ca_file_in_the_file_waits_for_the_broker_url(tmp_path: Path) -> None:
    """The file may name the CA and leave the broker (and TLS) to `--mqtt mqtts://...`."""
    path = write(tmp_path, "[mqtt]\nca_file = 'ca.pem'\ndevice_id = 'tm2'\n")
    loaded = load_config(path, env={})
    assert not loaded.mqtt.enabled
    mqtt = loaded.with_mqtt_url("mqtts://broker").mqtt
    assert (mqtt.host, mqtt.port, mqtt.tls, mqtt.ca_file) == ("broker", 8883, True, Path("ca.pem"))
    assert mqtt.device_id == "tm2"
    assert MqttConfig.from_url("mqtts://broker", base=loaded.mqtt) == mqtt


def test_ca_file_with_a_plain_mqtt_url_is_explained(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "[mqtt]\nca_file = 'ca.pem'\n"), env={})
    with pytest.raises(ConfigError) as caught:
        loaded.with_mqtt_url("mqtt://user:hunter2@broker")
    error = caught.value
    assert (error.source, error.where) == ("--mqtt", "mqtt.url")
    assert "only used with TLS: use an mqtts:// url" in error.rule
    assert "hunter2" not in str(error)


def test_ca_file_without_tls_is_rejected_once_the_broker_is_known(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "[mqtt]\nurl = 'mqtt://broker'\nca_file = 'ca.pem'\n"))
    assert error.rule.startswith("ca_file is only used with TLS")
    error = config_error(write(tmp_path, "[mqtt]\nca_file = 'ca.pem'\n"), env={"RETRO_FTMS_MQTT__HOST": "h"})
    assert (error.source, error.rule[:29]) == ("environment", "ca_file is only used with TLS")


# -- the MQTT password out of the process list ----------------------------------------------------------


def secret(mqtt: MqttConfig) -> str | None:
    return None if mqtt.password is None else mqtt.password.get_secret_value()


def password_file(tmp_path: Path, text: str = "s3cret pass\n", mode: int = 0o600) -> Path:
    path = tmp_path / "mqtt-password"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_env_password_is_kept_by_a_url_without_one() -> None:
    """`--mqtt mqtt://user@host` with `RETRO_FTMS_MQTT__PASSWORD`: the password stays (it was dropped)."""
    loaded = load_config(None, env={"RETRO_FTMS_MQTT__PASSWORD": "from-env"})
    mqtt = loaded.with_mqtt_url("mqtt://walker@broker:1884").mqtt
    assert (mqtt.username, mqtt.port) == ("walker", 1884)
    assert secret(mqtt) == "from-env"
    # A password in the url wins over the environment, as the option beats file and environment.
    mqtt = loaded.with_mqtt_url("mqtt://walker:in-url@broker").mqtt
    assert secret(mqtt) == "in-url"
    # The same in the file: a url without a password and a password from the environment.
    env = {"RETRO_FTMS_MQTT__URL": "mqtt://walker@broker", "RETRO_FTMS_MQTT__PASSWORD": "from-env"}
    mqtt = load_config(None, env=env).mqtt
    assert secret(mqtt) == "from-env"


def test_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    path = password_file(tmp_path)
    loaded = load_config(write(tmp_path, f"[mqtt]\nhost = 'broker'\npassword_file = '{path}'\n"), env={})
    assert secret(loaded.mqtt) == "s3cret pass"
    assert "s3cret" not in repr(loaded)
    mqtt = loaded.with_mqtt_url("mqtt://walker@other").mqtt  # `--mqtt` without a password keeps the file's
    assert secret(mqtt) == "s3cret pass"
    env = {"RETRO_FTMS_MQTT__PASSWORD_FILE": str(password_file(tmp_path, "crlf\r\n"))}
    mqtt = load_config(None, env=env).mqtt
    assert secret(mqtt) == "crlf"


@pytest.mark.parametrize(
    ("text", "mode", "rule"),
    [
        ("pw\n", 0o640, "the group or others may read it (mode 0640): chmod 600"),
        ("pw\n", 0o604, "the group or others may read it (mode 0604)"),
        ("\n", 0o600, "the file is empty"),
    ],
)
def test_bad_password_file_is_named(tmp_path: Path, text: str, mode: int, rule: str) -> None:
    path = password_file(tmp_path, text, mode)
    error = config_error(write(tmp_path, f"[mqtt]\nhost = 'broker'\npassword_file = '{path}'\n"))
    assert (error.where, error.value) == ("mqtt.password_file", str(path))
    assert error.rule.startswith(rule)
    error = config_error(None, env={"RETRO_FTMS_MQTT__PASSWORD_FILE": str(tmp_path / "missing")})
    assert (error.source, error.where, error.rule) == ("environment", "mqtt.password_file", "no such file")


def test_password_and_password_file_are_alternatives(tmp_path: Path) -> None:
    path = password_file(tmp_path)
    error = config_error(write(tmp_path, f"[mqtt]\nurl = 'mqtt://u:p@h'\npassword_file = '{path}'\n"))
    assert "password_file are alternatives" in error.rule
    assert "'p'" not in str(error)
    error = config_error(
        write(tmp_path, f"[mqtt]\npassword_file = '{path}'\n"), {"RETRO_FTMS_MQTT__PASSWORD": "x"}
    )
    assert "password_file are alternatives" in error.rule


def test_a_password_in_the_mqtt_option_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    MqttConfig.from_url("mqtt://walker:hunter2@broker")
    (record,) = caplog.records
    assert "process list" in record.getMessage()
    assert "hunter2" not in record.getMessage()
    caplog.clear()
    MqttConfig.from_url("mqtt://walker@broker")
    assert caplog.records == []
