"""Spreadsheet import (表格导入) for village lists and demand lists sent over WeChat groups.

Pure: bytes in, data out. The parser never half-imports silently: every row with a problem
yields a `RowError` (spreadsheet row number, the column's header text as written in the file,
a bilingual reason) and is left out of `rows`; callers import only when `ParseResult.ok`.

Row numbers are the spreadsheet's own 1-based row numbers (CSV: record number, so a quoted
cell with a line break does not shift them). Row 0 means the whole file (unreadable, wrong
format, no data, too many errors).

A file over a size limit of `SpreadsheetPolicy` (unpacked size, rows, columns, cell length) is
not a row problem but a refusal: InvalidInput on "content", naming the limit. An XLSX is a zip:
its parts' unpacked sizes are checked before openpyxl opens it (openpyxl reads the shared
strings part whole), and zipfile never unpacks a part past the size it declares.

Modules: policy (the limits), rows (what a parse gives), columns (the accepted columns and
words, cell values), archive_limits (refusals of a file over a limit), read (bytes to rows of
cells), parse (header and rows: parse_spreadsheet), write (the report, sample lists, writing a
file back).
"""
