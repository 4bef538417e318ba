"""File storage behind one interface (local disk by default), with size and type limits."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

from clearline.kit.errors import NotFoundError, ValidationFailedError

ALLOWED_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
# Magic numbers, so a file cannot claim to be something it is not.
SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}


KEY = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{2,4}$")
# Other spellings of a type's extension a file name may already end with.
EXTENSIONS = {**{t: (ext,) for t, ext in ALLOWED_TYPES.items()}, "image/jpeg": (".jpg", ".jpeg")}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def _content_matches(data: bytes, content_type: str) -> bool:
    magic = SIGNATURES.get(content_type)
    if magic:
        return any(data.startswith(m) for m in magic)
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if content_type in ("video/mp4", "video/quicktime"):
        return data[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
    if content_type == "text/plain":
        try:
            return b"\x00" not in data and bool(data.decode("utf-8"))
        except UnicodeDecodeError:
            return False
    return False


@dataclass(frozen=True)
class StoredFile:
    key: str
    name: str
    content_type: str
    size: int


class Storage(Protocol):
    def put(self, data: bytes, *, name: str, content_type: str) -> StoredFile: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO:
        """The stored file for reading in chunks (the caller closes it)."""
        ...


def check_upload(data: bytes, *, content_type: str, max_bytes: int) -> None:
    if content_type not in ALLOWED_TYPES:
        raise ValidationFailedError(
            f"file type {content_type!r} is not accepted",
            details=[{"loc": ["file"], "msg": f"allowed: {', '.join(sorted(ALLOWED_TYPES))}"}],
        )
    if not data:
        raise ValidationFailedError("empty file", details=[{"loc": ["file"], "msg": "empty"}])
    if len(data) > max_bytes:
        raise ValidationFailedError(
            f"file is larger than {max_bytes} bytes",
            details=[{"loc": ["file"], "msg": f"{len(data)} > {max_bytes} bytes"}],
        )
    if not _content_matches(data, content_type):
        raise ValidationFailedError(
            "file content does not match its type", details=[{"loc": ["file"], "msg": f"not a {content_type} file"}]
        )


class LocalStorage:
    """Content-addressed files under a directory: the key is the SHA-256 plus the type's extension."""

    def __init__(self, root: str | Path, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def _path(self, key: str) -> Path:
        """Only a key this storage could have made, and a file that really lies under ``root``: never a path
        from elsewhere (``..``, an absolute path, a symbolic link planted in the tree)."""
        if not KEY.fullmatch(key):
            raise ValidationFailedError("bad key", details=[{"loc": ["key"], "msg": "not a stored file's key"}])
        root = self.root.resolve()
        path = (root / key[:2] / key).resolve()
        if not path.is_relative_to(root):
            raise ValidationFailedError("bad key", details=[{"loc": ["key"], "msg": "outside the storage"}])
        return path

    def put(self, data: bytes, *, name: str, content_type: str) -> StoredFile:
        check_upload(data, content_type=content_type, max_bytes=self.max_bytes)
        key = hashlib.sha256(data).hexdigest() + ALLOWED_TYPES[content_type]
        path = self.root / key[:2] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # A private temporary name: two uploads of the same file at once must not write into one another.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return StoredFile(key, Path(name).name[:200], content_type, len(data))

    def get(self, key: str) -> bytes:
        with self.open(key) as handle:
            return handle.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no stored file {key}") from None


def download_name(name: str, *, content_type: str, fallback: str) -> str:
    """A file name safe to send back: no directory, no control characters, and ending with the extension of
    the type it is served as (a PNG named ``x.html`` is saved as ``x.html.png``)."""
    cleaned = "".join(ch for ch in Path(name.replace("\\", "/")).name if unicodedata.category(ch)[0] != "C")
    cleaned = cleaned.strip(" .")[:150] or fallback
    extensions = EXTENSIONS.get(content_type, ())
    if extensions and not cleaned.lower().endswith(extensions):
        cleaned += extensions[0]
    return cleaned


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name and the UTF-8 one, neither able to break out of the header."""
    ascii_name = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name or 'file'}\"; filename*=UTF-8''{quote(name, safe='')}"


def default_storage() -> Storage:
    from clearline.config import get_settings

    settings = get_settings()
    return LocalStorage(settings.storage_dir, max_bytes=settings.max_upload_bytes)
