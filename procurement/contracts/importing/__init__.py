"""Import of contract exports from the contract administration tool (KAV).

A CSV or XLSX export becomes contracts in the register, one module per step:

* ``files``   – the file's bytes to rows of cells (CSV sniffing and encodings, XLSX)
* ``columns`` – which column is which field (names, aliases, the README's mapping table)
* ``values``  – the readers of a cell's value (dates, amounts, options, controls, words);
  the contract card uses the same readers
* ``rows``    – rows to ``ContractData`` or a reason per row (``parse_contract_file``)
* ``apply``   – the rows to the register through ``ContractUpsertPort``, and the printed
  report (``apply_import``, ``format_summary``, ``format_parse_report``)
* ``cells``   – a cell as text, and the folded form names are matched in

Callers import from the module that does the step; this package exports nothing.
"""
