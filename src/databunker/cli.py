"""The ``databunker`` command: init, serve, demo, import, export, keys, audit verify,
version.

Exit status is 0 on success and 1 on any refusal, with a one-line message on stderr that
names what to fix, never a traceback: an operator's mistake (a missing folder, a read-only
file, a database that refuses the connection, a bad URL) is found when the database is opened,
before any work starts. Secrets are printed only by ``init`` and ``keys rekey``, once.

The master key comes from the provider the vault was initialised (or rekeyed) with: the
environment, ``DATABUNKER_KMS`` for a KMS-protected vault, or shares read from standard
input, one per line, for a share-protected one (``serve`` starts sealed instead).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy.exc

from databunker import __version__, logs
from databunker.config import Bootstrap, ConfigError, Settings, load_bootstrap, load_settings
from databunker.crypto import Keyring, MasterKey, new_token
from databunker.crypto import providers as prov
from databunker.metrics import MULTIPROCESS_METRICS
from databunker.services import keys
from databunker.services.access import DEMO_ROOT_TOKEN
from databunker.services.context import Context, system_clock
from databunker.services.login import DEMO_CODE
from databunker.services.schema import SchemaLoadError, UserSchema
from databunker.services.system import VaultStateError, initialise, open_vault
from databunker.storage import Database, DatabaseURLError, audit_chain, migrate, schema_version
from databunker.storage import backup as snapshots
from databunker.storage.database import DEFAULT_URL
from databunker.unsealing import LocalUnsealer, SocketUnsealer, UnsealAgent, Unsealer

log = logging.getLogger("databunker")

MAX_WORKERS = 64
# Set by ``serve --workers N`` for its worker processes.
WORKER_CONFIG = "DATABUNKER_WORKER_CONFIG"
# The supervising process's unseal agent (see databunker.unsealing), for its workers.
UNSEAL_SOCKET = "DATABUNKER_UNSEAL_SOCKET"


class CommandError(Exception):
    """A refusal to report to the operator."""


def _database_url(args: argparse.Namespace, bootstrap: Bootstrap) -> str:
    return str(args.db or bootstrap.database_url or DEFAULT_URL)


def _open_database(url: str) -> Database:
    """The database of ``url``, with one write transaction opened and closed on it, so that
    the command stops here, with a line naming what to fix, if it cannot be used."""
    try:
        database = Database(url)
    except DatabaseURLError as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:  # SQLAlchemy's own parsing, e.g. a port that is not a number
        raise CommandError("database URL is not valid") from exc
    try:
        _probe(database)
    except BaseException:
        database.dispose()
        raise
    return database


def _probe(database: Database) -> None:
    sqlite_file = _sqlite_file(database)
    if sqlite_file is not None:
        _check_sqlite_folder(sqlite_file, str(database.url.database))
    try:
        with database.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
            if sqlite_file is not None:
                # SQLite opens a file it cannot write read-only and says so at the first write.
                conn.exec_driver_sql("SAVEPOINT databunker_probe")
                conn.exec_driver_sql("CREATE TABLE databunker_probe (x INTEGER)")
                conn.exec_driver_sql("ROLLBACK TO databunker_probe")
                conn.exec_driver_sql("RELEASE databunker_probe")
    except OSError as exc:  # the lock file beside a SQLite database
        raise CommandError(f"cannot open the database: {_os_problem(exc)}") from exc
    except sqlalchemy.exc.DBAPIError as exc:
        raise CommandError(_driver_problem(exc, sqlite_file)) from exc


def _sqlite_file(database: Database) -> Path | None:
    name = database.url.database
    if not database.is_sqlite or not name or name == ":memory:":
        return None
    return Path(name).resolve()


def _check_sqlite_folder(path: Path, name: str) -> None:
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise CommandError(f"cannot open the database: {folder} is not a folder")
    hint = ""
    if not Path(name).is_absolute():
        hint = (
            f" (sqlite:///{name} is a path relative to the current folder; "
            f"write sqlite:////{name} for /{name})"
        )
    raise CommandError(f"cannot open the database: folder {folder} does not exist{hint}")


def _os_problem(exc: OSError) -> str:
    filename = str(exc.filename)
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not os.path.exists(filename):
        return f"folder {Path(filename).parent} is not writable ({reason})"
    return f"cannot write {filename}: {reason}"


def _driver_problem(exc: sqlalchemy.exc.DBAPIError, sqlite_file: Path | None) -> str:
    """One line from the driver's message; it names neither a password nor a value."""
    lines = str(exc.orig).strip().splitlines() or ["unknown error"]
    reason = lines[0].strip().removeprefix("connection failed: ")
    if sqlite_file is None:
        return f"cannot connect to the database: {reason}"
    known = {
        "attempt to write a readonly database": f"{sqlite_file} is not writable",
        "unable to open database file": f"cannot open {sqlite_file}",
        "file is not a database": f"{sqlite_file} is not a SQLite database",
    }
    return f"cannot open the database: {known.get(reason, f'{sqlite_file}: {reason}')}"


def _master_key(bootstrap: Bootstrap) -> MasterKey | None:
    if not bootstrap.master_key_hex:
        return None
    try:
        return MasterKey.from_hex(bootstrap.master_key_hex)
    except ValueError as exc:
        raise CommandError(f"DATABUNKER_MASTERKEY: {exc}") from exc


def build_vault(
    settings: Settings, database: Database, keyring: Keyring, *, demo: bool = False
) -> Context:
    schema = None
    if settings.generic.user_record_schema:
        try:
            schema = UserSchema.load(settings.generic.user_record_schema)
        except SchemaLoadError as exc:
            raise CommandError(f"generic.user_record_schema: {exc}") from exc
    return Context(settings, database, keyring, system_clock, schema, demo)


def _new_provider(args: argparse.Namespace) -> prov.KeyProvider:
    """The provider ``--shares N --threshold K`` or ``--kms aws-kms:<key>`` ask for."""
    try:
        if args.kms is not None:
            if args.shares is not None or args.threshold is not None:
                raise CommandError("--kms and --shares cannot be used together")
            return prov.AwsKmsKeyProvider(args.kms)
        if args.shares is not None or args.threshold is not None:
            if args.shares is None or args.threshold is None:
                raise CommandError("--shares and --threshold go together")
            return prov.ShamirKeyProvider(args.shares, args.threshold)
    except prov.KeyProviderError as exc:
        raise CommandError(str(exc)) from exc
    return prov.EnvironmentKeyProvider()


def _protect(provider: prov.KeyProvider, master: MasterKey, vault_id: str) -> prov.ProtectedKey:
    try:
        return provider.protect(master, vault_id)
    except prov.KeyProviderError as exc:
        raise CommandError(str(exc)) from exc


def cmd_init(args: argparse.Namespace) -> None:
    settings_file = args.config
    load_settings(settings_file)  # a bad configuration should stop init too
    bootstrap = load_bootstrap()
    provider = _new_provider(args)
    database = _open_database(_database_url(args, bootstrap))
    supplied_key = _master_key(bootstrap)
    master = supplied_key or MasterKey.generate()
    root_token = bootstrap.root_token or new_token()
    vault_id = str(uuid.uuid4())
    try:
        with database.transaction() as conn:
            if schema_version(conn) > 0 and keys.KEY_CHECK in _meta_names(conn):
                raise CommandError("the database is already initialised")
        protected = _protect(provider, master, vault_id)
        initialise(
            database,
            Keyring(master),
            root_token,
            system_clock(),
            vault_id=vault_id,
            provider_values=protected.stored,
        )
    except VaultStateError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        database.dispose()
    print("# Keep these values secret; they are not shown again.")
    if supplied_key is None or not isinstance(provider, prov.EnvironmentKeyProvider):
        for line in protected.printed:
            print(line)
    else:
        print("# master key: the one given in the environment")
    if bootstrap.root_token is None:
        print(f"DATABUNKER_ROOTTOKEN={root_token}")
    else:
        print("# root token: the one given in the environment")


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    # uvicorn shuts down gracefully, then re-raises the signal: end with a normal exit so
    # that cleanup (the demo's temporary database) runs.
    raise SystemExit(0)


def _serve(
    vault: Context,
    host: str,
    port: int,
    workers: int = 1,
    *,
    on_listening: Callable[[str, int], None] | None = None,
    unsealer: Unsealer | None = None,
) -> None:
    """Run the server until it is stopped; ``on_listening(scheme, port)`` is called once the
    (single) server process listens, with the port it is bound to."""
    import uvicorn

    sys.setswitchinterval(float(os.environ.get("X_SWITCH", "0.005")))

    from databunker.app import build_app

    ssl = vault.settings.ssl
    tls: dict[str, str] = {}
    if ssl.ssl_certificate:
        if not Path(ssl.ssl_certificate).is_file():
            raise CommandError(f"ssl.ssl_certificate: no such file {ssl.ssl_certificate}")
        tls = {"ssl_certfile": ssl.ssl_certificate, "ssl_keyfile": ssl.ssl_certificate_key}
    log.info("listening", extra={"event": f"http{'s' if tls else ''}://{host}:{port}"})
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        **tls,
    }
    if workers > 1:
        # Each worker process opens the vault again from the environment (see worker_app);
        # this process only supervises them.
        vault.database.dispose()
        with tempfile.TemporaryDirectory(prefix="databunker-metrics-") as shared:
            os.environ[MULTIPROCESS_METRICS] = shared
            uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)
        return
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    scheme = "https" if tls else "http"
    try:
        _run_uvicorn(
            build_app(vault, unsealer=unsealer),
            options,
            None if on_listening is None else lambda bound: on_listening(scheme, bound),
        )
    finally:
        vault.database.dispose()


def _run_uvicorn(
    app: Any, options: dict[str, Any], on_listening: Callable[[int], None] | None
) -> None:
    """``uvicorn.run`` for one process, calling ``on_listening(port)`` once the socket is bound
    (uvicorn only logs that), and a CommandError naming why if it could not start."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_listening is not None:
                on_listening(self.servers[0].sockets[0].getsockname()[1])

    server = Server(uvicorn.Config(app, **options))
    # uvicorn logs why it cannot start (a port in use, say), then exits.
    startup_error = _LastError()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(startup_error)
    try:
        # Ctrl+C: uvicorn shuts down gracefully, then re-raises the signal it received.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    except SystemExit:
        if server.started:
            raise
    finally:
        uvicorn_log.removeHandler(startup_error)
    if not server.started:
        raise CommandError(f"cannot start the server: {startup_error.message}")


class _LastError(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message = "see the log above"

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage().splitlines()[0]


def worker_app() -> Any:
    """The app of one worker process of ``serve --workers N``: the parent left the database
    URL, the configuration file and its unseal agent's socket in the environment; the
    master key comes from that agent."""
    from databunker.app import build_app

    logs.configure()
    sys.setswitchinterval(float(os.environ.get("X_SWITCH", "0.005")))
    settings = load_settings(os.environ.get(WORKER_CONFIG) or None)
    database = _open_database(load_bootstrap().database_url or DEFAULT_URL)
    unsealer = SocketUnsealer(os.environ[UNSEAL_SOCKET])
    master = unsealer.master_key()
    keyring = Keyring.sealed_keyring()
    if master is not None:
        keyring = Keyring(master)
        open_vault(database, keyring, settings.sms.default_country)
    vault = build_vault(settings, database, keyring)
    return build_app(vault, owns_database=True, unsealer=unsealer)


def _meta_names(conn: Any) -> set[str]:
    import sqlalchemy as sa

    return set(conn.execute(sa.text("SELECT name FROM meta")).scalars())


def _provider_values(database: Database) -> dict[str, str]:
    """The stored key provider's values; refuses a database never initialised."""
    with database.transaction() as conn:
        initialised = schema_version(conn) > 0 and keys.KEY_CHECK in _meta_names(conn)
    if not initialised:
        raise CommandError("the database is not initialised: run `databunker init` first")
    return keys.provider_values(database)


def _shares_from_stdin(database: Database, threshold: int) -> MasterKey:
    """The master key rebuilt from shares read from standard input, one per line."""
    collector = prov.ShareCollector(threshold)
    if sys.stdin.isatty():
        print(f"enter {threshold} shares, one per line:", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            master = collector.add(line)
        except prov.KeyProviderError as exc:
            raise CommandError(f"standard input: {exc}") from exc
        if master is not None:
            if not keys.check_master_key(database, master):
                raise CommandError("shares do not match this vault")
            return master
    raise CommandError(
        f"this vault is protected by shares: give {threshold} on standard input, one per line"
    )


def _stored_master_key(
    database: Database, values: dict[str, str], *, read_shares: bool = True
) -> MasterKey | None:
    """The master key from the vault's provider; None for shares when ``read_shares`` is
    False (``serve`` starts sealed)."""
    kind = values.get(prov.PROVIDER, prov.EnvironmentKeyProvider.kind)
    bootstrap = load_bootstrap()
    try:
        if kind == prov.ShamirKeyProvider.kind:
            threshold = keys.shamir_threshold(values) or 0
            return _shares_from_stdin(database, threshold) if read_shares else None
        if kind == prov.AwsKmsKeyProvider.kind:
            if not bootstrap.kms:
                raise CommandError(
                    "this vault's master key is kept by AWS KMS: set DATABUNKER_KMS=aws-kms:<key>"
                )
            kms = prov.AwsKmsKeyProvider(bootstrap.kms)
            return kms.master_key(values, values.get(keys.VAULT_ID, ""))
        return prov.EnvironmentKeyProvider(bootstrap.master_key_hex).master_key()
    except prov.KeyProviderError as exc:
        raise CommandError(str(exc)) from exc


def _open_existing_vault(args: argparse.Namespace) -> Context:
    """The vault of ``--db`` with its master key (environment, KMS or shares on standard
    input), checked against it."""
    return _open_vault(args.config, args.db)


def _open_vault(
    config: str | None, database_url: str | None, *, sealed_ok: bool = False
) -> Context:
    """``sealed_ok``: a share-protected vault is opened sealed instead of reading shares."""
    settings = load_settings(config)
    bootstrap = load_bootstrap()
    database = _open_database(database_url or bootstrap.database_url or DEFAULT_URL)
    try:
        values = _provider_values(database)
        master = _stored_master_key(database, values, read_shares=not sealed_ok)
        if master is None:
            migrate(database)
            return build_vault(settings, database, Keyring.sealed_keyring())
        keyring = Keyring(master)
        open_vault(database, keyring, settings.sms.default_country)
        return build_vault(settings, database, keyring)
    except (VaultStateError, CommandError) as exc:
        database.dispose()
        raise CommandError(str(exc)) from exc


def _unsealer(vault: Context) -> LocalUnsealer:
    """The unseal state of a server: shares to collect, or the key it was started with."""
    if not vault.keyring.sealed:
        return LocalUnsealer(0, lambda _key: False, vault.keyring.master)
    threshold = keys.shamir_threshold(keys.provider_values(vault.database)) or 0
    database = vault.database
    return LocalUnsealer(threshold, lambda master: keys.check_master_key(database, master))


def cmd_serve(args: argparse.Namespace) -> None:
    vault = _open_vault(args.config, args.db, sealed_ok=True)
    settings = vault.settings
    workers = settings.server.workers if args.workers is None else args.workers
    if not 1 <= workers <= MAX_WORKERS:
        vault.database.dispose()
        raise CommandError(f"--workers must be between 1 and {MAX_WORKERS}")
    if vault.keyring.sealed:
        log.warning("sealed: give the shares to POST /v1/sys/unseal")
    unsealer = _unsealer(vault)
    host, port = args.host or settings.server.host, args.port or settings.server.port
    if workers == 1:
        _serve(vault, host, port, unsealer=unsealer)
        return
    os.environ["DATABUNKER_DB"] = vault.database.url.render_as_string(hide_password=False)
    os.environ[WORKER_CONFIG] = str(Path(args.config).resolve()) if args.config else ""
    # The workers reach this process's unseal state through a socket only this user can open.
    with tempfile.TemporaryDirectory(prefix="databunker-unseal-") as private:
        os.chmod(private, 0o700)
        agent = UnsealAgent(unsealer, os.path.join(private, "unseal.sock"))
        agent.start()
        os.environ[UNSEAL_SOCKET] = agent.path
        try:
            _serve(vault, host, port, workers)
        finally:
            agent.stop()


def cmd_import(args: argparse.Namespace) -> None:
    from databunker.bulk import import_users

    vault = _open_existing_vault(args)
    try:
        with open(args.file, encoding="utf-8", errors="replace") as lines:
            report = import_users(vault, lines, progress=sys.stderr)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    finally:
        vault.database.dispose()
    for number, reason in report.errors:
        print(f"line {number}: skipped: {reason}", file=sys.stderr)
    if report.skipped > len(report.errors):
        print(f"... and {report.skipped - len(report.errors)} more", file=sys.stderr)
    rate = report.created / report.seconds if report.seconds > 0 else 0.0
    print(
        f"imported {report.created} users, skipped {report.skipped} lines "
        f"in {report.seconds:.1f} s ({rate:,.0f} users/s)",
        file=sys.stderr,
    )


def cmd_export(args: argparse.Namespace) -> None:
    from databunker.bulk import export_users

    vault = _open_existing_vault(args)
    try:
        if args.file == "-":
            exported = export_users(vault, sys.stdout, progress=sys.stderr)
        else:
            with open(args.file, "w", encoding="utf-8") as out:
                exported = export_users(vault, out, progress=sys.stderr)
    except OSError as exc:
        raise CommandError(f"cannot write {args.file}: {exc.strerror}") from exc
    finally:
        vault.database.dispose()
    print(f"exported {exported} users", file=sys.stderr)


def cmd_keys_status(args: argparse.Namespace) -> None:
    bootstrap = load_bootstrap()
    database = _open_database(_database_url(args, bootstrap))
    try:
        _provider_values(database)
        migrate(database)  # a vault of an earlier release: its keyring is version 1
        found = keys.status(database)
    finally:
        database.dispose()
    print(f"master key provider: {found.provider}")
    print(f"current version: {found.current}")
    for version in found.versions:
        mark = " (current)" if version.current else ""
        print(f"version {version.version}{mark}: wraps {version.wrapped_keys} data keys")
    rotation = found.rotation
    if rotation is not None and rotation.state != "done":
        print(f"rotation to version {rotation.version}: {rotation.state}")


class _ProgressBar:
    """``rewrapped 1200/5000 [######----] 24%`` on standard error, redrawn in place."""

    WIDTH = 30

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        end = "\n" if done >= total else ""
        print(f"\rrewrapped {done}/{total} [{bar}] {share:4.0%}", end=end, file=sys.stderr)
        sys.stderr.flush()


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    vault = _open_existing_vault(args)
    try:
        print("adding a key version; running servers pick it up first...", file=sys.stderr)
        version = keys.rotate(vault.database, vault.keyring, vault.clock, progress=_ProgressBar())
        print(f"current version: {version}")
        if args.retire:
            destroyed = keys.retire(vault.database, vault.keyring, vault.clock)
            listed = ", ".join(str(v) for v in destroyed) or "none"
            print(f"destroyed versions: {listed}")
    finally:
        vault.database.dispose()


def cmd_keys_rekey(args: argparse.Namespace) -> None:
    provider = _new_provider(args)
    vault = _open_existing_vault(args)
    try:
        protected = keys.rekey(
            vault.database, vault.keyring, MasterKey.generate(), provider, vault.clock
        )
    except prov.KeyProviderError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        vault.database.dispose()
    print("# The vault's new secret; keep it secret, it is not shown again.")
    print("# The old master key (or shares, or KMS key) no longer opens this vault.")
    for line in protected.printed:
        print(line)


# A chain this long gets a progress display even when stderr is not a terminal.
LARGE_CHAIN = 100_000


class _VerifyProgress:
    """Progress of ``audit verify`` on stderr: a line redrawn in place on a terminal, and a
    line every tenth of the way for a large chain otherwise."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._next_tenth = 1
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self._tty:
            self._stream.write(f"\rverifying the audit chain: {done:,} / {total:,} events")
            self._stream.flush()
            self._drawn = True
        elif total >= LARGE_CHAIN and done * 10 >= self._next_tenth * total:
            self._next_tenth = done * 10 // total + 1
            print(f"verified {done:,} of {total:,} events", file=self._stream, flush=True)

    def end(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _anchor(text: str | None) -> audit_chain.Anchor | None:
    """``COUNT:LINK`` as ``GET /v1/sys/audit/head`` gave them."""
    if text is None:
        return None
    count, _, link = text.strip().partition(":")
    try:
        return audit_chain.Anchor.parse(int(count), link)
    except ValueError:
        raise CommandError(
            "--anchor must be COUNT:LINK, as GET /v1/sys/audit/head returns them"
        ) from None


def cmd_audit_verify(args: argparse.Namespace) -> None:
    anchor = _anchor(args.anchor)
    vault = _open_existing_vault(args)
    progress = _VerifyProgress(sys.stderr)
    try:
        found = audit_chain.verify(
            vault.database, vault.keyring.audit_chain_key(), anchor=anchor, progress=progress
        )
    except audit_chain.AuditChainError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        progress.end()
        vault.database.dispose()
    if not found.intact:
        where = f" at event {found.broken_at}" if found.broken_at else ""
        raise CommandError(f"audit chain broken{where}: {found.reason}")
    print(f"audit chain intact: {found.events} events")
    if found.unlinked:
        print(f"{found.unlinked} earlier events were written before the chain began: not linked")
    if found.anchor_purged:
        print("the anchored event was removed by retention: the anchor was not compared")


def cmd_backup(args: argparse.Namespace) -> None:
    database = _open_database(_database_url(args, load_bootstrap()))
    try:
        with database.transaction() as conn:
            initialised = schema_version(conn) > 0 and "key_check" in _meta_names(conn)
        if not initialised:
            raise CommandError("the database is not initialised: there is no vault to back up")
        size = snapshots.backup(database, Path(args.file))
    except snapshots.BackupError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        database.dispose()
    print(f"backup written to {args.file} ({size:,} bytes); keep the master key apart from it")


def cmd_restore(args: argparse.Namespace) -> None:
    database = _open_database(_database_url(args, load_bootstrap()))
    try:
        snapshots.restore(database, Path(args.file))
        migrate(database)  # a backup of an earlier release is brought up to date
    except snapshots.BackupError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        database.dispose()
    print(f"restored {args.file}; start the server with the vault's master key or shares")


def cmd_demo(args: argparse.Namespace) -> None:
    settings = load_settings(args.config)
    with tempfile.TemporaryDirectory(prefix="databunker-demo-") as folder:
        database = _open_database(f"sqlite:///{folder}/demo.db")
        keyring = Keyring(MasterKey.generate())
        initialise(database, keyring, DEMO_ROOT_TOKEN, system_clock())
        print(
            "DEMO MODE: root token is DEMO, data lives in a temporary database that is deleted "
            "on exit. Never put real personal data here.",
            file=sys.stderr,
        )
        log.warning("demo mode: root token DEMO, temporary database")
        vault = build_vault(settings, database, keyring, demo=True)
        _serve(
            vault,
            args.host,
            args.port,
            on_listening=lambda scheme, port: print(
                demo_banner(scheme, args.host, port), flush=True
            ),
        )


def demo_banner(scheme: str, host: str, port: int) -> str:
    """Where to go once the demo listens on ``host``: an address one can open in a browser."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - every interface: this machine is one of them
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    base = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    return "\n".join(
        [
            f"Databunker demo is running at {base}",
            f"  API base URL:   {base}/v1/  (header X-Bunker-Token: {DEMO_ROOT_TOKEN})",
            f"  privacy portal: {base}/  (sign in with the email or phone of a user you "
            f"created; the login code is {DEMO_CODE})",
            f"  admin portal:   {base}/admin  (root token {DEMO_ROOT_TOKEN})",
            "Stop it with Ctrl+C; its data is deleted then.",
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="databunker", description=__doc__)
    parser.add_argument("--version", action="version", version=f"databunker {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create the schema, master key and root token")
    serve = commands.add_parser("serve", help="run the server (needs DATABUNKER_MASTERKEY)")
    for sub in (init, serve):
        sub.add_argument(
            "--db",
            help="sqlite:///path.db, postgresql://user:pass@host/db or mariadb://user:pass@host/db",
        )
        sub.add_argument("--config", help="YAML configuration file (default ./databunker.yaml)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="server processes (default server.workers, 1)")
    _provider_options(init)
    init.set_defaults(handler=cmd_init)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="try it out: temporary database, root token DEMO")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=3000)
    demo.add_argument("--config")
    demo.set_defaults(handler=cmd_demo)

    bulk_import = commands.add_parser("import", help="create users from a JSON-lines file")
    bulk_import.add_argument("file", help="one profile object per line")
    bulk_import.set_defaults(handler=cmd_import)
    bulk_export = commands.add_parser("export", help="write every user as JSON lines")
    bulk_export.add_argument("file", help='output file ("-" for standard output)')
    bulk_export.set_defaults(handler=cmd_export)
    for sub in (bulk_import, bulk_export):
        sub.add_argument(
            "--db",
            help="sqlite:///path.db, postgresql://user:pass@host/db or mariadb://user:pass@host/db",
        )
        sub.add_argument("--config", help="YAML configuration file (default ./databunker.yaml)")

    key_commands = commands.add_parser("keys", help="the keyring: status, rotate, rekey")
    key_sub = key_commands.add_subparsers(dest="keys_command", required=True)
    key_status = key_sub.add_parser("status", help="key versions and what each wraps")
    key_status.set_defaults(handler=cmd_keys_status)
    key_rotate = key_sub.add_parser("rotate", help="add a key version and rewrap to it")
    key_rotate.add_argument(
        "--retire", action="store_true", help="then destroy versions that wrap nothing"
    )
    key_rotate.set_defaults(handler=cmd_keys_rotate)
    key_rekey = key_sub.add_parser("rekey", help="protect the keyring with a new master key")
    _provider_options(key_rekey)
    key_rekey.set_defaults(handler=cmd_keys_rekey)
    for sub in (key_status, key_rotate, key_rekey):
        sub.add_argument(
            "--db",
            help="sqlite:///path.db, postgresql://user:pass@host/db or mariadb://user:pass@host/db",
        )
        sub.add_argument("--config", help="YAML configuration file (default ./databunker.yaml)")
    audit = commands.add_parser("audit", help="check the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check that no audit event was changed")
    verify.add_argument(
        "--db",
        help="sqlite:///path.db, postgresql://user:pass@host/db or mariadb://user:pass@host/db",
    )
    verify.add_argument("--config", help="YAML configuration file (default ./databunker.yaml)")
    verify.add_argument(
        "--anchor", metavar="COUNT:LINK", help="a head taken earlier from GET /v1/sys/audit/head"
    )
    verify.set_defaults(handler=cmd_audit_verify)

    backup = commands.add_parser("backup", help="write a consistent snapshot of the vault")
    backup.add_argument("file", help="the backup file to write (must not exist)")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty database")
    restore.add_argument("file", help="a file written by databunker backup")
    restore.set_defaults(handler=cmd_restore)
    for sub in (backup, restore):
        sub.add_argument("--db", help="sqlite:///path.db (PostgreSQL: pg_dump, pg_restore)")
        sub.add_argument("--config", help="YAML configuration file (default ./databunker.yaml)")

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda _args: print(f"databunker {__version__}"))
    return parser


def _provider_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shares", type=int, help="split the master key into N shares")
    parser.add_argument("--threshold", type=int, help="shares needed to unseal (with --shares)")
    parser.add_argument("--kms", help="keep the master key encrypted by aws-kms:<key id or ARN>")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure()
    try:
        args.handler(args)
    except (CommandError, ConfigError, VaultStateError, keys.KeyringError) as exc:
        print(f"databunker: {exc}", file=sys.stderr)
        return 1
    except sqlalchemy.exc.DBAPIError as exc:  # the database went away after it was opened
        lines = str(exc.orig).strip().splitlines() or ["unknown error"]
        print(f"databunker: database error: {lines[0]}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"databunker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
