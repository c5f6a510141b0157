"""``innkjop-import-contracts FILE [--database-url URL] [--dry-run] [--lang nb|en]``

Reads a CSV/XLSX export from the contract administration tool and upserts every valid
row into the contract register; prints what was created, updated, left unchanged and
rejected (with the reason per row). ``--dry-run`` only checks the file.

Exit status: 0 every row accepted (and saved), 1 some rows rejected or not saved,
2 the file could not be read or the database is not available.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TextIO

from procurement.contracts.importing import (
    ContractFileError,
    ContractUpsertPort,
    ImportSummary,
    ParseReport,
    apply_import,
    format_parse_report,
    format_summary,
    parse_contract_file,
)

EXIT_OK, EXIT_ROWS_REJECTED, EXIT_FAILURE = 0, 1, 2


class StoreUnavailable(RuntimeError):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="innkjop-import-contracts",
        description="Importer avtaler fra en CSV- eller Excel-eksport av kontraktsadministrasjonsverktøyet "
                    "(Import contracts from a CSV or Excel export of the contract administration tool).",
    )
    parser.add_argument("file", metavar="FILE", help="CSV- eller XLSX-fil (CSV or XLSX file)")
    parser.add_argument("--database-url", default=None,
                        help="Database-URL; standard er miljøvariabelen DATABASE_URL "
                             "(default: the DATABASE_URL environment variable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="Bare kontroller filen, lagre ingenting (check the file only, save nothing)")
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
    database_url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not database_url:
        print("Oppgi --database-url eller sett DATABASE_URL (give --database-url or set DATABASE_URL).",
              file=stderr)
        return EXIT_FAILURE
    try:
        if open_store is None:
            raise StoreUnavailable("no contract register given; run `innkjop-import-contracts` or `python app.py import-contracts`")
        summary = asyncio.run(run_import(report, database_url, open_store))
    except StoreUnavailable as exc:
        print(str(exc), file=stderr)
        return EXIT_FAILURE
    except Exception as exc:  # the database could not be opened or closed; rows are reported per row
        print(f"Importen stoppet: {type(exc).__name__}: {exc} (the import stopped)", file=stderr)
        return EXIT_FAILURE
    stdout.write(format_summary(summary, args.lang))
    return EXIT_OK if summary.ok else EXIT_ROWS_REJECTED


if __name__ == "__main__":  # pragma: no cover - `python -m procurement.contracts.import_cli`
    # Entry point only: the composition root supplies the database.
    from app import import_contracts

    raise SystemExit(import_contracts(sys.argv[1:]))
