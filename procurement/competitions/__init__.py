"""Competitions (konkurranser): what follows an approved needs report.

`procedure` suggests the procedure for the value band, `timeline` works back from the wished
start, and `strategy` drafts the konkurransestrategi as a .docx from a Word template.
"""
