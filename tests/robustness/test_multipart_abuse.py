"""Multipart abuse: bodies that are not the form they claim to be, through a real server.

Each case is one exact answer (status, envelope `type`, `code`, `param`), and none leaves a
spooled upload, a job directory or a job behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.audio import DATA
from tests.robustness.conftest import MAX_FILE_SIZE, Deployment, assert_error

pytestmark = pytest.mark.slow

AUDIO = "good_short.mp3"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
JOBS = "/transcription"
INVALID = "invalid_request_error"
BOUNDARY = "robust-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, value: bytes, filename: str | None = None, media: str | None = None) -> bytes:
    """One multipart part, as a client would write it by hand."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if media is not None:
        head += f"Content-Type: {media}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def closed(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def audio() -> bytes:
    return (DATA / AUDIO).read_bytes()


def test_multipart_without_a_boundary(model_server: Deployment) -> None:
    with model_server.client() as client:
        body = closed(part("file", audio(), AUDIO))
        response = client.post(
            TRANSCRIPTIONS, content=body, headers={"Content-Type": "multipart/form-data"}
        )
    assert assert_error(response, 400, INVALID, None, None) == "Missing boundary in multipart."
    model_server.assert_nothing_left()


def test_a_body_that_is_not_multipart_at_all(model_server: Deployment) -> None:
    with model_server.client() as client:
        response = client.post(
            TRANSCRIPTIONS,
            content=b"--x\r\nnonsense\r\n\r\n--x--",
            headers={"Content-Type": MULTIPART},
        )
    assert assert_error(response, 400, INVALID, None, None) == "Invalid multipart data."
    model_server.assert_nothing_left()


def test_a_truncated_body_has_no_file(model_server: Deployment) -> None:
    """The file part never ends (no closing boundary): there is no file to transcribe."""
    head = part("file", audio(), AUDIO)[:2000]
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=head, headers={"Content-Type": MULTIPART})
    assert_error(response, 400, INVALID, None, "file")
    model_server.assert_nothing_left()


def test_two_files(model_server: Deployment) -> None:
    body = closed(part("file", audio(), AUDIO), part("file", audio(), "second.mp3"))
    with model_server.client() as client:
        response = client.post(JOBS, content=body, headers={"Content-Type": MULTIPART})
    message = assert_error(response, 400, INVALID, None, None)
    assert message == "Too many files. Maximum number of files is 1."
    model_server.assert_nothing_left()


def test_a_second_file_under_another_name(model_server: Deployment) -> None:
    body = closed(part("file", audio(), AUDIO), part("prompt", b"hello", "prompt.txt"))
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    message = assert_error(response, 400, INVALID, None, None)
    assert message == "Too many files. Maximum number of files is 1."
    model_server.assert_nothing_left()


def test_many_parts(model_server: Deployment) -> None:
    fields = [part(f"field{i}", b"x") for i in range(200)]
    body = closed(part("file", audio(), AUDIO), *fields)
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    message = assert_error(response, 400, INVALID, None, None)
    assert message == "Too many fields. Maximum number of fields is 64."
    model_server.assert_nothing_left()


def test_the_file_field_sent_as_text(model_server: Deployment) -> None:
    body = closed(part("file", b"this is not an upload"))
    with model_server.client() as client:
        response = client.post(JOBS, content=body, headers={"Content-Type": MULTIPART})
    assert_error(response, 400, INVALID, "invalid_value", "file")
    model_server.assert_nothing_left()


def test_the_audio_under_another_field_name(model_server: Deployment) -> None:
    body = closed(part("audio", audio(), AUDIO))
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    assert_error(response, 400, INVALID, None, "file")
    model_server.assert_nothing_left()


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "application/octet-stream"]
)
def test_a_body_of_another_content_type_has_no_file(
    model_server: Deployment, content_type: str | None
) -> None:
    body = closed(part("file", audio(), AUDIO))
    with model_server.client() as client:
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post(TRANSCRIPTIONS, content=body, headers=headers)
    assert_error(response, 400, INVALID, None, "file")
    model_server.assert_nothing_left()


def test_an_empty_file(model_server: Deployment) -> None:
    with model_server.client() as client:
        response = client.post(JOBS, files={"file": (AUDIO, b"")})
    assert_error(response, 400, INVALID, "invalid_audio", "file")
    model_server.assert_nothing_left()


def test_text_posing_as_audio(model_server: Deployment) -> None:
    with model_server.client() as client:
        response = client.post(
            TRANSCRIPTIONS, files={"file": ("speech.mp3", b"ID3 not really" * 500, "audio/mpeg")}
        )
    assert_error(response, 400, INVALID, "invalid_audio", "file")
    model_server.assert_nothing_left()


def test_a_huge_text_field_is_413(model_server: Deployment) -> None:
    body = closed(part("file", audio(), AUDIO), part("prompt", b"a" * (MAX_FILE_SIZE + 200_000)))
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    assert_error(response, 413, INVALID, "file_too_large", "file")
    model_server.assert_nothing_left()


def test_a_body_over_the_limit_by_declared_length_is_413(model_server: Deployment) -> None:
    body = closed(part("file", b"\0" * (MAX_FILE_SIZE + 100_000), "big.wav"))
    with model_server.client() as client:
        response = client.post(JOBS, content=body, headers={"Content-Type": MULTIPART})
    assert_error(response, 413, INVALID, "file_too_large", "file")
    model_server.assert_nothing_left()


def test_a_chunked_body_over_the_limit_is_413_while_it_streams(model_server: Deployment) -> None:
    """No Content-Length: the limit is counted as the body arrives."""

    def chunks() -> Iterator[bytes]:
        yield part("file", b"", "big.wav")[:-2]
        for _ in range(MAX_FILE_SIZE // 65536 + 4):
            yield b"\0" * 65536

    with model_server.client() as client:
        response = client.post(
            TRANSCRIPTIONS, content=chunks(), headers={"Content-Type": MULTIPART}
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, INVALID, "file_too_large", "file")
    model_server.assert_nothing_left()


@pytest.mark.parametrize(
    ("filename", "media"),
    [
        ("../../../escape.mp3", "audio/mpeg"),
        ("n\u202eoc.3pm", "application/x-msdownload"),
        ("x" * 250 + ".mp3", "audio/mpeg"),
    ],
    ids=["path-traversal", "rtl-override-and-wrong-type", "long"],
)
def test_the_upload_name_and_type_are_not_trusted(
    model_server: Deployment, filename: str, media: str
) -> None:
    """The audio is sniffed from its bytes; the name is never a path on the server."""
    body = closed(part("file", audio(), filename, media), part("response_format", b"text"))
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    assert response.status_code == 200, response.text
    assert "weekly team meeting" in response.text.lower()
    for root in (model_server.data, model_server.tmp, model_server.data.parent):
        assert not list(root.rglob("escape.mp3")), root
    model_server.assert_nothing_left()


def test_a_part_header_past_the_parser_limit(model_server: Deployment) -> None:
    """A 5000-character file name makes the part's header too long to parse."""
    body = closed(part("file", audio(), "x" * 5000 + ".mp3"))
    with model_server.client() as client:
        response = client.post(TRANSCRIPTIONS, content=body, headers={"Content-Type": MULTIPART})
    assert assert_error(response, 400, INVALID, None, None) == "Invalid multipart data."
    model_server.assert_nothing_left()
