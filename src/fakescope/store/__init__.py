"""The case database: every result keyed by SHA-256, in SQLite (WAL) or PostgreSQL.

:mod:`fakescope.store.db` needs SQLAlchemy (``pip install fakescope[server]``), PostgreSQL also
psycopg 3; this package itself imports neither, so the CLI can name its defaults without them.
"""

DEFAULT_DB = "fakescope-cases.sqlite"

#: Error kinds that depend on limits or on the moment, not on the content: a file that failed
#: with one of them is scanned again on the next run instead of being skipped as known.
RETRY_ERROR_KINDS = frozenset(
    {
        "file_too_large",
        "image_too_large",
        "frame_too_large",
        "scoring_error",
        "unreadable",
        "video_unsupported",
        "video_support_missing",
    }
)
