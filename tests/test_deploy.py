"""Deployment manifests, checked for structure without a cluster or a Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(data, dict)
    return data


def accepts(args: list[str]) -> None:
    """The container's arguments are a command line the CLI really parses."""
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)


def test_cronjob_never_overlaps_and_takes_secrets_and_mappings_from_the_cluster() -> None:
    job = load("kubernetes/cronjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 30
    [container] = pod["containers"]
    accepts(container["args"])
    assert container["args"][0] == "sync"
    assert {"secretRef": {"name": "lifecycle-connector"}} in container["envFrom"]
    assert not any("TOKEN" in e["name"] and "value" in e for e in container.get("env", []))
    [mount] = container["volumeMounts"]
    assert mount == {"name": "mappings", "mountPath": "/mappings", "readOnly": True}
    [volume] = pod["volumes"]
    assert volume["configMap"]["name"] == "lifecycle-connector-mappings"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_secret_example_holds_placeholders_only() -> None:
    secret = load("kubernetes/secret.example.yaml")
    values = secret["stringData"]
    assert set(values) == {"CONNECTOR_HUBSPOT_TOKEN", "CONNECTOR_STATE_URL"}
    assert "replace" in values["CONNECTOR_HUBSPOT_TOKEN"]
    assert values["CONNECTOR_STATE_URL"].startswith("postgresql")


def test_compose_runs_the_scheduler_against_postgres() -> None:
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "connector"}
    connector = services["connector"]
    accepts(connector["command"])
    assert connector["command"][0] == "run"
    assert connector["environment"]["CONNECTOR_STATE_URL"].startswith("postgresql")
    assert connector["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(v.endswith(":/mappings:ro") for v in connector["volumes"])
    assert "healthcheck" in services["postgres"]
    assert connector["env_file"] == ["connector.env"]
    assert (DEPLOY / "connector.env.example").exists()


@pytest.mark.parametrize(
    "name", ["kubernetes/cronjob.yaml", "kubernetes/backfill-job.yaml", "docker-compose.yml"]
)
def test_image_state_and_mapping_paths_match_the_dockerfile(name: str) -> None:
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text()
    assert "CONNECTOR_MAPPINGS_DIR=/mappings" in dockerfile
    assert "/mappings" in (DEPLOY / name).read_text()


def test_backfill_job_gives_each_index_its_shard_of_the_same_backfill() -> None:
    job = load("kubernetes/backfill-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    shards = spec["completions"]
    assert spec["parallelism"] == shards
    assert shards > 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 30
    [container] = pod["containers"]
    args = container["args"]
    assert args[0] == "backfill"
    shard = args[args.index("--shard") + 1]
    assert shard == f"$(JOB_COMPLETION_INDEX)/{shards}"  # Kubernetes expands $(VAR) from the pod's env
    for index in range(shards):  # every pod's command line parses, as the expanded index gives it
        accepts([a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in args])
    from connector.lifecycle.sharding import Shard

    assert {
        Shard.parse(shard.replace("$(JOB_COMPLETION_INDEX)", str(i))).index for i in range(shards)
    } == set(range(shards))
    assert {"secretRef": {"name": "lifecycle-connector"}} in container["envFrom"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert not any("TOKEN" in name or "STATE_URL" in name for name in env)  # from the Secret only
    assert env["CONNECTOR_MAPPINGS_DIR"] == "/mappings"
    secret = load("kubernetes/secret.example.yaml")["stringData"]
    assert secret["CONNECTOR_STATE_URL"].startswith("postgresql")  # shards share one database
    [mount] = container["volumeMounts"]
    assert mount == {"name": "mappings", "mountPath": "/mappings", "readOnly": True}
    [volume] = pod["volumes"]
    assert volume["configMap"]["name"] == "lifecycle-connector-mappings"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
