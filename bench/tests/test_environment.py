from importlib import metadata

from bench.environment import describe


def test_versions_name_the_libraries_on_idgates_request_path() -> None:
    """The report names the JOSE library and HTTP parser idgate serves with, as installed."""
    versions = dict(describe().versions)
    assert versions["joserfc"] == metadata.version("joserfc")
    assert versions["httptools"] == metadata.version("httptools")
