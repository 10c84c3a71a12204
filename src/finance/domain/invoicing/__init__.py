"""Invoicing and tax (issue 6): tax identifiers, dated tax codes, exact line and invoice
figures, fiscal years. Pure: no I/O, no clock; dates and configuration come as arguments."""
