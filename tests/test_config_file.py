"""The shipped config.yaml documents every option and loads to the defaults."""

import dataclasses
import re
from pathlib import Path

import pytest

from edge.service.config import Config, ConfigError, load_config

CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def _leaf_paths(cls, prefix=""):
    for f in dataclasses.fields(cls):
        if f.name == "source_file":
            continue
        if dataclasses.is_dataclass(f.type) or (isinstance(f.type, str) and f.type.endswith("Config")):
            yield from _leaf_paths(type(getattr(cls(), f.name)), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def test_shipped_config_loads_to_exactly_the_defaults():
    cfg = load_config(CONFIG)
    assert dataclasses.replace(cfg, source_file="<defaults>") == Config()


def test_shipped_config_lists_every_option_with_a_comment():
    import yaml

    tree = yaml.safe_load(CONFIG.read_text())
    text = CONFIG.read_text()
    for path in _leaf_paths(Config):
        node = tree
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, f"config.yaml lacks {path}"
            node = node[part]
        leaf = path.split(".")[-1]
        assert re.search(rf"^\s*{leaf}:.*#.+", text, re.M), f"config.yaml: {path} has no comment"


def test_command_line_override_beats_the_file(tmp_path):
    cfg = load_config(CONFIG, {"audio.source": "x.wav", "audio.realtime": True})
    assert cfg.audio.source == "x.wav" and cfg.audio.realtime is True


@pytest.mark.parametrize("yaml_text, message", [
    ("detector:\n  thresholds:\n    dog_bark: high\n",
     "detector.thresholds.dog_bark: expected a number in [0, 1], got 'high'"),
    ("audio:\n  block_s: 5\n", "audio.block_s: expected a number in [0.001, 1], got 5"),
    ("model:\n  threads: two\n", "model.threads: expected an integer 1-64, got 'two'"),
    ("detector:\n  persistence_k: 4\n  persistence_n: 3\n",
     "detector.persistence_k: expected at most persistence_n (3), got 4"),
    ("audio:\n  realtime: 1\n", "audio.realtime: expected true or false, got 1"),
    # paho refuses to publish under a wildcard, but only on its network thread, long after start
    ("mqtt:\n  base_topic: home/+\n", "mqtt.base_topic: expected an MQTT topic without wildcards (+ #) or "
                                       "empty levels, e.g. 'home/sound', got 'home/+'"),
    ("mqtt:\n  discovery:\n    prefix: homeassistant/\n", "mqtt.discovery.prefix: expected an MQTT topic without "
                                                         "wildcards (+ #) or empty levels, e.g. 'home/sound', "
                                                         "got 'homeassistant/'"),
    # plain YAML keeps the last of two keys without a word
    ("mqtt:\n  port: 1883\n  host: broker\n  port: 1884\n",
     "invalid YAML at line 4, column 3: duplicate key 'port' (a key may appear only once per section)"),
    ("detector:\n  release_s: 1\nmqtt: {}\ndetector:\n  release_s: 2\n",
     "invalid YAML at line 4, column 1: duplicate key 'detector' (a key may appear only once per section)"),
])
def test_config_errors_name_file_key_expectation_and_value(tmp_path, yaml_text, message):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: {message}"


def test_yaml_anchors_and_merge_keys_still_load(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("detector:\n  thresholds: &t {dog_bark: 0.7}\n  releases:\n    <<: {dog_bark: 2.0}\n"
                 "    cat_meow: 1.0\n")
    cfg = load_config(p)
    assert cfg.detector.thresholds == {"dog_bark": 0.7}
    assert cfg.detector.releases == {"dog_bark": 2.0, "cat_meow": 1.0}


def test_config_yaml_and_the_option_table_are_generated_from_the_settings_schema():
    """One source for every option's default and meaning: the field metadata of the settings dataclasses."""
    from edge.service.config import config_markdown, config_yaml

    assert CONFIG.read_text() == config_yaml(), "regenerate: python -m edge.service.config --yaml > config.yaml"
    table = CONFIG.parent / "docs" / "configuration.md"
    assert table.read_text() == config_markdown(), \
        "regenerate: python -m edge.service.config --markdown > docs/configuration.md"
