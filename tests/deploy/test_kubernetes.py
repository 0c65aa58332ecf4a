"""deploy/k8s: every overlay renders with kustomize, validates against the Kubernetes schemas,
and keeps the policies: non-root, read-only, no privilege escalation, limits, probes, Secrets,
and production's HPA, PDB and NetworkPolicy."""

from __future__ import annotations

import copy
import ipaddress
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.tools import KUBERNETES_VERSION, OVERLAYS, of_kind, one, render, settings_read

POD_OWNERS = ("Deployment",)
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def exchange(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == "exchange"]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_kubernetes(overlay: str) -> None:
    objects = render(overlay)
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= {o["kind"] for o in objects}
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_broken_deployment() -> None:
    broken = copy.deepcopy(one(render("production"), "Deployment"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    misspelt = copy.deepcopy(one(render("production"), "Deployment"))
    exchange(misspelt)["livenesProbe"] = exchange(misspelt).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_unprivileged_on_a_read_only_root(overlay: str) -> None:
    deployment = one(render(overlay), "Deployment")
    pod = pod_spec(deployment)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["runAsGroup"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec(deployment)["automountServiceAccountToken"] is False
    for container in containers(deployment):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "privileged" not in context or context["privileged"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for container in containers(one(render(overlay), "Deployment")):
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert set(resources[bound]) == {"cpu", "memory"}, (container["name"], bound)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_is_health_and_readiness_is_ready(overlay: str) -> None:
    container = exchange(one(render(overlay), "Deployment"))
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names == {"http": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["args"] == [
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--data-dir",
        "/var/lib/aex",
    ]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/aex", "/tmp"} <= mounts  # the only writable places on a read-only root


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_secret_objects_and_the_ca_key_from_a_secret_volume(
    overlay: str,
) -> None:
    objects = render(overlay)
    assert of_kind(objects, "Secret") == []  # never rendered from this repository
    deployment = one(objects, "Deployment")
    env = {e["name"]: e for e in exchange(deployment)["env"]}
    for name, key in (("AEX_OPERATOR_KEY", "operator-key"), ("AEX_JWT_SECRET", "jwt-secret")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "aex-secrets", "key": key}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["ca-keys"]["secret"]["secretName"] == "aex-ca-keys"
    assert volumes["ca-keys"]["secret"]["defaultMode"] == 0o400
    (init,) = pod_spec(deployment)["initContainers"]
    assert {"name": "ca-keys", "mountPath": "/etc/aex/ca-keys", "readOnly": True} in init[
        "volumeMounts"
    ]
    script = init["command"][-1]
    # aex/ca/keystore.py refuses a key readable by group or others, and the Secret is 0440
    assert "install -d -m 0700 /var/lib/aex/ca /var/lib/aex/ca/keys" in script
    assert "*.key.pem) mode=0600" in script


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_the_ones_the_server_reads(overlay: str) -> None:
    objects = render(overlay)
    (settings,) = [
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("aex-settings")
    ]
    deployment = one(objects, "Deployment")
    assert exchange(deployment)["envFrom"] == [
        {"configMapRef": {"name": settings["metadata"]["name"]}}
    ]
    names = set(settings["data"]) | {e["name"] for e in exchange(deployment)["env"]}
    aex_names = {n for n in names if n.startswith("AEX_")}
    assert aex_names
    assert aex_names <= settings_read(), aex_names - settings_read()
    # the others belong to libraries the server runs on: libpq and uvicorn
    assert names - aex_names <= {"PGPASSWORD", "FORWARDED_ALLOW_IPS"}


def test_the_setting_names_are_checked_against_the_code() -> None:
    read = settings_read()
    assert {"AEX_DATABASE_URL", "AEX_REDIS_URL", "AEX_NATS_URL", "AEX_OPERATOR_KEY"} <= read
    assert "AEX_DATABASE_URI" not in read


def test_images_are_pinned_per_environment() -> None:
    tags = {}
    for overlay in OVERLAYS:
        images = {c["image"] for c in containers(one(render(overlay), "Deployment"))}
        assert len(images) == 1, images  # the init container runs the same image
        (image,) = images
        name, _, tag = image.rpartition(":")
        assert name == "aex", image
        assert tag not in {"", "latest"}, image
        tags[overlay] = tag
    assert tags == {"dev": "dev", "staging": "staging", "production": "0.1.0"}


def test_replicas_per_environment() -> None:
    assert one(render("dev"), "Deployment")["spec"]["replicas"] == 1
    assert one(render("dev"), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert one(render("staging"), "Deployment")["spec"]["replicas"] == 2
    assert one(render("production"), "Deployment")["spec"]["replicas"] == 2
    for overlay in ("dev", "staging"):
        kinds = {o["kind"] for o in render(overlay)}
        assert not kinds & {"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}


def test_dev_runs_on_sqlite_and_the_others_on_the_scale_out_services() -> None:
    def settings(overlay: str) -> dict[str, str]:
        data: dict[str, str] = one(render(overlay), "ConfigMap")["data"]
        return data

    assert not {"AEX_DATABASE_URL", "AEX_REDIS_URL", "AEX_NATS_URL"} & set(settings("dev"))
    dev_env = {e["name"] for e in exchange(one(render("dev"), "Deployment"))["env"]}
    assert "PGPASSWORD" not in dev_env
    for overlay in ("staging", "production"):
        found = settings(overlay)
        assert found["AEX_DATABASE_URL"].startswith("postgresql://")
        user = found["AEX_DATABASE_URL"].removeprefix("postgresql://").partition("@")[0]
        assert user == "aex", "a user and no password in a ConfigMap"
        assert found["AEX_REDIS_URL"].startswith("redis://")
        assert found["AEX_NATS_URL"].startswith("nats://")
    # ten pods of production stay under PostgreSQL's default 100 connections
    assert int(settings("production")["AEX_DATABASE_POOL_MAX"]) * 10 <= 100


def test_production_scales_2_to_10_on_cpu() -> None:
    objects = render("production")
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": one(objects, "Deployment")["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # utilisation is relative to the request: the container must have one
    assert exchange(one(objects, "Deployment"))["resources"]["requests"]["cpu"]


def test_production_keeps_one_pod_through_disruptions() -> None:
    objects = render("production")
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def _rule_ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_production_network_policy_allows_only_the_needed_paths() -> None:
    objects = render("production")
    policy = one(objects, "NetworkPolicy")["spec"]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    # in: only 8080, only from the ingress controller's and Prometheus' namespaces
    sources = set()
    for rule in policy["ingress"]:
        assert _rule_ports(rule) == {("TCP", 8080)}
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}
            sources.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    assert sources == {"ingress-nginx", "monitoring"}
    # out: DNS to kube-dns, the three backends by port, HTTPS to public addresses only
    egress = policy["egress"]
    ports = [_rule_ports(rule) for rule in egress]
    assert ports == [
        {("UDP", 53), ("TCP", 53)},
        {("TCP", 5432)},
        {("TCP", 6379)},
        {("TCP", 4222)},
        {("TCP", 443)},
    ]
    (dns_peer,) = egress[0]["to"]
    assert dns_peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert all("to" not in rule for rule in egress[1:4])
    webhooks = [peer["ipBlock"] for peer in egress[4]["to"]]
    assert {block["cidr"] for block in webhooks} == {"0.0.0.0/0", "::/0"}
    excepted = [ipaddress.ip_network(n) for block in webhooks for n in block["except"]]
    for private in (*PRIVATE_RANGES, "127.0.0.0/8", "100.64.0.0/10", "fc00::/7", "fe80::/10"):
        network = ipaddress.ip_network(private)
        assert any(network.version == e.version and network.subnet_of(e) for e in excepted), private
    # and nothing else: every egress rule is one of the above
    assert len(egress) == 5


def test_production_trusts_forwarded_headers_only_behind_its_network_policy() -> None:
    # Trusting the pod network's X-Forwarded-For is safe only where nothing but the ingress
    # reaches the pod; uvicorn's own FORWARDED_ALLOW_IPS is overridden by `aex serve` anyway.
    for overlay in OVERLAYS:
        settings = one(render(overlay), "ConfigMap")["data"]
        has_policy = bool(of_kind(render(overlay), "NetworkPolicy"))
        assert ("AEX_TRUSTED_PROXIES" in settings) == has_policy, overlay
        assert "FORWARDED_ALLOW_IPS" not in settings, overlay
        if has_policy:
            assert "*" not in settings["AEX_TRUSTED_PROXIES"]


def test_the_library_variables_are_read_by_those_libraries() -> None:
    import inspect

    import uvicorn.config

    assert 'os.environ.get("FORWARDED_ALLOW_IPS"' in inspect.getsource(uvicorn.config)
    import psycopg

    # psycopg hands the URL to libpq, which takes the password from PGPASSWORD when the URL
    # names none: the variable is in the libpq the server loads
    assert psycopg.pq.__impl__ in {"binary", "c"}
    assert any(b"PGPASSWORD" in lib.read_bytes() for lib in _libpq_files())


def _libpq_files() -> list[Path]:
    import psycopg_binary

    root = Path(psycopg_binary.__file__).resolve().parent.parent
    return [p for p in root.glob("psycopg_binary.libs/libpq*.so*") if p.is_file()]


def _secret_volume(source: Path, mount: Path) -> None:
    """The files of `source` as kubelet mounts a Secret: in a timestamped directory behind a
    `..data` symlink, each name a symlink into it, files 0440 (defaultMode 0400 | fsGroup)."""
    payload = mount / "..2026_01_01_00_00_00.000000000"
    payload.mkdir(parents=True)
    for file in source.iterdir():
        target = payload / file.name
        shutil.copyfile(file, target)
        target.chmod(0o440)
    (mount / "..data").symlink_to(payload.name)
    for file in source.iterdir():
        (mount / file.name).symlink_to(f"..data/{file.name}")


def test_the_init_container_turns_the_ca_secret_into_a_key_store_the_server_accepts(
    tmp_path: Path,
) -> None:
    from aex.ca.keystore import FileKeyProvider, KeyStoreError

    bootstrap = tmp_path / "bootstrap"
    made = FileKeyProvider(bootstrap)  # what `aex cert ca --data-dir ./ca-bootstrap` leaves
    mount, data = tmp_path / "etc-aex-ca-keys", tmp_path / "var-lib-aex"
    _secret_volume(bootstrap / "ca" / "keys", mount)
    data.mkdir()
    # the Secret as mounted is refused by the key store: group-readable
    (tmp_path / "direct" / "ca").mkdir(parents=True)
    (tmp_path / "direct" / "ca" / "keys").symlink_to(mount)
    with pytest.raises(KeyStoreError, match="accessible by group or others"):
        FileKeyProvider(tmp_path / "direct")
    (init,) = pod_spec(one(render("production"), "Deployment"))["initContainers"]
    assert init["command"][:2] == ["sh", "-ec"]
    script = init["command"][2].replace("/etc/aex/ca-keys", str(mount))
    script = script.replace("/var/lib/aex", str(data))
    done = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    keys = data / "ca" / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert sorted(p.name for p in keys.iterdir()) == sorted(
        p.name for p in (bootstrap / "ca" / "keys").iterdir()
    )
    loaded = FileKeyProvider(data)  # what the exchange container then opens
    assert loaded.active_kid() == made.active_kid()
    assert loaded.ca_document() == made.ca_document()
    # a Secret without keys.json fails the pod instead of letting it make a CA of its own
    empty_mount, empty_data = tmp_path / "empty-mount", tmp_path / "empty-data"
    empty_mount.mkdir()
    empty_data.mkdir()
    script = init["command"][2].replace("/etc/aex/ca-keys", str(empty_mount))
    script = script.replace("/var/lib/aex", str(empty_data))
    done = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, check=False)
    assert done.returncode != 0
