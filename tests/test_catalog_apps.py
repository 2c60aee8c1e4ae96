"""The catalog's ``apps`` section: first-party images as the release pipeline pins them, read only there."""
from __future__ import annotations

import pytest

from components import catalog
from components.catalog import AppImageMissing, CatalogError

DIGEST = "sha256:97f61262ff3a75981f9971059002c3842b6b8548cf1feacfa0c69b185044d146"  # the fixture app's build
SBOM_DIGEST = "sha256:e8324a91128fbc78eac30e28a5f9c6f49d92af95998cdc1c8a43d1da2f795305"
COMMIT = "83e7c5c8885b5b4fed8645b7a4e723001ac7c486"


def app(**overrides):
    base = {
        "registry": "registry.soma.example.com", "repository": "somaagenthub/identity", "tag": "0.1.0", "digest": DIGEST,
        "source": f"built by tools/images (make images) from git commit {COMMIT}, SOURCE_DATE_EPOCH=1795960487",
        "signer": {"kind": "platform"},
        "sbom": {"format": "CycloneDX JSON", "predicate_type": "https://cyclonedx.org/bom", "digest": SBOM_DIGEST,
                 "attestation": f"registry.soma.example.com/somaagenthub/identity:{DIGEST.replace(':', '-')}.att"},
    }
    base.update(overrides)
    return base


def document(**apps):
    return {"charts": {}, "images": {}, "apps": apps}


def problems(doc) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        catalog.parse(doc)
    return caught.value.problems


def test_app_image_is_the_pinned_reference_in_every_stack():
    loaded = catalog.parse(document(identity=app()))
    expected = f"registry.soma.example.com/somaagenthub/identity:0.1.0@{DIGEST}"
    assert loaded.app_image("identity").reference == expected
    # app images are pushed to the platform registry by the pipeline: the stack's mirror setting does not move them
    assert loaded.for_registry("registry.soma.example.com/mirror").app_image("identity").reference == expected
    assert loaded.apps["identity"].sbom.attestation.endswith(".att")


def test_a_missing_app_is_an_error_naming_the_app_and_how_to_pin_it():
    loaded = catalog.parse(document(identity=app()))
    with pytest.raises(AppImageMissing) as caught:
        loaded.app_image("gateway")
    assert "app 'gateway' has no image" in str(caught.value) and "pinned: identity" in str(caught.value)
    assert "make images-release" in str(caught.value)


def test_app_images_are_not_found_among_third_party_images():
    loaded = catalog.parse(document(identity=app()))
    with pytest.raises(KeyError):
        loaded.image("identity")


@pytest.mark.parametrize("bad, expected", [
    (app(digest="sha256:abc"), "apps.identity: digest must be sha256:<64 lower-case hex>"),
    (app(tag="latest"), "apps.identity: tag 'latest' floats"),
    (app(signer=None), "apps.identity: 'signer' is missing"),
    (app(source="built on a laptop"), "apps.identity: source must name the git commit"),
    (app(sbom=None), "apps.identity: 'sbom' is missing"),
    (app(sbom={**app()["sbom"], "predicate_type": "https://spdx.dev/Document"}), "predicate_type must be https://cyclonedx.org/bom"),
    (app(sbom={**app()["sbom"], "digest": "md5:1"}), "apps.identity.sbom.digest must be sha256"),
    (app(sbom={**app()["sbom"], "attestation": "registry.soma.example.com/somaagenthub/identity:0.1.0.att"}),
     "must be the attestation of the image digest"),
])
def test_bad_app_entries_name_the_app_and_the_field(bad, expected):
    assert any(expected in p for p in problems(document(identity=bad))), problems(document(identity=bad))


def test_the_apps_section_must_be_a_mapping():
    assert any("'apps' must be a mapping" in p for p in problems({"charts": {}, "images": {}, "apps": ["identity"]}))


def test_the_repository_lock_has_an_apps_section_the_pipeline_writes_into():
    from pathlib import Path
    text = Path(catalog.LOCK_FILE).read_text(encoding="utf-8")
    assert "\napps:" in text  # tools/images/release.write_apps replaces this section
    assert isinstance(catalog.load().apps, dict)
