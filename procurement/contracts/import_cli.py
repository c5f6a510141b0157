"""``innkjop-import-contracts FILE [--database-url URL] [--dry-run] [--lang nb|en]``

Reads a CSV/XLSX export from the contract administration tool and upserts every valid
row into the contract register; prints what was created, updated, left unchanged and
rejected (with the reason per row). ``--dry-run`` only checks the file.

Exit status: 0 every row accepted (and saved), 1 some rows rejected or not saved,
2 the file could not be read or the database is not available.

The register is opened by the composition root (``app.import_contracts``, behind the
``innkjop-import-contracts`` script and ``python app.py import-contracts``), which passes
``open_store``; this module imports nothing from ``app``. Run on its own
(``python -m procurement.contracts.import_cli``) it can only check a file (``--dry-run``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TextIO

from procurement.contracts.importing.apply import (
    ContractUpsertPort,
    ImportSummary,
    apply_import,
    format_parse_report,
    format_summary,
)
from procurement.contracts.importing.files import ContractFileError
from procurement.contracts.importing.rows import ParseReport, parse_contract_file

EXIT_OK, EXIT_ROWS_REJECTED, EXIT_FAILURE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="innkjop-import-contracts",
        description="Importer avtaler fra en CSV- eller Excel-eksport av "
        "kontraktsadministrasjonsverktøyet (Import contracts from a CSV or Excel export of the "
        "contract administration tool).",
    )
    parser.add_argument("file", metavar="FILE", help="CSV- eller XLSX-fil (CSV or XLSX file)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="Database-URL; standard er miljøvariabelen DATABASE_URL (default: the DATABASE_URL environment variable)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Bare kontroller filen, lagre ingenting (check the file only, save nothing)",
    )
    parser.add_argument("--lang", choices=("nb", "en"), default="nb", help="Språk i rapporten (report language)")
    return parser


OpenStore = Callable[[str], AbstractAsyncContextManager[ContractUpsertPort]]


async def run_import(report: ParseReport, database_url: str, open_store: OpenStore) -> ImportSummary:
    """Open the register (given by the composition root, app.py) and apply the parsed rows."""
    async with open_store(database_url) as register:
        return await apply_import(register, report)


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    open_store: OpenStore | None = None,
) -> int:
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    args = build_parser().parse_args(argv)
    english = args.lang == "en"
    try:
        report = parse_contract_file(args.file)
    except ContractFileError as exc:
        print(exc.message_en if english else exc.message_nb, file=stderr)
        return EXIT_FAILURE
    if args.dry_run:
        stdout.write(format_parse_report(report, args.lang))
        return EXIT_OK if not report.rejected else EXIT_ROWS_REJECTED
    # Empty: the bot's own settings decide (DATABASE_URL, .env, or the local SQLite file).
    database_url = args.database_url or ""
    if open_store is None:
        print(
            "Uten kontraktsregister kan filen bare kontrolleres (--dry-run); importer med "
            "`innkjop-import-contracts` eller `python app.py import-contracts` "
            "(no contract register given: check with --dry-run, import with one of those).",
            file=stderr,
        )
        return EXIT_FAILURE
    try:
        summary = asyncio.run(run_import(report, database_url, open_store))
    # The database could not be opened or closed (a row that fails is reported with its row).
    except SystemExit as exc:  # the settings refused (no LOCAL_MODE/app, a bad DATABASE_URL): their message
        print(f"Importen stoppet (the import stopped):\n{exc.code}", file=stderr)
        return EXIT_FAILURE
    except ValueError as exc:  # a DATABASE_URL of a form we don't read (the message names only its scheme)
        print(f"Importen stoppet: {exc} (the import stopped)", file=stderr)
        return EXIT_FAILURE
    except Exception as exc:
        # Never the exception text: a driver's message can carry the connection string.
        print(
            f"Importen stoppet: databasen kunne ikke åpnes ({type(exc).__name__}). "
            "Sjekk DATABASE_URL og at databasen kjører (the import stopped: the database "
            "could not be opened).",
            file=stderr,
        )
        return EXIT_FAILURE
    stdout.write(format_summary(summary, args.lang))
    return EXIT_OK if summary.ok else EXIT_ROWS_REJECTED


if __name__ == "__main__":  # pragma: no cover - without the composition root: --dry-run only
    raise SystemExit(main())
