"""docs/deploy.md describes deploy/ and points at its files instead of carrying them.

Its links lead to files that exist, its map of deploy/ lists every entry, its ``kubectl apply -k``
lines name kustomizations, the command line it quotes is the Deployment's, and it holds no YAML
of its own that could drift from the checked manifests (tests/server/test_deploy_files.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import yaml
from markdown_blocks import fenced_blocks

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY_DOC: Final = ROOT / "docs" / "deploy.md"
DEPLOY: Final = ROOT / "deploy"


def text() -> str:
    return DEPLOY_DOC.read_text()


def test_the_page_carries_no_manifests() -> None:
    assert [block.line for block in fenced_blocks(DEPLOY_DOC, "yaml")] == []
    assert "apiVersion:" not in text()


def test_every_link_into_deploy_leads_to_a_file_or_folder() -> None:
    links = re.findall(r"\]\((\.\./deploy[^)#]*)\)", text())
    assert len(links) >= 10, links
    for link in links:
        assert (DEPLOY_DOC.parent / link).resolve().exists(), link


def test_the_map_of_deploy_lists_every_entry() -> None:
    (tree,) = [block.text for block in fenced_blocks(DEPLOY_DOC, "") if "deploy/" in block.text]
    for entry in DEPLOY.iterdir():
        assert re.search(rf"^\s+{re.escape(entry.name)}\b", tree, re.MULTILINE), entry.name


def test_the_apply_commands_name_kustomizations() -> None:
    variants = re.findall(r"kubectl apply -k (deploy/\S+)", text())
    assert sorted(variants) == ["deploy/cluster", "deploy/standalone"]
    for variant in variants:
        assert (ROOT / variant / "kustomization.yaml").is_file(), variant


def test_the_quoted_command_line_is_the_deployments() -> None:
    (deployment,) = yaml.safe_load_all((DEPLOY / "server" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join([*container["command"], *container["args"]])
    quoted = " ".join(text().split())  # the page wraps its lines
    assert f"`{command}`" in quoted, command
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert f"`terminationGracePeriodSeconds: {grace}`" in quoted
    pause = container["lifecycle"]["preStop"]["exec"]["command"][1]
    assert f"a `preStop` pause of {pause} s" in quoted
