"""Checks of deploy/, the Dockerfile and scripts/services.sh that hold without any linter installed.

The static part parses the files. The rest starts private Redis and Mosquitto processes from PATH (skipped when
not installed) to prove that the production configs load and that the broker's ACL really confines terminals.
None of it needs the shared services on 6379/1883.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import redis

from gateway.config import load_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ROOT / "scripts" / "services.sh"


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every document of a YAML file (skips the test when pyyaml, from the dev extra, is missing)."""
    yaml = pytest.importorskip("yaml", reason="pyyaml comes with the dev extra")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_resources() -> dict[tuple[str, str], dict[str, Any]]:
    """All Kubernetes resources in deploy/k8s (not the kustomization), by (kind, name)."""
    found = {}
    for path in sorted(set(K8S.glob("*.yaml")) - {K8S / "kustomization.yaml"}):
        for doc in load_yaml_docs(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def conf_options(path: Path) -> dict[str, list[str]]:
    """A Mosquitto or Redis config as option -> values (one entry per occurrence), comments dropped."""
    options: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


def acl_rules(path: Path) -> list[tuple[str | None, str, str, str]]:
    """Mosquitto ACL lines as (user or None for global, keyword, access, topic)."""
    rules = []
    user = None
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            continue
        access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
        rules.append((None if words[0] == "pattern" else user, words[0], access, topic))
    return rules


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def running(pid: str) -> bool:
    """The process exists and is not a zombie waiting for a slow init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def container(resource: dict[str, Any]) -> dict[str, Any]:
    """The first container of a workload's pod template."""
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]["containers"][0]
    return spec


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed deploy/compose.yaml."""
    docs = load_yaml_docs(DEPLOY / "compose.yaml")
    assert len(docs) == 1
    return docs[0]


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """All Kubernetes resources in deploy/k8s, by (kind, name)."""
    return k8s_resources()


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


class TestCompose:
    """deploy/compose.yaml."""

    def test_has_the_three_services_with_health_checks(self, compose: dict[str, Any]) -> None:
        """Redis, Mosquitto and satgw are there, each with a health check."""
        services = compose["services"]
        for name in ("redis", "mosquitto", "satgw"):
            assert services[name]["healthcheck"]["test"], name

    def test_satgw_is_built_here_and_checked_on_healthz(self, compose: dict[str, Any]) -> None:
        """satgw is built from the repository's Dockerfile and its health check asks /healthz."""
        satgw = compose["services"]["satgw"]
        context = (DEPLOY / satgw["build"]["context"]).resolve()
        assert (context / satgw["build"]["dockerfile"]) == ROOT / "Dockerfile"
        assert any("/healthz" in part for part in satgw["healthcheck"]["test"])

    def test_satgw_environment_points_at_the_other_services(self, compose: dict[str, Any]) -> None:
        """SATGW_* name the compose services and the HTTP endpoint listens beyond loopback."""
        env = compose["services"]["satgw"]["environment"]
        assert env["SATGW_REDIS_URL"].startswith("redis://")
        assert env["SATGW_REDIS_URL"].endswith("@redis:6379/0")
        assert env["SATGW_MQTT_URL"].startswith("mqtt://satgw:")
        assert env["SATGW_MQTT_URL"].endswith("@mosquitto:1883")
        assert env["SATGW_HTTP"] == "0.0.0.0:8080"
        assert env["SATGW_CONFIG"] == "/etc/satgw/satgw.toml"

    def test_satgw_waits_for_healthy_dependencies(self, compose: dict[str, Any]) -> None:
        """satgw starts only once Redis and Mosquitto report healthy."""
        depends = compose["services"]["satgw"]["depends_on"]
        assert depends == {"redis": {"condition": "service_healthy"}, "mosquitto": {"condition": "service_healthy"}}

    def test_mounted_files_exist(self, compose: dict[str, Any]) -> None:
        """Every file the services mount from deploy/ is in the repository."""
        mounts = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])]
        local = [m for m in mounts if m.startswith("./")]
        assert len(local) == 4
        for mount in local:
            assert (DEPLOY / mount).is_file(), mount

    def test_redis_and_broker_keep_data_in_volumes(self, compose: dict[str, Any]) -> None:
        """Redis' AOF dir and Mosquitto's persistence dir are named volumes, not the container's layer."""
        redis_volumes = compose["services"]["redis"]["volumes"]
        broker_volumes = compose["services"]["mosquitto"]["volumes"]
        assert "redis-data:/data" in redis_volumes
        assert "mosquitto-data:/mosquitto/data" in broker_volumes
        assert {"redis-data", "mosquitto-data"} <= set(compose["volumes"])


class TestKubernetes:
    """deploy/k8s."""

    def test_satgw_runs_two_replicas(self, resources: dict[tuple[str, str], dict[str, Any]]) -> None:
        """The gateway Deployment has two replicas and never goes below them during a rollout."""
        deployment = resources[("Deployment", "satgw")]
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    def test_probes_ask_healthz_and_readyz_on_8080(self, resources: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Liveness asks /healthz, readiness /readyz, both on the container's port 8080."""
        spec = container(resources[("Deployment", "satgw")])
        ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("livenessProbe", "readinessProbe"):
            assert ports[spec[probe]["httpGet"]["port"]] == 8080

    def test_satgw_listens_beyond_loopback_and_reads_the_configmap(
        self, resources: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        """SATGW_HTTP binds 0.0.0.0:8080 and SATGW_CONFIG names the file the ConfigMap mounts."""
        deployment = resources[("Deployment", "satgw")]
        spec = container(deployment)
        env = {item["name"]: item.get("value") for item in spec["env"]}
        assert env["SATGW_HTTP"] == "0.0.0.0:8080"
        mount = next(m for m in spec["volumeMounts"] if m["name"] == "config")
        volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
        assert volume["configMap"]["name"] == "satgw-config"
        config_map = resources[("ConfigMap", "satgw-config")]
        assert env["SATGW_CONFIG"] == f"{mount['mountPath']}/{next(iter(config_map['data']))}"

    def test_satgw_service_selects_the_pods(self, resources: dict[tuple[str, str], dict[str, Any]]) -> None:
        """The Service's selector matches the Deployment's pods and forwards port 8080."""
        service = resources[("Service", "satgw")]
        labels = resources[("Deployment", "satgw")]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["port"] == 8080

    def test_redis_keeps_its_aof_on_a_claimed_volume(self, resources: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Redis is a StatefulSet whose claimed volume is mounted where redis.conf puts its data."""
        statefulset = resources[("StatefulSet", "redis")]
        claims = [claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]]
        mounts = {m["name"]: m["mountPath"] for m in container(statefulset)["volumeMounts"]}
        assert mounts[claims[0]] == conf_options(DEPLOY / "redis.conf")["dir"][0]

    @pytest.mark.parametrize(
        ("config_map", "files"),
        [
            ("satgw-config", ["satgw.toml"]),
            ("redis-config", ["redis.conf"]),
            ("mosquitto-config", ["mosquitto.conf", "mosquitto.acl"]),
        ],
    )
    def test_configmaps_carry_the_deploy_files(
        self, resources: dict[tuple[str, str], dict[str, Any]], config_map: str, files: list[str]
    ) -> None:
        """Each ConfigMap holds exactly the text of its files in deploy/ (scripts/sync_k8s_config.py)."""
        data = resources[("ConfigMap", config_map)]["data"]
        assert data == {name: (DEPLOY / name).read_text() for name in files}

    def test_kustomization_lists_every_manifest(self) -> None:
        """kustomization.yaml names every other manifest in deploy/k8s."""
        listed = set(load_yaml_docs(K8S / "kustomization.yaml")[0]["resources"])
        assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


class TestConfigFiles:
    """Static checks of the production configs of Mosquitto, Redis and satgw."""

    def test_broker_raises_the_offline_queue_limit(self) -> None:
        """max_queued_messages is far above Mosquitto's 1000, and capped in bytes instead."""
        options = conf_options(DEPLOY / "mosquitto.conf")
        assert int(options["max_queued_messages"][0]) >= 100_000
        assert 0 < int(options["max_queued_bytes"][0]) <= 8 * 2**30
        assert 100 <= int(options["max_inflight_messages"][0]) <= 1000

    def test_broker_persists_and_authenticates(self) -> None:
        """Sessions persist to a location, anonymous clients are refused, passwords and the ACL apply."""
        options = conf_options(DEPLOY / "mosquitto.conf")
        assert options["persistence"] == ["true"]
        assert options["persistence_location"][0].startswith("/")
        assert options["allow_anonymous"] == ["false"]
        assert options["password_file"][0].startswith("/")
        assert options["acl_file"][0].startswith("/")
        assert options["listener"] == ["1883"]

    def test_redis_is_durable_and_never_evicts(self) -> None:
        """Redis appends every write, fsyncs each second and refuses writes rather than evicting."""
        options = conf_options(DEPLOY / "redis.conf")
        assert options["appendonly"] == ["yes"]
        assert options["appendfsync"] == ["everysec"]
        assert options["maxmemory-policy"] == ["noeviction"]
        assert options["protected-mode"] == ["yes"]
        assert options["bind"]

    def test_satgw_toml_is_a_valid_gateway_config(self) -> None:
        """deploy/satgw.toml loads with the gateway's own config loader and defines its links."""
        loaded = load_file(DEPLOY / "satgw.toml")
        names = [link["name"] for link in tomllib.loads((DEPLOY / "satgw.toml").read_text())["links"]]
        assert [link.name for link in loaded.links] == names
        assert names


class TestAclFile:
    """deploy/mosquitto.acl, read as text."""

    def test_gateway_account_owns_the_topic_tree(self) -> None:
        """The satgw user may read and write everything under satgw/."""
        assert ("satgw", "topic", "readwrite", "satgw/#") in acl_rules(DEPLOY / "mosquitto.acl")

    def test_terminals_get_only_their_own_topics(self) -> None:
        """Global rules are exactly: write own uplink and distress uplink, read own downlink."""
        global_rules = {(access, topic) for user, _, access, topic in acl_rules(DEPLOY / "mosquitto.acl") if not user}
        assert global_rules == {("write", "satgw/up/%u"), ("write", "satgw/up/%u/sos"), ("read", "satgw/down/%u")}

    def test_no_rule_outside_the_gateway_account_uses_wildcards(self) -> None:
        """Only the gateway account has wildcard grants."""
        for user, _, _, topic in acl_rules(DEPLOY / "mosquitto.acl"):
            assert user == "satgw" or not ({"#", "+"} & set(topic.split("/")))


class TestDockerfile:
    """Dockerfile and .dockerignore, read as text."""

    def test_image_contract(self, instructions: list[tuple[str, str]]) -> None:
        """python:3.11-slim, `satgw run` as entry point, port 8080 and a /healthz health check."""
        found = dict(instructions)
        assert found["FROM"] == "python:3.11-slim"
        assert found["ENTRYPOINT"] == '["satgw"]'
        assert found["CMD"] == '["run"]'
        assert found["EXPOSE"] == "8080"
        assert "/healthz" in found["HEALTHCHECK"]
        assert "SATGW_HTTP=0.0.0.0:8080" in [args for op, args in instructions if op == "ENV"]

    def test_runs_as_a_non_root_user(self, instructions: list[tuple[str, str]]) -> None:
        """The last USER is a numeric non-zero uid (Kubernetes can then verify runAsNonRoot)."""
        user = [args for op, args in instructions if op == "USER"][-1]
        uid = user.split(":")[0]
        assert uid.isdigit()
        assert int(uid) != 0

    def test_copied_sources_pass_the_dockerignore(self, instructions: list[tuple[str, str]]) -> None:
        """Everything the Dockerfile copies is re-included by .dockerignore, which excludes everything else."""
        ignore = (ROOT / ".dockerignore").read_text().splitlines()
        allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
        assert "*" in ignore
        for _, args in (item for item in instructions if item[0] == "COPY"):
            for source in args.split()[:-1]:
                assert source.rstrip("/") in allowed, source


@dataclass
class Broker:
    """A private Mosquitto running deploy/mosquitto.conf and deploy/mosquitto.acl."""

    port: int
    passwords: dict[str, str]

    def client(self, user: str | None, *, identifier: str | None = None) -> aiomqtt.Client:
        """An MQTT client of this broker logged in as ``user`` (None: anonymous)."""
        password = self.passwords.get(user) if user else None
        return aiomqtt.Client("127.0.0.1", self.port, username=user, password=password, identifier=identifier)


def start_logged(args: list[str], ready: str) -> subprocess.Popen[str]:
    """Start a server that logs to stderr/stdout and return once a log line contains ``ready`` (any case)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if ready.lower() in line.lower():
            # Keep reading, or a chatty server blocks once the pipe is full.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc
    proc.wait()
    pytest.fail(f"{args[0]} exited with {proc.returncode}:\n{''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate a server started by :func:`start_logged` and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Mosquitto with the production config; only the port and the file paths are changed."""
    mosquitto, passwd_tool = shutil.which("mosquitto", path=_sbin_path()), shutil.which("mosquitto_passwd")
    if not (mosquitto and passwd_tool):
        pytest.skip("mosquitto and mosquitto_passwd are not installed")
    tmp = tmp_path_factory.mktemp("broker")
    passwords = {"satgw": "gw-secret", "t1": "t1-secret", "t2": "t2-secret"}
    (tmp / "passwd").touch()
    for user, password in passwords.items():
        subprocess.run([passwd_tool, "-b", str(tmp / "passwd"), user, password], check=True)
    port = free_port()
    text = (DEPLOY / "mosquitto.conf").read_text()
    text = text.replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n").replace(
        "log_dest stdout", "log_dest stderr"
    )
    for old, new in [("/mosquitto/auth/passwd", tmp / "passwd"), ("/mosquitto/data/", f"{tmp}/")]:
        text = text.replace(old, str(new))
    text = text.replace("/mosquitto/config/mosquitto.acl", str(DEPLOY / "mosquitto.acl"))
    if os.geteuid() == 0:
        text += "user root\n"  # as root it would switch to the 'mosquitto' user, who cannot read tmp
    (tmp / "mosquitto.conf").write_text(text)
    proc = start_logged([mosquitto, "-c", str(tmp / "mosquitto.conf")], " running")
    yield Broker(port=port, passwords=passwords)
    stop(proc)


def _sbin_path() -> str:
    """PATH plus the sbin folders where Debian puts mosquitto."""
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class TestBrokerEnforcesTheAcl:
    """A real Mosquitto loads deploy/mosquitto.conf and keeps terminals to their own topics."""

    async def test_anonymous_and_wrong_password_are_refused(self, broker: Broker) -> None:
        """Without a valid password no client gets in."""
        with pytest.raises(aiomqtt.MqttError):
            async with broker.client(None):
                pass
        wrong = aiomqtt.Client("127.0.0.1", broker.port, username="t1", password="nope")
        with pytest.raises(aiomqtt.MqttError):
            async with wrong:
                pass

    async def test_terminal_cannot_publish_as_another(self, broker: Broker) -> None:
        """t1's message on t2's uplink never reaches the gateway; its own uplink and SOS do, in order."""
        async with broker.client("satgw") as gateway, broker.client("t1") as t1:
            await gateway.subscribe("$share/satgw/satgw/up/+", qos=1)
            await gateway.subscribe("satgw/up/+/sos", qos=1)
            await t1.publish("satgw/up/t2", b"spoofed", qos=1)
            await t1.publish("satgw/up/t1", b"own", qos=1)
            await t1.publish("satgw/up/t1/sos", b"mayday", qos=1)
            received = []
            async with asyncio.timeout(10):
                async for message in gateway.messages:
                    received.append((str(message.topic), message.payload))
                    if len(received) == 2:
                        break
        assert received == [("satgw/up/t1", b"own"), ("satgw/up/t1/sos", b"mayday")]

    async def test_terminal_reads_only_its_own_downlink(self, broker: Broker) -> None:
        """A terminal subscribed to every downlink receives its own messages but not another terminal's."""
        async with broker.client("satgw") as gateway, broker.client("t1") as t1:
            await t1.subscribe("satgw/down/#", qos=1)
            await gateway.publish("satgw/down/t2", b"for t2", qos=1)
            await gateway.publish("satgw/down/t1", b"for t1", qos=1)
            message = await asyncio.wait_for(anext(aiter(t1.messages)), 10)
        assert (str(message.topic), message.payload) == ("satgw/down/t1", b"for t1")

    async def test_terminal_cannot_write_downlinks_or_alerts(self, broker: Broker) -> None:
        """A terminal's publish to its own downlink or to the CAP topic is dropped by the broker."""
        async with broker.client("satgw") as gateway, broker.client("t1") as t1:
            await gateway.subscribe("satgw/down/t1", qos=1)
            await gateway.subscribe("satgw/alerts/#", qos=1)
            await gateway.subscribe("satgw/up/t1", qos=1)
            await t1.publish("satgw/down/t1", b"fake receipt", qos=1)
            await t1.publish("satgw/alerts/in", b"fake alert", qos=1)
            await t1.publish("satgw/up/t1", b"marker", qos=1)
            message = await asyncio.wait_for(anext(aiter(gateway.messages)), 10)
        assert (str(message.topic), message.payload) == ("satgw/up/t1", b"marker")


class TestRedisConfigLoads:
    """A real redis-server accepts deploy/redis.conf."""

    def test_effective_settings(self, tmp_path: Path) -> None:
        """Started with the file (data dir and port changed), Redis reports AOF on and noeviction, and writes AOF."""
        server = shutil.which("redis-server")
        if server is None:
            pytest.skip("redis-server is not installed")
        conf = (DEPLOY / "redis.conf").read_text().replace("\ndir /data\n", f"\ndir {tmp_path}\n")
        (tmp_path / "redis.conf").write_text(conf)
        socket_path = tmp_path / "redis.sock"
        args = [server, str(tmp_path / "redis.conf"), "--port", "0", "--unixsocket", str(socket_path)]
        proc = start_logged([*args, "--requirepass", "pw", "--daemonize", "no"], "Ready to accept connections")
        try:
            client = redis.Redis(unix_socket_path=str(socket_path), password="pw", decode_responses=True)
            settings = client.config_get("appendonly") | client.config_get("maxmemory-policy")
            client.set("deploy-test", "1")
            client.close()
        finally:
            stop(proc)
        assert settings == {"appendonly": "yes", "maxmemory-policy": "noeviction"}
        assert any((tmp_path / "appendonlydir").iterdir())


class TestServicesScript:
    """scripts/services.sh, with probe ports where nothing listens so that it must act."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[dict[str, str]]:
        """Environment for the script: a private run dir and probe ports nobody answers on; stops what it started."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SATGW_")}
        env |= {"SERVICES_RUN_DIR": str(tmp_path / "run"), "SERVICES_REDIS_PORT": str(free_port())}
        env["SERVICES_MQTT_PORT"] = str(free_port())
        yield env
        subprocess.run(["bash", str(SERVICES), "stop"], env=env, capture_output=True, check=False)

    @staticmethod
    def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        """Run the script with ``env`` and capture its output."""
        return subprocess.run(["bash", str(SERVICES), *args], env=env, capture_output=True, text=True, timeout=60)

    @staticmethod
    def exports(stdout: str) -> dict[str, str]:
        """The `export NAME=value` lines as a dict."""
        return dict(line.removeprefix("export ").split("=", 1) for line in stdout.splitlines())

    def test_starts_reuses_and_stops_private_servers(self, env: dict[str, str]) -> None:
        """With nothing answering it starts both servers, a second run reuses them, stop ends them."""
        if not (shutil.which("redis-server") and shutil.which("mosquitto", path=_sbin_path())):
            pytest.skip("redis-server and mosquitto are not installed")
        first = self.run(env)
        assert first.returncode == 0, first.stderr
        urls = self.exports(first.stdout)
        assert (Path(env["SERVICES_RUN_DIR"]) / "services.env").read_text() == first.stdout
        redis_port = int(urls["SATGW_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        assert redis.Redis(port=redis_port).ping()
        mqtt_port = int(urls["SATGW_MQTT_URL"].rsplit(":", 1)[1])
        pids = [(Path(env["SERVICES_RUN_DIR"]) / f"{n}.pid").read_text().strip() for n in ("redis", "mosquitto")]

        second = self.run(env)
        assert self.exports(second.stdout) == urls
        assert second.stderr.count("reusing") == 2

        assert self.run(env, "stop").returncode == 0
        assert not any(running(pid) for pid in pids)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", mqtt_port), timeout=1).close()

    def test_passes_preset_urls_through(self, env: dict[str, str]) -> None:
        """URLs already in the environment are printed unchanged and nothing is started."""
        env |= {"SATGW_REDIS_URL": "redis://db.example:6380/2", "SATGW_MQTT_URL": "mqtt://broker.example:1884"}
        result = self.run(env)
        assert result.returncode == 0, result.stderr
        assert self.exports(result.stdout) == {
            "SATGW_REDIS_URL": "redis://db.example:6380/2",
            "SATGW_MQTT_URL": "mqtt://broker.example:1884",
        }
        assert not (Path(env["SERVICES_RUN_DIR"]) / "redis.pid").exists()

    def test_says_how_to_install_missing_servers(self, env: dict[str, str], tmp_path: Path) -> None:
        """Without the servers on PATH it fails and names the apt packages for both."""
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))  # a pyenv shim would need pyenv
        for tool in ("bash", "id", "cat", "dirname", "mkdir", "flock", "seq", "sleep", "grep", "tee"):
            if found := shutil.which(tool):
                (bin_dir / tool).symlink_to(found)
        env |= {"PATH": str(bin_dir), "SERVICES_SBIN_DIRS": ""}
        result = self.run(env)
        assert result.returncode != 0
        assert "apt-get install -y redis-server" in result.stderr
        assert "apt-get install -y mosquitto" in result.stderr
        assert result.stdout == ""
