"""Settings from the environment and the TOML file: read once, validated with messages that name the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ceilings import Shares
from gateway.config import DEFAULT_LINKS, Settings, load, load_file
from gateway.exceptions import ConfigError
from gateway.links.leo import LeoProfile
from gateway.quotas import Quota
from protocols.envelope import Priority


class TestSettings:
    def test_defaults_match_the_contract(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without SATGW_* variables the documented defaults apply."""
        for name in ("REDIS_URL", "MQTT_URL", "TOPIC_PREFIX", "HTTP", "CONFIG", "ROLES"):
            monkeypatch.delenv(f"SATGW_{name}", raising=False)
        settings = Settings()
        assert settings.redis_url == "redis://127.0.0.1:6379/0"
        assert settings.mqtt_url == "mqtt://127.0.0.1:1883"
        assert settings.topic_prefix == "satgw"
        assert settings.http_address == ("127.0.0.1", 8080)
        assert settings.roles == {"ingest", "relay"}

    def test_roles_come_from_a_comma_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SATGW_ROLES=ingest runs ingest alone."""
        monkeypatch.setenv("SATGW_ROLES", "ingest")
        assert Settings().roles == {"ingest"}

    def test_unknown_role_is_refused_by_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A role that does not exist stops start-up with a message naming it."""
        monkeypatch.setenv("SATGW_ROLES", "ingest,bogus")
        with pytest.raises(ConfigError, match="bogus"):
            load()

    def test_bad_http_address_is_refused(self) -> None:
        """SATGW_HTTP must be host:port."""
        with pytest.raises(ConfigError, match="host:port"):
            _ = Settings(http="8080").http_address

    def test_settings_are_frozen(self) -> None:
        """Settings cannot change after start-up."""
        settings = Settings()
        with pytest.raises(ValueError, match="frozen"):
            settings.topic_prefix = "other"  # type: ignore[misc]


class TestConfigFile:
    def test_no_file_gives_the_lab_pool(self) -> None:
        """Without a config file the default links carry traffic at once."""
        assert load_file(None).links == DEFAULT_LINKS

    def test_links_and_tuning_are_read(self, tmp_path: Path) -> None:
        """A TOML file sets links and tuning."""
        path = tmp_path / "satgw.toml"
        path.write_text(
            '[relay]\npack_max = 4\n[[links]]\nname = "card"\nmax_frame_bytes = 78\ninterval_s = 60\ncards = 3\n'
        )
        config = load_file(path)
        assert config.pack_max == 4
        (link,) = config.links
        assert (link.name, link.max_frame_bytes, link.interval_s, link.cards) == ("card", 78, 60.0, 3)

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("[relay]\npack_mx = 4\n", "pack_mx"),
            ("[relay]\npack_max = 999\n", "pack_max"),
            ('[[links]]\nname = "a"\nmax_frame_bytes = 0\ninterval_s = 1\n', "max_frame_bytes"),
            ('[[links]]\ntype = "warp"\nname = "a"\nmax_frame_bytes = 9\ninterval_s = 1\n', "warp"),
            ('[[links]]\ntype = "leo"\nname = "a"\nmax_frame_bytes = 9\ninterval_s = 1\n', "not a setting of a LEO"),
            ('[[links]]\ntype = "leo"\nname = "a"\ngateway_lat = 1\ngateway_lon = 2\n', "needs tle"),
            ('[[links]]\nname = "a"\nmax_frame_bytes = 9\ninterval_s = 1\ntle = "swarm-like"\n', "only a LEO"),
            ("not toml = = =", "cannot read"),
        ],
    )
    def test_bad_files_are_refused_with_the_key_named(self, tmp_path: Path, text: str, named: str) -> None:
        """Unknown keys, out-of-range values and unsupported link types fail start-up, naming what is wrong."""
        path = tmp_path / "satgw.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=named):
            load_file(path)

    def test_a_leo_link_is_read(self, tmp_path: Path) -> None:
        """A type = "leo" table becomes a LEO store-and-forward link over a shipped TLE set."""
        path = tmp_path / "satgw.toml"
        path.write_text(
            '[[links]]\ntype = "leo"\nname = "swarm"\ntle = "swarm-like"\ngateway_lat = 39.9\ngateway_lon = 116.4\n'
            "pass_capacity_frames = 10\nmin_elevation_deg = 15\noutage_rate_per_h = 0.5\n"
        )
        (link,) = load_file(path).links
        assert isinstance(link, LeoProfile)
        assert (link.name, link.tle, link.pass_capacity_frames, link.min_elevation_deg) == (
            "swarm",
            "swarm-like",
            10,
            15,
        )

    def test_quotas_and_ceilings_are_read(self, tmp_path: Path) -> None:
        """[quotas] gives per-class token buckets and [ceilings] per-class shares; neither is set by default."""
        path = tmp_path / "satgw.toml"
        path.write_text(
            "[quotas]\nroutine = { count = 60, period_s = 3600, burst = 10 }\n"
            "[ceilings]\nroutine = 0.5\nsafety = 0.8\naging_s = 120\n"
        )
        config = load_file(path)
        assert config.quotas == {Priority.ROUTINE: Quota(count=60, period_s=3600, burst=10)}
        assert config.shares == Shares(shares={Priority.ROUTINE: 0.5, Priority.SAFETY: 0.8}, aging_s=120)
        assert load_file(None).quotas == {}
        assert load_file(None).shares.shares == {}

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("[quotas]\ndistress = { count = 1, period_s = 1, burst = 1 }\n", "distress"),
            ("[quotas]\nroutine = { count = 0, period_s = 1, burst = 1 }\n", "count"),
            ("[ceilings]\nroutine = 1.5\n", "routine"),
            ("[ceilings]\ndistress = 0.5\n", "distress"),
        ],
    )
    def test_bad_quotas_and_ceilings_are_refused(self, tmp_path: Path, text: str, named: str) -> None:
        """Distress takes neither a quota nor a ceiling; counts and shares must be in range."""
        path = tmp_path / "satgw.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=named):
            load_file(path)

    def test_duplicate_link_names_are_refused(self, tmp_path: Path) -> None:
        """Two links cannot share a name: names key metrics and traces."""
        link = '[[links]]\nname = "a"\nmax_frame_bytes = 9\ninterval_s = 1\n'
        path = tmp_path / "satgw.toml"
        path.write_text(link + link)
        with pytest.raises(ConfigError, match="unique"):
            load_file(path)


def test_the_readme_example_config_loads(tmp_path: Path) -> None:
    """The TOML example in the README is a valid config (a newcomer copies it)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index('[[links]]\nname = "bds3-geo-110"')
    path = tmp_path / "satgw.toml"
    path.write_text(readme[start : readme.index("```", start)])
    config = load_file(path)
    assert [link.name for link in config.links] == ["bds3-geo-110", "leo-swarm"]
    assert config.quotas
    assert config.shares.shares
