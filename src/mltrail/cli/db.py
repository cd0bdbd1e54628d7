"""``mltrail db upgrade URL`` and ``mltrail db current URL``: the schema of a SQL tracking database."""

from __future__ import annotations

import click

from mltrail.errors import MltrailException


@click.group()
def db() -> None:
    """Create or upgrade the schema of a SQL tracking database (sqlite://, postgresql://, mysql://)."""


@db.command()
@click.argument("url")
def upgrade(url: str) -> None:
    """Create the schema of the database at URL, or upgrade it to the newest revision.

    Take a backup of the database first: migrations of large databases can take a while and change tables.
    """
    from mltrail.store.sql.engine import create_engine, normalize_url
    from mltrail.store.sql.migrate import HEAD_REVISION
    from mltrail.store.sql.migrate import upgrade as upgrade_schema

    try:
        engine = create_engine(normalize_url(url))
        try:
            before = upgrade_schema(engine)
        finally:
            engine.dispose()
    except MltrailException as error:
        raise click.ClickException(error.message) from None
    if before == HEAD_REVISION:
        click.echo(f"Database schema is already at the newest revision {HEAD_REVISION}.")
    else:
        click.echo(f"Database schema upgraded from {before or 'an empty database'} to revision {HEAD_REVISION}.")


@db.command()
@click.argument("url")
def current(url: str) -> None:
    """Print the schema revision of the database at URL."""
    from mltrail.store.sql.engine import create_engine, normalize_url
    from mltrail.store.sql.migrate import HEAD_REVISION, current_revision

    try:
        engine = create_engine(normalize_url(url))
        try:
            with engine.connect() as connection:
                revision = current_revision(connection)
        finally:
            engine.dispose()
    except MltrailException as error:
        raise click.ClickException(error.message) from None
    if revision is None:
        click.echo("none (the database has no mltrail schema; 'mltrail db upgrade URL' creates it)")
    elif revision == HEAD_REVISION:
        click.echo(f"{revision} (newest)")
    else:
        click.echo(f"{revision} (newest is {HEAD_REVISION}: run 'mltrail db upgrade URL')")
