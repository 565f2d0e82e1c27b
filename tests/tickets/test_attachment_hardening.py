"""Attachments an attacker would try (issue 12, class 6): names that hide a markup extension behind
trailing dots, spaces or Unicode look-alikes; names whose extension disagrees with the bytes; and uploads
by a key that owns nothing."""

from __future__ import annotations

import pytest

from tests.api import Api, WalletSigner
from tests.conftest import Apis, World, _hmac_api
from tests.factories import DeploymentFactory, ProviderFactory, make_wallet
from tickets.models import Attachment

pytestmark = pytest.mark.django_db

TEXT = b"plain words, nothing else\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@pytest.mark.parametrize(
    "name",
    [
        "evil.html.",
        "evil.html ",
        "evil.html. . .",
        "evil.htm\u200b.",  # a zero-width space before a trailing dot
        "evil.ｈｔｍｌ",  # fullwidth letters fold to .html
        "evil.HTML",
        "evil.svg\u202e",  # a bidi override after the extension
        "evil.xhtml\t",
    ],
)
def test_names_hiding_a_markup_extension_are_refused(apis: Apis, name: str) -> None:
    response = apis.alice.upload(name, TEXT, content_type="text/plain")
    assert response.status_code == 415, (name, response.content)
    assert response.json()["code"] == "unsupported_media_type"
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "stored"),
    [
        ("run.bat", TEXT, "run.bat.txt"),
        ("install.sh", TEXT, "install.sh.txt"),
        ("notes", TEXT, "notes.txt"),
        ("pod.log", TEXT, "pod.log"),
        ("shot.txt", PNG, "shot.txt.png"),
        ("shot.PNG", PNG, "shot.PNG"),
        ("trace.log.", TEXT, "trace.log"),
    ],
)
def test_the_stored_name_agrees_with_the_sniffed_type(
    apis: Apis, name: str, content: bytes, stored: str
) -> None:
    response = apis.alice.upload(name, content)
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == stored
    download = apis.alice.get(response.json()["url"])
    assert stored in download["Content-Disposition"]


def test_a_key_that_owns_nothing_may_not_upload(world: World) -> None:
    fresh_key, _ = make_wallet()
    response = Api(WalletSigner(fresh_key)).upload("pod.log", TEXT)
    assert response.status_code == 403, response.content
    assert response.json()["code"] in ("forbidden", "permission_denied")
    assert not Attachment.objects.exists()


def test_a_provider_without_deployments_may_not_upload(world: World) -> None:
    lonely = ProviderFactory()
    response = _hmac_api(lonely).upload("pod.log", TEXT)
    assert response.status_code == 403, response.content


def test_every_party_that_can_write_a_ticket_may_upload(world: World, apis: Apis) -> None:
    # Alice owns deployments (she may open a ticket); providers lease deployments; support sees all.
    for api in (apis.alice, apis.provider_a, apis.provider_a_member, apis.agent):
        assert api.upload("pod.log", TEXT).status_code == 201
    # A wallet may upload while it owns a deployment, and not once it owns nothing.
    owner_key, owner = make_wallet()
    deployment = DeploymentFactory(owner_address=owner, provider=world.provider_a)
    owner_api = Api(WalletSigner(owner_key))
    assert owner_api.upload("pod.log", TEXT).status_code == 201
    deployment.delete()
    assert owner_api.upload("pod.log", TEXT).status_code == 403


@pytest.mark.parametrize("name", [".", "..", "logs/", "a/b/", "a\\.."])
def test_a_file_named_only_by_a_path_is_still_a_file(apis: Apis, name: str) -> None:
    """Django drops such a part without a word; the client did send a file, and is answered about it
    (issue 24, class 10): it is kept under the name `sniffing.safe_filename` gives what it cannot use."""
    response = apis.alice.upload(name, TEXT)
    assert response.status_code == 201, (name, response.content)
    assert response.json()["filename"] == "upload.txt"


def test_no_file_part_at_all_is_still_a_400_naming_the_field(apis: Apis) -> None:
    body = b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--x--\r\n'
    response = apis.alice.request(
        "POST", "/api/v1/attachments", raw_body=body, content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 400, response.content
    assert "file" in response.json()["fields"]
