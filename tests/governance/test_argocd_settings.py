"""governance.argocd settings: what a stack file may say, and the clear errors for what it may not."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from components import settings
from components.config_schema import SettingsError
from components.governance.argocd.openpgp import OpenPgpError, fingerprint
from tests.governance import standalone
from tests.helpers import config_with, stack_document


STANDALONE = "standalone"
"""A single-cluster estate (tests/governance/standalone.py): dev's settings with an Argo CD of its own."""


def argocd(stack: str) -> dict:
    if stack == STANDALONE:
        return standalone.governance()
    return json.loads(json.dumps(stack_document(stack)["somaagenthub:governance"]))


def config(stack: str, **changes) -> dict[str, str]:
    return standalone.config(**changes) if stack == STANDALONE else config_with(stack, **changes)


def parsed(stack: str, config_: dict[str, str]):
    return settings.parse(config_, standalone.STACK if stack == STANDALONE else stack)


def problems(stack: str, change) -> list[str]:
    governance = argocd(stack)
    change(governance["argocd"])
    with pytest.raises(SettingsError) as err:
        parsed(stack, config(stack, governance=governance))
    return err.value.problems


def egress_problems(stack: str, change) -> list[str]:
    """The problems of the stack with its ``mesh.istio.egress`` changed by ``change``."""
    mesh = standalone.mesh() if stack == STANDALONE else json.loads(json.dumps(stack_document(stack)["somaagenthub:mesh"]))
    change(mesh["istio"]["egress"])
    with pytest.raises(SettingsError) as err:
        parsed(stack, config(stack, mesh=mesh))
    return err.value.problems


def test_prod_is_the_hub_and_logs_in_through_sso_only_and_a_single_cluster_estate_still_parses():
    prod = settings.parse(config_with("prod"), "prod").governance.argocd
    assert prod.admin_enabled is False and prod.sso is not None
    assert [e.name for e in prod.environments] == ["dev", "staging", "prod"]
    single = parsed(STANDALONE, standalone.config()).governance.argocd
    assert single.admin_enabled is True and single.sso is None
    assert [(e.name, e.server) for e in single.environments] == [("dev", settings.IN_CLUSTER)]


def test_a_mandatory_stack_refuses_the_local_admin():
    found = problems("prod", lambda a: a.update(adminEnabled=True))
    assert any(p.startswith("somaagenthub:governance.argocd.adminEnabled:") for p in found)


def test_without_admin_sso_is_required():
    found = problems(STANDALONE, lambda a: a.update(adminEnabled=False))
    assert any(p.startswith("somaagenthub:governance.argocd.sso:") for p in found)


def test_a_fingerprint_that_is_not_the_keys_is_refused():
    def other(a):
        a["signingKeys"][0]["fingerprint"] = "0" * 40
    found = problems("prod", other)
    assert any("signingKeys[0].fingerprint" in p and "is not this publicKey's fingerprint" in p for p in found)


def test_a_malformed_fingerprint_is_refused_by_its_key():
    found = problems("prod", lambda a: a["signingKeys"][0].update(fingerprint="18355416 D2819AAD"))
    assert any("signingKeys[0].fingerprint" in p for p in found)


def test_a_private_key_block_is_never_accepted():
    found = problems(STANDALONE, lambda a: a["signingKeys"][0].update(
        publicKey="-----BEGIN PGP PRIVATE KEY BLOCK-----\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n"))
    assert any("signingKeys[0].publicKey" in p for p in found)


def test_waves_go_dev_staging_prod_only():
    def reorder(a):
        a["environments"] = [a["environments"][2], a["environments"][0], a["environments"][1]]
    found = problems("prod", reorder)
    assert any("environments: waves go dev -> staging -> prod" in p for p in found)


def test_argo_cd_deploys_only_into_agents_namespaces_here():
    found = problems("prod", lambda a: a["environments"][2].update(namespace="soma-data"))
    assert any("environments[2].namespace" in p and "agents" in p for p in found)


def test_another_cluster_needs_its_credentials_path_and_namespace():
    found = problems("prod", lambda a: a["environments"][0].pop("credentialsPath"))
    assert any("environments[0].credentialsPath" in p for p in found)
    found = problems("prod", lambda a: a["environments"][0].pop("namespace"))
    assert any(p.startswith("somaagenthub:governance.argocd.environments[0].namespace: https://api.dev.soma.example.com:6443 "
                            "is another cluster") for p in found)


def test_the_in_cluster_wave_follows_the_stacks_agents_namespace():
    """A stack that renames its namespaces needs nothing changed in governance.argocd: the in-cluster wave deploys
    into the stack's own agents namespace, and the Vault paths are relative to the gitops namespace's folder."""
    agents = settings.parse(config_with("prod"), "prod").governance.argocd.placed("x-agents")
    assert [(e.name, e.namespace) for e in agents.environments] == [("dev", "soma-agents"), ("staging", "soma-agents"), ("prod", "x-agents")]


def test_another_clusters_api_must_be_declared_mesh_egress():
    found = egress_problems("prod", lambda e: e.pop("argocd-cluster-staging"))
    wanted = ("somaagenthub:governance.argocd.environments[1].server: api.staging.soma.example.com:6443 is outside the cluster, "
              "so it must be a destination declared in somaagenthub:mesh.istio.egress for governance.gitops")
    assert {p.split(" whose pods include Argo CD's ")[1].split(" ")[0] for p in found if p.startswith(wanted)} == {"controller", "server"}


def test_the_repository_host_must_be_declared_mesh_egress():
    found = egress_problems(STANDALONE, lambda e: e.pop("argocd-git"))
    assert ("somaagenthub:governance.argocd.repository: git.soma.example.com:443 is outside the cluster, so it must be a "
            "destination declared in somaagenthub:mesh.istio.egress for governance.gitops whose pods include Argo CD's "
            "repoServer (app.kubernetes.io/name: argocd-repo-server); none is") in found


def test_the_issuer_must_be_declared_for_the_api_server():
    found = egress_problems("prod", lambda e: e["argocd-oidc-issuer"].update(pods={"app.kubernetes.io/name": "argocd-repo-server"}))
    assert any(p.startswith("somaagenthub:governance.argocd.sso.issuer: login.soma.example.com:443") and "Argo CD's server" in p
               for p in found)


@pytest.mark.parametrize("change", [
    lambda e: e["argocd-git"].update(namespaces=["governance.governance"]),
    lambda e: e["argocd-git"].update(ports=[8443]),
    lambda e: e["argocd-git"].update(hosts=["git.elsewhere.example.com"]),
], ids=["other-namespace", "other-port", "other-host"])
def test_an_egress_entry_that_misses_the_repository_does_not_count(change):
    found = egress_problems(STANDALONE, change)
    assert any(p.startswith("somaagenthub:governance.argocd.repository: git.soma.example.com:443") for p in found)


def test_argo_cd_keeps_no_addresses_of_its_own():
    """One declaration: the old per-part address keys are unknown settings now."""
    for change in (lambda a: a.update(repositoryCidrs=["192.0.2.128/28"]),
                   lambda a: a["environments"][0].update(cidr="198.51.100.16/28")):
        found = problems(STANDALONE, change)
        assert any("repositoryCidrs" in p or "environments[0].cidr" in p for p in found), found


def test_a_dependency_cycle_or_unknown_dependency_is_refused():
    def cycle(a):
        a["applications"]["identity"]["dependsOn"] = ["orchestrator"]
        a["applications"]["gateway"]["dependsOn"] = ["identity", "billing"]
    found = problems(STANDALONE, cycle)
    assert any("dependsOn has a cycle" in p for p in found)
    assert any("applications.gateway.dependsOn: unknown application(s) ['billing']" in p for p in found)


def test_ha_needs_two_of_each_stateless_part():
    found = problems("prod", lambda a: a["server"].update(replicas=1))
    assert any(p.startswith("somaagenthub:governance.argocd.server.replicas:") for p in found)


def test_the_client_secret_never_sits_in_a_stack_file():
    """Only the Vault path is settable: a clientSecret key is an unknown setting."""
    found = problems("prod", lambda a: a["sso"].update(clientSecret="hunter2"))
    assert any("sso.clientSecret" in p or "clientSecret" in p for p in found)


def test_too_broad_an_address_range_is_refused():
    found = egress_problems("prod", lambda e: e["argocd-git"].update(cidrs=["0.0.0.0/0"]))
    assert any(p.startswith("somaagenthub:mesh.istio.egress.argocd-git.cidrs[0]:") for p in found)


def test_an_empty_pods_in_list_is_refused():
    found = egress_problems("prod", lambda e: e["argocd-cluster-dev"].update(podsIn={"app.kubernetes.io/name": []}))
    assert any(p.startswith("somaagenthub:mesh.istio.egress.argocd-cluster-dev.podsIn.app.kubernetes.io/name:") for p in found)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not on PATH: the fingerprint is checked against GnuPG itself")
def test_fingerprints_agree_with_gnupg(tmp_path):
    """Our RFC 4880 computation against GnuPG's, on a key made here; key ID = the last 16 hex digits."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run(["gpg", "--batch", "--quiet", *args], env=env, check=True, capture_output=True, text=True).stdout
    run("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "Test <t@example.com>", "ed25519", "sign", "never")
    expected = next(line.split(":")[9] for line in run("--with-colons", "--fingerprint").splitlines() if line.startswith("fpr"))
    long_id = next(line.split(":")[4] for line in run("--with-colons", "--list-keys").splitlines() if line.startswith("pub"))
    armored = run("--armor", "--export")
    assert fingerprint(armored) == expected and expected[-16:] == long_id
    with pytest.raises(OpenPgpError):
        fingerprint(run("--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys")
                    .replace("PRIVATE", "PUBLIC"))


def test_vault_paths_stay_in_the_namespaces_own_folder_and_out_of_argo_cds_generated_one():
    found = problems("prod", lambda a: a["sso"].update(clientSecretPath="sso/../../soma-data/oidc"))
    assert any("sso.clientSecretPath: a path inside soma-gitops/" in p for p in found)
    # soma-gitops/argocd/* holds the generated Redis password: its consumer's policy reads that folder
    found = problems("prod", lambda a: a["environments"][0].update(credentialsPath="argocd/clusters/dev"))
    assert any(p.startswith("somaagenthub:governance.argocd.environments[0].credentialsPath: not under argocd/") for p in found)
