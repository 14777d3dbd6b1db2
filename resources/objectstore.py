"""The warehouse on an S3-compatible object store: pyiceberg's file IO, uploads, clear errors.

Credentials and the endpoint come from the environment (``C360_S3_ENDPOINT``, ``AWS_*``) through
the resource's config; pyiceberg's PyArrow file IO is the one S3 client (the model runs reach
the same client through ``LakehouseResource.data_files``). Every failure to reach or use the
store names the endpoint and the bucket, so "the store is down" and "the key is wrong" read as
such instead of as an AWS SDK error code deep in a traceback.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from pyarrow import fs as pafs
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import BUFFER_SIZE, ONE_MEGABYTE, PyArrowFile, PyArrowFileIO

DEFAULT_REGION = "us-east-1"  # an S3-compatible store accepts it; without one pyiceberg asks AWS
ENDPOINT_PROPERTY = "s3.endpoint"
UPLOAD_THREADS = 4


class ObjectStoreError(RuntimeError):
    """The object store cannot be reached or refuses a request; says which store and bucket."""


def is_object_store(location: str) -> bool:
    return location.startswith(("s3://", "s3a://"))


def file_io_properties(
    endpoint: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str | None,
) -> dict[str, str]:
    """pyiceberg catalog properties for a warehouse on the object store (unset values omitted)."""
    properties = {
        "py-io-impl": f"{__name__}.{ObjectStoreFileIO.__name__}",
        ENDPOINT_PROPERTY: endpoint,
        "s3.access-key-id": access_key_id,
        "s3.secret-access-key": secret_access_key,
        "s3.region": region or DEFAULT_REGION,
    }
    return {name: value for name, value in properties.items() if value}


def describe(error: OSError, location: str, endpoint: str | None) -> ObjectStoreError:
    """An error naming the store, the bucket and what went wrong, from pyarrow's S3 error."""
    text = str(error)
    bucket = urlparse(location).netloc if "://" in location else location.split("/")[0]
    store = f"the object store at {endpoint or 'AWS S3 (C360_S3_ENDPOINT is not set)'}"
    if any(
        code in text for code in ("ACCESS_DENIED", "SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY")
    ):
        why = "refuses the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    elif any(code in text for code in ("NETWORK_CONNECTION", "curlCode", "Could not connect")):
        why = "cannot be reached: is it running (`c360 stack status`)?"
    elif "NO_SUCH_BUCKET" in text:
        why = "has no such bucket"
    else:
        why = "failed"
    return ObjectStoreError(f"{store}, bucket {bucket!r}, {why} ({location}: {text})")


@contextlib.contextmanager
def errors_named(location: str, endpoint: str | None) -> Iterator[None]:
    """Re-raise an object-store failure inside as an ObjectStoreError naming store and bucket
    (a missing file stays a FileNotFoundError: callers and pyiceberg rely on it)."""
    try:
        yield
    except (FileNotFoundError, FileExistsError):
        raise
    except OSError as error:
        raise describe(error, location, endpoint) from error


class _NamedErrorsFile(PyArrowFile):
    """A PyArrowFile whose object-store failures name the store and the bucket."""

    def __init__(self, location: str, path: str, fs: pafs.FileSystem, buffer_size: int, endpoint):
        super().__init__(location, path, fs, buffer_size)
        self.endpoint = endpoint

    def _file_info(self) -> pafs.FileInfo:
        with errors_named(self.location, self.endpoint):
            return super()._file_info()

    def open(self, seekable: bool = True):
        with errors_named(self.location, self.endpoint):
            return super().open(seekable)

    def create(self, overwrite: bool = False):
        with errors_named(self.location, self.endpoint):
            return super().create(overwrite)


class ObjectStoreFileIO(PyArrowFileIO):
    """pyiceberg's PyArrow file IO, with errors that name the object store (``py-io-impl``)."""

    def new_input(self, location: str) -> PyArrowFile:
        fs, path = self.filesystem(location)
        size = int(self.properties.get(BUFFER_SIZE, ONE_MEGABYTE))
        return _NamedErrorsFile(location, path, fs, size, self.endpoint)

    new_output = new_input  # one class reads and writes, as in PyArrowFileIO

    def delete(self, location) -> None:
        with errors_named(str(getattr(location, "location", location)), self.endpoint):
            super().delete(location)

    @property
    def endpoint(self) -> str | None:
        return self.properties.get(ENDPOINT_PROPERTY)

    def filesystem(self, location: str) -> tuple[pafs.FileSystem, str]:
        """The pyarrow file system of a location and the path on it (bucket/key on S3)."""
        scheme, netloc, path = self.parse_location(location, self.properties)
        return self.fs_by_scheme(scheme, netloc), path


def store_io(io: FileIO) -> ObjectStoreFileIO:
    """A table's file IO as the object store's (the catalog of an ``s3://`` warehouse has it)."""
    if not isinstance(io, ObjectStoreFileIO):
        raise TypeError(f"the catalog's file IO is {type(io).__name__}, not ObjectStoreFileIO")
    return io


def upload(io: FileIO, folder: Path, target: str) -> list[str]:
    """Copy the files under a local ``folder`` to the location ``target`` (same relative paths,
    in parallel); returns their URIs."""
    io = store_io(io)
    local = sorted(p for p in folder.rglob("*") if p.is_file())
    destination, root = io.filesystem(target)
    with errors_named(target, io.endpoint):
        pafs.copy_files(
            str(folder),
            root,
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=destination,
            use_threads=True,
        )
    return [f"{target.rstrip('/')}/{p.relative_to(folder).as_posix()}" for p in local]
