"""Local file storage: content-addressed keys, size and type limits, magic numbers, and keys that are never paths."""

from __future__ import annotations

import hashlib

import pytest

from clearline.kit.errors import NotFoundError, ValidationFailedError
from clearline.kit.storage import LocalStorage, check_upload, content_disposition, download_name

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"0" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 24


@pytest.fixture
def storage(tmp_path):  # type: ignore[no-untyped-def]
    return LocalStorage(tmp_path / "files", max_bytes=1024)


class TestPut:
    def test_the_key_is_the_content_hash_with_the_types_extension(self, storage):
        stored = storage.put(PNG, name="hero.png", content_type="image/png")
        assert stored.key == hashlib.sha256(PNG).hexdigest() + ".png"
        assert (stored.name, stored.content_type, stored.size) == ("hero.png", "image/png", len(PNG))

    def test_the_file_lands_under_the_keys_first_two_characters(self, storage, tmp_path):
        stored = storage.put(JPEG, name="a.jpg", content_type="image/jpeg")
        assert (tmp_path / "files" / stored.key[:2] / stored.key).read_bytes() == JPEG

    def test_the_same_content_is_stored_once_under_one_key(self, storage, tmp_path):
        first = storage.put(PDF, name="brief.pdf", content_type="application/pdf")
        second = storage.put(PDF, name="copy.pdf", content_type="application/pdf")
        assert first.key == second.key and second.name == "copy.pdf"
        assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [first.key]

    def test_different_content_gets_a_different_key(self, storage):
        assert (
            storage.put(PNG, name="a.png", content_type="image/png").key
            != storage.put(PNG + b"\x01", name="a.png", content_type="image/png").key
        )

    def test_a_directory_in_the_name_is_dropped(self, storage):
        assert storage.put(PNG, name="../../etc/passwd.png", content_type="image/png").name == "passwd.png"

    def test_a_file_over_the_size_limit_is_refused_and_not_written(self, storage, tmp_path):
        with pytest.raises(ValidationFailedError) as caught:
            storage.put(PNG + b"\x00" * 1024, name="big.png", content_type="image/png")
        assert caught.value.details[0]["loc"] == ["file"]
        assert not (tmp_path / "files").exists() or not any((tmp_path / "files").rglob("*.png"))

    def test_a_file_exactly_at_the_limit_is_accepted(self, tmp_path):
        data = PNG + b"\x00" * (64 - len(PNG))
        assert LocalStorage(tmp_path, max_bytes=64).put(data, name="x.png", content_type="image/png").size == 64

    @pytest.mark.parametrize("content_type", ["application/x-msdownload", "text/html", "image/svg+xml", ""])
    def test_a_type_outside_the_allow_list_is_refused(self, storage, content_type):
        with pytest.raises(ValidationFailedError) as caught:
            storage.put(b"MZ\x90\x00", name="x.exe", content_type=content_type)
        assert "not accepted" in caught.value.message

    def test_a_png_that_is_not_a_png_is_refused(self, storage, tmp_path):
        with pytest.raises(ValidationFailedError) as caught:
            storage.put(b"<html><script>alert(1)</script></html>", name="hero.png", content_type="image/png")
        assert caught.value.details == [{"loc": ["file"], "msg": "not a image/png file"}]
        assert not (tmp_path / "files").exists()

    def test_a_jpeg_claiming_to_be_a_png_is_refused(self, storage):
        with pytest.raises(ValidationFailedError):
            storage.put(JPEG, name="hero.png", content_type="image/png")

    def test_an_empty_file_is_refused(self, storage):
        with pytest.raises(ValidationFailedError) as caught:
            storage.put(b"", name="empty.png", content_type="image/png")
        assert caught.value.message == "empty file"


class TestCheckUpload:
    @pytest.mark.parametrize(
        ("data", "content_type"),
        [
            (PNG, "image/png"),
            (JPEG, "image/jpeg"),
            (PDF, "application/pdf"),
            (WEBP, "image/webp"),
            (MP4, "video/mp4"),
            (b"GIF89a" + b"\x00" * 8, "image/gif"),
            ("caption — é".encode(), "text/plain"),
        ],
    )
    def test_real_files_of_each_checked_type_pass(self, data, content_type):
        check_upload(data, content_type=content_type, max_bytes=1024)

    @pytest.mark.parametrize(
        ("data", "content_type"),
        [(PNG, "image/webp"), (PNG, "video/mp4"), (b"\xff\xfe\x00binary", "text/plain"), (PDF, "image/gif")],
    )
    def test_content_that_does_not_match_its_type_fails(self, data, content_type):
        with pytest.raises(ValidationFailedError) as caught:
            check_upload(data, content_type=content_type, max_bytes=1024)
        assert caught.value.message == "file content does not match its type"


class TestGet:
    def test_a_stored_file_is_read_back_by_its_key(self, storage):
        stored = storage.put(PNG, name="hero.png", content_type="image/png")
        assert storage.get(stored.key) == PNG

    @pytest.mark.parametrize(
        "key",
        [
            "../../etc/passwd",
            "..",
            "/etc/passwd",
            "ab/../../secret",
            "..\\..\\secret",
            "",
            "a" * 64 + ".png/../../x",
            "A" * 64 + ".png",
            "a" * 64 + ".png\n",
        ],
    )
    def test_anything_but_a_storage_key_is_refused(self, storage, key):
        with pytest.raises(ValidationFailedError):
            storage.get(key)

    def test_a_sibling_file_outside_the_root_cannot_be_read(self, storage, tmp_path):
        secret = tmp_path / "secret.txt"
        secret.write_text("do not read")
        with pytest.raises(ValidationFailedError):
            storage.get("../secret.txt")

    def test_an_unknown_key_is_not_found(self, storage):
        with pytest.raises(NotFoundError):
            storage.get("0" * 64 + ".png")


class TestOpen:
    def test_a_stored_file_opens_for_reading_in_chunks(self, storage):
        stored = storage.put(PDF, name="deck.pdf", content_type="application/pdf")
        with storage.open(stored.key) as handle:
            assert handle.read(4) + handle.read() == PDF

    @pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "ab/../../secret", "a" * 64 + ".png/../x"])
    def test_a_path_is_never_opened(self, storage, key):
        with pytest.raises(ValidationFailedError):
            storage.open(key)

    def test_a_symbolic_link_planted_under_the_root_is_not_followed_out_of_it(self, storage, tmp_path):
        secret = tmp_path / "secret.txt"
        secret.write_text("do not read")
        key = "a" * 64 + ".txt"
        (tmp_path / "files" / key[:2]).mkdir(parents=True)
        (tmp_path / "files" / key[:2] / key).symlink_to(secret)
        with pytest.raises(ValidationFailedError):
            storage.open(key)
        with pytest.raises(ValidationFailedError):
            storage.get(key)

    def test_an_unknown_key_is_not_found(self, storage):
        with pytest.raises(NotFoundError):
            storage.open("0" * 64 + ".pdf")


class TestDownloadName:
    @pytest.mark.parametrize(
        ("name", "content_type", "expected"),
        [
            ("hero.png", "image/png", "hero.png"),
            ("photo.JPEG", "image/jpeg", "photo.JPEG"),
            ("page.html", "image/png", "page.html.png"),
            ("../../etc/passwd", "text/plain", "passwd.txt"),
            ("..\\..\\boot.ini", "text/plain", "boot.ini.txt"),
            ("bad\r\nname.pdf", "application/pdf", "badname.pdf"),
            ("", "video/mp4", "fallback.mp4"),
            ("...", "application/octet-stream", "fallback"),
        ],
    )
    def test_the_name_is_a_bare_name_with_the_served_types_extension(self, name, content_type, expected):
        assert download_name(name, content_type=content_type, fallback="fallback") == expected

    def test_the_header_carries_an_ascii_name_and_the_utf8_one(self):
        assert content_disposition('crème "brûlée".png', inline=False) == (
            "attachment; filename=\"creme _brulee_.png\"; filename*=UTF-8''cr%C3%A8me%20%22br%C3%BBl%C3%A9e%22.png"
        )
