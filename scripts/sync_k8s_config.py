"""Write the Kubernetes ConfigMaps in deploy/k8s/ from the config files in deploy/, so the two never drift.

Usage: ``python3 scripts/sync_k8s_config.py`` rewrites them; ``--check`` only reports a difference (exit 1).
Standard library only, so it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@dataclass(frozen=True)
class ConfigMap:
    """One ConfigMap manifest built from files in deploy/."""

    manifest: str
    name: str
    component: str
    comment: str
    files: tuple[str, ...]

    def render(self) -> str:
        """Return the manifest text, each file as a literal block scalar."""
        labels = f"    app.kubernetes.io/name: {self.component}\n"
        if self.component != "satgw":
            labels += "    app.kubernetes.io/part-of: satgw\n"
        head = f"# {self.comment}\n# Written by scripts/sync_k8s_config.py; edit the files in deploy/ instead.\n"
        meta = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {self.name}\n  labels:\n{labels}data:\n"
        return head + meta + "".join(_block(name) for name in self.files)


def _block(name: str) -> str:
    lines = (DEPLOY / name).read_text().splitlines()
    body = "".join(f"    {line}\n" if line.strip() else "\n" for line in lines)
    return f"  {name}: |\n{body}"


CONFIG_MAPS = (
    ConfigMap(
        manifest="satgw-config.yaml",
        name="satgw-config",
        component="satgw",
        comment="The TOML configuration satgw reads (SATGW_CONFIG): deploy/satgw.toml.",
        files=("satgw.toml",),
    ),
    ConfigMap(
        manifest="redis-config.yaml",
        name="redis-config",
        component="redis",
        comment="deploy/redis.conf for the Redis StatefulSet in redis.yaml.",
        files=("redis.conf",),
    ),
    ConfigMap(
        manifest="mosquitto-config.yaml",
        name="mosquitto-config",
        component="mosquitto",
        comment="deploy/mosquitto.conf and deploy/mosquitto.acl for the Mosquitto StatefulSet in mosquitto.yaml.",
        files=("mosquitto.conf", "mosquitto.acl"),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) every ConfigMap; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale ConfigMaps instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for config_map in CONFIG_MAPS:
        path = DEPLOY / "k8s" / config_map.manifest
        text = config_map.render()
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    for path in stale:
        verb = "is stale (run: python3 scripts/sync_k8s_config.py)" if args.check else "rewritten"
        print(f"{path.relative_to(DEPLOY.parent)} {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
